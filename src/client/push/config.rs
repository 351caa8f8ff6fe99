//! The listener's limits and answers: what it accepts, how long it waits,
//! what it answers a push.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Largest notification body accepted; a longer one is answered 413 and not
/// kept (one that stalls or breaks is answered 400). A notification of 50
/// events is a few tens of KiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// Pushes remembered in all; once full, further pushes are refused (503).
pub const DEFAULT_HISTORY: usize = 4096;
/// Pushes remembered per subscription id (pushes without one share a slot).
pub const DEFAULT_PER_SUBSCRIPTION: usize = 1024;
/// Body bytes remembered in all; past this further pushes are refused (503).
pub const DEFAULT_RETAINED_BYTES: usize = 64 * 1024 * 1024;
/// Connections served at once; further ones are closed on accept.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// The path segment before the run's token: `/ews-push/<token>`.
pub const PATH_PREFIX: &str = "ews-push";
/// How long a `Hang` answer holds the request before giving up with 503.
pub const DEFAULT_HANG_LIMIT: Duration = Duration::from_secs(120);
/// How long a sender may take to deliver a body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `shutdown` waits for open requests before cutting them off.
pub(super) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pushes listed in a wait error.
pub(super) const LISTED_IN_ERRORS: usize = 20;

/// How the listener answers a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushAnswer {
    /// `SendNotificationResult` with `SubscriptionStatus` OK.
    Ok,
    /// `SendNotificationResult` with `SubscriptionStatus` Unsubscribe: the
    /// server must end the subscription.
    Unsubscribe,
    /// This HTTP status with no SOAP body (an invalid code is sent as 500).
    HttpError(u16),
    /// No answer until the listener closes or the hang limit passes (then
    /// 503), so the server sees its request time out.
    Hang,
}

impl fmt::Display for PushAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushAnswer::Ok => write!(f, "OK"),
            PushAnswer::Unsubscribe => write!(f, "Unsubscribe"),
            PushAnswer::HttpError(code) => write!(f, "HTTP {code}"),
            PushAnswer::Hang => write!(f, "no answer (hang)"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Listener settings.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Where to listen; `127.0.0.1:0` picks a free local port.
    pub bind: SocketAddr,
    /// The URL to give the server when it cannot reach the bound address
    /// directly (a remote target, NAT, a proxy).
    pub public_url: Option<String>,
    pub body_limit: usize,
    pub history_limit: usize,
    pub per_subscription_limit: usize,
    pub retained_bytes_limit: usize,
    pub max_connections: usize,
    pub hang_limit: Duration,
    pub body_timeout: Duration,
    /// The secret path segment; `None` draws 128 random bits (hex).
    pub token: Option<String>,
}

impl PushConfig {
    /// The most body bytes the listener holds at once: those remembered
    /// plus those being read on every open connection.
    pub fn memory_bound(&self) -> usize {
        let remembered = self
            .retained_bytes_limit
            .min(self.history_limit.saturating_mul(self.body_limit));
        remembered.saturating_add(self.max_connections.saturating_mul(self.body_limit))
    }
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            body_limit: DEFAULT_BODY_LIMIT,
            history_limit: DEFAULT_HISTORY,
            per_subscription_limit: DEFAULT_PER_SUBSCRIPTION,
            retained_bytes_limit: DEFAULT_RETAINED_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            hang_limit: DEFAULT_HANG_LIMIT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            token: None,
        }
    }
}
