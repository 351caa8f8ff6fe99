//! What the listener's connections share: the received pushes, the
//! counters of refusals, the destination policy.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use super::config::*;
use super::received::*;

/// What the listener turned away, and what it holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PushStats {
    /// Pushes remembered.
    pub accepted: u64,
    /// Requests without the run's token in their path (answered 404).
    pub wrong_path: u64,
    /// Bodies over the size cap (413).
    pub too_large: u64,
    /// Pushes refused because their subscription's queue was full (503).
    pub subscription_full: u64,
    /// Pushes refused because the listener's total queue or byte cap was reached (503).
    pub listener_full: u64,
    /// Connections closed on accept because too many were open.
    pub connections_refused: u64,
    /// Body bytes remembered now.
    pub retained_bytes: u64,
    /// Pushes remembered now.
    pub retained_pushes: u64,
}

impl PushStats {
    /// Requests refused for any reason.
    pub fn refused(&self) -> u64 {
        self.wrong_path
            + self.too_large
            + self.subscription_full
            + self.listener_full
            + self.connections_refused
    }
}

impl fmt::Display for PushStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} push(es) kept; refused: {} without the run's token, {} too large, \
             {} over a subscription's queue, {} over the listener's queue, {} connection(s) over the limit",
            self.accepted,
            self.wrong_path,
            self.too_large,
            self.subscription_full,
            self.listener_full,
            self.connections_refused
        )
    }
}

/// The listener's counters, readable after it stopped (for the reports).
#[derive(Debug, Clone)]
pub struct PushStatsHandle(pub(super) Arc<Shared>);

impl PushStatsHandle {
    pub fn get(&self) -> PushStats {
        self.0.stats()
    }
}

#[derive(Debug)]
pub(super) struct Policy {
    pub(super) default: PushAnswer,
    pub(super) by_subscription: HashMap<String, PushAnswer>,
}

#[derive(Debug)]
pub(super) struct Record {
    pub(super) history: VecDeque<ReceivedPush>,
    pub(super) next_seq: u64,
    /// Pushes remembered per subscription id ("" for none).
    pub(super) per_subscription: HashMap<String, usize>,
    pub(super) retained_bytes: usize,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) wrong_path: AtomicU64,
    pub(super) too_large: AtomicU64,
    pub(super) subscription_full: AtomicU64,
    pub(super) listener_full: AtomicU64,
    pub(super) connections_refused: AtomicU64,
}

/// Why a push was not remembered.
pub(super) enum Refusal {
    Subscription,
    Listener,
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) config: PushConfig,
    /// The path segment after [`PATH_PREFIX`].
    pub(super) token: String,
    pub(super) counters: Counters,
    pub(super) policy: Mutex<Policy>,
    pub(super) record: Mutex<Record>,
    /// The seq of the latest push, to wake waiters.
    pub(super) latest: watch::Sender<u64>,
    pub(super) closing: watch::Sender<bool>,
}

/// Locks a mutex; a panic elsewhere while holding it leaves plain data
/// that is still consistent, so poisoning is ignored.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub(super) fn answer_for(&self, subscription_id: Option<&str>) -> PushAnswer {
        let policy = lock(&self.policy);
        subscription_id
            .and_then(|id| policy.by_subscription.get(id).copied())
            .unwrap_or(policy.default)
    }

    /// Remembers a push, unless a queue cap refuses it.
    pub(super) fn record(&self, mut push: ReceivedPush) -> Result<u64, Refusal> {
        let seq = {
            let mut r = lock(&self.record);
            let key = push.subscription_id.clone().unwrap_or_default();
            if r.history.len() >= self.config.history_limit.max(1)
                || r.retained_bytes + push.body.len() > self.config.retained_bytes_limit
            {
                return Err(Refusal::Listener);
            }
            let queued = r.per_subscription.get(&key).copied().unwrap_or(0);
            if queued >= self.config.per_subscription_limit.max(1) {
                return Err(Refusal::Subscription);
            }
            r.per_subscription.insert(key, queued + 1);
            r.retained_bytes += push.body.len();
            r.next_seq += 1;
            push.seq = r.next_seq;
            r.history.push_back(push);
            r.next_seq
        };
        self.latest.send_replace(seq);
        Ok(seq)
    }

    pub(super) fn stats(&self) -> PushStats {
        let c = &self.counters;
        let r = lock(&self.record);
        PushStats {
            accepted: r.next_seq,
            wrong_path: c.wrong_path.load(Ordering::Relaxed),
            too_large: c.too_large.load(Ordering::Relaxed),
            subscription_full: c.subscription_full.load(Ordering::Relaxed),
            listener_full: c.listener_full.load(Ordering::Relaxed),
            connections_refused: c.connections_refused.load(Ordering::Relaxed),
            retained_bytes: r.retained_bytes as u64,
            retained_pushes: r.history.len() as u64,
        }
    }

    /// Whether `path` carries `/ews-push/<token>` as whole segments (a
    /// proxy in front may add a prefix or keep a suffix).
    pub(super) fn path_has_token(&self, path: &str) -> bool {
        let mut segments = path.split('/');
        while let Some(s) = segments.next() {
            if s == PATH_PREFIX {
                return segments.next() == Some(self.token.as_str());
            }
        }
        false
    }
}

/// 128 random bits as 32 hex digits.
pub(super) fn random_token() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}
