//! The harness's push listener: the web service a push subscription's `URL`
//! names. It records every notification POST as evidence, answers each one
//! as the case's policy says (OK, Unsubscribe, an HTTP error, or no answer
//! at all), and lets a case wait for, or rule out, a notification.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

use ews_proto::ews::{SendNotification, SubscriptionStatus, envelope};
use ews_proto::xml::{XmlWriter, ns, parse_document};

/// Largest notification body accepted; a longer one is answered 413 and not
/// kept (one that stalls or breaks is answered 400). A notification of 50
/// events is a few tens of KiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// Pushes remembered in all; once full, further pushes are refused (503).
pub const DEFAULT_HISTORY: usize = 4096;
/// Pushes remembered per subscription id (pushes without one share a slot).
pub const DEFAULT_PER_SUBSCRIPTION: usize = 1024;
/// Body bytes remembered in all; past this further pushes are refused (503).
pub const DEFAULT_RETAINED_BYTES: usize = 64 * 1024 * 1024;
/// Connections served at once; further ones are closed on accept.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// The path segment before the run's token: `/ews-push/<token>`.
pub const PATH_PREFIX: &str = "ews-push";
/// How long a `Hang` answer holds the request before giving up with 503.
pub const DEFAULT_HANG_LIMIT: Duration = Duration::from_secs(120);
/// How long a sender may take to deliver a body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `shutdown` waits for open requests before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pushes listed in a wait error.
const LISTED_IN_ERRORS: usize = 20;

/// How the listener answers a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushAnswer {
    /// `SendNotificationResult` with `SubscriptionStatus` OK.
    Ok,
    /// `SendNotificationResult` with `SubscriptionStatus` Unsubscribe: the
    /// server must end the subscription.
    Unsubscribe,
    /// This HTTP status with no SOAP body (an invalid code is sent as 500).
    HttpError(u16),
    /// No answer until the listener closes or the hang limit passes (then
    /// 503), so the server sees its request time out.
    Hang,
}

impl fmt::Display for PushAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushAnswer::Ok => write!(f, "OK"),
            PushAnswer::Unsubscribe => write!(f, "Unsubscribe"),
            PushAnswer::HttpError(code) => write!(f, "HTTP {code}"),
            PushAnswer::Hang => write!(f, "no answer (hang)"),
        }
    }
}

/// One POST the listener received.
#[derive(Debug, Clone)]
pub struct ReceivedPush {
    /// 1 for the first push.
    pub seq: u64,
    pub arrived: Instant,
    /// Path and query of the request.
    pub path: String,
    /// Request headers, without any credentials.
    pub headers: Vec<(String, String)>,
    /// The body (at most the body limit).
    pub body: Bytes,
    /// The body could not be read to its end (a body over the limit is
    /// refused, never recorded).
    pub body_truncated: bool,
    /// The body as `m:SendNotification`, or why it is not one.
    pub parsed: Result<SendNotification, String>,
    /// From the parsed notification, or from any `SubscriptionId` element
    /// when the body is XML but not a valid notification.
    pub subscription_id: Option<String>,
    pub answered: PushAnswer,
}

impl ReceivedPush {
    /// The body as text (lossy).
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The value of a header (case-insensitive name), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// One line for listings in error messages.
    pub fn summary(&self) -> String {
        let parsed = match &self.parsed {
            Ok(n) => {
                let events: Vec<&str> = n
                    .notification
                    .iter()
                    .flat_map(|x| &x.events)
                    .map(|e| e.kind.element_name())
                    .collect();
                format!("events [{}]", events.join(", "))
            }
            Err(e) => format!("unreadable: {e}"),
        };
        format!(
            "#{} {} subscription {} {} ({} bytes), answered {}",
            self.seq,
            self.path,
            self.subscription_id.as_deref().unwrap_or("?"),
            parsed,
            self.body.len(),
            self.answered
        )
    }
}

/// Why a wait on the listener failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PushWaitError {
    #[error(
        "no push matching {what} arrived within {waited:?}; {total} push(es) arrived:{}",
        listing(.arrived)
    )]
    Timeout {
        what: String,
        waited: Duration,
        total: usize,
        /// Summaries of the most recent pushes.
        arrived: Vec<String>,
    },
    #[error(
        "a push matching {what} arrived, none was expected within {window:?}: {}\n{}",
        .push.summary(),
        crate::client::stream::evidence(&.push.body)
    )]
    Unexpected {
        what: String,
        window: Duration,
        push: Box<ReceivedPush>,
    },
}

fn listing(arrived: &[String]) -> String {
    if arrived.is_empty() {
        " none".into()
    } else {
        arrived.iter().map(|a| format!("\n  {a}")).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Listener settings.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Where to listen; `127.0.0.1:0` picks a free local port.
    pub bind: SocketAddr,
    /// The URL to give the server when it cannot reach the bound address
    /// directly (a remote target, NAT, a proxy).
    pub public_url: Option<String>,
    pub body_limit: usize,
    pub history_limit: usize,
    pub per_subscription_limit: usize,
    pub retained_bytes_limit: usize,
    pub max_connections: usize,
    pub hang_limit: Duration,
    pub body_timeout: Duration,
    /// The secret path segment; `None` draws 128 random bits (hex).
    pub token: Option<String>,
}

impl PushConfig {
    /// The most body bytes the listener holds at once: those remembered
    /// plus those being read on every open connection.
    pub fn memory_bound(&self) -> usize {
        let remembered = self
            .retained_bytes_limit
            .min(self.history_limit.saturating_mul(self.body_limit));
        remembered.saturating_add(self.max_connections.saturating_mul(self.body_limit))
    }
}

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
pub struct PushStatsHandle(Arc<Shared>);

impl PushStatsHandle {
    pub fn get(&self) -> PushStats {
        self.0.stats()
    }
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            body_limit: DEFAULT_BODY_LIMIT,
            history_limit: DEFAULT_HISTORY,
            per_subscription_limit: DEFAULT_PER_SUBSCRIPTION,
            retained_bytes_limit: DEFAULT_RETAINED_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            hang_limit: DEFAULT_HANG_LIMIT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            token: None,
        }
    }
}

#[derive(Debug)]
struct Policy {
    default: PushAnswer,
    by_subscription: HashMap<String, PushAnswer>,
}

#[derive(Debug)]
struct Record {
    history: VecDeque<ReceivedPush>,
    next_seq: u64,
    /// Pushes remembered per subscription id ("" for none).
    per_subscription: HashMap<String, usize>,
    retained_bytes: usize,
}

#[derive(Debug, Default)]
struct Counters {
    wrong_path: AtomicU64,
    too_large: AtomicU64,
    subscription_full: AtomicU64,
    listener_full: AtomicU64,
    connections_refused: AtomicU64,
}

/// Why a push was not remembered.
enum Refusal {
    Subscription,
    Listener,
}

#[derive(Debug)]
struct Shared {
    config: PushConfig,
    /// The path segment after [`PATH_PREFIX`].
    token: String,
    counters: Counters,
    policy: Mutex<Policy>,
    record: Mutex<Record>,
    /// The seq of the latest push, to wake waiters.
    latest: watch::Sender<u64>,
    closing: watch::Sender<bool>,
}

/// Locks a mutex; a panic elsewhere while holding it leaves plain data
/// that is still consistent, so poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn answer_for(&self, subscription_id: Option<&str>) -> PushAnswer {
        let policy = lock(&self.policy);
        subscription_id
            .and_then(|id| policy.by_subscription.get(id).copied())
            .unwrap_or(policy.default)
    }

    /// Remembers a push, unless a queue cap refuses it.
    fn record(&self, mut push: ReceivedPush) -> Result<u64, Refusal> {
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

    fn stats(&self) -> PushStats {
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
    fn path_has_token(&self, path: &str) -> bool {
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
fn random_token() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}

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

/// `<soap:Envelope><soap:Body><m:SendNotificationResult>…`: the listener's
/// reply, with no SOAP header (none is defined for it).
pub fn result_envelope(status: SubscriptionStatus) -> String {
    let mut w = XmlWriter::new();
    w.declaration();
    w.start("soap:Envelope", &[("xmlns:soap", ns::SOAP)]);
    w.start("soap:Body", &[]);
    status.render_result(&mut w);
    w.end("soap:Body").end("soap:Envelope");
    w.into_string()
}

/// Reads a push body as `m:SendNotification`, and finds its subscription id.
fn read_notification(body: &[u8]) -> (Result<SendNotification, String>, Option<String>) {
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) => {
            return (
                Err(format!("not UTF-8 (invalid byte at {})", e.valid_up_to())),
                None,
            );
        }
    };
    let doc = match parse_document(text) {
        Ok(d) => d,
        Err(e) => return (Err(format!("not well-formed XML: {e}")), None),
    };
    // Any SubscriptionId will do to pick an answer when the body is malformed.
    let any_id = || {
        doc.descendants()
            .find(|n| n.is_element() && n.tag_name().name() == "SubscriptionId")
            .map(|n| ews_proto::xml::text_of(n).trim().to_string())
    };
    let parsed = envelope::open(&doc)
        .map_err(|e| e.to_string())
        .and_then(|opened| match opened.fault() {
            Some(f) => Err(format!("a SOAP fault {}: {}", f.fault_code, f.fault_string)),
            None => SendNotification::parse(opened.payload).map_err(|e| e.to_string()),
        });
    let id = match &parsed {
        Ok(n) => n.notification.as_ref().map(|n| n.subscription_id.clone()),
        Err(_) => any_id(),
    };
    (parsed, id)
}

/// Why a body was not read in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    TooLarge,
    /// The sender stalled past the body timeout or the connection broke.
    Incomplete,
}

/// Reads at most `limit` bytes of a body within `timeout`.
async fn read_bounded(body: Body, limit: usize, timeout: Duration) -> (Bytes, Option<Cut>) {
    let mut body = body;
    let mut buf = BytesMut::new();
    let read = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Some(Cut::Incomplete);
            };
            if let Ok(data) = frame.into_data() {
                let room = limit - buf.len();
                if data.len() > room {
                    buf.extend_from_slice(&data[..room]);
                    return Some(Cut::TooLarge);
                }
                buf.extend_from_slice(&data);
            }
        }
        None
    };
    let cut = tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Some(Cut::Incomplete));
    (buf.freeze(), cut)
}

async fn receive(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if !shared.path_has_token(request.uri().path()) {
        shared.counters.wrong_path.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    if request.method() != Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            "push notifications are POSTed\n",
        )
            .into_response();
    }
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let headers = parts
        .headers
        .iter()
        .filter(|(k, _)| *k != header::AUTHORIZATION && *k != header::PROXY_AUTHORIZATION)
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let limit = shared.config.body_limit;
    // A declared length over the cap is refused before reading anything.
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (body, cut) = if declared.is_some_and(|n| n > limit as u64) {
        (Bytes::new(), Some(Cut::TooLarge))
    } else {
        read_bounded(body, limit, shared.config.body_timeout).await
    };
    if cut == Some(Cut::TooLarge) {
        shared.counters.too_large.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(limit, "push refused: body too large");
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("push bodies are limited to {limit} bytes\n"),
        )
            .into_response();
    }
    let ((parsed, subscription_id), answered) = match cut {
        None => {
            let read = read_notification(&body);
            let answer = shared.answer_for(read.1.as_deref());
            (read, answer)
        }
        // Too large was answered above.
        Some(_) => (
            (
                Err("the body was not delivered in full (stalled or broken)".into()),
                None,
            ),
            PushAnswer::HttpError(StatusCode::BAD_REQUEST.as_u16()),
        ),
    };
    let recorded = shared.record(ReceivedPush {
        seq: 0,
        arrived,
        path,
        headers,
        body,
        body_truncated: cut.is_some(),
        parsed,
        subscription_id,
        answered,
    });
    let seq = match recorded {
        Ok(seq) => seq,
        Err(refusal) => {
            let counter = match refusal {
                Refusal::Subscription => &shared.counters.subscription_full,
                Refusal::Listener => &shared.counters.listener_full,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("push refused: queue full");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "push listener queue is full\n",
            )
                .into_response();
        }
    };
    tracing::debug!(seq, %answered, "push received");
    respond(&shared, answered).await
}

/// The TCP listener with a cap on open connections: one over the cap is
/// closed as soon as it is accepted (and counted).
struct Limited {
    inner: tokio::net::TcpListener,
    connections: Arc<Semaphore>,
    shared: Arc<Shared>,
}

/// A connection holding its place under the cap until it closes.
struct LimitedIo {
    stream: tokio::net::TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl axum::serve::Listener for Limited {
    type Io = LimitedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            match Arc::clone(&self.connections).try_acquire_owned() {
                Ok(permit) => {
                    return (
                        LimitedIo {
                            stream,
                            _permit: permit,
                        },
                        addr,
                    );
                }
                Err(_) => {
                    self.shared
                        .counters
                        .connections_refused
                        .fetch_add(1, Ordering::Relaxed);
                    drop(stream);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for LimitedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

async fn respond(shared: &Shared, answer: PushAnswer) -> Response {
    let soap = |status: SubscriptionStatus| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            result_envelope(status),
        )
            .into_response()
    };
    match answer {
        PushAnswer::Ok => soap(SubscriptionStatus::Ok),
        PushAnswer::Unsubscribe => soap(SubscriptionStatus::Unsubscribe),
        PushAnswer::HttpError(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, format!("push listener answers {status}\n")).into_response()
        }
        PushAnswer::Hang => {
            let mut closing = shared.closing.subscribe();
            let _ = tokio::time::timeout(shared.config.hang_limit, closing.wait_for(|c| *c)).await;
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "push listener stopped waiting\n",
            )
                .into_response()
        }
    }
}
