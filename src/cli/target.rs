//! The flags that name a target, shared by the commands that talk to one.

use clap::Args;

use ews_conformance::settings::Settings;
use ews_conformance::suite::ExitStatus;

/// Flags that override the environment (see the settings module for every variable).
#[derive(Args, Default)]
pub(crate) struct TargetArgs {
    /// The EWS URL (EWS_ENDPOINT). Without one, the embedded reference server is used.
    #[arg(long)]
    pub(crate) endpoint: Option<String>,
    /// The first user's login and SMTP address (EWS_USER).
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// The first user's password (EWS_PASSWORD); prefer the environment.
    #[arg(long)]
    pub(crate) password: Option<String>,
    /// A second user for owner checks (EWS_USER2).
    #[arg(long)]
    pub(crate) user2: Option<String>,
    /// The second user's password (EWS_PASSWORD2).
    #[arg(long)]
    pub(crate) password2: Option<String>,
    /// An OAuth bearer token for the first user (EWS_BEARER_TOKEN).
    #[arg(long)]
    pub(crate) bearer_token: Option<String>,
    /// How passwords authenticate: basic (default) or ntlm (EWS_AUTH).
    #[arg(long, value_name = "basic|ntlm")]
    pub(crate) auth: Option<String>,
    /// RequestServerVersion (EWS_VERSION), default Exchange2013.
    #[arg(long = "request-version")]
    pub(crate) version: Option<String>,
    /// ExchangeImpersonation SMTP address (EWS_IMPERSONATE).
    #[arg(long)]
    pub(crate) impersonate: Option<String>,
    /// X-AnchorMailbox header value (EWS_ANCHOR_MAILBOX).
    #[arg(long)]
    pub(crate) anchor_mailbox: Option<String>,
    /// Do not verify TLS certificates (EWS_INSECURE_TLS).
    #[arg(long)]
    pub(crate) insecure_tls: bool,
    /// Deadline of one HTTP exchange in seconds (EWS_REQUEST_TIMEOUT_SECS).
    #[arg(long)]
    pub(crate) request_timeout_secs: Option<u64>,
    /// Length of a protocol minute in milliseconds (EWS_PROTOCOL_MINUTE_MS).
    #[arg(long)]
    pub(crate) protocol_minute_ms: Option<u64>,
    /// Where the push listener binds (EWS_PUSH_BIND).
    #[arg(long)]
    pub(crate) push_bind: Option<String>,
    /// The URL the target must post notifications to (EWS_PUSH_URL).
    #[arg(long)]
    pub(crate) push_url: Option<String>,
    /// The server profile (EWS_PROFILE).
    #[arg(long)]
    pub(crate) profile: Option<String>,
    /// Run cases that take real protocol minutes (EWS_SLOW).
    #[arg(long)]
    pub(crate) slow: bool,
}

pub(crate) fn apply(settings: &mut Settings, t: TargetArgs) {
    let set = |slot: &mut Option<String>, v: Option<String>| {
        if v.is_some() {
            *slot = v;
        }
    };
    set(&mut settings.endpoint, t.endpoint);
    set(&mut settings.user, t.user);
    set(&mut settings.password, t.password);
    set(&mut settings.user2, t.user2);
    set(&mut settings.password2, t.password2);
    set(&mut settings.bearer_token, t.bearer_token);
    if let Some(a) = t.auth {
        match ews_conformance::settings::parse_auth("--auth", &a) {
            Ok(ntlm) => settings.ntlm = ntlm,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(i32::from(ExitStatus::HarnessError.code()));
            }
        }
    }
    set(&mut settings.impersonate, t.impersonate);
    set(&mut settings.anchor_mailbox, t.anchor_mailbox);
    set(&mut settings.push_url, t.push_url);
    set(&mut settings.profile, t.profile);
    if let Some(v) = t.version {
        settings.version = v;
    }
    if let Some(v) = t.push_bind {
        settings.push_bind = v;
    }
    if let Some(v) = t.request_timeout_secs {
        settings.request_timeout_secs = v.max(1);
    }
    if let Some(v) = t.protocol_minute_ms {
        settings.protocol_minute_ms = Some(v.max(1));
    }
    settings.insecure_tls |= t.insecure_tls;
    settings.slow |= t.slow;
}
