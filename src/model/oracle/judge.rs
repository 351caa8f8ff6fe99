//! Judging one subscription's delivery: the subscribe answer, batching,
//! MoreEvents and watermarks.

use super::display::*;
use super::divergence::*;
use super::observed::*;
use crate::model::latitude::Latitude;
use crate::model::mailbox::{LoggedEvent, PredictedEvent, PredictedSubscription, Prediction};
use crate::model::ops::{Mode, SubHandle};
use ews_proto::ews::{Event, EventKind};

/// At most this many delivery-level divergences per subscription: a broken
/// target must give a readable report, not thousands of lines.
const MAX_DELIVERY_DIVERGENCES: usize = 20;

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

pub(super) fn subscribe_rule(mode: Mode) -> &'static str {
    match mode {
        Mode::Pull => "R7",
        Mode::Streaming => "R15",
        Mode::Push => "R11",
    }
}

/// The requirement for lost, repeated or late events and for batching.
pub(super) fn delivery_rule(mode: Mode) -> &'static str {
    match mode {
        Mode::Pull => "R32",
        Mode::Streaming => "R59",
        Mode::Push => "R70",
    }
}

pub(super) struct SubJudge<'a> {
    pub(super) sub: SubHandle,
    pub(super) pred: &'a PredictedSubscription,
    pub(super) obs: &'a ObservedSubscription,
    pub(super) profile: &'a Latitude,
    pub(super) log: &'a [LoggedEvent],
}

/// Which predicted events are done with (arrived, or left out as allowed),
/// and which of them arrived.
#[derive(Clone, Copy)]
pub(super) struct Progress<'a> {
    pub(super) done: &'a [bool],
    pub(super) matched: &'a [bool],
}

/// A received non-status event and where it came from.
pub(super) struct Received<'a> {
    pub(super) delivery: usize,
    pub(super) poll: usize,
    pub(super) event: &'a Event,
}

impl<'a> SubJudge<'a> {
    pub(super) fn divergence(
        &self,
        kind: DivergenceKind,
        rule: &'static str,
        detail: String,
    ) -> Divergence {
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

    pub(super) fn own(&self, d: &Delivery) -> bool {
        d.notification.subscription_id == self.obs.subscription_id
    }

    /// Per-notification checks: subscription id, batch size, watermarks, MoreEvents.
    pub(super) fn deliveries(&self) -> Vec<Divergence> {
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

    pub(super) fn more_events(&self) -> Vec<Divergence> {
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
                        // Events a legal outcome may leave out are not
                        // owed: a target that left one out had nothing
                        // queued behind a full batch.
                        let due = self
                            .pred
                            .due_at(last.poll)
                            .filter(|e| !may_be_absent(e, self.profile))
                            .count();
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
}
