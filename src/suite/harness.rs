//! One way to set up a run from the settings: the target (embedded or
//! live), the check kinds it configures, the target's expected-failure
//! profile, the executor, and the loaded cases. `main`, the `cargo test`
//! harness, the self-test and the benches all start here (toml-test-harness
//! style: the target behind a trait, the wiring behind a builder).

use std::path::PathBuf;
use std::sync::Arc;

use super::checks::registry_for;
use super::exec::Executor;
use super::load::{LoadedSuite, Loader};
use super::profile::Profile;
use super::target::{self, Target, TargetConfig};
use crate::check::golden::GoldenMode;
use crate::settings::Settings;

/// Why a run could not be set up. The exit code follows the kind: a target
/// that cannot be reached is not the harness's fault.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The settings describe no usable target (no endpoint, a bad URL, the
    /// embedded server would not start).
    #[error("{0}")]
    Target(String),
    /// The case folder's profile or the check kinds are wrong.
    #[error("{0}")]
    Setup(String),
    /// The target cannot be reached (or its transport cannot be built).
    #[error("{0}")]
    Unreachable(String),
}

/// A run, set up and ready: what every front end needs.
pub struct Harness {
    pub target: Arc<dyn Target>,
    pub executor: Executor,
    pub suite: LoadedSuite,
    /// The case folder the suite came from.
    pub cases: PathBuf,
}

/// Builds a [`Harness`]; every part has a default from the settings.
pub struct HarnessBuilder {
    settings: Settings,
    golden: GoldenMode,
    cases: Option<PathBuf>,
    target: Option<Arc<dyn Target>>,
}

impl Harness {
    /// A harness as the settings describe it (`EWS_*`, the CLI's flags).
    pub async fn from_settings(settings: &Settings) -> Result<Harness, HarnessError> {
        Harness::builder(settings.clone()).build().await
    }

    pub fn builder(settings: Settings) -> HarnessBuilder {
        HarnessBuilder {
            settings,
            golden: GoldenMode::Compare,
            cases: None,
            target: None,
        }
    }

    pub fn config(&self) -> &TargetConfig {
        self.target.config()
    }
}

impl HarnessBuilder {
    /// Whether golden snapshots are compared (the default) or recorded.
    pub fn golden(mut self, mode: GoldenMode) -> Self {
        self.golden = mode;
        self
    }

    /// Cases from this folder instead of the settings' one.
    pub fn cases(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cases = Some(dir.into());
        self
    }

    /// This target instead of the one the settings describe.
    pub fn target(mut self, target: Arc<dyn Target>) -> Self {
        self.target = Some(target);
        self
    }

    pub async fn build(self) -> Result<Harness, HarnessError> {
        let settings = self.settings;
        let cases = self.cases.unwrap_or_else(|| settings.cases.clone());
        let target = match self.target {
            Some(t) => t,
            None => target::from_settings(&settings)
                .await
                .map_err(|e| HarnessError::Target(e.to_string()))?,
        };
        let checks = registry_for(&settings, target.config(), self.golden)
            .await
            .map_err(HarnessError::Setup)?;
        let profile = Profile::for_target(&cases, target.config())
            .map_err(|e| HarnessError::Setup(e.to_string()))?;
        let executor = Executor::new(target.clone())
            .map_err(|e| HarnessError::Unreachable(e.to_string()))?
            .with_checks(checks)
            .with_profile(profile);
        let suite = Loader::new(executor.ops(), executor.checks()).load_dir(&cases);
        Ok(Harness {
            target,
            executor,
            suite,
            cases,
        })
    }
}
