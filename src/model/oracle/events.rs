//! Judging the events themselves: every predicted event received once, in an
//! order the protocol allows, nothing unexplained besides.

use super::bindings::*;
use super::display::*;
use super::divergence::*;
use super::judge::*;
use super::matching::*;
use crate::model::mailbox::{ExpectedEvent, LoggedEvent, PredictedEvent};
use crate::model::ops::{Handle, Mode};
use ews_proto::ews::{Event, EventKind, ObjectId};

impl<'a> SubJudge<'a> {
    /// The event sequence: predicted events arrive in order, none lost,
    /// repeated, filtered or unexplained. Reports the first divergence.
    pub(super) fn events(&self, bindings: &mut Bindings) -> Option<Divergence> {
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
    pub(super) fn optional(&self, pe: &PredictedEvent) -> bool {
        may_be_absent(pe, self.profile)
    }

    /// An extra folder ModifiedEvent the profile tolerates; it must still
    /// pass the subscription's filters.
    pub(super) fn tolerated_extra(&self, e: &Event, bindings: &Bindings) -> bool {
        let folder = e.object.as_ref().is_some_and(ObjectId::is_folder);
        let item = matches!(e.object, Some(ObjectId::Item(_)));
        let modified = e.kind == EventKind::Modified
            && ((folder && self.profile.extra_folder_modified)
                || (item && self.profile.extra_item_modified));
        // Exchange 2013+ reports deletions to an all-folders subscription
        // through the AllItems search folder too: item Created/Deleted
        // events in a folder that is none of the model's (C-DEL).
        let search_folder = self.profile.all_folders_search_folder
            && self.pred.scope == crate::model::ops::Scope::AllFolders
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
            && self.pred.scope == crate::model::ops::Scope::AllFolders
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
    pub(super) fn near_miss(
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
    pub(super) fn classify(
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
    pub(super) fn event_divergence(
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
    pub(super) fn outside_filter(&self, e: &Event, bindings: &Bindings) -> bool {
        if !self.pred.event_types.contains(&e.kind) {
            return true;
        }
        let crate::model::ops::Scope::Folders(set) = &self.pred.scope else {
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
