//! The push listener: where a target POSTs its notifications; waiting for
//! them and taking them.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use super::config::*;
use super::receive::*;
use super::received::*;
use super::shared::*;

/// A running push listener. Dropping it stops the server too; `shutdown`
/// does so gracefully.
pub struct PushListener {
    shared: Arc<Shared>,
    addr: SocketAddr,
    url: String,
    task: Option<JoinHandle<()>>,
}

impl PushListener {
    /// Listens on `bind` and answers every push with OK until told otherwise.
    pub async fn start(bind: SocketAddr, public_url: Option<String>) -> Result<Self, PushError> {
        Self::start_with(PushConfig {
            bind,
            public_url,
            ..PushConfig::default()
        })
        .await
    }

    pub async fn start_with(config: PushConfig) -> Result<Self, PushError> {
        let bind = config.bind;
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|source| PushError::Bind { addr: bind, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| PushError::Bind { addr: bind, source })?;
        let token = config.token.clone().unwrap_or_else(random_token);
        let base = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let url = format!("{}/{PATH_PREFIX}/{token}", base.trim_end_matches('/'));
        let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
        let shared = Arc::new(Shared {
            config,
            token,
            counters: Counters::default(),
            policy: Mutex::new(Policy {
                default: PushAnswer::Ok,
                by_subscription: HashMap::new(),
            }),
            record: Mutex::new(Record {
                history: VecDeque::new(),
                next_seq: 0,
                per_subscription: HashMap::new(),
                retained_bytes: 0,
            }),
            latest: watch::channel(0).0,
            closing: watch::channel(false).0,
        });
        let app = Router::new()
            .fallback(receive)
            .with_state(Arc::clone(&shared));
        let mut closing = shared.closing.subscribe();
        let listener = Limited {
            inner: listener,
            connections,
            shared: Arc::clone(&shared),
        };
        let task = tokio::spawn(async move {
            let stop = async move {
                let _ = closing.wait_for(|c| *c).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!(error = %e, "push listener stopped");
            }
        });
        tracing::debug!(%addr, %url, "push listener started");
        Ok(PushListener {
            shared,
            addr,
            url,
            task: Some(task),
        })
    }

    /// The URL to put in a push Subscribe: `<base>/ews-push/<token>`, the
    /// base being the public URL if one was given, else
    /// `http://<bound address>`. Requests to any other path are answered
    /// 404 and never recorded.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The run's secret path segment.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The counters now: pushes kept, refused, and body bytes held.
    pub fn stats(&self) -> PushStats {
        self.shared.stats()
    }

    /// A handle on the counters that outlives the listener.
    pub fn stats_handle(&self) -> PushStatsHandle {
        PushStatsHandle(Arc::clone(&self.shared))
    }

    /// The most body bytes this listener holds at once (see [`PushConfig::memory_bound`]).
    pub fn memory_bound(&self) -> usize {
        self.shared.config.memory_bound()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The answer for subscriptions without one of their own.
    pub fn set_default_answer(&self, answer: PushAnswer) {
        lock(&self.shared.policy).default = answer;
    }

    /// The answer for one subscription id, from the next push on.
    pub fn set_answer(&self, subscription_id: &str, answer: PushAnswer) {
        lock(&self.shared.policy)
            .by_subscription
            .insert(subscription_id.to_string(), answer);
    }

    /// Back to the default answer for this subscription.
    pub fn clear_answer(&self, subscription_id: &str) {
        lock(&self.shared.policy)
            .by_subscription
            .remove(subscription_id);
    }

    /// Every push still remembered, oldest first.
    pub fn received(&self) -> Vec<ReceivedPush> {
        lock(&self.shared.record).history.iter().cloned().collect()
    }

    /// Takes every push kept so far out of the listener, freeing its place
    /// under the caps: for long runs that consume pushes as they come.
    pub fn drain(&self) -> Vec<ReceivedPush> {
        let mut r = lock(&self.shared.record);
        r.per_subscription.clear();
        r.retained_bytes = 0;
        r.history.drain(..).collect()
    }

    /// The seq of the latest push (0 before the first): `p.seq > mark`
    /// selects the pushes that arrive after this call.
    pub fn mark(&self) -> u64 {
        lock(&self.shared.record).next_seq
    }

    /// The first remembered push (old or new) matching `pred`, waiting for
    /// one until `deadline`. `what` describes the expectation for the error.
    pub async fn wait_for(
        &self,
        what: &str,
        pred: impl Fn(&ReceivedPush) -> bool,
        deadline: tokio::time::Instant,
    ) -> Result<ReceivedPush, PushWaitError> {
        let started = tokio::time::Instant::now();
        let mut latest = self.shared.latest.subscribe();
        let mut scanned = 0;
        loop {
            latest.borrow_and_update();
            let (found, upto) = self.find_after(scanned, &pred);
            if let Some(push) = found {
                return Ok(push);
            }
            scanned = upto;
            match tokio::time::timeout_at(deadline, latest.changed()).await {
                Ok(Ok(())) => continue,
                // The sender lives in `shared`, which we hold, so it cannot close;
                // treat it like the deadline all the same.
                Ok(Err(_)) | Err(_) => {
                    let record = lock(&self.shared.record);
                    let skip = record.history.len().saturating_sub(LISTED_IN_ERRORS);
                    return Err(PushWaitError::Timeout {
                        what: what.to_string(),
                        waited: started.elapsed(),
                        total: record.next_seq as usize,
                        arrived: record
                            .history
                            .iter()
                            .skip(skip)
                            .map(|p| p.summary())
                            .collect(),
                    });
                }
            }
        }
    }

    /// Fails with the first remembered push (old or new) matching `pred`,
    /// or succeeds once `window` has passed without one.
    pub async fn expect_none(
        &self,
        what: &str,
        pred: impl Fn(&ReceivedPush) -> bool,
        window: Duration,
    ) -> Result<(), PushWaitError> {
        let deadline = tokio::time::Instant::now() + window;
        match self.wait_for(what, pred, deadline).await {
            Ok(push) => Err(PushWaitError::Unexpected {
                what: what.to_string(),
                window,
                push: Box::new(push),
            }),
            Err(_) => Ok(()),
        }
    }

    /// The first push with seq > `after` matching `pred`, and the latest seq looked at.
    fn find_after(
        &self,
        after: u64,
        pred: &impl Fn(&ReceivedPush) -> bool,
    ) -> (Option<ReceivedPush>, u64) {
        let record = lock(&self.shared.record);
        let found = record
            .history
            .iter()
            .filter(|p| p.seq > after)
            .find(|p| pred(p))
            .cloned();
        (found, record.next_seq)
    }

    /// Stops listening; requests left hanging are answered 503 first.
    pub async fn shutdown(mut self) {
        self.shared.closing.send_replace(true);
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            tracing::warn!("push listener did not stop within {SHUTDOWN_GRACE:?}; aborting it");
            task.abort();
        }
    }
}

impl Drop for PushListener {
    fn drop(&mut self) {
        self.shared.closing.send_replace(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
