//! How the harness authenticates to a target, and keeping secrets out of
//! everything it prints.

use std::fmt;

/// How a request authenticates.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// No Authorization header.
    #[default]
    None,
    Basic {
        username: String,
        password: String,
    },
    Bearer {
        token: String,
    },
    /// NTLM (NTLMv2), as on-premises Exchange offers it: a handshake on
    /// each connection, which then carries this user's requests.
    Ntlm {
        /// The login as NTLM sends it (`alice`, or the UPN).
        username: String,
        /// The NetBIOS domain (may be empty).
        domain: String,
        password: String,
    },
}

/// Secrets never appear in `{:?}` output.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("Auth::None"),
            Auth::Basic { username, .. } => write!(f, "Auth::Basic({username}, <hidden>)"),
            Auth::Bearer { .. } => f.write_str("Auth::Bearer(<hidden>)"),
            Auth::Ntlm {
                username, domain, ..
            } => write!(f, "Auth::Ntlm({domain}\\{username}, <hidden>)"),
        }
    }
}

impl Auth {
    /// What must never appear in any output: the bearer token, the base64
    /// credential of a Basic Authorization header, and the password itself
    /// when it has at least [`MIN_REDACTED_PASSWORD`] characters (a shorter
    /// one, `test` say, would blank out ordinary words of every response
    /// and turn captures and asserts into false failures).
    pub fn secrets(&self) -> Vec<String> {
        use base64::Engine;
        let all = match self {
            Auth::None => Vec::new(),
            Auth::Basic { username, password } => {
                let mut v = vec![
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}")),
                ];
                if password.chars().count() >= MIN_REDACTED_PASSWORD {
                    v.push(password.clone());
                }
                v
            }
            Auth::Bearer { token } => vec![token.clone()],
            // The NTLM messages carry no password, only proofs of it.
            Auth::Ntlm { password, .. } if password.chars().count() >= MIN_REDACTED_PASSWORD => {
                vec![password.clone()]
            }
            Auth::Ntlm { .. } => Vec::new(),
        };
        all.into_iter().filter(|s| !s.is_empty()).collect()
    }
}

/// Passwords shorter than this are not searched for in responses (see [`Auth::secrets`]).
pub const MIN_REDACTED_PASSWORD: usize = 6;

/// `text` with every secret replaced by `<redacted>`. A target that echoes
/// the request's Authorization header (some error pages do) must not put
/// the credentials into a report.
pub fn redact<'t>(text: &'t str, secrets: &[String]) -> std::borrow::Cow<'t, str> {
    let mut out = std::borrow::Cow::Borrowed(text);
    for s in secrets {
        if out.contains(s.as_str()) {
            out = std::borrow::Cow::Owned(out.replace(s.as_str(), "<redacted>"));
        }
    }
    out
}
