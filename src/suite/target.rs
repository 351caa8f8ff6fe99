//! What the suite runs against: a live endpoint or the embedded reference
//! server. Both are a [`TargetConfig`] (built with [`TargetBuilder`]) behind
//! the small [`Target`] trait, so a target that owns resources (a server it
//! started, a push listener) keeps them alive as long as the run holds it.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::client::transport::Auth;
use crate::settings::Settings;

use super::case::{Capability, UserRole};

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
}

impl Target for TargetConfig {
    fn config(&self) -> &TargetConfig {
        self
    }
}

/// Why a target cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("embedded server not available")]
    EmbeddedUnavailable,
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
        if !crate::ews::SERVER_VERSIONS.contains(&config.version.as_str()) {
            return Err(TargetError::Invalid(format!(
                "RequestServerVersion `{}` is not one of {}",
                config.version,
                crate::ews::SERVER_VERSIONS.join(", ")
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
        if crate::ews::at_least_2010_sp1(&config.version) {
            caps.insert(Capability::Streaming);
        }
        if config.push_url.is_some() {
            caps.insert(Capability::Push);
        }
        config.capabilities = caps;
        Ok(config)
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
        .protocol_minute(Duration::from_millis(settings.protocol_minute_ms))
        .push_url(settings.push_url.clone())
        .push_bind(settings.push_bind.clone())
        .profile(settings.profile.clone());
    if let Some(user2) = &settings.user2 {
        let auth2 = match &settings.password2 {
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

/// The embedded reference server, started in-process.
///
/// The server is not part of this build yet; this is the one place that
/// will start it.
pub async fn embedded(_settings: &Settings) -> Result<Arc<dyn Target>, TargetError> {
    Err(TargetError::EmbeddedUnavailable)
}

/// The target the settings select: the live endpoint when one is set, else the embedded server.
pub async fn from_settings(settings: &Settings) -> Result<Arc<dyn Target>, TargetError> {
    match &settings.endpoint {
        Some(endpoint) => Ok(Arc::new(live(settings, endpoint)?)),
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
    async fn embedded_is_not_wired_yet() {
        let err = embedded(&Settings::default())
            .await
            .err()
            .expect("no embedded server in this build");
        assert_eq!(err.to_string(), "embedded server not available");
    }
}
