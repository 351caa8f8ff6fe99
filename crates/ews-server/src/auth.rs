//! HTTP authentication against the configured users: Basic per request,
//! NTLM per connection (as IIS does for on-premises Exchange). Neither the
//! header nor the password is ever logged.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::config::UserConfig;

/// What a request's credentials (and its connection) come to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticated {
    /// The index of the user.
    User(usize),
    /// An NTLM handshake goes on: answer 401 with this `WWW-Authenticate`.
    Challenge(String),
    /// No valid credentials.
    No,
}

/// One connection's NTLM state: the challenge it was sent, and the user
/// the handshake authenticated, for the requests that follow on it.
#[derive(Debug, Clone, Default)]
pub struct ConnectionAuth(Arc<Mutex<NtlmState>>);

#[derive(Debug, Default)]
struct NtlmState {
    challenge: Option<[u8; 8]>,
    user: Option<usize>,
}

impl ConnectionAuth {
    /// Judges a request's `Authorization` header on this connection.
    pub fn authenticate(&self, header: Option<&str>, users: &[UserConfig]) -> Authenticated {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(value) = header else {
            // A connection NTLM authenticated stays authenticated.
            return state.user.map_or(Authenticated::No, Authenticated::User);
        };
        let Some(message) = ews_proto::ntlm::from_header(value) else {
            return authenticate(Some(value), users).map_or(Authenticated::No, Authenticated::User);
        };
        if let Ok(flags) = ews_proto::ntlm::read_negotiate(&message) {
            let challenge: [u8; 8] = rand::random();
            state.challenge = Some(challenge);
            state.user = None;
            let domain = users
                .first()
                .and_then(|u| u.smtp.split('@').nth(1))
                .and_then(|d| d.split('.').next())
                .unwrap_or("EWS")
                .to_uppercase();
            let reply = ews_proto::ntlm::challenge(flags, &challenge, &domain, "EWS");
            return Authenticated::Challenge(ews_proto::ntlm::to_header(&reply));
        }
        // AUTHENTICATE answers the challenge this connection was sent, once.
        let (Some(challenge), Ok(auth)) = (
            state.challenge.take(),
            ews_proto::ntlm::read_authenticate(&message),
        ) else {
            return Authenticated::No;
        };
        let name = auth.user.rsplit('\\').next().unwrap_or(&auth.user);
        let found = users.iter().position(|u| {
            (u.smtp.eq_ignore_ascii_case(name) || u.local_part().eq_ignore_ascii_case(name))
                && auth.verify(&challenge, &u.password) == Ok(true)
        });
        state.user = found;
        found.map_or(Authenticated::No, Authenticated::User)
    }
}

/// The index of the user the `Authorization` header value authenticates, if any.
///
/// The user name may be the SMTP address, its local part, or `DOMAIN\local`,
/// the three forms Exchange accepts for Basic auth.
pub fn authenticate(header: Option<&str>, users: &[UserConfig]) -> Option<usize> {
    let value = header?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    let name = name.rsplit('\\').next().unwrap_or(name);
    users.iter().position(|u| {
        let name_ok =
            u.smtp.eq_ignore_ascii_case(name) || u.local_part().eq_ignore_ascii_case(name);
        name_ok && u.password == password
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pw: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{pw}")))
    }

    fn handshake(c: &ConnectionAuth, users: &[UserConfig], user: &str, pw: &str) -> Authenticated {
        let n = ews_proto::ntlm::to_header(&ews_proto::ntlm::negotiate());
        let Authenticated::Challenge(token) = c.authenticate(Some(&n), users) else {
            panic!("a challenge");
        };
        let bytes = ews_proto::ntlm::from_header(&token).expect("NTLM token");
        let ch = ews_proto::ntlm::read_challenge(&bytes).expect("a CHALLENGE");
        let a = ews_proto::ntlm::authenticate(&ch, user, "EXAMPLE", pw, &[9; 8], 0);
        c.authenticate(Some(&ews_proto::ntlm::to_header(&a)), users)
    }

    #[test]
    fn ntlm_authenticates_the_connection_not_the_request() {
        let users = crate::ServerConfig::default().users;
        let c = ConnectionAuth::default();
        assert_eq!(c.authenticate(None, &users), Authenticated::No);
        assert_eq!(
            handshake(&c, &users, "bob", "bob-Secret-2"),
            Authenticated::User(1)
        );
        // Later requests on the connection need no header.
        assert_eq!(c.authenticate(None, &users), Authenticated::User(1));
        // Another connection is not authenticated.
        assert_eq!(
            ConnectionAuth::default().authenticate(None, &users),
            Authenticated::No
        );
        // A wrong password fails and leaves the connection unauthenticated.
        let c = ConnectionAuth::default();
        assert_eq!(
            handshake(&c, &users, "alice@example.com", "wrong"),
            Authenticated::No
        );
        assert_eq!(c.authenticate(None, &users), Authenticated::No);
        // An AUTHENTICATE without a challenge on this connection fails.
        let other = ConnectionAuth::default();
        let ch = ews_proto::ntlm::read_challenge(&ews_proto::ntlm::challenge(
            ews_proto::ntlm::CLIENT_FLAGS,
            &[1; 8],
            "EXAMPLE",
            "EWS",
        ))
        .expect("challenge");
        let a =
            ews_proto::ntlm::authenticate(&ch, "alice", "EXAMPLE", "alice-Secret-1", &[9; 8], 0);
        assert_eq!(
            other.authenticate(Some(&ews_proto::ntlm::to_header(&a)), &users),
            Authenticated::No
        );
        // Hostile tokens are refusals.
        for bad in [
            "NTLM",
            "NTLM =====",
            "NTLM TlRMTVNTUAADAAAA",
            "Negotiate AAAA",
        ] {
            assert_eq!(
                c.authenticate(Some(bad), &users),
                Authenticated::No,
                "{bad}"
            );
        }
        // Basic still works on any connection.
        assert_eq!(
            c.authenticate(Some(&basic("alice", "alice-Secret-1")), &users),
            Authenticated::User(0)
        );
    }

    #[test]
    fn accepts_the_three_name_forms() {
        let users = crate::ServerConfig::default().users;
        for name in ["alice@example.com", "ALICE", "EXAMPLE\\alice"] {
            assert_eq!(
                authenticate(Some(&basic(name, "alice-Secret-1")), &users),
                Some(0),
                "{name}"
            );
        }
        assert_eq!(
            authenticate(Some(&basic("bob", "bob-Secret-2")), &users),
            Some(1)
        );
    }

    #[test]
    fn rejects_bad_credentials() {
        let users = crate::ServerConfig::default().users;
        for h in [
            None,
            Some(basic("alice", "wrong")),
            Some(basic("bob", "alice-Secret-1")),
            Some("Bearer abc".into()),
            Some("Basic !!!".into()),
            Some("Basic".into()),
        ] {
            assert_eq!(authenticate(h.as_deref(), &users), None, "{h:?}");
        }
    }
}
