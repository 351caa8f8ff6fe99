//! Where streaming and push notifications are collected while a sequence
//! runs: a GetStreamingEvents connection per streaming subscription (read by
//! a task with [`StreamReader`]), and the harness's push listener for push
//! subscriptions (each subscription gets its own URL query, so every push
//! that reaches its URL is attributed to it, whatever SubscriptionId it names).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::client::push::{PushListener, ReceivedPush};
use crate::client::session::Session;
use crate::client::stream::{StreamReader, parse_envelope};
use ews_proto::ews::Notification;

/// How often a stream that ended is opened again before the feed gives up.
const MAX_RECONNECTS: usize = 20;
/// The query parameter that names a push subscription's URL.
pub(super) const PUSH_QUERY: &str = "ews-conformance-sub";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a streaming connection task shares with the driver.
#[derive(Default)]
struct StreamShared {
    inbox: Mutex<Vec<Notification>>,
    problems: Mutex<Vec<String>>,
}

/// How to open a GetStreamingEvents connection.
pub(super) struct StreamRequest {
    /// The session of the subscription's owner (each opening gets a
    /// connection of its own, with its own NTLM handshake where needed).
    pub session: Session,
    pub body: String,
    /// The deadline for the response headers of one connection attempt.
    pub connect_deadline: Duration,
}

/// The notifications of one streaming subscription's connection.
pub(super) struct StreamFeed {
    shared: Arc<StreamShared>,
    arrived: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Drop for StreamFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StreamFeed {
    pub fn open(request: StreamRequest) -> Self {
        let shared = Arc::new(StreamShared::default());
        let (tx, arrived) = watch::channel(0u64);
        let task = tokio::spawn(read_stream(request, Arc::clone(&shared), tx));
        StreamFeed {
            shared,
            arrived,
            task,
        }
    }

    /// Everything that arrived since the last call, in arrival order.
    pub fn take(&mut self) -> Vec<Notification> {
        self.arrived.borrow_and_update();
        std::mem::take(&mut *lock(&self.shared.inbox))
    }

    /// Waits until something new arrives; `false` at the deadline.
    pub async fn wait(&mut self, deadline: Instant) -> bool {
        matches!(
            tokio::time::timeout_at(deadline, self.arrived.changed()).await,
            Ok(Ok(()))
        )
    }

    /// Stream problems noted since the last call (errors, unreadable envelopes).
    pub fn problems(&mut self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.shared.problems))
    }
}

async fn read_stream(request: StreamRequest, shared: Arc<StreamShared>, tx: watch::Sender<u64>) {
    let note = |p: String| lock(&shared.problems).push(p);
    let mut count = 0u64;
    for attempt in 0..=MAX_RECONNECTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let response = match request
            .session
            .open(&request.body, request.connect_deadline)
            .await
        {
            Err(e) => {
                note(format!("GetStreamingEvents: {e}"));
                continue;
            }
            Ok(r) => r,
        };
        if response.status != 200 {
            note(format!("GetStreamingEvents: HTTP {}", response.status));
            continue;
        }
        let mut reader = StreamReader::from_body(response.body);
        loop {
            // Heartbeats keep a healthy stream busy; a quiet one is simply
            // asked again (the driver's own waits are the deadline).
            let deadline = Instant::now() + Duration::from_secs(60);
            match reader.next_envelope(deadline).await {
                Ok(Some(env)) => match parse_envelope(&env.text) {
                    Ok(r) => {
                        if !r.message.is_success() {
                            note(format!(
                                "GetStreamingEvents envelope {}: ResponseClass {}, ResponseCode {} for {:?}",
                                env.index,
                                r.message.class,
                                r.message.code.as_ref().map_or("(none)", |c| c.as_str()),
                                r.error_subscription_ids
                            ));
                        }
                        if !r.notifications.is_empty() {
                            lock(&shared.inbox).extend(r.notifications);
                            count += 1;
                            tx.send_replace(count);
                        }
                        if r.connection_status == Some(ews_proto::ews::ConnectionStatus::Closed) {
                            break;
                        }
                    }
                    Err(e) => note(format!(
                        "GetStreamingEvents envelope {} is unreadable: {e}",
                        env.index
                    )),
                },
                Ok(None) => break,
                Err(crate::client::stream::StreamError::Deadline { .. }) => continue,
                Err(crate::client::stream::StreamError::Split(e)) => {
                    note(format!("GetStreamingEvents: {e}"));
                }
                Err(e) => {
                    note(format!("GetStreamingEvents: {e}"));
                    break;
                }
            }
        }
    }
    note(format!(
        "GetStreamingEvents: gave up after {MAX_RECONNECTS} reconnections"
    ));
}

/// The pushes that reach one push subscription's URL.
pub(super) struct PushFeed {
    /// The value of [`PUSH_QUERY`] in the subscription's URL.
    token: String,
    /// The SubscriptionId, once Subscribe answered (pushes to the bare URL
    /// naming it count too, for a listener URL that drops the query).
    subscription_id: Option<String>,
    /// Highest push seq taken.
    after: u64,
    pending: Vec<ReceivedPush>,
    problems: Vec<String>,
}

impl PushFeed {
    pub fn new(token: String, listener: &PushListener) -> Self {
        PushFeed {
            token,
            subscription_id: None,
            // Pushes before this subscription existed are not its own.
            after: listener.mark(),
            pending: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// The URL to subscribe with.
    pub fn url(&self, base: &str) -> String {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}{PUSH_QUERY}={}", self.token)
    }

    pub fn set_subscription_id(&mut self, id: &str) {
        self.subscription_id = Some(id.to_string());
    }

    fn ours(&self, p: &ReceivedPush) -> bool {
        let query = p.path.split_once('?').map(|(_, q)| q).unwrap_or("");
        let mut tagged = false;
        for pair in query.split('&') {
            if let Some(v) = pair
                .strip_prefix(PUSH_QUERY)
                .and_then(|r| r.strip_prefix('='))
            {
                if v == self.token {
                    return true;
                }
                tagged = true;
            }
        }
        !tagged
            && self
                .subscription_id
                .as_deref()
                .is_some_and(|id| p.subscription_id.as_deref() == Some(id))
    }

    async fn next(&mut self, listener: &PushListener, deadline: Instant) -> Option<ReceivedPush> {
        let after = self.after;
        let found = listener
            .wait_for(
                "a push for this subscription",
                |p| p.seq > after && self.ours(p),
                deadline,
            )
            .await
            .ok()?;
        self.after = found.seq;
        Some(found)
    }

    fn accept(&mut self, p: ReceivedPush) -> Option<Notification> {
        match p.parsed {
            Ok(n) => match n.notification {
                Some(n) => Some(n),
                None => {
                    self.problems
                        .push(format!("push #{} carries no Notification", p.seq));
                    None
                }
            },
            Err(e) => {
                self.problems
                    .push(format!("push #{} is not a SendNotification: {e}", p.seq));
                None
            }
        }
    }

    /// Everything that arrived since the last call, in arrival order.
    pub async fn take(&mut self, listener: &PushListener) -> Vec<Notification> {
        let mut out: Vec<Notification> = Vec::new();
        for p in std::mem::take(&mut self.pending) {
            out.extend(self.accept(p));
        }
        // A deadline in the past: only what is already there.
        while let Some(p) = self.next(listener, Instant::now()).await {
            out.extend(self.accept(p));
        }
        out
    }

    /// Waits until a new push arrives; `false` at the deadline.
    pub async fn wait(&mut self, listener: &PushListener, deadline: Instant) -> bool {
        if !self.pending.is_empty() {
            return true;
        }
        match self.next(listener, deadline).await {
            Some(p) => {
                self.pending.push(p);
                true
            }
            None => false,
        }
    }

    pub fn problems(&mut self) -> Vec<String> {
        std::mem::take(&mut self.problems)
    }
}
