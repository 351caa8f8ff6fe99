//! The state one running server shares between its requests and tasks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::config::ServerConfig;
use super::dialects::{self, Dialect, DialectSet};
use super::faults::{Fault, FaultMemory, FaultSet};
use super::rewrite::Rewriter;
use super::store::{EventForms, Mailbox};
use super::subscriptions::BATCH;
use super::subscriptions::Registry;
use super::transport::Transport;

pub struct State {
    pub config: ServerConfig,
    /// One mailbox per configured user, in the same order.
    pub mailboxes: Vec<Arc<Mailbox>>,
    pub registry: Mutex<Registry>,
    /// For push deliveries.
    pub http: reqwest::Client,
    /// Becomes `true` when the server is shutting down.
    pub shutdown: watch::Receiver<bool>,
    /// The deliberate defects this server runs with (a copy of the config's).
    pub faults: FaultSet,
    /// What some faults remember between requests.
    pub fault_memory: FaultMemory,
    /// The legal variations this server runs with (a copy of the config's).
    pub dialects: DialectSet,
    /// The wire form every outgoing document is given.
    pub rewriter: Rewriter,
    /// Mail on its way (the `late-delivery` dialect).
    pub transport: Transport,
}

impl State {
    pub fn new(mut config: ServerConfig, shutdown: watch::Receiver<bool>) -> Self {
        let faults = config.faults;
        let dialects = config.dialects;
        if let Some(v) = dialects::server_version(&dialects) {
            config.server_version = v;
        }
        let mailboxes: Vec<Arc<Mailbox>> = (0..config.users.len())
            .map(|i| Arc::new(Mailbox::new(i)))
            .collect();
        let forms = EventForms {
            copy_as_created: dialects.has(Dialect::CopyAsCreated),
            soft_delete_as_deleted: dialects.has(Dialect::SoftDeleteAsDeleted),
        };
        for m in &mailboxes {
            m.with(|d| d.forms = forms);
        }
        if faults.has(Fault::DropEvent) {
            for m in &mailboxes {
                m.with(|d| d.log.drop_one_in(100));
            }
        }
        let resolver = config.push_destinations.resolver();
        let mut registry = Registry::default();
        registry.immortal = faults.has(Fault::NeverExpire);
        State {
            config,
            mailboxes,
            registry: Mutex::new(registry),
            // No redirects and no proxy: the push policy must see where a
            // notification really goes.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .dns_resolver(resolver)
                .build()
                .unwrap_or_default(),
            shutdown,
            faults,
            fault_memory: FaultMemory::default(),
            dialects,
            rewriter: Rewriter::new(&dialects),
            transport: Transport::default(),
        }
    }

    /// Events per notification: 50 (digest 1.2 step 3).
    pub fn batch(&self) -> usize {
        if self.faults.has(Fault::Batch51) {
            BATCH + 1
        } else {
            BATCH
        }
    }

    pub fn minute(&self) -> Duration {
        self.config.protocol_minute
    }

    /// The user whose primary SMTP address this is (case-insensitive).
    pub fn user_by_smtp(&self, smtp: &str) -> Option<usize> {
        let smtp = smtp.trim();
        self.config
            .users
            .iter()
            .position(|u| u.smtp.eq_ignore_ascii_case(smtp))
    }

    pub fn mailbox(&self, user: usize) -> Option<&Arc<Mailbox>> {
        self.mailboxes.get(user)
    }

    /// The mailbox a decoded id or watermark nonce belongs to.
    pub fn mailbox_by_nonce(&self, nonce: u64) -> Option<&Arc<Mailbox>> {
        self.mailboxes.iter().find(|m| m.nonce == nonce)
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}
