//! The driver: the target and the sessions a run talks to it through.

use super::config::DriverConfig;
use super::failure::DriveError;
use std::sync::Arc;

use crate::client::session::Session;
use crate::client::transport::{Transport, TransportConfig};
use crate::model::ops::Mode;
use crate::suite::target::{Target, TargetConfig};

/// Runs sequences against one target.
pub struct Driver {
    pub(super) target: Arc<dyn Target>,
    /// The target's user, and the second user where the target has one.
    pub(super) ews: Session,
    pub(super) ews_other: Option<Session>,
    pub(super) config: DriverConfig,
}

impl Driver {
    pub fn new(target: Arc<dyn Target>, config: DriverConfig) -> Result<Self, DriveError> {
        let cfg = target.config();
        let mut tc = TransportConfig::new(cfg.endpoint.clone());
        tc.deadline = cfg.request_timeout;
        tc.insecure_tls = cfg.insecure_tls;
        let transport =
            Arc::new(Transport::new(tc).map_err(|e| DriveError::Harness(e.to_string()))?);
        let mut headers = Vec::new();
        if let Some(anchor) = &cfg.anchor_mailbox {
            headers.push(("X-AnchorMailbox".to_string(), anchor.clone()));
        }
        let session = |auth: &crate::client::auth::Auth| {
            Session::new(transport.clone(), auth.clone(), Some(cfg.version.clone()))
                .with_headers(headers.clone())
        };
        let ews = session(&cfg.user.auth);
        let ews_other = cfg.user2.as_ref().map(|u| session(&u.auth));
        Ok(Driver {
            target,
            ews,
            ews_other,
            config,
        })
    }

    /// A driver with [`DriverConfig::for_target`].
    pub fn for_target(target: Arc<dyn Target>) -> Result<Self, DriveError> {
        let config = DriverConfig::for_target(target.config());
        Driver::new(target, config)
    }

    pub fn config(&self) -> &DriverConfig {
        &self.config
    }

    pub fn target(&self) -> &TargetConfig {
        self.target.config()
    }

    /// The delivery modes this target can be driven in: pull always,
    /// streaming when its version has it, push when a listener it can reach exists.
    pub fn modes(&self) -> Vec<Mode> {
        let cfg = self.target.config();
        let mut modes = vec![Mode::Pull];
        if cfg.has(crate::case::Capability::Streaming) {
            modes.push(Mode::Streaming);
        }
        if self.target.push_listener().is_some() && cfg.push_url.is_some() {
            modes.push(Mode::Push);
        }
        modes
    }
}
