//! HTTP Basic authentication against the configured users. Neither the
//! header nor the password is ever logged.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::config::UserConfig;

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

    #[test]
    fn accepts_the_three_name_forms() {
        let users = crate::server::ServerConfig::default().users;
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
        let users = crate::server::ServerConfig::default().users;
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
