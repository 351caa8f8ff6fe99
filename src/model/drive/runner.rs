//! One run of a sequence: set up the case folder, apply each operation
//! over the wire, then judge what arrived against the prediction.

use super::driver::Driver;
use super::failure::{DriveError, Failure, SequenceRun, StepFailure};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::collect::{PushFeed, StreamFeed};
use super::wire;
use super::wire::{EVIDENCE_CHARS, Refusal};
use crate::client::error::TransportError;
use crate::client::excerpt::excerpt;
use crate::model::mailbox::{Model, Prediction, predict_with};
use crate::model::ops::{
    FolderHandle, Handle, Mode, Op, OtherAction, Scope, SubHandle, WatermarkHandle,
};
use crate::model::oracle::{Bindings, ObservedSubscription, judge};
use crate::suite::target::TargetConfig;
use ews_proto::ews::envelope::{RequestHeader, request};
use ews_proto::ews::items::{
    CreateFolder, CreateItem, DeleteFolder, DeleteItem, Disposition, GetFolder, MoveOrCopyItem,
    UpdateItem,
};
use ews_proto::ews::{EventKind, FolderRef, Id, Notification};

impl Driver {
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
        let mut s = SequenceRunner::new(self);
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
pub(super) enum Stop {
    /// A step failure before the prediction exists carries an empty one.
    Failed(Box<StepFailure>, Prediction),
    Fatal(DriveError),
    /// The deadline passed before the last operation.
    Cut(Prediction),
}

/// How a subscription delivers in this run.
pub(super) enum Feed {
    Pull {
        next_watermark: String,
    },
    Streaming(StreamFeed),
    Push(PushFeed),
    /// A streaming subscription after Unsubscribe: its connection is closed.
    Closed,
}

pub(super) struct SubRun {
    pub(super) id: String,
    pub(super) feed: Feed,
    pub(super) observed: ObservedSubscription,
    /// Non-status events received so far.
    pub(super) events: usize,
    /// A wait for this subscription ran out: later waits are brief.
    pub(super) missed: bool,
    pub(super) live: bool,
}

/// One run's state.
pub(super) struct SequenceRunner<'d> {
    pub(super) d: &'d Driver,
    pub(super) unique: String,
    pub(super) header: RequestHeader,
    pub(super) bindings: Bindings,
    pub(super) case_folder: Option<String>,
    pub(super) subs: BTreeMap<SubHandle, SubRun>,
    pub(super) filters: BTreeMap<SubHandle, (Scope, BTreeSet<EventKind>)>,
    pub(super) remembered: BTreeMap<WatermarkHandle, String>,
    /// The current operation, for failures.
    pub(super) at: Option<usize>,
    pub(super) at_label: String,
    pub(super) requests: usize,
    pub(super) notes: Vec<String>,
    /// Requests go as the second user (their own mailbox, no impersonation).
    pub(super) as_other: bool,
}

/// A lookup's outcome inside a run (boxed: failures are rare and large).
pub(super) type StepResult<T> = Result<T, Box<StepFailure>>;

/// Why an operation of a run did not go on: the target refused or garbled
/// it (the run fails with evidence), or the target is gone (the run ends).
#[derive(Debug)]
pub(super) enum Halt {
    Step(Box<StepFailure>),
    Fatal(DriveError),
}

impl From<Box<StepFailure>> for Halt {
    fn from(f: Box<StepFailure>) -> Self {
        Halt::Step(f)
    }
}

impl From<DriveError> for Halt {
    fn from(e: DriveError) -> Self {
        Halt::Fatal(e)
    }
}

impl<'d> SequenceRunner<'d> {
    pub(super) fn new(d: &'d Driver) -> Self {
        let cfg = d.target.config();
        SequenceRunner {
            d,
            unique: format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
            header: RequestHeader {
                version: Some(cfg.version.clone()),
                impersonate: cfg.impersonate.clone(),
            },
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

    pub(super) fn cfg(&self) -> &TargetConfig {
        self.d.target.config()
    }

    pub(super) fn fail(
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

    pub(super) fn missing(&self, what: String) -> Box<StepFailure> {
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
    pub(super) async fn post(
        &mut self,
        request_name: &'static str,
        body: String,
    ) -> Result<(u16, String), Halt> {
        self.requests += 1;
        let session = match (&self.d.ews_other, self.as_other) {
            (Some(other), true) => other,
            _ => &self.d.ews,
        };
        match session.post(&body).await {
            Ok(r) => Ok((r.status, r.body)),
            Err(e) if e.is_fatal() => Err(Halt::Fatal(DriveError::Unreachable(format!(
                "{request_name} ({}): {e}",
                self.at_label
            )))),
            Err(e) => Err(Halt::Step(self.fail(
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
    pub(super) async fn item_call(
        &mut self,
        request_name: &'static str,
        body: String,
    ) -> Result<wire::ItemReply, Halt> {
        let (status, text) = self.post(request_name, body).await?;
        wire::item_reply(status, &text)
            .map_err(|r| Halt::Step(self.fail(request_name, r, Some(&text))))
    }

    pub(super) fn render(&self, body: impl FnOnce(&mut ews_proto::xml::XmlWriter)) -> String {
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
    pub(super) fn has_other(&self) -> bool {
        self.cfg().user2.is_some()
    }

    /// The second user's activity in their own mailbox. Nothing of it is
    /// predicted for our subscriptions.
    pub(super) async fn other_mailbox(
        &mut self,
        index: usize,
        action: OtherAction,
    ) -> Result<(), Halt> {
        if !self.has_other() {
            return Err(Halt::Step(self.missing(
                "the target has no second user for this operation".into(),
            )));
        }
        self.as_other = true;
        let result = self.other_mailbox_as_other(index, action).await;
        self.as_other = false;
        result
    }

    pub(super) async fn other_mailbox_as_other(
        &mut self,
        index: usize,
        action: OtherAction,
    ) -> Result<(), Halt> {
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
        self.item_call("CreateItem", body).await?;
        if action == OtherAction::Deliver {
            // Their delivery has happened before our next operation, so a
            // leak would show up where the model expects nothing.
            self.await_delivery(index, before).await?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ the run

    pub(super) async fn execute(
        &mut self,
        ops: &[Op],
        deadline: Option<std::time::Instant>,
    ) -> Result<Prediction, Stop> {
        let empty = Prediction::default();
        let model = match self.setup().await {
            Ok(m) => m,
            Err(Halt::Step(f)) => return Err(Stop::Failed(f, empty)),
            Err(Halt::Fatal(e)) => return Err(Stop::Fatal(e)),
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
                Ok(()) => {}
                Err(Halt::Step(f)) => return Err(Stop::Failed(f, prediction)),
                Err(Halt::Fatal(e)) => return Err(Stop::Fatal(e)),
            }
        }
        self.at = None;
        self.at_label = "settle".into();
        self.settle(ops, &prediction).await;
        Ok(prediction)
    }

    /// Creates the case folder and looks up the well-known folders; returns
    /// the model with the unread counts it starts from.
    pub(super) async fn setup(&mut self) -> Result<Model, Halt> {
        self.at_label = "setup: create the case folder".into();
        let body = self.render(|w| {
            CreateFolder {
                parent: FolderRef::distinguished("msgfolderroot"),
                name: format!("ews-conformance explore {}", self.unique),
            }
            .render(w)
        });
        let reply = self.item_call("CreateFolder", body).await?;
        let Some(id) = reply.folder_id else {
            let refusal = Refusal {
                code: None,
                detail: "the answer names no t:FolderId".into(),
            };
            return Err(Halt::Step(self.fail("CreateFolder", refusal, None)));
        };
        self.case_folder = Some(id.clone());
        if let Err(c) = self.bindings.bind_folder(FolderHandle::Case, id) {
            return Err(Halt::Step(self.missing(c.to_string())));
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
            match self.item_call("GetFolder", body).await {
                Ok(r) => {
                    if let Some(id) = r.folder_id
                        && let Err(c) = self.bindings.bind_folder(folder, id)
                    {
                        return Err(Halt::Step(self.missing(c.to_string())));
                    }
                    if let Some(n) = r.unread_count {
                        model = model.with_unread_baseline(folder, n);
                    }
                }
                // Not every server lets a client see every folder: the
                // oracle then learns the id from the first event naming it.
                Err(Halt::Step(f)) => self.notes.push(format!("{}: {}", f.op, f.detail)),
                Err(fatal) => return Err(fatal),
            }
        }
        Ok(model)
    }

    /// The Inbox's TotalCount (or, without one, its UnreadCount); `None`
    /// when GetFolder does not say.
    pub(super) async fn inbox_count(&mut self) -> Result<Option<i64>, Halt> {
        let body = self.render(|w| {
            GetFolder {
                folder: FolderRef::distinguished("inbox"),
            }
            .render(w)
        });
        match self.item_call("GetFolder", body).await {
            Ok(r) => Ok(r.total_count.or(r.unread_count)),
            Err(Halt::Step(_)) => Ok(None),
            Err(fatal) => Err(fatal),
        }
    }

    /// Mail delivery is asynchronous on Exchange (the transport pipeline
    /// takes seconds after CreateItem SendOnly returns): waits until the
    /// Inbox holds one more message, so the delivery's events come before
    /// the next operation's, as the model orders them. A delivery that has
    /// not happened by the deadline is left to the oracle (a lost event).
    pub(super) async fn await_delivery(
        &mut self,
        index: usize,
        before: Option<i64>,
    ) -> Result<(), Halt> {
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

    pub(super) fn folder_ref(&self, f: FolderHandle) -> StepResult<FolderRef> {
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

    pub(super) fn item_id(&self, item: crate::model::ops::ItemHandle) -> StepResult<String> {
        self.bindings
            .id_of(Handle::Item(item))
            .map(str::to_string)
            .ok_or_else(|| {
                self.missing(format!(
                    "item {item} has no id: the response that made it named none"
                ))
            })
    }

    pub(super) fn bind(
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

    pub(super) async fn step(
        &mut self,
        index: usize,
        op: &Op,
        prediction: &Prediction,
    ) -> Result<(), Halt> {
        match op {
            Op::CreateItem { item, folder, read } => {
                let folder = self.folder_ref(*folder)?;
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
                let r = self.item_call("CreateItem", body).await?;
                self.bind(Handle::Item(*item), r.item_id, "CreateItem")?;
            }
            Op::CreateItems {
                first,
                count,
                folder,
                read,
            } => {
                let folder = self.folder_ref(*folder)?;
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
                let r = self.item_call("CreateItem", body).await?;
                // The oracle knows each item by the id the answer gives it;
                // ids it does not give are learnt from events.
                for (item, id) in op.bulk_items().zip(r.item_ids) {
                    self.bind(Handle::Item(item), Some(id), "CreateItem")?;
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
                self.item_call("CreateItem", body).await?;
                self.await_delivery(index, before).await?;
            }
            Op::MarkRead { item, read } => {
                let id = self.item_id(*item)?;
                let body = self.render(|w| {
                    UpdateItem {
                        item: id,
                        is_read: Some(*read),
                        subject: None,
                    }
                    .render(w)
                });
                self.item_call("UpdateItem", body).await?;
            }
            Op::SetSubject { item } => {
                let id = self.item_id(*item)?;
                let body = self.render(|w| {
                    UpdateItem {
                        item: id,
                        is_read: None,
                        subject: Some(format!("{item} renamed {}", self.unique)),
                    }
                    .render(w)
                });
                self.item_call("UpdateItem", body).await?;
            }
            Op::MoveItem { item, to, new } | Op::CopyItem { item, to, new } => {
                let copy = matches!(op, Op::CopyItem { .. });
                let name = if copy { "CopyItem" } else { "MoveItem" };
                let id = self.item_id(*item)?;
                let to = self.folder_ref(*to)?;
                let body = self.render(|w| MoveOrCopyItem { copy, item: id, to }.render(w));
                let r = self.item_call(name, body).await?;
                self.bind(Handle::Item(*new), r.item_id, name)?;
            }
            Op::DeleteItem { item, how } => {
                let id = self.item_id(*item)?;
                let body = self.render(|w| {
                    DeleteItem {
                        item: id,
                        delete_type: how.as_str().to_string(),
                    }
                    .render(w)
                });
                self.item_call("DeleteItem", body).await?;
            }
            Op::CreateFolder { folder, parent } => {
                let parent = self.folder_ref(*parent)?;
                let body = self.render(|w| {
                    CreateFolder {
                        parent,
                        name: format!("{folder} {}", self.unique),
                    }
                    .render(w)
                });
                let r = self.item_call("CreateFolder", body).await?;
                self.bind(Handle::Folder(*folder), r.folder_id, "CreateFolder")?;
            }
            Op::DeleteFolder { folder, how } => {
                let f = self.folder_ref(*folder)?;
                let body = self.render(|w| {
                    DeleteFolder {
                        folder: f,
                        delete_type: how.as_str().to_string(),
                    }
                    .render(w)
                });
                self.item_call("DeleteFolder", body).await?;
            }
            Op::Subscribe {
                sub,
                mode,
                scope,
                event_types,
            } => {
                self.subscribe(*sub, *mode, scope, event_types, None)
                    .await?;
            }
            Op::Resubscribe { sub, from } => {
                let Some(watermark) = self.remembered.get(from).cloned() else {
                    return Err(Halt::Step(
                        self.missing(format!("watermark {from} was not remembered")),
                    ));
                };
                let origin = prediction
                    .subscriptions
                    .get(sub)
                    .and_then(|p| p.resumed_from)
                    .map(|(o, _)| o);
                let Some((scope, types)) = origin.and_then(|o| self.filters.get(&o)).cloned()
                else {
                    return Err(Halt::Step(self.missing(format!(
                        "the subscription {from} was remembered on is unknown"
                    ))));
                };
                self.subscribe(*sub, Mode::Pull, &scope, &types, Some(watermark))
                    .await?;
            }
            Op::Remember { sub, watermark } => {
                let next = match self.subs.get(sub).map(|s| &s.feed) {
                    Some(Feed::Pull { next_watermark }) => next_watermark.clone(),
                    _ => {
                        return Err(Halt::Step(
                            self.missing(format!("{sub} is not a pull subscription of this run")),
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
                self.poll(index, *sub, want, prediction).await?;
            }
            Op::Unsubscribe { sub } => {
                self.unsubscribe(*sub).await?;
            }
            Op::OtherMailbox { action } => {
                self.other_mailbox(index, *action).await?;
            }
        }
        Ok(())
    }
}

pub(super) fn real_events(n: &Notification) -> usize {
    n.events
        .iter()
        .filter(|e| e.kind != EventKind::Status)
        .count()
}

pub(super) fn transport_detail(e: &TransportError) -> String {
    e.to_string()
}
