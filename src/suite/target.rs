//! What the suite runs against: a live endpoint or the embedded reference
//! server. Both are a [`TargetConfig`] (built with [`TargetBuilder`]) behind
//! the small [`Target`] trait, so a target that owns resources (a server it
//! started, a push listener) keeps them alive as long as the run holds it.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use crate::client::auth::Auth;
use crate::client::push::PushListener;
use crate::settings::Settings;
use ews_server::{DialectSet, FaultSet, RunningServer, ServerConfig};

use crate::case::{Capability, UserRole};

/// A mailbox user the harness acts as.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// The primary SMTP address (`${user}` / `${user2}`).
    pub smtp: String,
    pub auth: Auth,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "User({}, {:?})", self.smtp, self.auth)
    }
}

/// Everything the executor needs to know about a target.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// The EWS URL requests are POSTed to.
    pub endpoint: String,
    /// A short description for reports (never includes credentials).
    pub label: String,
    pub user: User,
    pub user2: Option<User>,
    /// RequestServerVersion sent with every named operation.
    pub version: String,
    /// ExchangeImpersonation by SMTP address, on every named operation.
    pub impersonate: Option<String>,
    /// X-AnchorMailbox on every request.
    pub anchor_mailbox: Option<String>,
    pub insecure_tls: bool,
    /// Deadline of one HTTP exchange.
    pub request_timeout: Duration,
    /// How long one protocol minute lasts (`sleep_minutes`, protocol timeouts).
    pub protocol_minute: Duration,
    /// Where the target must send push notifications (`${push_url}`).
    pub push_url: Option<String>,
    /// Where the harness's push listener binds.
    pub push_bind: String,
    pub capabilities: BTreeSet<Capability>,
    /// The server profile cases are filtered by.
    pub profile: Option<String>,
}

impl TargetConfig {
    pub fn builder(endpoint: impl Into<String>) -> TargetBuilder {
        TargetBuilder::new(endpoint)
    }

    /// The user a step acts as.
    pub fn user(&self, role: UserRole) -> Option<&User> {
        match role {
            UserRole::User => Some(&self.user),
            UserRole::User2 => self.user2.as_ref(),
        }
    }

    pub fn has(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }
}

/// Something the suite can run against.
///
/// A live server is just its configuration; the embedded reference server
/// implements this on a handle that stops the server when dropped.
pub trait Target: Send + Sync {
    fn config(&self) -> &TargetConfig;

    /// The harness's push listener, when the target can reach one.
    fn push_listener(&self) -> Option<&PushListener> {
        None
    }
}

impl Target for TargetConfig {
    fn config(&self) -> &TargetConfig {
        self
    }
}

/// Why a target cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("cannot start: {0}")]
    Start(String),
    #[error("invalid target: {0}")]
    Invalid(String),
}

/// Builds a [`TargetConfig`] with the documented defaults.
#[derive(Debug, Clone)]
pub struct TargetBuilder {
    config: TargetConfig,
    explicit_capabilities: BTreeSet<Capability>,
}

impl TargetBuilder {
    pub fn new(endpoint: impl Into<String>) -> Self {
        let endpoint = endpoint.into();
        TargetBuilder {
            config: TargetConfig {
                label: endpoint.clone(),
                endpoint,
                user: User {
                    smtp: "user@example.test".into(),
                    auth: Auth::None,
                },
                user2: None,
                version: "Exchange2013".into(),
                impersonate: None,
                anchor_mailbox: None,
                insecure_tls: false,
                request_timeout: Duration::from_secs(30),
                protocol_minute: Duration::from_secs(60),
                push_url: None,
                push_bind: "127.0.0.1:0".into(),
                capabilities: BTreeSet::new(),
                profile: None,
            },
            explicit_capabilities: BTreeSet::new(),
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.config.label = label.into();
        self
    }

    pub fn user(mut self, smtp: impl Into<String>, auth: Auth) -> Self {
        self.config.user = User {
            smtp: smtp.into(),
            auth,
        };
        self
    }

    pub fn user2(mut self, smtp: impl Into<String>, auth: Auth) -> Self {
        self.config.user2 = Some(User {
            smtp: smtp.into(),
            auth,
        });
        self
    }

    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.config.version = version.into();
        self
    }

    pub fn impersonate(mut self, smtp: Option<String>) -> Self {
        self.config.impersonate = smtp;
        self
    }

    pub fn anchor_mailbox(mut self, smtp: Option<String>) -> Self {
        self.config.anchor_mailbox = smtp;
        self
    }

    /// Turns TLS certificate verification off (it is on by default).
    pub fn insecure_tls(mut self, insecure: bool) -> Self {
        self.config.insecure_tls = insecure;
        self
    }

    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    pub fn protocol_minute(mut self, minute: Duration) -> Self {
        self.config.protocol_minute = minute;
        self
    }

    pub fn push_url(mut self, url: Option<String>) -> Self {
        self.config.push_url = url;
        self
    }

    pub fn push_bind(mut self, bind: impl Into<String>) -> Self {
        self.config.push_bind = bind.into();
        self
    }

    pub fn profile(mut self, profile: Option<String>) -> Self {
        self.config.profile = profile;
        self
    }

    /// Declares a capability beyond the ones derived from the configuration.
    pub fn capability(mut self, capability: Capability) -> Self {
        self.explicit_capabilities.insert(capability);
        self
    }

    /// Checks the configuration and derives the capabilities: `second-user`
    /// with a second user, `streaming` from RequestServerVersion
    /// Exchange2010_SP1 on, `push` when a push URL is known.
    pub fn build(self) -> Result<TargetConfig, TargetError> {
        let mut config = self.config;
        match reqwest::Url::parse(&config.endpoint) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => {
                return Err(TargetError::Invalid(format!(
                    "the endpoint `{}` is not an http(s) URL",
                    config.endpoint
                )));
            }
        }
        if !ews_proto::ews::SERVER_VERSIONS.contains(&config.version.as_str()) {
            return Err(TargetError::Invalid(format!(
                "RequestServerVersion `{}` is not one of {}",
                config.version,
                ews_proto::ews::SERVER_VERSIONS.join(", ")
            )));
        }
        if config.request_timeout.is_zero() || config.protocol_minute.is_zero() {
            return Err(TargetError::Invalid(
                "the request timeout and the protocol minute must be longer than zero".into(),
            ));
        }
        let mut caps = self.explicit_capabilities;
        if config.user2.is_some() {
            caps.insert(Capability::SecondUser);
        }
        if ews_proto::ews::at_least_2010_sp1(&config.version) {
            caps.insert(Capability::Streaming);
        }
        if config.push_url.is_some() {
            caps.insert(Capability::Push);
        }
        config.capabilities = caps;
        Ok(config)
    }
}

/// NTLM credentials: `DOMAIN\\user` splits; otherwise `EWS_NTLM_DOMAIN`
/// (or none) with the login as given.
fn ntlm(login: &str, password: &str, default_domain: Option<&str>) -> Auth {
    let (domain, username) = match login.split_once('\\') {
        Some((d, u)) => (d.to_string(), u.to_string()),
        None => (
            default_domain.unwrap_or_default().to_string(),
            login.to_string(),
        ),
    };
    Auth::Ntlm {
        username,
        domain,
        password: password.to_string(),
    }
}

/// A live target described by the settings (`EWS_ENDPOINT` and friends).
pub fn live(settings: &Settings, endpoint: &str) -> Result<TargetConfig, TargetError> {
    let user = settings
        .user
        .clone()
        .unwrap_or_else(|| "user@example.test".into());
    let auth = match (&settings.bearer_token, &settings.password) {
        (Some(token), _) => Auth::Bearer {
            token: token.clone(),
        },
        (None, Some(password)) if settings.ntlm => {
            ntlm(&user, password, settings.ntlm_domain.as_deref())
        }
        (None, Some(password)) => Auth::Basic {
            username: user.clone(),
            password: password.clone(),
        },
        (None, None) => Auth::None,
    };
    let mut b = TargetBuilder::new(endpoint)
        .label(format!("live endpoint {endpoint}"))
        .user(user, auth)
        .version(settings.version.clone())
        .impersonate(settings.impersonate.clone())
        .anchor_mailbox(settings.anchor_mailbox.clone())
        .insecure_tls(settings.insecure_tls)
        .request_timeout(Duration::from_secs(settings.request_timeout_secs))
        .protocol_minute(Duration::from_millis(
            settings.protocol_minute_ms.unwrap_or(60_000),
        ))
        .push_url(settings.push_url.clone())
        .push_bind(settings.push_bind.clone())
        .profile(settings.profile.clone());
    if let Some(user2) = &settings.user2 {
        let auth2 = match &settings.password2 {
            Some(p) if settings.ntlm => ntlm(user2, p, settings.ntlm_domain.as_deref()),
            Some(p) => Auth::Basic {
                username: user2.clone(),
                password: p.clone(),
            },
            None => Auth::None,
        };
        b = b.user2(user2.clone(), auth2);
    }
    if settings.slow {
        b = b.capability(Capability::Slow);
    }
    b.build()
}

/// How long a protocol minute lasts on the embedded server unless
/// `EWS_PROTOCOL_MINUTE_MS` says otherwise: short enough that expiry,
/// heartbeat and push cases finish in seconds, long enough that a busy
/// two-core machine does not expire a one-minute subscription between two
/// steps of a case.
pub const EMBEDDED_PROTOCOL_MINUTE_MS: u64 = 1_500;

/// A target the run holds for its whole duration: its configuration, the
/// reference server when it is the embedded one, and the harness's push
/// listener when one could be offered to the target.
pub struct RunningTarget {
    config: TargetConfig,
    push: Option<PushListener>,
    server: Option<RunningServer>,
}

impl Target for RunningTarget {
    fn config(&self) -> &TargetConfig {
        &self.config
    }

    fn push_listener(&self) -> Option<&PushListener> {
        self.push.as_ref()
    }
}

impl RunningTarget {
    /// Stops the embedded server and the push listener.
    pub async fn shutdown(self) {
        if let Some(p) = self.push {
            p.shutdown().await;
        }
        if let Some(s) = self.server {
            s.shutdown().await;
        }
    }
}

/// Starts the push listener on `EWS_PUSH_BIND`. The URL the target is told
/// is `EWS_PUSH_URL` when set, else the listener's own address.
async fn start_push(settings: &Settings) -> Result<PushListener, TargetError> {
    let bind: SocketAddr = settings.push_bind.parse().map_err(|_| {
        TargetError::Invalid(format!(
            "EWS_PUSH_BIND `{}` is not an address:port",
            settings.push_bind
        ))
    })?;
    PushListener::start(bind, settings.push_url.clone())
        .await
        .map_err(|e| TargetError::Start(format!("push listener: {e}")))
}

/// The embedded reference server, started in-process on 127.0.0.1:0 with
/// its two built-in users, and a push listener on loopback.
pub async fn embedded(settings: &Settings) -> Result<Arc<dyn Target>, TargetError> {
    Ok(Arc::new(start_embedded(settings).await?))
}

/// [`embedded`], returning the concrete handle (tests use it to shut down).
pub async fn start_embedded(settings: &Settings) -> Result<RunningTarget, TargetError> {
    start_embedded_with(settings, FaultSet::none()).await
}

/// [`start_embedded`] with deliberate server defects switched on (the self-test).
pub async fn start_embedded_with(
    settings: &Settings,
    faults: FaultSet,
) -> Result<RunningTarget, TargetError> {
    start_embedded_variant(settings, faults, DialectSet::none()).await
}

/// [`start_embedded_with`] with legal variations (dialects) switched on too.
pub async fn start_embedded_variant(
    settings: &Settings,
    faults: FaultSet,
    dialects: DialectSet,
) -> Result<RunningTarget, TargetError> {
    let minute = Duration::from_millis(
        settings
            .protocol_minute_ms
            .unwrap_or(EMBEDDED_PROTOCOL_MINUTE_MS),
    );
    let server_config = ServerConfig {
        protocol_minute: minute,
        faults,
        dialects,
        ..ServerConfig::default()
    };
    let users = server_config.users.clone();
    let (Some(first), Some(second)) = (users.first(), users.get(1)) else {
        return Err(TargetError::Invalid(
            "the embedded server needs two users".into(),
        ));
    };
    let server = ews_server::start(server_config)
        .await
        .map_err(|e| TargetError::Start(format!("embedded server: {e}")))?;
    let push = start_push(settings).await?;
    let basic = |u: &ews_server::UserConfig| Auth::Basic {
        username: u.smtp.clone(),
        password: u.password.clone(),
    };
    let config = TargetBuilder::new(server.url())
        .label(match (faults.is_empty(), dialects.is_empty()) {
            (true, true) => format!("embedded reference server at {}", server.url()),
            (false, true) => format!(
                "embedded reference server at {} with faults {faults:?}",
                server.url()
            ),
            _ => format!(
                "embedded reference server at {} with faults {faults:?} and dialects {dialects:?}",
                server.url()
            ),
        })
        .user(first.smtp.clone(), basic(first))
        .user2(second.smtp.clone(), basic(second))
        .version(settings.version.clone())
        .request_timeout(Duration::from_secs(settings.request_timeout_secs))
        .protocol_minute(minute)
        .push_url(Some(push.url().to_string()))
        .push_bind(settings.push_bind.clone())
        .profile(Some(
            settings
                .profile
                .clone()
                .unwrap_or_else(|| "reference".into()),
        ))
        // Protocol minutes last seconds here, so time-based cases are cheap.
        .capability(Capability::Slow)
        .build()?;
    Ok(RunningTarget {
        config,
        push: Some(push),
        server: Some(server),
    })
}

/// A live endpoint with the harness's push listener. Push cases run only
/// when the target can reach the listener: `EWS_PUSH_URL` is set, or the
/// endpoint itself is on loopback.
pub async fn start_live(settings: &Settings, endpoint: &str) -> Result<RunningTarget, TargetError> {
    let mut config = live(settings, endpoint)?;
    let loopback = reqwest::Url::parse(endpoint)
        .ok()
        .and_then(|u| u.host_str().map(is_loopback_host))
        .unwrap_or(false);
    let push = if settings.push_url.is_some() || loopback {
        let listener = start_push(settings).await?;
        config.push_url = Some(listener.url().to_string());
        config.capabilities.insert(Capability::Push);
        Some(listener)
    } else {
        None
    };
    Ok(RunningTarget {
        config,
        push,
        server: None,
    })
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The target the settings select: the live endpoint when one is set, else the embedded server.
pub async fn from_settings(settings: &Settings) -> Result<Arc<dyn Target>, TargetError> {
    match &settings.endpoint {
        Some(endpoint) => Ok(Arc::new(start_live(settings, endpoint).await?)),
        None => embedded(settings).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_derived_capabilities() {
        let t = TargetConfig::builder("http://127.0.0.1:1/EWS/Exchange.asmx")
            .build()
            .expect("valid");
        assert_eq!(t.version, "Exchange2013");
        assert_eq!(t.request_timeout, Duration::from_secs(30));
        assert_eq!(t.protocol_minute, Duration::from_secs(60));
        assert!(!t.insecure_tls, "TLS verification is on by default");
        assert!(t.has(Capability::Streaming));
        assert!(!t.has(Capability::SecondUser));
        assert!(!t.has(Capability::Push));

        let t = TargetConfig::builder("https://mail.example.test/EWS/Exchange.asmx")
            .version("Exchange2010")
            .user2("b@example.test", Auth::None)
            .push_url(Some("http://harness.example.test:8080/push".into()))
            .build()
            .expect("valid");
        assert!(!t.has(Capability::Streaming), "2010 RTM has no streaming");
        assert!(t.has(Capability::SecondUser));
        assert!(t.has(Capability::Push));
        assert_eq!(
            t.user(UserRole::User2).map(|u| u.smtp.as_str()),
            Some("b@example.test")
        );
    }

    #[test]
    fn invalid_configurations_are_refused() {
        assert!(TargetConfig::builder("ftp://x/").build().is_err());
        assert!(TargetConfig::builder("not a url").build().is_err());
        assert!(
            TargetConfig::builder("http://x/")
                .version("ExchangeFoo")
                .build()
                .is_err()
        );
    }

    #[test]
    fn live_target_from_settings() {
        let settings = Settings {
            endpoint: Some("https://mail.example.test/EWS/Exchange.asmx".into()),
            user: Some("a@example.test".into()),
            password: Some("pw".into()),
            slow: true,
            ..Settings::default()
        };
        let t = live(&settings, "https://mail.example.test/EWS/Exchange.asmx").expect("valid");
        assert_eq!(t.user.smtp, "a@example.test");
        assert!(matches!(t.user.auth, Auth::Basic { .. }));
        assert!(t.has(Capability::Slow));
        assert!(!format!("{t:?}").contains("\"pw\""));
    }

    #[tokio::test]
    async fn embedded_target_runs_the_reference_server_with_a_push_listener() {
        let t = start_embedded(&Settings::default())
            .await
            .expect("embedded target starts");
        let c = t.config();
        assert!(
            c.endpoint.starts_with("http://127.0.0.1:"),
            "{}",
            c.endpoint
        );
        assert_eq!(
            c.protocol_minute,
            Duration::from_millis(EMBEDDED_PROTOCOL_MINUTE_MS)
        );
        for cap in [
            Capability::SecondUser,
            Capability::Push,
            Capability::Streaming,
            Capability::Slow,
        ] {
            assert!(c.has(cap), "{cap:?}");
        }
        let push = t.push_listener().expect("a push listener");
        assert_eq!(c.push_url.as_deref(), Some(push.url()));
        // The server answers: an unauthenticated POST is refused with 401.
        let status = reqwest::Client::new()
            .post(&c.endpoint)
            .body("<x/>")
            .send()
            .await
            .expect("the server is reachable")
            .status();
        assert_eq!(status.as_u16(), 401);
        t.shutdown().await;
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("localhost"));
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("[::1]"));
        assert!(!is_loopback_host("mail.example.test"));
        assert!(!is_loopback_host("10.0.0.1"));
    }
}
