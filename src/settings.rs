//! Every environment switch of the harness, read in this one place.
//!
//! The CLI and the libtest-mimic harness both start from [`Settings::from_env`];
//! the CLI then overrides single fields from its flags. Nothing else in the
//! crate reads the environment, so this file is the complete list.

use std::fmt;
use std::path::PathBuf;

/// The harness configuration, with the environment variable behind each field.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// `EWS_ENDPOINT`: the EWS URL of a live target. Unset → the embedded reference server.
    pub endpoint: Option<String>,
    /// `EWS_USER`: the first test user's login, also used as its SMTP address.
    pub user: Option<String>,
    /// `EWS_PASSWORD`: the first user's password (Basic authentication).
    pub password: Option<String>,
    /// `EWS_USER2`: a second user, for owner-check cases (`needs = ["second-user"]`).
    pub user2: Option<String>,
    /// `EWS_PASSWORD2`: the second user's password.
    pub password2: Option<String>,
    /// `EWS_BEARER_TOKEN`: an OAuth token for the first user instead of a password.
    pub bearer_token: Option<String>,
    /// `EWS_AUTH`: how passwords authenticate, `basic` (default) or `ntlm`
    /// (NTLMv2, as on-premises Exchange offers it).
    pub ntlm: bool,
    /// `EWS_NTLM_DOMAIN`: the NetBIOS domain NTLM sends (default none; the
    /// user name is then the login as given, a UPN say).
    pub ntlm_domain: Option<String>,
    /// `EWS_VERSION`: RequestServerVersion to send. Default `Exchange2013`.
    pub version: String,
    /// `EWS_IMPERSONATE`: SMTP address to put in an ExchangeImpersonation header.
    pub impersonate: Option<String>,
    /// `EWS_ANCHOR_MAILBOX`: value of the X-AnchorMailbox HTTP header.
    pub anchor_mailbox: Option<String>,
    /// `EWS_INSECURE_TLS`: `1`/`true` turns certificate verification off. Default off.
    pub insecure_tls: bool,
    /// `EWS_REQUEST_TIMEOUT_SECS`: deadline of one HTTP exchange. Default 30.
    pub request_timeout_secs: u64,
    /// `EWS_PROTOCOL_MINUTE_MS`: how long one protocol minute lasts. Default:
    /// 60000 against a live endpoint (real minutes), 2000 for the embedded
    /// reference server, which is started with the same setting so expiry,
    /// heartbeat and push-retry cases run in seconds.
    pub protocol_minute_ms: Option<u64>,
    /// `EWS_PUSH_BIND`: where the harness's push listener binds. Default `127.0.0.1:0`.
    pub push_bind: String,
    /// `EWS_PUSH_URL`: the URL the target must POST push notifications to,
    /// when the listener is reached through another address than its bind.
    pub push_url: Option<String>,
    /// `EWS_CASES`: the case folder. Default `cases`.
    pub cases: PathBuf,
    /// `EWS_PROFILE`: the server profile cases are filtered by (`profiles = [...]`).
    pub profile: Option<String>,
    /// `EWS_SLOW`: `1`/`true` runs cases that need real protocol minutes (`needs = ["slow"]`).
    pub slow: bool,
    /// `EWS_LOG`: the log filter for diagnostics on stderr (tracing syntax). Default `warn`.
    pub log: String,
    /// `EWS_GOLDEN_DIR`: the folder of golden snapshots (one subfolder per
    /// profile). Default `golden`.
    pub golden: PathBuf,
    /// `EWS_XSD_DIR`: a folder holding the target's `messages.xsd` and
    /// `types.xsd`; every response is then validated against them (the `xsd`
    /// check; needs the `xsd` cargo feature).
    pub xsd_dir: Option<PathBuf>,
    /// `EWS_XSD_FETCH`: `1`/`true` fetches `messages.xsd` and `types.xsd`
    /// from the target's `/EWS/` path instead. Default off.
    pub xsd_fetch: bool,
    /// `EWS_INTEROP`: `1`/`true` makes the real-client interop tests (tests/it/interop.rs)
    /// fail when they cannot run exchangelib or ews-javascript-api, instead of skipping. CI sets it.
    pub interop: bool,
    /// `EWS_SELFTEST_FULL`: `1`/`true` makes the self-test in `cargo test` run the
    /// whole suite against every fault instead of only the catalogue's catchers.
    pub selftest_full: bool,
    /// `EWS_PROPTEST_CASES`: generated sequences per delivery mode in the
    /// property tests (`cargo test --test it properties::`), and `explore`'s
    /// default count when it has no time budget. Default 16.
    pub proptest_cases: u32,
    /// `EWS_PROPTEST_SECONDS`: a time budget instead of a count: each property
    /// test, and `explore` by default, generates sequences for this long.
    pub proptest_seconds: Option<u64>,
    /// `EWS_PROPTEST_SEED`: the generator's seed (printed by every run), to
    /// draw the same sequences again. Default: a fresh one per run.
    pub proptest_seed: Option<u64>,
    /// `EWS_FOUND_DIR`: where a shrunk failing sequence is written as a case
    /// file. Default `cases/found` (so the suite replays it).
    pub found_dir: PathBuf,
}

/// A setting whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?}: {problem}")]
pub struct SettingsError {
    pub variable: &'static str,
    pub value: String,
    pub problem: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            endpoint: None,
            user: None,
            password: None,
            user2: None,
            password2: None,
            bearer_token: None,
            ntlm: false,
            ntlm_domain: None,
            version: "Exchange2013".into(),
            impersonate: None,
            anchor_mailbox: None,
            insecure_tls: false,
            request_timeout_secs: 30,
            protocol_minute_ms: None,
            push_bind: "127.0.0.1:0".into(),
            push_url: None,
            cases: PathBuf::from("cases"),
            profile: None,
            slow: false,
            log: "warn".into(),
            golden: PathBuf::from("golden"),
            xsd_dir: None,
            xsd_fetch: false,
            interop: false,
            selftest_full: false,
            proptest_cases: 16,
            proptest_seconds: None,
            proptest_seed: None,
            found_dir: PathBuf::from("cases/found"),
        }
    }
}

/// Credentials never reach a log or a report, not even through `{:?}`.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "<hidden>");
        f.debug_struct("Settings")
            .field("endpoint", &self.endpoint)
            .field("user", &self.user)
            .field("password", &hidden(&self.password))
            .field("user2", &self.user2)
            .field("password2", &hidden(&self.password2))
            .field("bearer_token", &hidden(&self.bearer_token))
            .field("ntlm", &self.ntlm)
            .field("ntlm_domain", &self.ntlm_domain)
            .field("version", &self.version)
            .field("impersonate", &self.impersonate)
            .field("anchor_mailbox", &self.anchor_mailbox)
            .field("insecure_tls", &self.insecure_tls)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("protocol_minute_ms", &self.protocol_minute_ms)
            .field("push_bind", &self.push_bind)
            .field("push_url", &self.push_url)
            .field("cases", &self.cases)
            .field("profile", &self.profile)
            .field("slow", &self.slow)
            .field("log", &self.log)
            .field("golden", &self.golden)
            .field("xsd_dir", &self.xsd_dir)
            .field("xsd_fetch", &self.xsd_fetch)
            .field("interop", &self.interop)
            .field("selftest_full", &self.selftest_full)
            .field("proptest_cases", &self.proptest_cases)
            .field("proptest_seconds", &self.proptest_seconds)
            .field("proptest_seed", &self.proptest_seed)
            .field("found_dir", &self.found_dir)
            .finish()
    }
}

/// `basic` or `ntlm` (whether NTLM is chosen).
pub fn parse_auth(variable: &'static str, value: &str) -> Result<bool, SettingsError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "basic" => Ok(false),
        "ntlm" => Ok(true),
        _ => Err(SettingsError {
            variable,
            value: value.to_string(),
            problem: "expected `basic` or `ntlm`".into(),
        }),
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    /// Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut s = Settings {
            endpoint: get("EWS_ENDPOINT"),
            user: get("EWS_USER"),
            password: get("EWS_PASSWORD"),
            user2: get("EWS_USER2"),
            password2: get("EWS_PASSWORD2"),
            bearer_token: get("EWS_BEARER_TOKEN"),
            impersonate: get("EWS_IMPERSONATE"),
            anchor_mailbox: get("EWS_ANCHOR_MAILBOX"),
            push_url: get("EWS_PUSH_URL"),
            profile: get("EWS_PROFILE"),
            ..Settings::default()
        };
        if let Some(v) = get("EWS_VERSION") {
            s.version = v;
        }
        if let Some(v) = get("EWS_AUTH") {
            s.ntlm = parse_auth("EWS_AUTH", &v)?;
        }
        s.ntlm_domain = get("EWS_NTLM_DOMAIN");
        if let Some(v) = get("EWS_INSECURE_TLS") {
            s.insecure_tls = parse_flag("EWS_INSECURE_TLS", &v)?;
        }
        if let Some(v) = get("EWS_REQUEST_TIMEOUT_SECS") {
            s.request_timeout_secs = parse_positive("EWS_REQUEST_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = get("EWS_PROTOCOL_MINUTE_MS") {
            s.protocol_minute_ms = Some(parse_positive("EWS_PROTOCOL_MINUTE_MS", &v)?);
        }
        if let Some(v) = get("EWS_PUSH_BIND") {
            s.push_bind = v;
        }
        if let Some(v) = get("EWS_CASES") {
            s.cases = PathBuf::from(v);
        }
        if let Some(v) = get("EWS_SLOW") {
            s.slow = parse_flag("EWS_SLOW", &v)?;
        }
        if let Some(v) = get("EWS_LOG") {
            s.log = v;
        }
        if let Some(v) = get("EWS_GOLDEN_DIR") {
            s.golden = PathBuf::from(v);
        }
        s.xsd_dir = get("EWS_XSD_DIR").map(PathBuf::from);
        if let Some(v) = get("EWS_XSD_FETCH") {
            s.xsd_fetch = parse_flag("EWS_XSD_FETCH", &v)?;
        }
        if let Some(v) = get("EWS_INTEROP") {
            s.interop = parse_flag("EWS_INTEROP", &v)?;
        }
        if let Some(v) = get("EWS_SELFTEST_FULL") {
            s.selftest_full = parse_flag("EWS_SELFTEST_FULL", &v)?;
        }
        if let Some(v) = get("EWS_PROPTEST_CASES") {
            let n = parse_positive("EWS_PROPTEST_CASES", &v)?;
            s.proptest_cases = u32::try_from(n).map_err(|_| SettingsError {
                variable: "EWS_PROPTEST_CASES",
                value: v.clone(),
                problem: "too large".into(),
            })?;
        }
        if let Some(v) = get("EWS_PROPTEST_SECONDS") {
            s.proptest_seconds = Some(parse_positive("EWS_PROPTEST_SECONDS", &v)?);
        }
        if let Some(v) = get("EWS_PROPTEST_SEED") {
            s.proptest_seed = Some(v.trim().parse::<u64>().map_err(|_| SettingsError {
                variable: "EWS_PROPTEST_SEED",
                value: v.clone(),
                problem: "expected a whole number".into(),
            })?);
        }
        if let Some(v) = get("EWS_FOUND_DIR") {
            s.found_dir = PathBuf::from(v);
        }
        Ok(s)
    }
}

fn parse_flag(variable: &'static str, value: &str) -> Result<bool, SettingsError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(SettingsError {
            variable,
            value: value.to_string(),
            problem: "expected 1/0, true/false, yes/no or on/off".into(),
        }),
    }
}

fn parse_positive(variable: &'static str, value: &str) -> Result<u64, SettingsError> {
    match value.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(SettingsError {
            variable,
            value: value.to_string(),
            problem: "expected a whole number greater than 0".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = from(&[]).expect("empty environment is valid");
        assert_eq!(s, Settings::default());
        assert_eq!(s.version, "Exchange2013");
        assert_eq!(s.request_timeout_secs, 30);
        assert_eq!(s.protocol_minute_ms, None);
        assert_eq!(s.cases, PathBuf::from("cases"));
        assert!(!s.insecure_tls);
    }

    #[test]
    fn variables_are_read_and_empty_means_unset() {
        let s = from(&[
            (
                "EWS_ENDPOINT",
                "https://mail.example.test/EWS/Exchange.asmx",
            ),
            ("EWS_USER", "a@example.test"),
            ("EWS_PASSWORD", "secret"),
            ("EWS_USER2", ""),
            ("EWS_INSECURE_TLS", "true"),
            ("EWS_PROTOCOL_MINUTE_MS", "250"),
            ("EWS_SLOW", "0"),
            ("EWS_GOLDEN_DIR", "snapshots"),
            ("EWS_XSD_DIR", "schema"),
            ("EWS_XSD_FETCH", "yes"),
            ("EWS_INTEROP", "1"),
            ("EWS_SELFTEST_FULL", "yes"),
        ])
        .expect("valid settings");
        assert!(s.interop);
        assert!(s.selftest_full);
        assert_eq!(
            s.endpoint.as_deref(),
            Some("https://mail.example.test/EWS/Exchange.asmx")
        );
        assert_eq!(s.user2, None);
        assert!(s.insecure_tls);
        assert_eq!(s.protocol_minute_ms, Some(250));
        assert!(!s.slow);
        assert_eq!(s.golden, PathBuf::from("snapshots"));
        assert_eq!(s.xsd_dir, Some(PathBuf::from("schema")));
        assert!(s.xsd_fetch);
    }

    #[test]
    fn property_settings_are_read() {
        let s = from(&[]).expect("empty environment is valid");
        assert_eq!(s.proptest_cases, 16);
        assert_eq!(s.proptest_seconds, None);
        assert_eq!(s.found_dir, PathBuf::from("cases/found"));
        let s = from(&[
            ("EWS_PROPTEST_CASES", "200"),
            ("EWS_PROPTEST_SECONDS", "600"),
            ("EWS_PROPTEST_SEED", "0"),
            ("EWS_FOUND_DIR", "found-here"),
        ])
        .expect("valid settings");
        assert_eq!(s.proptest_cases, 200);
        assert_eq!(s.proptest_seconds, Some(600));
        assert_eq!(s.proptest_seed, Some(0));
        assert_eq!(s.found_dir, PathBuf::from("found-here"));
        let err = from(&[("EWS_PROPTEST_CASES", "0")]).expect_err("zero sequences");
        assert_eq!(err.variable, "EWS_PROPTEST_CASES");
        let err = from(&[("EWS_PROPTEST_SEED", "-1")]).expect_err("not a u64");
        assert_eq!(err.variable, "EWS_PROPTEST_SEED");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = from(&[("EWS_REQUEST_TIMEOUT_SECS", "soon")]).expect_err("not a number");
        assert_eq!(err.variable, "EWS_REQUEST_TIMEOUT_SECS");
        let err = from(&[("EWS_INSECURE_TLS", "maybe")]).expect_err("not a flag");
        assert_eq!(err.variable, "EWS_INSECURE_TLS");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let s = from(&[
            ("EWS_PASSWORD", "hunter2"),
            ("EWS_PASSWORD2", "swordfish"),
            ("EWS_BEARER_TOKEN", "eyJtoken"),
        ])
        .expect("valid settings");
        let shown = format!("{s:?}");
        for secret in ["hunter2", "swordfish", "eyJtoken"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("<hidden>"));
    }
}
