//! The harness's push listener: the web service a push subscription's `URL`
//! names. It records every notification POST as evidence, answers each one
//! as the case's policy says (OK, Unsubscribe, an HTTP error, or no answer
//! at all), and lets a case wait for, or rule out, a notification.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ews::{SendNotification, SubscriptionStatus, envelope};
use crate::xml::{XmlWriter, ns, parse_document};

/// Largest notification body kept; a longer one is cut and answered 413
/// (one that stalls or breaks is answered 400).
pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// Pushes remembered (oldest dropped first).
pub const DEFAULT_HISTORY: usize = 10_000;
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
pub enum Answer {
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

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Ok => write!(f, "OK"),
            Answer::Unsubscribe => write!(f, "Unsubscribe"),
            Answer::HttpError(code) => write!(f, "HTTP {code}"),
            Answer::Hang => write!(f, "no answer (hang)"),
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
    /// The body was longer than the limit, or could not be read to its end.
    pub body_truncated: bool,
    /// The body as `m:SendNotification`, or why it is not one.
    pub parsed: Result<SendNotification, String>,
    /// From the parsed notification, or from any `SubscriptionId` element
    /// when the body is XML but not a valid notification.
    pub subscription_id: Option<String>,
    pub answered: Answer,
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
    pub hang_limit: Duration,
    pub body_timeout: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            body_limit: DEFAULT_BODY_LIMIT,
            history_limit: DEFAULT_HISTORY,
            hang_limit: DEFAULT_HANG_LIMIT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

#[derive(Debug)]
struct Policy {
    default: Answer,
    by_subscription: HashMap<String, Answer>,
}

#[derive(Debug)]
struct Record {
    history: VecDeque<ReceivedPush>,
    next_seq: u64,
}

struct Shared {
    config: PushConfig,
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
    fn answer_for(&self, subscription_id: Option<&str>) -> Answer {
        let policy = lock(&self.policy);
        subscription_id
            .and_then(|id| policy.by_subscription.get(id).copied())
            .unwrap_or(policy.default)
    }

    fn record(&self, mut push: ReceivedPush) -> u64 {
        let seq = {
            let mut r = lock(&self.record);
            r.next_seq += 1;
            push.seq = r.next_seq;
            r.history.push_back(push);
            while r.history.len() > self.config.history_limit.max(1) {
                r.history.pop_front();
            }
            r.next_seq
        };
        self.latest.send_replace(seq);
        seq
    }
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
        let url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}/push"));
        let shared = Arc::new(Shared {
            config,
            policy: Mutex::new(Policy {
                default: Answer::Ok,
                by_subscription: HashMap::new(),
            }),
            record: Mutex::new(Record {
                history: VecDeque::new(),
                next_seq: 0,
            }),
            latest: watch::channel(0).0,
            closing: watch::channel(false).0,
        });
        let app = Router::new()
            .fallback(receive)
            .with_state(Arc::clone(&shared));
        let mut closing = shared.closing.subscribe();
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

    /// The URL to put in a push Subscribe: the public URL if one was given,
    /// else `http://<bound address>/push`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The answer for subscriptions without one of their own.
    pub fn set_default_answer(&self, answer: Answer) {
        lock(&self.shared.policy).default = answer;
    }

    /// The answer for one subscription id, from the next push on.
    pub fn set_answer(&self, subscription_id: &str, answer: Answer) {
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
            .map(|n| crate::xml::text_of(n).trim().to_string())
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
    let (body, cut) = read_bounded(body, limit, shared.config.body_timeout).await;
    let ((parsed, subscription_id), answered) = match cut {
        None => {
            let read = read_notification(&body);
            let answer = shared.answer_for(read.1.as_deref());
            (read, answer)
        }
        Some(Cut::TooLarge) => (
            (Err(format!("the body exceeds {limit} bytes")), None),
            Answer::HttpError(StatusCode::PAYLOAD_TOO_LARGE.as_u16()),
        ),
        Some(Cut::Incomplete) => (
            (
                Err("the body was not delivered in full (stalled or broken)".into()),
                None,
            ),
            Answer::HttpError(StatusCode::BAD_REQUEST.as_u16()),
        ),
    };
    let seq = shared.record(ReceivedPush {
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
    tracing::debug!(seq, %answered, "push received");
    respond(&shared, answered).await
}

async fn respond(shared: &Shared, answer: Answer) -> Response {
    let soap = |status: SubscriptionStatus| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            result_envelope(status),
        )
            .into_response()
    };
    match answer {
        Answer::Ok => soap(SubscriptionStatus::Ok),
        Answer::Unsubscribe => soap(SubscriptionStatus::Unsubscribe),
        Answer::HttpError(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, format!("push listener answers {status}\n")).into_response()
        }
        Answer::Hang => {
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
