//! Server settings: defaults for the embedded target, and a TOML file form
//! for `serve` users who want their own accounts or a faster clock.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::ServerError;
use super::destinations::PushDestinations;
use super::dialects::DialectSet;
use super::faults::FaultSet;
use ews_proto::ews::ServerVersionInfo;

/// One mailbox owner who may authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserConfig {
    pub smtp: String,
    pub password: String,
    pub display_name: String,
}

impl UserConfig {
    pub fn new(smtp: &str, password: &str, display_name: &str) -> Self {
        UserConfig {
            smtp: smtp.to_string(),
            password: password.to_string(),
            display_name: display_name.to_string(),
        }
    }

    /// The part of the address before `@`, which also works as a login name.
    pub fn local_part(&self) -> &str {
        self.smtp.split('@').next().unwrap_or(&self.smtp)
    }
}

/// Everything the reference server needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub path: String,
    pub users: Vec<UserConfig>,
    /// The length of one protocol minute: Timeout, StatusFrequency and
    /// ConnectionTimeout are counted in these, so tests can shrink time.
    pub protocol_minute: Duration,
    pub server_version: ServerVersionInfo,
    pub max_subscriptions_per_user: usize,
    pub max_streaming_connections_per_user: usize,
    /// Deliberate defects (the self-test's fault catalogue); empty for the
    /// faithful reference server.
    pub faults: FaultSet,
    /// Legal variations of Exchange's wire behaviour (the dialect
    /// catalogue); empty for the reference server's own form.
    pub dialects: DialectSet,
    /// How long a client may take over its connection: see [`ConnectionLimits`].
    pub limits: ConnectionLimits,
    /// Where push notifications may be POSTed.
    pub push_destinations: PushDestinations,
}

/// Bounds on what one client may hold: a connection that sends half a
/// header or a body that never ends is closed, not kept forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to send a whole request head, counted from the connection's
    /// start or the end of the previous response: the idle keep-alive wait
    /// is bounded by it too (hyper's header read timeout).
    pub header_timeout: Duration,
    /// Time from the head to the end of the request body.
    pub body_timeout: Duration,
    /// Connections open at once; more are answered 503 (ErrorServerBusy)
    /// and closed.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            // hyper's own default, and far above any real client's pause
            // between the bytes of one request head.
            header_timeout: Duration::from_secs(30),
            // IIS closes a connection idle for 120 s (its connectionTimeout).
            body_timeout: Duration::from_secs(120),
            // Streaming connections stay open for up to 30 minutes each:
            // room for many users' streams, far below the descriptor limit.
            max_connections: 512,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            path: "/EWS/Exchange.asmx".into(),
            users: vec![
                UserConfig::new("alice@example.com", "alice-Secret-1", "Alice"),
                UserConfig::new("bob@example.com", "bob-Secret-2", "Bob"),
            ],
            protocol_minute: Duration::from_secs(60),
            server_version: ServerVersionInfo::default(),
            max_subscriptions_per_user: 5000,
            max_streaming_connections_per_user: 10,
            faults: FaultSet::none(),
            dialects: DialectSet::none(),
            limits: ConnectionLimits::default(),
            push_destinations: PushDestinations::default(),
        }
    }
}

/// The file form: every field optional, defaults filled in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    path: Option<String>,
    protocol_minute_ms: Option<u64>,
    max_subscriptions_per_user: Option<usize>,
    max_streaming_connections_per_user: Option<usize>,
    server_version: Option<FileVersion>,
    users: Option<Vec<FileUser>>,
    /// Fault names from the catalogue (`faults = ["batch-51"]`).
    faults: Option<Vec<String>>,
    /// Dialect names from the catalogue (`dialects = ["gzip"]`, or `["all"]`).
    dialects: Option<Vec<String>>,
    header_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    /// Networks push notifications may go to (`push_allow = ["10.0.0.0/8"]`);
    /// when given, nothing else is allowed.
    push_allow: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileVersion {
    major: u32,
    minor: u32,
    major_build: u32,
    minor_build: u32,
    version: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    smtp: String,
    password: String,
    display_name: Option<String>,
}

impl ServerConfig {
    /// Reads a TOML configuration; errors say "<string>" as the origin.
    pub fn from_toml_str(s: &str) -> Result<Self, ServerError> {
        Self::parse_named(s, "<string>", ServerConfig::default().listen)
    }

    /// Reads a TOML configuration file; errors name the file.
    pub fn from_file(p: &Path) -> Result<Self, ServerError> {
        Self::from_file_listening(p, ServerConfig::default().listen)
    }

    /// Reads a TOML configuration file whose `listen`, when it has none,
    /// is `listen`.
    pub fn from_file_listening(p: &Path, listen: SocketAddr) -> Result<Self, ServerError> {
        let origin = p.display().to_string();
        let text = std::fs::read_to_string(p).map_err(|e| ServerError::Config {
            origin: origin.clone(),
            problem: format!("cannot read the file: {e}"),
        })?;
        Self::parse_named(&text, &origin, listen)
    }

    fn parse_named(text: &str, origin: &str, listen: SocketAddr) -> Result<Self, ServerError> {
        let fail = |problem: String| ServerError::Config {
            origin: origin.to_string(),
            problem,
        };
        let file: FileConfig = toml::from_str(text).map_err(|e| fail(e.to_string()))?;
        let mut cfg = ServerConfig {
            listen,
            ..ServerConfig::default()
        };
        if let Some(listen) = file.listen {
            cfg.listen = listen.parse().map_err(|_| {
                fail(format!(
                    "listen `{listen}` is not an address like 127.0.0.1:8080"
                ))
            })?;
        }
        if let Some(path) = file.path {
            cfg.path = path;
        }
        if let Some(ms) = file.protocol_minute_ms {
            cfg.protocol_minute = Duration::from_millis(ms);
        }
        if let Some(n) = file.max_subscriptions_per_user {
            cfg.max_subscriptions_per_user = n;
        }
        if let Some(n) = file.max_streaming_connections_per_user {
            cfg.max_streaming_connections_per_user = n;
        }
        if let Some(v) = file.server_version {
            cfg.server_version = ServerVersionInfo {
                major: v.major,
                minor: v.minor,
                major_build: v.major_build,
                minor_build: v.minor_build,
                version: v.version,
            };
        }
        if let Some(names) = file.faults {
            cfg.faults = FaultSet::parse(&names).map_err(|e| fail(e.to_string()))?;
        }
        if let Some(names) = file.dialects {
            cfg.dialects = DialectSet::parse(&names).map_err(|e| fail(e.to_string()))?;
        }
        if let Some(ms) = file.header_timeout_ms {
            cfg.limits.header_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = file.body_timeout_ms {
            cfg.limits.body_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = file.max_connections {
            cfg.limits.max_connections = n;
        }
        if let Some(nets) = file.push_allow {
            cfg.push_destinations =
                PushDestinations::allow_only(&nets).map_err(|e| fail(e.to_string()))?;
        }
        if let Some(users) = file.users {
            cfg.users = users
                .into_iter()
                .map(|u| UserConfig {
                    display_name: u.display_name.unwrap_or_else(|| {
                        u.smtp.split('@').next().unwrap_or_default().to_string()
                    }),
                    smtp: u.smtp,
                    password: u.password,
                })
                .collect();
        }
        cfg.check().map_err(fail)?;
        Ok(cfg)
    }

    /// The invariants the server relies on.
    pub fn check(&self) -> Result<(), String> {
        if !self.path.starts_with('/') {
            return Err(format!("path `{}` must start with `/`", self.path));
        }
        if self.protocol_minute < Duration::from_millis(10) {
            return Err("protocol_minute_ms must be at least 10".into());
        }
        if self.max_subscriptions_per_user == 0 || self.max_streaming_connections_per_user == 0 {
            return Err("the per-user limits must be at least 1".into());
        }
        if self.limits.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        if self.limits.header_timeout < Duration::from_millis(10)
            || self.limits.body_timeout < Duration::from_millis(10)
        {
            return Err("header_timeout_ms and body_timeout_ms must be at least 10".into());
        }
        self.dialects.check().map_err(|e| e.to_string())?;
        if self.users.is_empty() {
            return Err("at least one user is needed".into());
        }
        let mut seen = std::collections::HashSet::new();
        for u in &self.users {
            let (local, domain) = u.smtp.split_once('@').unwrap_or(("", ""));
            if local.is_empty() || domain.is_empty() || u.smtp.contains(char::is_whitespace) {
                return Err(format!("user `{}` is not an SMTP address", u.smtp));
            }
            if u.password.is_empty() {
                return Err(format!("user `{}` has an empty password", u.smtp));
            }
            if !seen.insert(u.smtp.to_ascii_lowercase()) {
                return Err(format!("user `{}` is listed twice", u.smtp));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_have_two_users() {
        let c = ServerConfig::default();
        assert_eq!(c.users.len(), 2);
        assert_eq!(c.users[0].local_part(), "alice");
        assert!(c.check().is_ok());
    }

    #[test]
    fn file_form_overrides_and_fills_defaults() {
        let c = ServerConfig::from_toml_str(
            r#"
            protocol_minute_ms = 1000
            listen = "127.0.0.1:0"
            faults = ["batch-51"]
            dialects = ["gzip", "fault-lang"]
            header_timeout_ms = 1500
            body_timeout_ms = 2500
            max_connections = 7
            push_allow = ["10.1.0.0/16", "::1/128"]
            [[users]]
            smtp = "carol@example.org"
            password = "pw"
            "#,
        )
        .expect("valid config");
        assert_eq!(c.protocol_minute, Duration::from_secs(1));
        assert_eq!(c.users.len(), 1);
        assert_eq!(c.users[0].display_name, "carol");
        assert_eq!(c.path, "/EWS/Exchange.asmx");
        assert_eq!(c.faults, FaultSet::of([super::super::Fault::Batch51]));
        assert!(ServerConfig::default().faults.is_empty());
        assert_eq!(
            c.dialects,
            DialectSet::of([
                super::super::Dialect::Gzip,
                super::super::Dialect::FaultLang
            ])
        );
        assert!(ServerConfig::default().dialects.is_empty());
        assert_eq!(c.limits.header_timeout, Duration::from_millis(1500));
        assert_eq!(c.limits.body_timeout, Duration::from_millis(2500));
        assert_eq!(c.limits.max_connections, 7);
        assert!(c.push_destinations.allows("10.1.2.3".parse().expect("ip")));
        assert!(!c.push_destinations.allows("127.0.0.1".parse().expect("ip")));
    }

    #[test]
    fn errors_name_the_origin_and_problem() {
        let e = ServerConfig::from_toml_str("bogus = 1").expect_err("unknown key");
        let text = e.to_string();
        assert!(
            text.contains("<string>") && text.contains("bogus"),
            "{text}"
        );
        let e =
            ServerConfig::from_toml_str("[[users]]\nsmtp='x'\npassword='p'").expect_err("bad smtp");
        assert!(e.to_string().contains("not an SMTP address"), "{e}");
        let e = ServerConfig::from_toml_str("faults = ['no-such-fault']").expect_err("fault");
        assert!(
            e.to_string().contains("unknown fault `no-such-fault`"),
            "{e}"
        );
        let e = ServerConfig::from_toml_str("dialects = ['soap-prefix', 'default-namespace']")
            .expect_err("conflict");
        assert!(e.to_string().contains("exclude each other"), "{e}");
        let e = ServerConfig::from_toml_str("push_allow = ['10.0.0.0/33']").expect_err("cidr");
        assert!(e.to_string().contains("10.0.0.0/33"), "{e}");
        let e = ServerConfig::from_toml_str("max_connections = 0").expect_err("cap");
        assert!(e.to_string().contains("max_connections"), "{e}");
        let e = ServerConfig::from_file(Path::new("no-such-config.toml")).expect_err("missing");
        assert!(e.to_string().contains("no-such-config.toml"), "{e}");
    }
}
