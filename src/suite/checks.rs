//! The check kinds of one run: the built-in kinds plus those the settings
//! configure for a target (golden snapshots, schema validation). Wiring, not
//! judging: it reads the settings and may fetch the target's schema files.

use std::sync::Arc;

use super::target::TargetConfig;
use crate::check::CheckRegistry;
use crate::check::golden::{Golden, GoldenMode};
#[cfg(feature = "xsd")]
use crate::check::xsd::{DEFAULT_FETCH_DEADLINE, FetchAuth, XsdValidator};
#[cfg(feature = "xsd")]
use crate::check::xsd_check::XsdCheck;
#[cfg(feature = "xsd")]
use crate::client::auth::Auth;
use crate::settings::Settings;

/// The check kinds of a run configured by `settings` against `target`: the
/// built-in kinds, `golden` bound to `EWS_GOLDEN_DIR` and the target's
/// profile in `mode`, and `xsd` when `EWS_XSD_DIR` or `EWS_XSD_FETCH` asks
/// for schema validation (which needs the `xsd` cargo feature).
pub async fn registry_for(
    settings: &Settings,
    target: &TargetConfig,
    mode: GoldenMode,
) -> Result<CheckRegistry, String> {
    let mut r = CheckRegistry::builtin();
    r.register(Arc::new(Golden::new(
        settings.golden.clone(),
        mode,
        target.profile.clone(),
    )));
    #[cfg(feature = "xsd")]
    if let Some(x) = xsd_check(settings, target).await? {
        r.register(Arc::new(x));
    }
    #[cfg(not(feature = "xsd"))]
    if settings.xsd_dir.is_some() || settings.xsd_fetch {
        return Err(
            "EWS_XSD_DIR / EWS_XSD_FETCH need schema validation, which this build lacks (build with `--features xsd`)"
                .into(),
        );
    }
    Ok(r)
}

#[cfg(feature = "xsd")]
/// The check the settings ask for, if any: compiled from `EWS_XSD_DIR`,
/// or fetched from the target with `EWS_XSD_FETCH`.
async fn xsd_check(settings: &Settings, target: &TargetConfig) -> Result<Option<XsdCheck>, String> {
    if let Some(dir) = &settings.xsd_dir {
        let d = dir.clone();
        let v = tokio::task::spawn_blocking(move || XsdValidator::from_dir(d))
            .await
            .map_err(|e| format!("EWS_XSD_DIR: {e}"))?
            .map_err(|e| format!("EWS_XSD_DIR: {e}"))?;
        return Ok(Some(XsdCheck::new(
            v,
            format!("the schema files in {}", dir.display()),
        )));
    }
    if settings.xsd_fetch {
        let auth = match &target.user.auth {
            Auth::None => FetchAuth::Anonymous,
            Auth::Basic { username, password } => FetchAuth::Basic {
                user: username.clone(),
                password: password.clone(),
            },
            Auth::Bearer { token } => FetchAuth::Bearer(token.clone()),
            Auth::Ntlm { .. } => {
                return Err(
                    "EWS_XSD_FETCH cannot fetch the schema files under NTLM; give them with EWS_XSD_DIR"
                        .into(),
                );
            }
        };
        let v = XsdValidator::fetch(&target.endpoint, &auth, DEFAULT_FETCH_DEADLINE)
            .await
            .map_err(|e| format!("EWS_XSD_FETCH: {e}"))?;
        return Ok(Some(XsdCheck::new(v, "the target's schema files")));
    }
    Ok(None)
}
