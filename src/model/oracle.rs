//! The oracle: compares what a target delivered to each subscription with
//! the model's prediction, and names every divergence with the requirement
//! it breaks and the evidence (predicted vs received, readable).
//!
//! Ids are matched through [`Bindings`]. A handle the driver could not bind
//! (a delivered item, an item moved by a delete, a well-known folder it did
//! not look up) is bound on its first consistent appearance, after which it
//! must stay the same; one id never stands for two handles.

use std::collections::BTreeMap;
use std::fmt;

use super::latitude::Latitude;
use super::mailbox::{
    ExpectedEvent, LoggedEvent, PredictedEvent, PredictedSubscription, Prediction,
};
use super::ops::{FolderHandle, Handle, ItemHandle, Mode, SubHandle};
use ews_proto::ews::{Event, EventKind, Notification, ObjectId};

/// At most this many delivery-level divergences per subscription: a broken
/// target must give a readable report, not thousands of lines.
const MAX_DELIVERY_DIVERGENCES: usize = 20;

// ------------------------------------------------------------- bindings

/// Handle ↔ real id, both ways.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bindings {
    by_handle: BTreeMap<Handle, String>,
    by_id: BTreeMap<String, Handle>,
}

/// A binding that contradicts an earlier one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot bind {handle} to {id:?}: {reason}")]
pub struct BindingConflict {
    pub handle: Handle,
    pub id: String,
    pub reason: String,
}

impl Bindings {
    pub fn new() -> Self {
        Bindings::default()
    }

    /// Records that `handle` is `id` on the target. Binding the same pair
    /// twice is fine; a second id for a handle, or a second handle for an
    /// id, is a conflict (the target reused an id).
    pub fn bind(&mut self, handle: Handle, id: impl Into<String>) -> Result<(), BindingConflict> {
        let id = id.into();
        if let Some(existing) = self.by_handle.get(&handle) {
            if *existing == id {
                return Ok(());
            }
            return Err(BindingConflict {
                reason: format!("it is already bound to {existing:?}"),
                handle,
                id,
            });
        }
        if let Some(other) = self.by_id.get(&id) {
            return Err(BindingConflict {
                reason: format!("that id is already bound to {other}"),
                handle,
                id,
            });
        }
        self.by_id.insert(id.clone(), handle);
        self.by_handle.insert(handle, id);
        Ok(())
    }

    pub fn bind_item(
        &mut self,
        item: ItemHandle,
        id: impl Into<String>,
    ) -> Result<(), BindingConflict> {
        self.bind(Handle::Item(item), id)
    }

    pub fn bind_folder(
        &mut self,
        folder: FolderHandle,
        id: impl Into<String>,
    ) -> Result<(), BindingConflict> {
        self.bind(Handle::Folder(folder), id)
    }

    pub fn id_of(&self, handle: Handle) -> Option<&str> {
        self.by_handle.get(&handle).map(String::as_str)
    }

    pub fn handle_of(&self, id: &str) -> Option<Handle> {
        self.by_id.get(id).copied()
    }

    pub fn len(&self) -> usize {
        self.by_handle.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_handle.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (Handle, &str)> {
        self.by_handle.iter().map(|(h, id)| (*h, id.as_str()))
    }
}

// ------------------------------------------------------------- input

/// One notification as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub notification: Notification,
    /// Pull: the watermark the GetEvents request sent.
    pub request_watermark: Option<String>,
    /// Index (in the sequence) of the Poll that collected it: for pull, the
    /// Poll whose GetEvents fetched it (one Poll's deliveries form one
    /// drained run); for streaming and push, the Poll during or before
    /// which it arrived.
    pub poll: usize,
    /// Pull: which drained run of its Poll the notification belongs to (0
    /// for the first). A driver that drains again because events are late
    /// (an asynchronous target) starts a new run, so MoreEvents is judged
    /// per run. Always 0 for streaming and push.
    pub drain: usize,
}

/// What one subscription received, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedSubscription {
    /// The SubscriptionId the target returned from Subscribe.
    pub subscription_id: String,
    pub deliveries: Vec<Delivery>,
}

impl ObservedSubscription {
    pub fn new(subscription_id: impl Into<String>) -> Self {
        ObservedSubscription {
            subscription_id: subscription_id.into(),
            deliveries: Vec::new(),
        }
    }
}

/// Everything a driver collected for one sequence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    pub bindings: Bindings,
    pub subscriptions: BTreeMap<SubHandle, ObservedSubscription>,
}

// ------------------------------------------------------------- output

/// The kind of departure from the prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DivergenceKind {
    /// The driver recorded nothing for a subscription that should have seen events.
    NotObserved,
    /// A notification names another subscription (R51).
    ForeignSubscription,
    /// More than 50 events in one notification.
    BatchTooLarge,
    /// MoreEvents not true exactly on all but the last notification of a run.
    MoreEvents,
    /// PreviousWatermark breaks the chain (R31 pull, R69 push).
    PreviousWatermark,
    /// An event without a (non-empty) Watermark.
    EmptyWatermark,
    /// A notification with no event at all: an idle poll must still carry
    /// a StatusEvent (R29); the schema wants at least one event.
    EmptyNotification,
    /// An event's TimeStamp is missing or not an xs:dateTime (R78).
    BadTimestamp,
    /// A resumed subscription kept the old SubscriptionId (R21).
    SameSubscriptionId,
    /// A predicted event never arrived.
    Lost,
    /// An event arrived twice.
    Repeated,
    /// Two predicted events arrived in the other order.
    Reordered,
    /// A pull event arrived in a later poll than the one it was queued for.
    Late,
    /// An event the subscription's folders or event types exclude (R42).
    Filtered,
    /// The right place in the sequence, the wrong event.
    Mismatch,
    /// An event from before the subscription's starting watermark (for a
    /// resumed subscription: the resume ignored the watermark, R21).
    BeforeStart,
    /// An event no operation explains.
    Unexpected,
}

impl DivergenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DivergenceKind::NotObserved => "not observed",
            DivergenceKind::ForeignSubscription => "foreign subscription",
            DivergenceKind::BatchTooLarge => "batch too large",
            DivergenceKind::MoreEvents => "wrong MoreEvents",
            DivergenceKind::PreviousWatermark => "broken watermark chain",
            DivergenceKind::EmptyWatermark => "missing watermark",
            DivergenceKind::EmptyNotification => "notification without events",
            DivergenceKind::BadTimestamp => "invalid TimeStamp",
            DivergenceKind::SameSubscriptionId => "same subscription id",
            DivergenceKind::Lost => "lost event",
            DivergenceKind::Repeated => "repeated event",
            DivergenceKind::Reordered => "reordered events",
            DivergenceKind::Late => "late event",
            DivergenceKind::Filtered => "filtered event delivered",
            DivergenceKind::Mismatch => "wrong event",
            DivergenceKind::BeforeStart => "event from before the start",
            DivergenceKind::Unexpected => "unexpected event",
        }
    }
}

/// One departure from the prediction, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    pub subscription: SubHandle,
    pub kind: DivergenceKind,
    /// The requirement id broken (digest section 3).
    pub rule: &'static str,
    /// Index of the event among the subscription's received non-status
    /// events, in arrival order.
    pub event_index: Option<usize>,
    /// Index of the notification among the subscription's deliveries.
    pub delivery_index: Option<usize>,
    pub predicted: Option<String>,
    pub received: Option<String>,
    pub detail: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({}): {}",
            self.subscription,
            self.kind.as_str(),
            self.rule,
            self.detail
        )?;
        if let Some(i) = self.event_index {
            write!(f, " [event #{i}]")?;
        }
        if let Some(d) = self.delivery_index {
            write!(f, " [notification #{d}]")?;
        }
        if let Some(p) = &self.predicted {
            write!(f, "\n  predicted: {p}")?;
        }
        if let Some(r) = &self.received {
            write!(f, "\n  received:  {r}")?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------- judge

/// Compares `observed` with `prediction` under `profile`. An empty result
/// means the target delivered what the model predicts.
pub fn judge(prediction: &Prediction, observed: &Observed, profile: &Latitude) -> Vec<Divergence> {
    let mut bindings = observed.bindings.clone();
    let mut out = Vec::new();
    for (sub, pred) in &prediction.subscriptions {
        let Some(obs) = observed.subscriptions.get(sub) else {
            if let Some(first) = pred.events.first() {
                out.push(Divergence {
                    subscription: *sub,
                    kind: DivergenceKind::NotObserved,
                    rule: subscribe_rule(pred.mode),
                    event_index: Some(0),
                    delivery_index: None,
                    predicted: Some(first.event.to_string()),
                    received: None,
                    detail: format!(
                        "nothing was recorded, {} events were predicted",
                        pred.events.len()
                    ),
                });
            }
            continue;
        };
        let judge = SubJudge {
            sub: *sub,
            pred,
            obs,
            profile,
            log: &prediction.log,
        };
        out.extend(judge.deliveries());
        if let Some((origin, _)) = pred.resumed_from
            && let Some(old) = observed.subscriptions.get(&origin)
            && old.subscription_id == obs.subscription_id
        {
            out.push(Divergence {
                subscription: *sub,
                kind: DivergenceKind::SameSubscriptionId,
                rule: "R21",
                event_index: None,
                delivery_index: None,
                predicted: None,
                received: Some(obs.subscription_id.clone()),
                detail: format!("re-subscribing from {origin}'s watermark returned its id again"),
            });
        }
        out.extend(judge.events(&mut bindings));
    }
    for (sub, obs) in &observed.subscriptions {
        if !prediction.subscriptions.contains_key(sub) && !obs.deliveries.is_empty() {
            out.push(Divergence {
                subscription: *sub,
                kind: DivergenceKind::Unexpected,
                rule: "R51",
                event_index: None,
                delivery_index: Some(0),
                predicted: None,
                received: Some(format!("{} notifications", obs.deliveries.len())),
                detail: "deliveries for a subscription the sequence never made".to_string(),
            });
        }
    }
    out
}

/// Whether a target of `profile` may leave `pe` out: a legal outcome has
/// no such event for the subscription, or the profile tolerates its absence.
pub fn may_be_absent(pe: &PredictedEvent, profile: &Latitude) -> bool {
    let e = &pe.event;
    pe.optional
        || (profile.missing_folder_modified
            && e.kind == EventKind::Modified
            && e.object.is_folder())
}

fn subscribe_rule(mode: Mode) -> &'static str {
    match mode {
        Mode::Pull => "R7",
        Mode::Streaming => "R15",
        Mode::Push => "R11",
    }
}

/// The requirement for lost, repeated or late events and for batching.
fn delivery_rule(mode: Mode) -> &'static str {
    match mode {
        Mode::Pull => "R32",
        Mode::Streaming => "R59",
        Mode::Push => "R70",
    }
}

struct SubJudge<'a> {
    sub: SubHandle,
    pred: &'a PredictedSubscription,
    obs: &'a ObservedSubscription,
    profile: &'a Latitude,
    log: &'a [LoggedEvent],
}

/// Which predicted events are done with (arrived, or left out as allowed),
/// and which of them arrived.
#[derive(Clone, Copy)]
struct Progress<'a> {
    done: &'a [bool],
    matched: &'a [bool],
}

/// A received non-status event and where it came from.
struct Received<'a> {
    delivery: usize,
    poll: usize,
    event: &'a Event,
}

impl<'a> SubJudge<'a> {
    fn divergence(&self, kind: DivergenceKind, rule: &'static str, detail: String) -> Divergence {
        Divergence {
            subscription: self.sub,
            kind,
            rule,
            event_index: None,
            delivery_index: None,
            predicted: None,
            received: None,
            detail,
        }
    }

    fn own(&self, d: &Delivery) -> bool {
        d.notification.subscription_id == self.obs.subscription_id
    }

    /// Per-notification checks: subscription id, batch size, watermarks, MoreEvents.
    fn deliveries(&self) -> Vec<Divergence> {
        let mode = self.pred.mode;
        let mut out = Vec::new();
        let cap = match mode {
            Mode::Streaming if !self.profile.streaming_batch_limit => None,
            _ => Some(Latitude::MAX_BATCH),
        };
        let wm_rule = if mode == Mode::Push { "R69" } else { "R31" };
        // Push: the watermarks the next PreviousWatermark may name: the
        // last one of the previous notification, and when that carried only
        // a StatusEvent, also those before it (an idle subscription's
        // watermark may be refreshed or repeated, digest G3).
        let mut chain: Vec<&str> = Vec::new();
        for (k, d) in self.obs.deliveries.iter().enumerate() {
            let n = &d.notification;
            let at = |mut div: Divergence| {
                div.delivery_index = Some(k);
                div
            };
            if !self.own(d) {
                let mut div = at(self.divergence(
                    DivergenceKind::ForeignSubscription,
                    "R51",
                    format!(
                        "a notification for subscription {:?} arrived here",
                        n.subscription_id
                    ),
                ));
                div.predicted = Some(self.obs.subscription_id.clone());
                div.received = Some(n.subscription_id.clone());
                out.push(div);
                continue;
            }
            if let Some(cap) = cap
                && n.events.len() > cap
            {
                out.push(at(self.divergence(
                    DivergenceKind::BatchTooLarge,
                    delivery_rule(mode),
                    format!(
                        "{} events in one notification (at most {cap})",
                        n.events.len()
                    ),
                )));
            }
            if n.events.is_empty() {
                let rule = if mode == Mode::Pull {
                    "R29"
                } else {
                    delivery_rule(mode)
                };
                out.push(at(self.divergence(
                    DivergenceKind::EmptyNotification,
                    rule,
                    "a notification with no event (an idle one carries a StatusEvent)".to_string(),
                )));
            }
            if let Some((pos, e)) = n.events.iter().enumerate().find(|(_, e)| {
                e.kind != EventKind::Status
                    && !e
                        .timestamp
                        .as_deref()
                        .is_some_and(ews_proto::ews::time::is_xs_datetime)
            }) {
                let mut div = at(self.divergence(
                    DivergenceKind::BadTimestamp,
                    "R78",
                    format!(
                        "event {pos} of the notification ({}) has no valid xs:dateTime TimeStamp",
                        e.kind
                    ),
                ));
                div.received = Some(show_opt(e.timestamp.as_deref()));
                out.push(div);
            }
            if mode != Mode::Streaming
                && let Some(pos) = n
                    .events
                    .iter()
                    .position(|e| e.watermark.as_deref().is_none_or(|w| w.trim().is_empty()))
            {
                out.push(at(self.divergence(
                    DivergenceKind::EmptyWatermark,
                    wm_rule,
                    format!(
                        "event {pos} of the notification ({}) has no watermark",
                        n.events[pos].kind
                    ),
                )));
            }
            match mode {
                Mode::Pull => {
                    if let Some(sent) = &d.request_watermark
                        && n.previous_watermark.as_deref() != Some(sent.as_str())
                    {
                        let mut div = at(self.divergence(
                            DivergenceKind::PreviousWatermark,
                            "R31",
                            "PreviousWatermark is not the watermark GetEvents sent".to_string(),
                        ));
                        div.predicted = Some(sent.clone());
                        div.received = Some(show_opt(n.previous_watermark.as_deref()));
                        out.push(div);
                    }
                }
                Mode::Push => {
                    if let Some(last) = chain.last().copied()
                        && !n
                            .previous_watermark
                            .as_deref()
                            .is_some_and(|w| chain.contains(&w))
                    {
                        let mut div = at(self.divergence(
                            DivergenceKind::PreviousWatermark,
                            "R69",
                            "PreviousWatermark is not the last watermark of the previous notification"
                                .to_string(),
                        ));
                        div.predicted = Some(last.to_string());
                        div.received = Some(show_opt(n.previous_watermark.as_deref()));
                        out.push(div);
                    }
                    let status_only = n.events.iter().all(|e| e.kind == EventKind::Status);
                    if !status_only {
                        chain.clear();
                    }
                    if let Some(w) = n.last_watermark()
                        && !chain.contains(&w)
                    {
                        chain.push(w);
                    }
                }
                Mode::Streaming => {}
            }
        }
        out.extend(self.more_events());
        out.truncate(MAX_DELIVERY_DIVERGENCES);
        out
    }

    fn more_events(&self) -> Vec<Divergence> {
        let own: Vec<(usize, &Delivery)> = self
            .obs
            .deliveries
            .iter()
            .enumerate()
            .filter(|(_, d)| self.own(d))
            .collect();
        let mut out = Vec::new();
        let real_events = |d: &Delivery| {
            d.notification
                .events
                .iter()
                .filter(|e| e.kind != EventKind::Status)
                .count()
        };
        let mut flag = |k: usize, rule: &'static str, detail: String| {
            let mut div = self.divergence(DivergenceKind::MoreEvents, rule, detail);
            div.delivery_index = Some(k);
            out.push(div);
        };
        match self.pred.mode {
            Mode::Pull => {
                if self.profile.exact_more_events {
                    // A run that stopped on a full batch with MoreEvents
                    // false while predicted events were still queued.
                    for run in own.chunk_by(|a, b| a.1.poll == b.1.poll) {
                        let Some((k, last)) = run.last() else {
                            continue;
                        };
                        let got: usize = run.iter().map(|(_, d)| real_events(d)).sum();
                        let due = self.pred.due_at(last.poll).count();
                        if last.notification.more_events != Some(true)
                            && real_events(last) == Latitude::MAX_BATCH
                            && got < due
                        {
                            flag(
                                *k,
                                "R32",
                                format!(
                                    "MoreEvents was not true on a full batch, yet {} predicted events were still queued",
                                    due - got
                                ),
                            );
                        }
                    }
                }
                for run in own.chunk_by(|a, b| a.1.poll == b.1.poll && a.1.drain == b.1.drain) {
                    for (j, (k, d)) in run.iter().enumerate() {
                        let more = d.notification.more_events == Some(true);
                        let next = run.get(j + 1);
                        match next {
                            None if more => flag(
                                *k,
                                "R32",
                                "the drained run ended on MoreEvents=true".to_string(),
                            ),
                            Some(_) if !more => flag(
                                *k,
                                "R32",
                                "MoreEvents was not true, yet the run went on".to_string(),
                            ),
                            _ => {}
                        }
                        if more && self.profile.exact_more_events {
                            let n = real_events(d);
                            if n < Latitude::MAX_BATCH {
                                flag(
                                    *k,
                                    "R32",
                                    format!("MoreEvents=true on a batch of {n} events (not full)"),
                                );
                            } else if next.is_some_and(|(_, nd)| real_events(nd) == 0) {
                                flag(
                                    *k,
                                    "R33",
                                    "MoreEvents=true but the next GetEvents found no events"
                                        .to_string(),
                                );
                            }
                        }
                    }
                }
            }
            Mode::Push => {
                for (j, (k, d)) in own.iter().enumerate() {
                    if d.notification.more_events != Some(true) {
                        continue;
                    }
                    if j + 1 == own.len() {
                        flag(
                            *k,
                            "R70",
                            "MoreEvents=true on the last notification; none followed".to_string(),
                        );
                    } else if self.profile.exact_more_events && real_events(d) < Latitude::MAX_BATCH
                    {
                        flag(
                            *k,
                            "R70",
                            format!(
                                "MoreEvents=true on a batch of {} events (not full)",
                                real_events(d)
                            ),
                        );
                    }
                }
            }
            Mode::Streaming => {}
        }
        out
    }

    /// The event sequence: predicted events arrive in order, none lost,
    /// repeated, filtered or unexplained. Reports the first divergence.
    fn events(&self, bindings: &mut Bindings) -> Option<Divergence> {
        let received: Vec<Received<'_>> = self
            .obs
            .deliveries
            .iter()
            .enumerate()
            .filter(|(_, d)| self.own(d))
            .flat_map(|(k, d)| {
                d.notification
                    .events
                    .iter()
                    .filter(|e| e.kind != EventKind::Status)
                    .map(move |event| Received {
                        delivery: k,
                        poll: d.poll,
                        event,
                    })
            })
            .collect();
        let predicted = &self.pred.events;
        let rule = if self.pred.resumed_from.is_some() {
            "R21"
        } else {
            delivery_rule(self.pred.mode)
        };
        let n = predicted.len();
        // Predicted events matched, or left out as the profile allows.
        let mut done = vec![false; n];
        // Of those, the ones that arrived.
        let mut matched = vec![false; n];
        // The first predicted event not yet done.
        let mut p = 0;
        // Tolerated extras since the last match: one of them may be the
        // predicted event with a wrong UnreadCount.
        let mut skipped: Vec<usize> = Vec::new();
        'received: for (i, r) in received.iter().enumerate() {
            loop {
                while p < n && done[p] {
                    p += 1;
                }
                let Some(first) = predicted.get(p) else {
                    break;
                };
                // The events of one operation may come in any order
                // (t:NotificationType is an unbounded xs:choice and the docs
                // name no order); operations stay in order.
                let burst: Vec<usize> = (p..n)
                    .take_while(|&q| predicted[q].caused_by == first.caused_by)
                    .filter(|&q| !done[q])
                    .collect();
                for &q in &burst {
                    let pe = &predicted[q];
                    let Ok(new) = unify_any(pe, r.event, bindings, self.profile) else {
                        continue;
                    };
                    for (h, id) in new {
                        // unify checked consistency; a failure here cannot
                        // happen but must not abort the judgement.
                        let _ = bindings.bind(h, id);
                    }
                    if self.profile.synchronous_pull
                        && self.pred.mode == Mode::Pull
                        && r.poll != pe.due
                    {
                        return Some(self.event_divergence(
                            DivergenceKind::Late,
                            rule,
                            format!(
                                "arrived in the poll at operation {}, due in the poll at operation {}",
                                r.poll, pe.due
                            ),
                            i,
                            r,
                            Some(&pe.event),
                            bindings,
                        ));
                    }
                    done[q] = true;
                    matched[q] = true;
                    skipped.clear();
                    continue 'received;
                }
                // Nothing of this operation fits: what is left of it may be
                // left out only if all of it is optional, and none of it
                // is this very event with a wrong UnreadCount.
                let droppable = burst.iter().all(|&q| {
                    self.optional(&predicted[q])
                        && unify_any(&predicted[q], r.event, bindings, self.profile)
                            .err()
                            .is_none_or(|m| m.rule != Some("R44"))
                });
                if !droppable {
                    break;
                }
                // An extra the profile tolerates may be a later operation's
                // event (the optional ones were left out) or just an extra
                // (a folder ModifiedEvent whose count the model does not
                // know fits many): what arrives later tells which.
                if self.tolerated_extra(r.event, bindings) {
                    let still_coming = burst.iter().any(|&q| {
                        received[i + 1..].iter().any(|x| {
                            unify_any(&predicted[q], x.event, bindings, self.profile).is_ok()
                        })
                    });
                    if still_coming {
                        break;
                    }
                }
                for &q in &burst {
                    if let Some(near) = self.near_miss(&received, &skipped, q, bindings) {
                        return Some(near);
                    }
                    done[q] = true;
                }
            }
            if self.tolerated_extra(r.event, bindings) {
                skipped.push(i);
                continue;
            }
            let progress = Progress {
                done: &done,
                matched: &matched,
            };
            let div = self.classify(&received, i, p, progress, rule, bindings);
            if div.kind == DivergenceKind::Lost
                && let Some(near) = self.near_miss(&received, &skipped, p, bindings)
            {
                return Some(near);
            }
            return Some(div);
        }
        let mut missing = None;
        for q in p..n {
            if done[q] {
                continue;
            }
            if let Some(near) = self.near_miss(&received, &skipped, q, bindings) {
                return Some(near);
            }
            if !self.optional(&predicted[q]) {
                missing = Some(q);
                break;
            }
        }
        let q = missing?;
        let missing = &predicted[q];
        let arrived = done[..q].iter().filter(|d| **d).count();
        let mut div = self.divergence(
            DivergenceKind::Lost,
            rule,
            format!(
                "{} of {} predicted events arrived; the next one (caused by operation {}) never did",
                arrived,
                predicted.len(),
                missing.caused_by
            ),
        );
        div.event_index = Some(received.len());
        div.predicted = Some(missing.event.to_string());
        Some(div)
    }

    /// A predicted event the profile lets the target leave out.
    fn optional(&self, pe: &PredictedEvent) -> bool {
        may_be_absent(pe, self.profile)
    }

    /// An extra folder ModifiedEvent the profile tolerates; it must still
    /// pass the subscription's filters.
    fn tolerated_extra(&self, e: &Event, bindings: &Bindings) -> bool {
        let folder = e.object.as_ref().is_some_and(ObjectId::is_folder);
        let item = matches!(e.object, Some(ObjectId::Item(_)));
        let modified = e.kind == EventKind::Modified
            && ((folder && self.profile.extra_folder_modified)
                || (item && self.profile.extra_item_modified));
        // Exchange 2013+ reports deletions to an all-folders subscription
        // through the AllItems search folder too: item Created/Deleted
        // events in a folder that is none of the model's (C-DEL).
        let search_folder = self.profile.all_folders_search_folder
            && self.pred.scope == super::ops::Scope::AllFolders
            && item
            && matches!(e.kind, EventKind::Created | EventKind::Deleted)
            && e.parent_folder_id
                .as_ref()
                .is_some_and(|p| bindings.handle_of(&p.id).is_none());
        // A whole-mailbox subscription sees folders the model does not know.
        let unknown = |id: Option<&ews_proto::ews::Id>| {
            id.is_none_or(|p| bindings.handle_of(&p.id).is_none())
        };
        let foreign = self.profile.foreign_folder_events
            && self.pred.scope == super::ops::Scope::AllFolders
            && e.parent_folder_id.is_some()
            && unknown(e.parent_folder_id.as_ref())
            && unknown(e.old_parent_folder_id.as_ref())
            && match &e.object {
                Some(ObjectId::Folder(id)) => bindings.handle_of(&id.id).is_none(),
                _ => true,
            };
        (modified || search_folder || foreign) && !self.outside_filter(e, bindings)
    }

    /// A skipped extra that is predicted event `p` but for its UnreadCount.
    fn near_miss(
        &self,
        received: &[Received<'_>],
        skipped: &[usize],
        p: usize,
        bindings: &Bindings,
    ) -> Option<Divergence> {
        let expected = self.pred.events.get(p)?;
        skipped.iter().find_map(|&k| {
            let m = unify_any(expected, received[k].event, bindings, self.profile).err()?;
            (m.rule == Some("R44")).then(|| {
                self.event_divergence(
                    DivergenceKind::Mismatch,
                    "R44",
                    format!("{} (caused by operation {})", m.detail, expected.caused_by),
                    k,
                    &received[k],
                    Some(&expected.event),
                    bindings,
                )
            })
        })
    }

    /// Explains why received event `i` does not match predicted event `p`.
    fn classify(
        &self,
        received: &[Received<'_>],
        i: usize,
        p: usize,
        Progress { done, matched }: Progress<'_>,
        rule: &'static str,
        bindings: &Bindings,
    ) -> Divergence {
        let r = &received[i];
        let predicted = &self.pred.events;
        let fits =
            |pe: &PredictedEvent, got: &Event| unify_any(pe, got, bindings, self.profile).is_ok();
        let fits_logged = |l: &LoggedEvent, got: &Event| {
            l.forms()
                .any(|f| unify(f, got, bindings, self.profile).is_ok())
        };
        // Still to come, after the one expected now.
        let pending = || {
            predicted
                .iter()
                .enumerate()
                .skip(p + 1)
                .filter(|(q, _)| !done[*q])
                .map(|(_, pe)| pe)
        };
        // Same kind, a known object and parent: a wrong detail (R43, R44),
        // even when the wrong field puts the event outside the filter.
        if let Some(expected) = predicted.get(p)
            && let Err(m) = unify_any(expected, r.event, bindings, self.profile)
            && let Some(field_rule) = m.rule
            && m.known_object
        {
            return self.event_divergence(
                DivergenceKind::Mismatch,
                field_rule,
                format!("{} (caused by operation {})", m.detail, expected.caused_by),
                i,
                r,
                Some(&expected.event),
                bindings,
            );
        }
        if self.outside_filter(r.event, bindings) {
            return self.event_divergence(
                DivergenceKind::Filtered,
                "R42",
                "the subscription's event types or folders exclude this event".to_string(),
                i,
                r,
                predicted.get(p).map(|pe| &pe.event),
                bindings,
            );
        }
        // Folder ModifiedEvents repeat identically too often to be evidence:
        // one that fits a later prediction is not called a repeat.
        let folder_modified = r.event.kind == EventKind::Modified
            && r.event.object.as_ref().is_some_and(ObjectId::is_folder);
        let fits_later = pending().any(|pe| fits(pe, r.event));
        if let Some(earlier) = predicted
            .iter()
            .enumerate()
            .filter(|(q, _)| matched[*q])
            .map(|(_, pe)| pe)
            .rev()
            .filter(|_| !(folder_modified && fits_later))
            .find(|pe| fits(pe, r.event))
        {
            return self.event_divergence(
                DivergenceKind::Repeated,
                rule,
                format!(
                    "already delivered (caused by operation {})",
                    earlier.caused_by
                ),
                i,
                r,
                Some(&earlier.event),
                bindings,
            );
        }
        let start = self.pred.log_start.min(self.log.len());
        if let Some(old) = self.log[..start]
            .iter()
            .rev()
            .filter(|_| !folder_modified)
            .find(|l| self.pred.sees(&l.event) && fits_logged(l, r.event))
        {
            return self.event_divergence(
                DivergenceKind::BeforeStart,
                rule,
                format!(
                    "caused by operation {}, before the subscription's starting watermark",
                    old.op_index
                ),
                i,
                r,
                predicted.get(p).map(|pe| &pe.event),
                bindings,
            );
        }
        let Some(expected) = predicted.get(p) else {
            return self.event_divergence(
                DivergenceKind::Unexpected,
                rule,
                "all predicted events had arrived; no operation explains this one".to_string(),
                i,
                r,
                None,
                bindings,
            );
        };
        if pending().any(|pe| fits(pe, r.event)) {
            let later = received[i + 1..].iter().any(|x| fits(expected, x.event));
            let (kind, detail) = if later {
                (
                    DivergenceKind::Reordered,
                    "this event overtook the predicted one, which arrived later".to_string(),
                )
            } else {
                (
                    DivergenceKind::Lost,
                    format!(
                        "the predicted event (caused by operation {}) never arrived",
                        expected.caused_by
                    ),
                )
            };
            return self.event_divergence(
                kind,
                rule,
                detail,
                i,
                r,
                Some(&expected.event),
                bindings,
            );
        }
        let (field_rule, detail) = match unify_any(expected, r.event, bindings, self.profile) {
            Err(m) => (m.rule.unwrap_or(expected.rule), m.detail),
            Ok(_) => (expected.rule, "does not match".to_string()),
        };
        self.event_divergence(
            DivergenceKind::Mismatch,
            field_rule,
            format!("{detail} (caused by operation {})", expected.caused_by),
            i,
            r,
            Some(&expected.event),
            bindings,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn event_divergence(
        &self,
        kind: DivergenceKind,
        rule: &'static str,
        detail: String,
        index: usize,
        r: &Received<'_>,
        predicted: Option<&ExpectedEvent>,
        bindings: &Bindings,
    ) -> Divergence {
        Divergence {
            subscription: self.sub,
            kind,
            rule,
            event_index: Some(index),
            delivery_index: Some(r.delivery),
            predicted: predicted.map(ToString::to_string),
            received: Some(describe_received(r.event, bindings)),
            detail,
        }
    }

    /// Whether the subscription's filters certainly exclude `e`. Folders
    /// whose ids are not bound give the benefit of the doubt.
    fn outside_filter(&self, e: &Event, bindings: &Bindings) -> bool {
        if !self.pred.event_types.contains(&e.kind) {
            return true;
        }
        let super::ops::Scope::Folders(set) = &self.pred.scope else {
            return false;
        };
        let folder_of =
            |id: Option<&ews_proto::ews::Id>| match id.and_then(|i| bindings.handle_of(&i.id)) {
                Some(Handle::Folder(f)) => Some(f),
                _ => None,
            };
        let mut places = vec![folder_of(e.parent_folder_id.as_ref())];
        if e.old_parent_folder_id.is_some() {
            places.push(folder_of(e.old_parent_folder_id.as_ref()));
        }
        if let Some(ObjectId::Folder(id)) = &e.object {
            places.push(folder_of(Some(id)));
        }
        places.iter().all(|p| p.is_some_and(|f| !set.contains(&f)))
    }
}

// ------------------------------------------------------------- matching

/// Why a received event is not the predicted one.
struct FieldMismatch {
    /// A more specific requirement than the operation's (R43 old ids, R44 UnreadCount).
    rule: Option<&'static str>,
    detail: String,
    /// The object matched an id bound before this event: the event is
    /// certainly about the predicted object, so a wrong field is a wrong
    /// detail. An object matched only by a fresh binding (an item moved by
    /// a delete, a delivered item) is weak evidence: a lost event explains
    /// the difference as well.
    known_object: bool,
}

fn mismatch(rule: Option<&'static str>, detail: String) -> FieldMismatch {
    FieldMismatch {
        rule,
        detail,
        known_object: false,
    }
}

/// Whether `got` is one of the legal forms of `pe`. On a mismatch, the
/// reason given is that of the form of `got`'s kind, if any: it names the
/// wrong detail rather than the kind.
fn unify_any(
    pe: &PredictedEvent,
    got: &Event,
    bindings: &Bindings,
    profile: &Latitude,
) -> Result<Vec<(Handle, String)>, FieldMismatch> {
    let mut first: Option<FieldMismatch> = None;
    for form in pe.forms() {
        match unify(form, got, bindings, profile) {
            Ok(new) => return Ok(new),
            Err(m) => {
                let same_kind = form.kind == got.kind;
                if first.is_none() || (same_kind && !pe.event.kind.eq(&got.kind)) {
                    first = Some(m);
                }
            }
        }
    }
    Err(first.unwrap_or_else(|| mismatch(None, "no form".to_string())))
}

/// Whether `got` is `pred` under the bindings; if so, the new bindings it implies.
fn unify(
    pred: &ExpectedEvent,
    got: &Event,
    bindings: &Bindings,
    profile: &Latitude,
) -> Result<Vec<(Handle, String)>, FieldMismatch> {
    let mut pending: Vec<(Handle, String)> = Vec::new();
    let as_created =
        pred.kind == EventKind::Copied && got.kind == EventKind::Created && profile.copy_as_created;
    if got.kind != pred.kind && !as_created {
        return Err(mismatch(
            None,
            format!("{} where {} was predicted", got.kind, pred.kind),
        ));
    }
    let object = got
        .object
        .as_ref()
        .ok_or_else(|| mismatch(None, "no ItemId or FolderId".to_string()))?;
    bind_object(bindings, &mut pending, pred.object, object)
        .map_err(|d| mismatch(None, format!("object: {d}")))?;
    let known_object = !pending.iter().any(|(h, _)| *h == pred.object);
    let mismatch = |rule: Option<&'static str>, detail: String| FieldMismatch {
        known_object,
        ..mismatch(rule, detail)
    };
    let parent = got
        .parent_folder_id
        .as_ref()
        .ok_or_else(|| mismatch(None, "no ParentFolderId".to_string()))?;
    bind_trial(
        bindings,
        &mut pending,
        Handle::Folder(pred.parent),
        &parent.id,
    )
    .map_err(|d| mismatch(None, format!("ParentFolderId: {d}")))?;
    if !as_created {
        if let Some(old) = pred.old_object {
            let got_old = got
                .old_object
                .as_ref()
                .ok_or_else(|| mismatch(Some("R43"), "no OldItemId or OldFolderId".to_string()))?;
            bind_object(bindings, &mut pending, old, got_old)
                .map_err(|d| mismatch(Some("R43"), format!("old object: {d}")))?;
        }
        // A moved item's new id may be fresh; its old id, when already
        // known and matched, identifies the event as surely.
        let old_known = pred
            .old_object
            .is_some_and(|old| bindings.id_of(old).is_some());
        let mismatch = |rule: Option<&'static str>, detail: String| FieldMismatch {
            known_object: known_object || old_known,
            ..mismatch(rule, detail)
        };
        if let Some(old_parent) = pred.old_parent {
            let got_old = got
                .old_parent_folder_id
                .as_ref()
                .ok_or_else(|| mismatch(Some("R43"), "no OldParentFolderId".to_string()))?;
            bind_trial(
                bindings,
                &mut pending,
                Handle::Folder(old_parent),
                &got_old.id,
            )
            .map_err(|d| mismatch(Some("R43"), format!("OldParentFolderId: {d}")))?;
        }
    }
    match (pred.unread_count, got.unread_count) {
        (Some(want), Some(have)) if want != have => {
            return Err(mismatch(
                Some("R44"),
                format!("UnreadCount {have} where {want} was predicted"),
            ));
        }
        (Some(want), None) if profile.unread_count_required => {
            return Err(mismatch(
                Some("R44"),
                format!("no UnreadCount where {want} was predicted"),
            ));
        }
        _ => {}
    }
    Ok(pending)
}

fn bind_object(
    bindings: &Bindings,
    pending: &mut Vec<(Handle, String)>,
    want: Handle,
    got: &ObjectId,
) -> Result<(), String> {
    match (want, got) {
        (Handle::Folder(_), ObjectId::Folder(id))
        | (Handle::Item(_) | Handle::Remnant(_), ObjectId::Item(id)) => {
            bind_trial(bindings, pending, want, &id.id)
        }
        (Handle::Folder(_), ObjectId::Item(_)) => {
            Err("an item where a folder was predicted".into())
        }
        (_, ObjectId::Folder(_)) => Err("a folder where an item was predicted".into()),
    }
}

fn bind_trial(
    bindings: &Bindings,
    pending: &mut Vec<(Handle, String)>,
    handle: Handle,
    id: &str,
) -> Result<(), String> {
    let bound = bindings.id_of(handle).or_else(|| {
        pending
            .iter()
            .find(|(h, _)| *h == handle)
            .map(|(_, i)| i.as_str())
    });
    if let Some(known) = bound {
        return if known == id {
            Ok(())
        } else {
            Err(format!(
                "{} where {handle} ({}) was predicted",
                show_id(id, bindings),
                short(known)
            ))
        };
    }
    let owner = bindings
        .handle_of(id)
        .or_else(|| pending.iter().find(|(_, i)| i == id).map(|(h, _)| *h));
    if let Some(other) = owner
        && other != handle
    {
        return Err(format!("{other} where {handle} was predicted"));
    }
    pending.push((handle, id.to_string()));
    Ok(())
}

// ------------------------------------------------------------- display

fn short(id: &str) -> String {
    const KEEP: usize = 24;
    if id.chars().count() <= KEEP {
        id.to_string()
    } else {
        let head: String = id.chars().take(KEEP).collect();
        format!("{head}…")
    }
}

fn show_id(id: &str, bindings: &Bindings) -> String {
    match bindings.handle_of(id) {
        Some(h) => h.to_string(),
        None => format!("{:?}", short(id)),
    }
}

/// A watermark in full: two of them often differ only at the end.
fn show_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "(absent)".to_string(), str::to_string)
}

/// A received event in the words of [`ExpectedEvent`]'s display, with
/// known ids shown as their handles.
pub fn describe_received(e: &Event, bindings: &Bindings) -> String {
    let mut s = e.kind.to_string();
    match &e.object {
        Some(ObjectId::Item(id)) => s.push_str(&format!(" item {}", show_id(&id.id, bindings))),
        Some(ObjectId::Folder(id)) => s.push_str(&format!(" folder {}", show_id(&id.id, bindings))),
        None => {}
    }
    if let Some(p) = &e.parent_folder_id {
        s.push_str(&format!(" in {}", show_id(&p.id, bindings)));
    }
    if let Some(o) = &e.old_object {
        let old_parent = e
            .old_parent_folder_id
            .as_ref()
            .map_or_else(|| "?".to_string(), |p| show_id(&p.id, bindings));
        s.push_str(&format!(
            " (was {} in {old_parent})",
            show_id(&o.id().id, bindings)
        ));
    }
    if let Some(n) = e.unread_count {
        s.push_str(&format!(", unread {n}"));
    }
    s
}
