//! The driver: runs a generated sequence against a real target over the
//! wire and judges what it delivers.
//!
//! It uses the harness's own machinery: the [`Target`] (embedded reference
//! server or live endpoint), the request renderers of [`ews_proto::ews`], the
//! [`Transport`] with its per-request deadline, the push listener the
//! target offers, and [`crate::client::stream::StreamReader`] for
//! streaming. One run:
//!
//! 1. creates a fresh case folder under `msgfolderroot` and looks up the
//!    well-known folders (their ids, and the unread counts the model
//!    starts from);
//! 2. runs each [`Op`], binding the ids responses report to the handles;
//!    pull subscriptions drain GetEvents on `Poll`, streaming ones keep a
//!    GetStreamingEvents connection each, push ones get their own listener
//!    URL, and a `Poll` of those waits (bounded) until the predicted events
//!    arrived;
//! 3. waits a short settling time for anything extra, unsubscribes, deletes
//!    the case folder, and calls [`judge`].
//!
//! A target that refuses an operation, answers garbage or not at all fails
//! the run with evidence ([`StepFailure`]); only an unreachable target or
//! refused credentials end it with a [`DriveError`].

mod collect;
mod explore;
mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use self::collect::{PushFeed, StreamFeed, StreamRequest};
use self::wire::{EVIDENCE_CHARS, Refusal};
use super::mailbox::{InvalidOp, Model, Prediction, predict_with};
use super::ops::{FolderHandle, Handle, Mode, Op, OtherAction, Scope, SubHandle, WatermarkHandle};
use super::oracle::{
    Bindings, Delivery, Divergence, DivergenceKind, Observed, ObservedSubscription, judge,
};
use super::profile::Profile;
use crate::client::error::TransportError;
use crate::client::excerpt::excerpt;
use crate::client::transport::{HttpRequest, Transport, TransportConfig};
use crate::suite::target::{Target, TargetConfig};
use ews_proto::ews::envelope::{RequestHeader, request};
use ews_proto::ews::items::{
    CreateFolder, CreateItem, DeleteFolder, DeleteItem, Disposition, GetFolder, MoveOrCopyItem,
    UpdateItem,
};
use ews_proto::ews::{
    EventKind, FolderRef, FolderScope, GetEventsRequest, GetStreamingEventsRequest, Id,
    Notification, SubscribeRequest, SubscriptionKind, UnsubscribeRequest,
};

pub use explore::{
    ExploreConfig, ExploreProgress, ExploreReport, Found, explore, explore_with_progress,
    found_case_name, render_found_case, write_found_case,
};

/// How the driver talks to a target and how long it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverConfig {
    /// What the oracle tolerates.
    pub profile: Profile,
    /// How long a streaming or push `Poll` waits for its predicted events
    /// (and an asynchronous pull target for late ones).
    pub event_wait: Duration,
    /// After the last operation, how long to wait for extra notifications
    /// (repeats) before judging.
    pub settle: Duration,
    /// Pull subscriptions' Timeout, in protocol minutes.
    pub pull_timeout_minutes: i64,
    /// Push subscriptions' StatusFrequency, in protocol minutes.
    pub push_status_frequency: i64,
    /// GetStreamingEvents ConnectionTimeout, in protocol minutes (1..30).
    pub connection_timeout_minutes: i64,
    /// GetEvents calls one drain may make before it is given up.
    pub max_drain_calls: usize,
    /// How long a sent message may take to reach the Inbox (Exchange's
    /// transport delivers asynchronously, seconds after CreateItem returns).
    pub delivery_wait: Duration,
}

impl DriverConfig {
    /// Defaults for a target: its profile (`reference` unless the target
    /// names another; an unknown or missing name against a live endpoint
    /// means `exchange`, every version's latitude), and waits scaled to its
    /// protocol minute.
    pub fn for_target(config: &TargetConfig) -> Self {
        let profile = config
            .profile
            .as_deref()
            .and_then(Profile::named)
            .unwrap_or_else(Profile::exchange);
        let minute = config.protocol_minute;
        DriverConfig {
            profile,
            event_wait: (minute / 2).clamp(Duration::from_secs(2), Duration::from_secs(60)),
            settle: (minute / 10).clamp(Duration::from_millis(100), Duration::from_secs(3)),
            pull_timeout_minutes: 30,
            push_status_frequency: 1,
            connection_timeout_minutes: 30,
            max_drain_calls: 50,
            delivery_wait: (minute / 2).clamp(Duration::from_secs(2), Duration::from_secs(60)),
        }
    }
}

/// Why a run could not judge the target at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriveError {
    /// The sequence is not valid for the model.
    #[error(transparent)]
    Invalid(#[from] InvalidOp),
    /// The target cannot be reached or refuses the credentials.
    #[error("{0}")]
    Unreachable(String),
    /// The harness itself failed (an HTTP client could not be built).
    #[error("{0}")]
    Harness(String),
}

/// An operation the target did not perform as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    /// The operation's index in the sequence; `None` for setup.
    pub index: Option<usize>,
    /// The operation (or setup step) in words.
    pub op: String,
    /// The EWS request that failed (`CreateItem`, `GetEvents`, …).
    pub request: &'static str,
    /// The ResponseCode, when the answer had one.
    pub code: Option<String>,
    pub detail: String,
    /// The start of the response body, when there was one.
    pub evidence: Option<String>,
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "operation {i} ({}): ", self.op)?,
            None => write!(f, "{}: ", self.op)?,
        }
        write!(f, "{} failed: {}", self.request, self.detail)?;
        if let Some(e) = &self.evidence {
            write!(f, "\n  response: {e}")?;
        }
        Ok(())
    }
}

/// How a run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Step(StepFailure),
    /// What arrived departs from the prediction (never empty).
    Diverged(Vec<Divergence>),
}

/// What "the same failure" means while shrinking: the request and code of
/// a step failure, or the kind and rule of the first divergence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    Step {
        request: &'static str,
        code: Option<String>,
    },
    Divergence {
        kind: DivergenceKind,
        rule: &'static str,
    },
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signature::Step { request, code } => {
                write!(f, "{request} failed")?;
                if let Some(c) = code {
                    write!(f, " ({c})")?;
                }
                Ok(())
            }
            Signature::Divergence { kind, rule } => write!(f, "{} ({rule})", kind.as_str()),
        }
    }
}

impl Failure {
    pub fn signature(&self) -> Signature {
        match self {
            Failure::Step(s) => Signature::Step {
                request: s.request,
                code: s.code.clone(),
            },
            Failure::Diverged(d) => match d.first() {
                Some(first) => Signature::Divergence {
                    kind: first.kind,
                    rule: first.rule,
                },
                None => Signature::Divergence {
                    kind: DivergenceKind::Unexpected,
                    rule: "R32",
                },
            },
        }
    }

    /// Whether this failure shows `sig` (for a divergence: any of them).
    pub fn shows(&self, sig: &Signature) -> bool {
        match (self, sig) {
            (Failure::Step(_), Signature::Step { .. }) => self.signature() == *sig,
            (Failure::Diverged(list), Signature::Divergence { kind, rule }) => {
                list.iter().any(|d| d.kind == *kind && d.rule == *rule)
            }
            _ => false,
        }
    }

    /// The first problem, with its evidence, as a report shows it.
    pub fn first(&self) -> String {
        match self {
            Failure::Step(s) => s.to_string(),
            Failure::Diverged(d) => d.first().map(ToString::to_string).unwrap_or_default(),
        }
    }
}

/// Everything one run produced.
#[derive(Debug, Clone)]
pub struct SequenceRun {
    pub ops: Vec<Op>,
    pub prediction: Prediction,
    pub observed: Observed,
    pub failure: Option<Failure>,
    /// Requests sent to the EWS endpoint.
    pub requests: usize,
    pub duration: Duration,
    /// What is worth knowing besides the verdict: stream problems, waits
    /// that ran out, a cleanup that failed.
    pub notes: Vec<String>,
    /// The deadline of [`Driver::run_until`] passed before the sequence
    /// ended: nothing was judged.
    pub cut: bool,
}

impl SequenceRun {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// Events the prediction expected, over all subscriptions.
    pub fn predicted_events(&self) -> usize {
        self.prediction
            .subscriptions
            .values()
            .map(|p| p.events.len())
            .sum()
    }
}

/// Runs sequences against one target.
pub struct Driver {
    target: Arc<dyn Target>,
    transport: Transport,
    streaming: reqwest::Client,
    config: DriverConfig,
}

impl Driver {
    pub fn new(target: Arc<dyn Target>, config: DriverConfig) -> Result<Self, DriveError> {
        let cfg = target.config();
        let mut tc = TransportConfig::new(cfg.endpoint.clone());
        tc.deadline = cfg.request_timeout;
        tc.insecure_tls = cfg.insecure_tls;
        let transport = Transport::new(tc).map_err(|e| DriveError::Harness(e.to_string()))?;
        let streaming = reqwest::Client::builder()
            .connect_timeout(cfg.request_timeout)
            .danger_accept_invalid_certs(cfg.insecure_tls)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| DriveError::Harness(format!("cannot build the HTTP client: {e}")))?;
        Ok(Driver {
            target,
            transport,
            streaming,
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
        // The explorer's stream collector (collect.rs) reads through a
        // pooled client that cannot hold an NTLM handshake.
        let ntlm = matches!(cfg.user.auth, crate::client::auth::Auth::Ntlm { .. });
        if cfg.has(crate::case::Capability::Streaming) && !ntlm {
            modes.push(Mode::Streaming);
        }
        if self.target.push_listener().is_some() && cfg.push_url.is_some() {
            modes.push(Mode::Push);
        }
        modes
    }

    /// Runs `ops` and judges what the target delivered.
    pub async fn run(&self, ops: &[Op]) -> Result<SequenceRun, DriveError> {
        self.run_until(ops, None).await
    }

    /// [`Driver::run`] that stops before the next operation once `deadline`
    /// has passed: the run is then cut ([`SequenceRun::cut`]), not judged.
    pub async fn run_until(
        &self,
        ops: &[Op],
        deadline: Option<std::time::Instant>,
    ) -> Result<SequenceRun, DriveError> {
        // Invalid sequences are refused before anything is sent.
        predict_with(Model::for_profile(&self.config.profile), ops)?;
        let started = std::time::Instant::now();
        let mut s = Session::new(self);
        let outcome = s.execute(ops, deadline).await;
        s.cleanup().await;
        let mut cut = false;
        let (prediction, failure) = match outcome {
            Err(Stop::Fatal(e)) => return Err(e),
            Err(Stop::Cut(prediction)) => {
                cut = true;
                (prediction, None)
            }
            Err(Stop::Failed(step, prediction)) => (prediction, Some(Failure::Step(*step))),
            Ok(prediction) => {
                let observed = s.observed();
                let found = judge(&prediction, &observed, &self.config.profile);
                let failure = (!found.is_empty()).then_some(Failure::Diverged(found));
                (prediction, failure)
            }
        };
        Ok(SequenceRun {
            ops: ops.to_vec(),
            prediction,
            observed: s.observed(),
            failure,
            requests: s.requests,
            duration: started.elapsed(),
            notes: s.notes,
            cut,
        })
    }
}

/// Why a run stopped early.
enum Stop {
    /// A step failure before the prediction exists carries an empty one.
    Failed(Box<StepFailure>, Prediction),
    Fatal(DriveError),
    /// The deadline passed before the last operation.
    Cut(Prediction),
}

/// How a subscription delivers in this run.
enum Feed {
    Pull {
        next_watermark: String,
    },
    Streaming(StreamFeed),
    Push(PushFeed),
    /// A streaming subscription after Unsubscribe: its connection is closed.
    Closed,
}

struct SubRun {
    id: String,
    feed: Feed,
    observed: ObservedSubscription,
    /// Non-status events received so far.
    events: usize,
    /// A wait for this subscription ran out: later waits are brief.
    missed: bool,
    live: bool,
}

/// One run's state.
struct Session<'d> {
    d: &'d Driver,
    unique: String,
    header: RequestHeader,
    headers: Vec<(String, String)>,
    bindings: Bindings,
    case_folder: Option<String>,
    subs: BTreeMap<SubHandle, SubRun>,
    filters: BTreeMap<SubHandle, (Scope, BTreeSet<EventKind>)>,
    remembered: BTreeMap<WatermarkHandle, String>,
    /// The current operation, for failures.
    at: Option<usize>,
    at_label: String,
    requests: usize,
    notes: Vec<String>,
    /// Requests go as the second user (their own mailbox, no impersonation).
    as_other: bool,
}

/// An operation's outcome inside a run (boxed: failures are rare and large).
type StepResult<T> = Result<T, Box<StepFailure>>;

impl<'d> Session<'d> {
    fn new(d: &'d Driver) -> Self {
        let cfg = d.target.config();
        let mut headers = Vec::new();
        if let Some(anchor) = &cfg.anchor_mailbox {
            headers.push(("X-AnchorMailbox".to_string(), anchor.clone()));
        }
        Session {
            d,
            unique: format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
            header: RequestHeader {
                version: Some(cfg.version.clone()),
                impersonate: cfg.impersonate.clone(),
            },
            headers,
            bindings: Bindings::new(),
            case_folder: None,
            subs: BTreeMap::new(),
            filters: BTreeMap::new(),
            remembered: BTreeMap::new(),
            at: None,
            as_other: false,
            at_label: "setup".into(),
            requests: 0,
            notes: Vec::new(),
        }
    }

    fn cfg(&self) -> &TargetConfig {
        self.d.target.config()
    }

    fn fail(
        &self,
        request: &'static str,
        refusal: Refusal,
        body: Option<&str>,
    ) -> Box<StepFailure> {
        Box::new(StepFailure {
            index: self.at,
            op: self.at_label.clone(),
            request,
            code: refusal.code,
            detail: refusal.detail,
            evidence: body.map(|b| excerpt(b, EVIDENCE_CHARS)),
        })
    }

    fn missing(&self, what: String) -> Box<StepFailure> {
        Box::new(StepFailure {
            index: self.at,
            op: self.at_label.clone(),
            request: "(none)",
            code: None,
            detail: what,
            evidence: None,
        })
    }

    /// POSTs one request; a fatal transport error ends the run.
    async fn post(
        &mut self,
        request_name: &'static str,
        body: String,
    ) -> Result<StepResult<(u16, String)>, DriveError> {
        self.requests += 1;
        let cfg = self.cfg();
        let user = match (&cfg.user2, self.as_other) {
            (Some(other), true) => other,
            _ => &cfg.user,
        };
        let result = self
            .d
            .transport
            .post(&HttpRequest {
                body: &body,
                auth: &user.auth,
                headers: &self.headers,
                accept_auth_failure: false,
            })
            .await;
        match result {
            Ok(r) => Ok(Ok((r.status, r.body))),
            Err(e) if e.is_fatal() => Err(DriveError::Unreachable(format!(
                "{request_name} ({}): {e}",
                self.at_label
            ))),
            Err(e) => Ok(Err(self.fail(
                request_name,
                Refusal {
                    code: None,
                    detail: transport_detail(&e),
                },
                None,
            ))),
        }
    }

    /// Sends an item or folder operation and reads its answer.
    async fn item_call(
        &mut self,
        request_name: &'static str,
        body: String,
    ) -> Result<StepResult<wire::ItemReply>, DriveError> {
        let (status, text) = match self.post(request_name, body).await? {
            Ok(x) => x,
            Err(f) => return Ok(Err(f)),
        };
        Ok(wire::item_reply(status, &text).map_err(|r| self.fail(request_name, r, Some(&text))))
    }

    fn render(&self, body: impl FnOnce(&mut ews_proto::xml::XmlWriter)) -> String {
        if self.as_other {
            let own = RequestHeader {
                version: self.header.version.clone(),
                impersonate: None,
            };
            return request(&own, body);
        }
        request(&self.header, body)
    }

    /// Whether the target has a second user for [`Op::OtherMailbox`].
    fn has_other(&self) -> bool {
        self.cfg().user2.is_some()
    }

    /// The second user's activity in their own mailbox. Nothing of it is
    /// predicted for our subscriptions.
    async fn other_mailbox(
        &mut self,
        index: usize,
        action: OtherAction,
    ) -> Result<StepResult<()>, DriveError> {
        if !self.has_other() {
            return Ok(Err(self.missing(
                "the target has no second user for this operation".into(),
            )));
        }
        self.as_other = true;
        let result = self.other_mailbox_as_other(index, action).await;
        self.as_other = false;
        result
    }

    async fn other_mailbox_as_other(
        &mut self,
        index: usize,
        action: OtherAction,
    ) -> Result<StepResult<()>, DriveError> {
        let other = self
            .cfg()
            .user2
            .as_ref()
            .map(|u| u.smtp.clone())
            .unwrap_or_default();
        let (disposition, to, what) = match action {
            OtherAction::Deliver => (
                Disposition::SendOnly,
                vec![other.clone()],
                "theirs, delivered",
            ),
            OtherAction::SaveInInbox => (Disposition::SaveOnly, Vec::new(), "theirs, saved"),
        };
        let folder = FolderRef::Distinguished {
            id: "inbox".into(),
            mailbox: Some(other.clone()),
        };
        let body = self.render(|w| {
            CreateItem {
                folder,
                subject: format!("op {index} {what} {}", self.unique),
                count: 1,
                disposition,
                to,
                is_read: None,
            }
            .render(w)
        });
        let before = match action {
            OtherAction::Deliver => self.inbox_count().await?,
            OtherAction::SaveInInbox => None,
        };
        if let Err(f) = self.item_call("CreateItem", body).await? {
            return Ok(Err(f));
        }
        if action == OtherAction::Deliver {
            // Their delivery has happened before our next operation, so a
            // leak would show up where the model expects nothing.
            self.await_delivery(index, before).await?;
        }
        Ok(Ok(()))
    }

    // ------------------------------------------------------------ the run

    async fn execute(
        &mut self,
        ops: &[Op],
        deadline: Option<std::time::Instant>,
    ) -> Result<Prediction, Stop> {
        let empty = Prediction::default();
        let model = match self.setup().await {
            Ok(Ok(m)) => m,
            Ok(Err(f)) => return Err(Stop::Failed(f, empty)),
            Err(e) => return Err(Stop::Fatal(e)),
        };
        let prediction = predict_with(model, ops).map_err(|e| Stop::Fatal(e.into()))?;
        for (index, op) in ops.iter().enumerate() {
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                self.notes.push(format!(
                    "cut before operation {index}: the time budget is spent"
                ));
                return Err(Stop::Cut(prediction));
            }
            self.at = Some(index);
            self.at_label = op.to_string();
            match self.step(index, op, &prediction).await {
                Ok(Ok(())) => {}
                Ok(Err(f)) => return Err(Stop::Failed(f, prediction)),
                Err(e) => return Err(Stop::Fatal(e)),
            }
        }
        self.at = None;
        self.at_label = "settle".into();
        self.settle(ops, &prediction).await;
        Ok(prediction)
    }

    /// Creates the case folder and looks up the well-known folders; returns
    /// the model with the unread counts it starts from.
    async fn setup(&mut self) -> Result<StepResult<Model>, DriveError> {
        self.at_label = "setup: create the case folder".into();
        let body = self.render(|w| {
            CreateFolder {
                parent: FolderRef::distinguished("msgfolderroot"),
                name: format!("ews-conformance explore {}", self.unique),
            }
            .render(w)
        });
        let reply = match self.item_call("CreateFolder", body).await? {
            Ok(r) => r,
            Err(f) => return Ok(Err(f)),
        };
        let Some(id) = reply.folder_id else {
            let refusal = Refusal {
                code: None,
                detail: "the answer names no t:FolderId".into(),
            };
            return Ok(Err(self.fail("CreateFolder", refusal, None)));
        };
        self.case_folder = Some(id.clone());
        if let Err(c) = self.bindings.bind_folder(FolderHandle::Case, id) {
            return Ok(Err(self.missing(c.to_string())));
        }
        let mut model = Model::for_profile(&self.d.config.profile);
        for folder in [
            FolderHandle::Root,
            FolderHandle::Inbox,
            FolderHandle::DeletedItems,
            FolderHandle::Dumpster,
        ] {
            let Some(name) = folder.distinguished_name() else {
                continue;
            };
            self.at_label = format!("setup: look up {name}");
            let body = self.render(|w| {
                GetFolder {
                    folder: FolderRef::distinguished(name),
                }
                .render(w)
            });
            match self.item_call("GetFolder", body).await? {
                Ok(r) => {
                    if let Some(id) = r.folder_id
                        && let Err(c) = self.bindings.bind_folder(folder, id)
                    {
                        return Ok(Err(self.missing(c.to_string())));
                    }
                    if let Some(n) = r.unread_count {
                        model = model.with_unread_baseline(folder, n);
                    }
                }
                // Not every server lets a client see every folder: the
                // oracle then learns the id from the first event naming it.
                Err(f) => self.notes.push(format!("{}: {}", f.op, f.detail)),
            }
        }
        Ok(Ok(model))
    }

    /// The Inbox's TotalCount (or, without one, its UnreadCount); `None`
    /// when GetFolder does not say.
    async fn inbox_count(&mut self) -> Result<Option<i64>, DriveError> {
        let body = self.render(|w| {
            GetFolder {
                folder: FolderRef::distinguished("inbox"),
            }
            .render(w)
        });
        Ok(match self.item_call("GetFolder", body).await? {
            Ok(r) => r.total_count.or(r.unread_count),
            Err(_) => None,
        })
    }

    /// Mail delivery is asynchronous on Exchange (the transport pipeline
    /// takes seconds after CreateItem SendOnly returns): waits until the
    /// Inbox holds one more message, so the delivery's events come before
    /// the next operation's, as the model orders them. A delivery that has
    /// not happened by the deadline is left to the oracle (a lost event).
    async fn await_delivery(
        &mut self,
        index: usize,
        before: Option<i64>,
    ) -> Result<(), DriveError> {
        let Some(before) = before else {
            self.notes.push(format!(
                "operation {index} ({}): the Inbox's count is unknown, so the delivery was not awaited",
                self.at_label
            ));
            return Ok(());
        };
        let wait = self.d.config.delivery_wait;
        let deadline = Instant::now() + wait;
        let pause = (wait / 100).clamp(Duration::from_millis(20), Duration::from_millis(500));
        loop {
            if self.inbox_count().await?.is_some_and(|n| n > before) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.notes.push(format!(
                    "operation {index} ({}): the message was not delivered within {wait:?}",
                    self.at_label
                ));
                return Ok(());
            }
            // Nothing announces a delivery to a client without a subscription on
            // the Inbox: ask again shortly.
            tokio::time::sleep(pause).await;
        }
    }

    fn folder_ref(&self, f: FolderHandle) -> StepResult<FolderRef> {
        if let Some(name) = f.distinguished_name() {
            return Ok(FolderRef::distinguished(name));
        }
        match self.bindings.id_of(Handle::Folder(f)) {
            Some(id) => Ok(FolderRef::Id(Id::new(id))),
            None => Err(self.missing(format!(
                "folder {f} has no id: the response that made it named none"
            ))),
        }
    }

    fn item_id(&self, item: super::ops::ItemHandle) -> StepResult<String> {
        self.bindings
            .id_of(Handle::Item(item))
            .map(str::to_string)
            .ok_or_else(|| {
                self.missing(format!(
                    "item {item} has no id: the response that made it named none"
                ))
            })
    }

    fn bind(
        &mut self,
        handle: Handle,
        id: Option<String>,
        request: &'static str,
    ) -> StepResult<()> {
        match id {
            Some(id) => self.bindings.bind(handle, id).map_err(|c| {
                self.fail(
                    request,
                    Refusal {
                        code: None,
                        detail: format!("the answer reuses an id: {c}"),
                    },
                    None,
                )
            }),
            // Learnt from the first event that names it.
            None => {
                self.notes.push(format!(
                    "operation {} ({}): the {request} answer names no id for {handle}",
                    self.at.unwrap_or(0),
                    self.at_label
                ));
                Ok(())
            }
        }
    }

    async fn step(
        &mut self,
        index: usize,
        op: &Op,
        prediction: &Prediction,
    ) -> Result<StepResult<()>, DriveError> {
        macro_rules! tri {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(f) => return Ok(Err(f)),
                }
            };
        }
        match op {
            Op::CreateItem { item, folder, read } => {
                let folder = tri!(self.folder_ref(*folder));
                let body = self.render(|w| {
                    CreateItem {
                        folder,
                        subject: format!("{item} {}", self.unique),
                        count: 1,
                        disposition: Disposition::SaveOnly,
                        to: Vec::new(),
                        is_read: Some(*read),
                    }
                    .render(w)
                });
                let r = tri!(self.item_call("CreateItem", body).await?);
                tri!(self.bind(Handle::Item(*item), r.item_id, "CreateItem"));
            }
            Op::CreateItems {
                first,
                count,
                folder,
                read,
            } => {
                let folder = tri!(self.folder_ref(*folder));
                let body = self.render(|w| {
                    CreateItem {
                        folder,
                        subject: format!("{first} bulk {}", self.unique),
                        count: *count as usize,
                        disposition: Disposition::SaveOnly,
                        to: Vec::new(),
                        is_read: Some(*read),
                    }
                    .render(w)
                });
                let r = tri!(self.item_call("CreateItem", body).await?);
                // The oracle knows each item by the id the answer gives it;
                // ids it does not give are learnt from events.
                for (item, id) in op.bulk_items().zip(r.item_ids) {
                    tri!(self.bind(Handle::Item(item), Some(id), "CreateItem"));
                }
            }
            Op::Deliver { item } => {
                let cfg = self.cfg();
                let to = cfg
                    .impersonate
                    .clone()
                    .unwrap_or_else(|| cfg.user.smtp.clone());
                let body = self.render(|w| {
                    CreateItem {
                        folder: FolderRef::distinguished("inbox"),
                        subject: format!("{item} delivered {}", self.unique),
                        count: 1,
                        disposition: Disposition::SendOnly,
                        to: vec![to],
                        is_read: None,
                    }
                    .render(w)
                });
                let before = self.inbox_count().await?;
                tri!(self.item_call("CreateItem", body).await?);
                self.await_delivery(index, before).await?;
            }
            Op::MarkRead { item, read } => {
                let id = tri!(self.item_id(*item));
                let body = self.render(|w| {
                    UpdateItem {
                        item: id,
                        is_read: Some(*read),
                        subject: None,
                    }
                    .render(w)
                });
                tri!(self.item_call("UpdateItem", body).await?);
            }
            Op::SetSubject { item } => {
                let id = tri!(self.item_id(*item));
                let body = self.render(|w| {
                    UpdateItem {
                        item: id,
                        is_read: None,
                        subject: Some(format!("{item} renamed {}", self.unique)),
                    }
                    .render(w)
                });
                tri!(self.item_call("UpdateItem", body).await?);
            }
            Op::MoveItem { item, to, new } | Op::CopyItem { item, to, new } => {
                let copy = matches!(op, Op::CopyItem { .. });
                let name = if copy { "CopyItem" } else { "MoveItem" };
                let id = tri!(self.item_id(*item));
                let to = tri!(self.folder_ref(*to));
                let body = self.render(|w| MoveOrCopyItem { copy, item: id, to }.render(w));
                let r = tri!(self.item_call(name, body).await?);
                tri!(self.bind(Handle::Item(*new), r.item_id, name));
            }
            Op::DeleteItem { item, how } => {
                let id = tri!(self.item_id(*item));
                let body = self.render(|w| {
                    DeleteItem {
                        item: id,
                        delete_type: how.as_str().to_string(),
                    }
                    .render(w)
                });
                tri!(self.item_call("DeleteItem", body).await?);
            }
            Op::CreateFolder { folder, parent } => {
                let parent = tri!(self.folder_ref(*parent));
                let body = self.render(|w| {
                    CreateFolder {
                        parent,
                        name: format!("{folder} {}", self.unique),
                    }
                    .render(w)
                });
                let r = tri!(self.item_call("CreateFolder", body).await?);
                tri!(self.bind(Handle::Folder(*folder), r.folder_id, "CreateFolder"));
            }
            Op::DeleteFolder { folder, how } => {
                let f = tri!(self.folder_ref(*folder));
                let body = self.render(|w| {
                    DeleteFolder {
                        folder: f,
                        delete_type: how.as_str().to_string(),
                    }
                    .render(w)
                });
                tri!(self.item_call("DeleteFolder", body).await?);
            }
            Op::Subscribe {
                sub,
                mode,
                scope,
                event_types,
            } => {
                tri!(
                    self.subscribe(*sub, *mode, scope, event_types, None)
                        .await?
                );
            }
            Op::Resubscribe { sub, from } => {
                let Some(watermark) = self.remembered.get(from).cloned() else {
                    return Ok(Err(
                        self.missing(format!("watermark {from} was not remembered"))
                    ));
                };
                let origin = prediction
                    .subscriptions
                    .get(sub)
                    .and_then(|p| p.resumed_from)
                    .map(|(o, _)| o);
                let Some((scope, types)) = origin.and_then(|o| self.filters.get(&o)).cloned()
                else {
                    return Ok(Err(self.missing(format!(
                        "the subscription {from} was remembered on is unknown"
                    ))));
                };
                tri!(
                    self.subscribe(*sub, Mode::Pull, &scope, &types, Some(watermark))
                        .await?
                );
            }
            Op::Remember { sub, watermark } => {
                let next = match self.subs.get(sub).map(|s| &s.feed) {
                    Some(Feed::Pull { next_watermark }) => next_watermark.clone(),
                    _ => {
                        return Ok(Err(
                            self.missing(format!("{sub} is not a pull subscription of this run"))
                        ));
                    }
                };
                self.remembered.insert(*watermark, next);
            }
            Op::Poll { sub } => {
                let want = prediction
                    .subscriptions
                    .get(sub)
                    .map_or(0, |p| p.expected_by(index));
                tri!(self.poll(index, *sub, want, prediction).await?);
            }
            Op::Unsubscribe { sub } => {
                tri!(self.unsubscribe(*sub).await?);
            }
            Op::OtherMailbox { action } => {
                tri!(self.other_mailbox(index, *action).await?);
            }
        }
        Ok(Ok(()))
    }

    async fn subscribe(
        &mut self,
        sub: SubHandle,
        mode: Mode,
        scope: &Scope,
        event_types: &BTreeSet<EventKind>,
        watermark: Option<String>,
    ) -> Result<StepResult<()>, DriveError> {
        let folders = match scope {
            Scope::AllFolders => FolderScope::AllFolders,
            Scope::Folders(set) => {
                let mut refs = Vec::new();
                for f in set {
                    match self.folder_ref(*f) {
                        Ok(r) => refs.push(r),
                        Err(e) => return Ok(Err(e)),
                    }
                }
                FolderScope::Listed(refs)
            }
        };
        let mut push_feed = None;
        let kind = match mode {
            Mode::Pull => SubscriptionKind::Pull {
                timeout: self.d.config.pull_timeout_minutes,
            },
            Mode::Streaming => SubscriptionKind::Streaming,
            Mode::Push => {
                let (Some(listener), Some(base)) =
                    (self.d.target.push_listener(), self.cfg().push_url.clone())
                else {
                    return Ok(Err(self.missing(
                        "a push subscription, but the target has no push listener it can reach"
                            .into(),
                    )));
                };
                let feed = PushFeed::new(format!("{}-{sub}", self.unique), listener);
                let url = feed.url(&base);
                push_feed = Some(feed);
                SubscriptionKind::Push {
                    status_frequency: Some(self.d.config.push_status_frequency),
                    url,
                    caller_data: None,
                }
            }
        };
        let r = SubscribeRequest {
            kind,
            scope: folders,
            event_types: event_types.iter().copied().collect(),
            watermark,
        };
        let body = self.render(|w| r.render(w));
        let (status, text) = match self.post("Subscribe", body).await? {
            Ok(x) => x,
            Err(f) => return Ok(Err(f)),
        };
        let (id, wm) = match wire::subscribe_reply(status, &text) {
            Ok(x) => x,
            Err(r) => return Ok(Err(self.fail("Subscribe", r, Some(&text)))),
        };
        let feed = match mode {
            Mode::Pull => Feed::Pull { next_watermark: wm },
            Mode::Streaming => Feed::Streaming(self.open_stream(&id)),
            Mode::Push => {
                let Some(mut feed) = push_feed else {
                    return Ok(Err(self.missing("the push feed vanished".into())));
                };
                feed.set_subscription_id(&id);
                Feed::Push(feed)
            }
        };
        self.filters
            .insert(sub, (scope.clone(), event_types.clone()));
        self.subs.insert(
            sub,
            SubRun {
                observed: ObservedSubscription::new(id.clone()),
                id,
                feed,
                events: 0,
                missed: false,
                live: true,
            },
        );
        Ok(Ok(()))
    }

    fn open_stream(&mut self, id: &str) -> StreamFeed {
        let r = GetStreamingEventsRequest {
            subscription_ids: vec![id.to_string()],
            connection_timeout: self.d.config.connection_timeout_minutes.clamp(1, 30),
        };
        let body = self.render(|w| r.render(w));
        self.requests += 1;
        let cfg = self.cfg();
        StreamFeed::open(StreamRequest {
            client: self.d.streaming.clone(),
            endpoint: cfg.endpoint.clone(),
            auth: cfg.user.auth.clone(),
            headers: self.headers.clone(),
            body,
            connect_deadline: cfg.request_timeout,
        })
    }

    async fn unsubscribe(&mut self, sub: SubHandle) -> Result<StepResult<()>, DriveError> {
        let Some(run) = self.subs.get_mut(&sub) else {
            return Ok(Err(
                self.missing(format!("{sub} is not a subscription of this run"))
            ));
        };
        run.live = false;
        let id = run.id.clone();
        if let Feed::Push(_) = run.feed {
            // A push subscription ends by the listener's answer (R62).
            if let Some(listener) = self.d.target.push_listener() {
                listener.set_answer(&id, crate::client::push::PushAnswer::Unsubscribe);
            }
            return Ok(Ok(()));
        }
        let body = self.render(|w| {
            UnsubscribeRequest {
                subscription_id: id,
            }
            .render(w)
        });
        let (status, text) = match self.post("Unsubscribe", body).await? {
            Ok(x) => x,
            Err(f) => return Ok(Err(f)),
        };
        if let Err(r) = wire::plain_reply(status, &text) {
            return Ok(Err(self.fail("Unsubscribe", r, Some(&text))));
        }
        // The connection has nothing left to deliver.
        if let Some(run) = self.subs.get_mut(&sub)
            && let Feed::Streaming(_) = run.feed
        {
            run.feed = Feed::Closed;
        }
        Ok(Ok(()))
    }

    // ------------------------------------------------------------ polls

    async fn poll(
        &mut self,
        index: usize,
        sub: SubHandle,
        want: usize,
        prediction: &Prediction,
    ) -> Result<StepResult<()>, DriveError> {
        let wait = match self.subs.get(&sub).map(|s| (&s.feed, s.missed)) {
            Some((Feed::Pull { .. }, _)) => {
                return self.poll_pull(index, sub, want, prediction).await;
            }
            Some((Feed::Streaming(_) | Feed::Push(_), true)) => self.d.config.settle,
            Some((Feed::Streaming(_) | Feed::Push(_), false)) => self.d.config.event_wait,
            Some((Feed::Closed, _)) | None => {
                return Ok(Err(
                    self.missing(format!("{sub} is not a live subscription of this run"))
                ));
            }
        };
        let deadline = Instant::now() + wait;
        loop {
            let arrived = self.take(sub).await;
            self.record(sub, index, arrived);
            if !self.awaiting(sub, index, prediction) {
                break;
            }
            let Some(run) = self.subs.get_mut(&sub) else {
                break;
            };
            let woke = match &mut run.feed {
                Feed::Streaming(f) => f.wait(deadline).await,
                Feed::Push(f) => match self.d.target.push_listener() {
                    Some(l) => f.wait(l, deadline).await,
                    None => false,
                },
                Feed::Pull { .. } | Feed::Closed => false,
            };
            if woke {
                continue;
            }
            let arrived = self.take(sub).await;
            self.record(sub, index, arrived);
            let have = self.subs.get(&sub).map_or(0, |r| r.events);
            if self.awaiting(sub, index, prediction) {
                if let Some(run) = self.subs.get_mut(&sub) {
                    run.missed = true;
                }
                let problems = self.problems(sub);
                self.notes.push(format!(
                    "operation {index} (Poll({sub})): {have} of {want} predicted events arrived within {wait:?}{}",
                    if problems.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", problems.join("; "))
                    }
                ));
            }
            break;
        }
        Ok(Ok(()))
    }

    /// Whether events due by the poll at `index` may still come: judging
    /// what arrived so far finds only that the next required event has not
    /// (events the profile lets a target leave out are not waited for, and
    /// a divergence already seen will not heal by waiting).
    fn awaiting(&self, sub: SubHandle, index: usize, prediction: &Prediction) -> bool {
        let (Some(pred), Some(run)) = (prediction.subscriptions.get(&sub), self.subs.get(&sub))
        else {
            return false;
        };
        let mut due = pred.clone();
        due.events.retain(|e| e.due <= index);
        let partial = Prediction {
            subscriptions: BTreeMap::from([(sub, due)]),
            log: prediction.log.clone(),
        };
        let observed = Observed {
            bindings: self.bindings.clone(),
            subscriptions: BTreeMap::from([(sub, run.observed.clone())]),
        };
        judge(&partial, &observed, &self.d.config.profile)
            .iter()
            .any(|d| d.kind == DivergenceKind::Lost && d.delivery_index.is_none())
    }

    /// What arrived for a streaming or push subscription since the last take.
    async fn take(&mut self, sub: SubHandle) -> Vec<Notification> {
        let listener = self.d.target.push_listener();
        match self.subs.get_mut(&sub).map(|s| &mut s.feed) {
            Some(Feed::Streaming(f)) => f.take(),
            Some(Feed::Push(f)) => match listener {
                Some(l) => f.take(l).await,
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn problems(&mut self, sub: SubHandle) -> Vec<String> {
        match self.subs.get_mut(&sub).map(|s| &mut s.feed) {
            Some(Feed::Streaming(f)) => f.problems(),
            Some(Feed::Push(f)) => f.problems(),
            _ => Vec::new(),
        }
    }

    fn record(&mut self, sub: SubHandle, poll: usize, arrived: Vec<Notification>) {
        let Some(run) = self.subs.get_mut(&sub) else {
            return;
        };
        for n in arrived {
            run.events += real_events(&n);
            run.observed.deliveries.push(Delivery {
                notification: n,
                request_watermark: None,
                poll,
                drain: 0,
            });
        }
    }

    async fn poll_pull(
        &mut self,
        index: usize,
        sub: SubHandle,
        want: usize,
        prediction: &Prediction,
    ) -> Result<StepResult<()>, DriveError> {
        let synchronous = self.d.config.profile.synchronous_pull;
        let deadline = Instant::now() + self.d.config.event_wait;
        let mut drain = 0;
        loop {
            if let Err(f) = self.drain(index, sub, drain).await? {
                return Ok(Err(f));
            }
            let have = self.subs.get(&sub).map_or(0, |s| s.events);
            // An asynchronous target may queue events late: drain again.
            let awaiting = !synchronous && self.awaiting(sub, index, prediction);
            if !awaiting || Instant::now() >= deadline {
                if awaiting {
                    self.notes.push(format!(
                        "operation {index} (Poll({sub})): {have} of {want} predicted events arrived by {:?}",
                        self.d.config.event_wait
                    ));
                }
                return Ok(Ok(()));
            }
            drain += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// GetEvents until MoreEvents is false.
    async fn drain(
        &mut self,
        index: usize,
        sub: SubHandle,
        drain: usize,
    ) -> Result<StepResult<()>, DriveError> {
        for _ in 0..self.d.config.max_drain_calls {
            let (id, watermark) = match self.subs.get(&sub) {
                Some(SubRun {
                    id,
                    feed: Feed::Pull { next_watermark },
                    ..
                }) => (id.clone(), next_watermark.clone()),
                _ => {
                    return Ok(Err(
                        self.missing(format!("{sub} is not a pull subscription of this run"))
                    ));
                }
            };
            let body = self.render(|w| {
                GetEventsRequest {
                    subscription_id: id,
                    watermark: watermark.clone(),
                }
                .render(w)
            });
            let (status, text) = match self.post("GetEvents", body).await? {
                Ok(x) => x,
                Err(f) => return Ok(Err(f)),
            };
            let n = match wire::get_events_reply(status, &text) {
                Ok(n) => n,
                Err(r) => return Ok(Err(self.fail("GetEvents", r, Some(&text)))),
            };
            let more = n.more_events == Some(true);
            let Some(run) = self.subs.get_mut(&sub) else {
                break;
            };
            if let (Feed::Pull { next_watermark }, Some(next)) = (&mut run.feed, n.last_watermark())
            {
                *next_watermark = next.to_string();
            }
            run.events += real_events(&n);
            run.observed.deliveries.push(Delivery {
                notification: n,
                request_watermark: Some(watermark),
                poll: index,
                drain,
            });
            if !more {
                return Ok(Ok(()));
            }
        }
        // The oracle reports the run that ended on MoreEvents=true.
        self.notes.push(format!(
            "operation {index} (Poll({sub})): MoreEvents was still true after {} GetEvents calls",
            self.d.config.max_drain_calls
        ));
        Ok(Ok(()))
    }

    /// After the last operation: streaming and push subscriptions whose last
    /// poll came after every mailbox operation get a short while for extra
    /// (repeated) notifications, which count toward that poll.
    async fn settle(&mut self, ops: &[Op], prediction: &Prediction) {
        let last_change = ops.iter().rposition(Op::is_mailbox_op);
        let mut waiting = Vec::new();
        for (sub, p) in &prediction.subscriptions {
            let Some(&last_poll) = p.polls.last() else {
                continue;
            };
            let settles = last_change.is_none_or(|c| c < last_poll);
            let streaming_or_push = self
                .subs
                .get(sub)
                .is_some_and(|s| matches!(s.feed, Feed::Streaming(_) | Feed::Push(_)));
            if settles && streaming_or_push {
                waiting.push((*sub, last_poll));
            }
        }
        if waiting.is_empty() {
            return;
        }
        tokio::time::sleep(self.d.config.settle).await;
        for (sub, poll) in waiting {
            let arrived = self.take(sub).await;
            self.record(sub, poll, arrived);
        }
    }

    /// Unsubscribes what is still live and deletes the case folder. Nothing
    /// here judges the target; problems become notes.
    async fn cleanup(&mut self) {
        self.at = None;
        let live: Vec<(SubHandle, String, bool)> = self
            .subs
            .iter()
            .filter(|(_, s)| s.live)
            .map(|(h, s)| (*h, s.id.clone(), matches!(s.feed, Feed::Push(_))))
            .collect();
        for (sub, id, push) in live {
            if let Some(s) = self.subs.get_mut(&sub) {
                s.live = false;
            }
            if push {
                if let Some(listener) = self.d.target.push_listener() {
                    listener.set_answer(&id, crate::client::push::PushAnswer::Unsubscribe);
                }
                continue;
            }
            self.at_label = format!("cleanup: unsubscribe {sub}");
            let body = self.render(|w| {
                UnsubscribeRequest {
                    subscription_id: id,
                }
                .render(w)
            });
            self.quietly("Unsubscribe", body).await;
        }
        // Closing the connections before the folder goes keeps its events off them.
        for s in self.subs.values_mut() {
            if let Feed::Streaming(_) = s.feed {
                s.feed = Feed::Closed;
            }
        }
        if let Some(id) = self.case_folder.take() {
            self.at_label = "cleanup: delete the case folder".into();
            let body = self.render(|w| {
                DeleteFolder {
                    folder: FolderRef::Id(Id::new(id)),
                    delete_type: "HardDelete".into(),
                }
                .render(w)
            });
            self.quietly("DeleteFolder", body).await;
        }
    }

    async fn quietly(&mut self, request_name: &'static str, body: String) {
        let problem = match self.post(request_name, body).await {
            Err(e) => Some(e.to_string()),
            Ok(Err(f)) => Some(f.detail),
            Ok(Ok((status, text))) => wire::plain_reply(status, &text).err().map(|r| r.detail),
        };
        if let Some(p) = problem {
            self.notes.push(format!("{}: {p}", self.at_label));
        }
    }

    fn observed(&self) -> Observed {
        Observed {
            bindings: self.bindings.clone(),
            subscriptions: self
                .subs
                .iter()
                .map(|(h, s)| (*h, s.observed.clone()))
                .collect(),
        }
    }
}

fn real_events(n: &Notification) -> usize {
    n.events
        .iter()
        .filter(|e| e.kind != EventKind::Status)
        .count()
}

fn transport_detail(e: &TransportError) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_without_a_known_profile_is_judged_with_every_versions_latitude() {
        let build = |profile: Option<&str>| {
            TargetConfig::builder("http://127.0.0.1:1/EWS/Exchange.asmx")
                .profile(profile.map(str::to_string))
                .build()
                .map(|c| DriverConfig::for_target(&c).profile.name)
                .ok()
        };
        assert_eq!(build(None), Some("exchange"));
        assert_eq!(build(Some("a lab server")), Some("exchange"));
        assert_eq!(build(Some("exchange2010")), Some("exchange2010"));
        assert_eq!(build(Some("reference")), Some("reference"));
    }
}
