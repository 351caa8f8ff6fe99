//! Why an exchange has no usable answer: the transport's error kinds,
//! which map to the CLI's exit codes (a target that cannot be reached or
//! refuses the credentials is not a conformance failure).

use std::time::Duration;

use super::auth::redact;

/// Why an exchange produced no usable HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Connection refused, DNS failure, TLS handshake failure, bad URL.
    #[error("target unreachable: {detail}")]
    Unreachable { detail: String },
    /// HTTP 401 or 403 where the step did not expect it.
    #[error("authentication refused: HTTP {status}")]
    AuthRefused { status: u16 },
    /// No complete response within the deadline.
    #[error("no complete response within {}s", after.as_secs_f64())]
    Timeout { after: Duration },
    /// The connection broke or the body could not be read.
    #[error("protocol error: {detail}")]
    Protocol { detail: String },
    /// The answer is another request's: its SOAP Body holds the response
    /// element of another operation (the connection was out of step).
    #[error("this answers another operation: sent {sent}, got {got}")]
    MisAnswered {
        sent: String,
        got: String,
        status: u16,
        /// The answer as received (redacted).
        body: String,
    },
}

impl TransportError {
    pub(crate) fn redacted(self, secrets: &[String]) -> Self {
        let clean = |d: String| redact(&d, secrets).into_owned();
        match self {
            TransportError::Unreachable { detail } => TransportError::Unreachable {
                detail: clean(detail),
            },
            TransportError::Protocol { detail } => TransportError::Protocol {
                detail: clean(detail),
            },
            TransportError::MisAnswered {
                sent,
                got,
                status,
                body,
            } => TransportError::MisAnswered {
                sent,
                got,
                status,
                body: clean(body),
            },
            other => other,
        }
    }

    /// What a report shows as the evidence of this error, when there is more than its message.
    pub fn evidence(&self) -> Option<String> {
        match self {
            TransportError::MisAnswered { status, body, .. } => Some(format!(
                "HTTP {status}: {}",
                crate::client::excerpt::excerpt(body, 600)
            )),
            _ => None,
        }
    }

    /// Whether the whole run is pointless (exit code 2) rather than this exchange failing.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            TransportError::Unreachable { .. } | TransportError::AuthRefused { .. }
        )
    }
}

pub(crate) fn classify(e: reqwest::Error, deadline: Duration) -> TransportError {
    let detail = with_tls_hint(error_chain(&e));
    if e.is_connect() || e.is_builder() {
        TransportError::Unreachable { detail }
    } else if e.is_timeout() {
        TransportError::Timeout { after: deadline }
    } else {
        TransportError::Protocol { detail }
    }
}

/// What to do about a certificate the harness does not trust, added to an
/// error that is about one.
pub(crate) fn with_tls_hint(detail: String) -> String {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        format!(
            "{detail} (the target's TLS certificate is not trusted: for a test server with a \
             self-signed certificate, use --insecure-tls or EWS_INSECURE_TLS=1)"
        )
    } else {
        detail
    }
}

/// The error and its causes on one line (reqwest's top message alone is vague).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
