//! `watermark`: the watermark chain across the calls of a case, judged from
//! the exchanges alone (watermarks stay opaque: only equality is used).
//!
//! - R31: a GetEvents that sends the watermark the client had to send (the
//!   Subscribe watermark, then the last watermark of the previous answer)
//!   gets `PreviousWatermark` equal to it, and event watermarks are non-empty.
//! - No event repeated across the batches of one subscription: an event
//!   watermark (StatusEvent aside) is delivered once on a chain (R32).
//! - No event lost: every item a case creates (CreateItem, SaveOnly) in a
//!   folder a pull subscription covers for CreatedEvent arrives as a
//!   CreatedEvent before a chained GetEvents says `MoreEvents=false` (R32).
//! - R21: a Subscribe that resumes from a watermark gets a new id, its
//!   chain never replays an event delivered at or before that watermark,
//!   and (once drained) it delivers the events the case had already seen
//!   after it.
//! - R69: push `PreviousWatermark` of notification k+1 is the last event
//!   watermark of notification k (a repeat of k — an unacknowledged
//!   notification sent again — is a note).
//! - R40: a GetEvents that sends an older watermark is recorded (what came
//!   back), never judged.

use std::collections::{HashMap, HashSet};

use super::finding::Finding;
use super::input::CaseInput;
use super::input::StepInput;
use super::kind::Check;
use super::request::Request;
use super::wire::{Delivery, Entry, Link, Poll, Subscription, short, subscriptions};
use ews_proto::ews::{Event, EventKind, Notification};

pub struct Watermark;

const NAME: &str = "watermark";

/// Examples quoted in one finding.
const EXAMPLES: usize = 3;

impl Check for Watermark {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(&self, _input: &StepInput<'_>) -> Vec<Finding> {
        Vec::new()
    }

    fn reads_entries(&self) -> bool {
        true
    }

    fn check_case(&self, input: &CaseInput<'_>) -> Vec<Finding> {
        let entries = input.entries();
        let subs = subscriptions(entries);
        let mut out = Vec::new();
        for sub in &subs {
            pull_chain(input, sub, &mut out);
            push_chain(input, sub, &mut out);
        }
        resumes(input, &subs, &mut out);
        lost_items(input, entries, &subs, &mut out);
        out
    }
}

fn is_status(e: &Event) -> bool {
    e.kind == EventKind::Status
}

/// The identity of an event for replay and duplicate checks: its watermark
/// when it has one; for creations (which happen once per object) also the
/// kind and object id.
fn created_key(e: &Event) -> Option<(EventKind, String)> {
    matches!(
        e.kind,
        EventKind::Created | EventKind::NewMail | EventKind::Copied
    )
    .then(|| e.object.as_ref().map(|o| (e.kind, o.id().id.clone())))
    .flatten()
}

fn describe(e: &Event) -> String {
    match (&e.object, &e.watermark) {
        (Some(o), Some(w)) => format!(
            "{} of {} (watermark {})",
            e.kind.element_name(),
            short(&o.id().id),
            short(w)
        ),
        (Some(o), None) => format!("{} of {}", e.kind.element_name(), short(&o.id().id)),
        (None, Some(w)) => format!("{} (watermark {})", e.kind.element_name(), short(w)),
        (None, None) => e.kind.element_name().to_string(),
    }
}

fn pull_chain(input: &CaseInput<'_>, sub: &Subscription, out: &mut Vec<Finding>) {
    // Watermark → the step that delivered it, along the chain.
    let mut delivered: HashMap<String, String> = HashMap::new();
    for poll in &sub.polls {
        let Some(n) = &poll.notification else {
            continue;
        };
        match poll.link {
            Link::Chained => {
                if let Some(prev) = &n.previous_watermark
                    && prev != &poll.sent
                {
                    out.push(input.fail_at(
                        NAME,
                        poll.index,
                        format!(
                            "step \"{}\": PreviousWatermark {} is not the watermark this GetEvents sent ({}) (R31)",
                            poll.step,
                            short(prev),
                            short(&poll.sent)
                        ),
                    ));
                }
                if n.events.iter().any(|e| e.watermark.as_deref() == Some("")) {
                    out.push(input.fail_at(
                        NAME,
                        poll.index,
                        format!(
                            "step \"{}\": an event carries an empty t:Watermark (R31)",
                            poll.step
                        ),
                    ));
                }
                let mut repeated = Vec::new();
                for e in n.events.iter().filter(|e| !is_status(e)) {
                    let Some(w) = &e.watermark else { continue };
                    match delivered.get(w) {
                        Some(step) => {
                            repeated.push(format!("{} (first in step \"{step}\")", describe(e)))
                        }
                        None => {
                            delivered.insert(w.clone(), poll.step.clone());
                        }
                    }
                }
                if !repeated.is_empty() {
                    out.push(input.fail_at(
                        NAME,
                        poll.index,
                        format!(
                            "step \"{}\": {} event(s) of subscription {} were delivered again on the chain: {} (R32)",
                            poll.step,
                            repeated.len(),
                            short(&sub.id),
                            examples(&repeated)
                        ),
                    ));
                }
            }
            Link::Other => {
                let again = n
                    .events
                    .iter()
                    .filter(|e| !is_status(e))
                    .filter(|e| {
                        e.watermark
                            .as_ref()
                            .is_some_and(|w| delivered.contains_key(w))
                    })
                    .count();
                let events = n.events.iter().filter(|e| !is_status(e)).count();
                let prev = match &n.previous_watermark {
                    Some(p) if p == &poll.sent => "PreviousWatermark echoes it".to_string(),
                    Some(p) => format!("PreviousWatermark is {}", short(p)),
                    None => "no PreviousWatermark".to_string(),
                };
                out.push(input.note_at(
                    NAME,
                    poll.index,
                    format!(
                        "step \"{}\": GetEvents sent an older watermark ({}) than the last one delivered (R40, recorded): the answer holds {events} event(s), {again} of them delivered before; {prev}",
                        poll.step,
                        short(&poll.sent)
                    ),
                ));
            }
            Link::Unknown => {}
        }
    }
}

fn push_chain(input: &CaseInput<'_>, sub: &Subscription, out: &mut Vec<Finding>) {
    for pair in sub.pushes.windows(2) {
        let (a, b) = (&pair[0].notification, &pair[1]);
        let (Some(last), Some(prev)) = (
            a.last_watermark(),
            b.notification.previous_watermark.as_deref(),
        ) else {
            continue;
        };
        if prev == last {
            continue;
        }
        if a.previous_watermark.as_deref() == Some(prev) {
            out.push(input.note_at(
                NAME,
                b.index,
                format!(
                    "step \"{}\": this push for subscription {} starts where the previous one did (PreviousWatermark {}): the previous notification was sent again, as if it had not been acknowledged",
                    b.step,
                    short(&sub.id),
                    short(prev)
                ),
            ));
            continue;
        }
        out.push(input.fail_at(
            NAME,
            b.index,
            format!(
                "step \"{}\": push PreviousWatermark {} is not the watermark of the last event of the previous push (step \"{}\": {}) (R69)",
                b.step,
                short(prev),
                pair[0].step,
                short(last)
            ),
        ));
    }
}

/// Where a watermark was handed out: the subscription, the exchange, and
/// how many events of that exchange's notification came at or before it
/// (0 for a Subscribe watermark).
struct Origin<'s> {
    sub: &'s Subscription,
    index: usize,
    upto: usize,
}

fn origin_of<'s>(subs: &'s [Subscription], skip: &str, w: &str) -> Option<Origin<'s>> {
    for s in subs.iter().filter(|s| s.id != skip) {
        if s.initial_watermark.as_deref() == Some(w)
            && let Some(index) = s.subscribed_at
        {
            return Some(Origin {
                sub: s,
                index,
                upto: 0,
            });
        }
        let delivered = s
            .polls
            .iter()
            .filter_map(|p| p.notification.as_ref().map(|n| (p.index, n)))
            .chain(s.pushes.iter().map(|d| (d.index, &d.notification)));
        for (index, n) in delivered {
            if let Some(pos) = n
                .events
                .iter()
                .position(|e| e.watermark.as_deref() == Some(w))
            {
                return Some(Origin {
                    sub: s,
                    index,
                    upto: pos + 1,
                });
            }
        }
    }
    None
}

/// Events of a subscription's chained, answered calls, up to the first that
/// says `MoreEvents=false`; with that call, when there is one.
fn drained<'p>(polls: impl Iterator<Item = &'p Poll>) -> (Vec<&'p Event>, Option<&'p Poll>) {
    let mut events = Vec::new();
    for p in polls {
        let (Link::Chained, Some(n)) = (p.link, &p.notification) else {
            break;
        };
        events.extend(n.events.iter().filter(|e| !is_status(e)));
        if n.more_events == Some(false) {
            return (events, Some(p));
        }
    }
    (events, None)
}

fn resumes(input: &CaseInput<'_>, subs: &[Subscription], out: &mut Vec<Finding>) {
    for s2 in subs {
        for &again in &s2.reused_at {
            let first = s2.subscribed_at.unwrap_or_default();
            out.push(input.fail_at(
                NAME,
                again,
                format!(
                    "step \"{}\": Subscribe answered with subscription id {}, the id already returned in step \"{}\"; every Subscribe, a re-subscription included, creates a new id (R21)",
                    input.exchanges[again].step,
                    short(&s2.id),
                    input.exchanges[first].step
                ),
            ));
        }
        let (Some(ask), Some(at)) = (&s2.ask, s2.subscribed_at) else {
            continue;
        };
        let Some(w) = &ask.watermark else { continue };
        let Some(origin) = origin_of(subs, &s2.id, w) else {
            continue;
        };
        // What the first subscription saw at or before the watermark, and after it.
        let mut before: Vec<&Event> = Vec::new();
        let mut after: Vec<&Event> = Vec::new();
        let seen: Vec<(usize, &Notification)> = origin
            .sub
            .polls
            .iter()
            .filter_map(|p| p.notification.as_ref().map(|n| (p.index, n)))
            .chain(
                origin
                    .sub
                    .pushes
                    .iter()
                    .map(|d: &Delivery| (d.index, &d.notification)),
            )
            .collect();
        for (index, n) in seen {
            let events = n.events.iter().filter(|e| !is_status(e));
            if index < origin.index {
                before.extend(events);
            } else if index == origin.index {
                for (k, e) in n.events.iter().enumerate().filter(|(_, e)| !is_status(e)) {
                    if k < origin.upto {
                        before.push(e);
                    } else {
                        after.push(e);
                    }
                }
            } else if index < at {
                after.extend(events);
            }
        }
        let old_watermarks: HashSet<&str> = before
            .iter()
            .filter_map(|e| e.watermark.as_deref())
            .collect();
        let old_keys: HashSet<(EventKind, String)> =
            before.iter().filter_map(|e| created_key(e)).collect();
        let (resumed, drained_at) = drained(s2.polls.iter());
        let replayed: Vec<String> = resumed
            .iter()
            .filter(|e| {
                e.watermark
                    .as_deref()
                    .is_some_and(|w| old_watermarks.contains(w))
                    || created_key(e).is_some_and(|k| old_keys.contains(&k))
            })
            .map(|e| describe(e))
            .collect();
        let step = |i: usize| input.exchanges[i].step.clone();
        if !replayed.is_empty() {
            let at_poll = s2.polls.first().map_or(at, |p| p.index);
            out.push(input.fail_at(
                NAME,
                at_poll,
                format!(
                    "step \"{}\": the subscription resumed from watermark {} replays {} event(s) delivered at or before that watermark (step \"{}\"): {} (R21)",
                    step(at_poll),
                    short(w),
                    replayed.len(),
                    step(origin.index),
                    examples(&replayed)
                ),
            ));
        }
        let Some(end) = drained_at else { continue };
        let missing: Vec<String> = after
            .iter()
            .filter(|b| {
                !resumed.iter().any(|r| match (&b.watermark, &r.watermark) {
                    (Some(x), Some(y)) => x == y,
                    _ => {
                        r.kind == b.kind
                            && r.object.as_ref().map(|o| &o.id().id)
                                == b.object.as_ref().map(|o| &o.id().id)
                    }
                })
            })
            .map(|e| describe(e))
            .collect();
        if !missing.is_empty() {
            out.push(input.fail_at(
                NAME,
                end.index,
                format!(
                    "step \"{}\": the subscription resumed from watermark {} was drained (MoreEvents=false) without {} event(s) that followed that watermark on the first subscription: {} (R21)",
                    end.step,
                    short(w),
                    missing.len(),
                    examples(&missing)
                ),
            ));
        }
    }
}

fn lost_items(
    input: &CaseInput<'_>,
    entries: &[Entry],
    subs: &[Subscription],
    out: &mut Vec<Finding>,
) {
    for e in entries {
        let (
            Request::CreateItem {
                folder: Some(folder),
                save_only: true,
            },
            Some(reply),
        ) = (&e.request, &e.reply)
        else {
            continue;
        };
        if !reply.success || reply.items.is_empty() {
            continue;
        }
        for sub in subs {
            let Some(ask) = &sub.ask else { continue };
            if ask.mode != super::request::SubscriptionKind::Pull
                || !ask.covers(EventKind::Created, folder)
            {
                continue;
            }
            // A folder named with its mailbox may be another user's: all
            // folders of the subscriber need not include it.
            let named_mailbox = matches!(
                folder,
                super::request::FolderKey::Distinguished {
                    mailbox: Some(_),
                    ..
                }
            );
            if named_mailbox && !ask.folders.contains(folder) {
                continue;
            }
            let origin = ask
                .watermark
                .as_deref()
                .and_then(|w| origin_of(subs, &sub.id, w))
                .map(|o| o.index);
            if ask.watermark.is_some() && origin.is_none() {
                continue; // resumed from a point the case cannot place
            }
            match sub.window_start(origin) {
                Some(start) if start < e.index => {}
                _ => continue,
            }
            let (events, Some(end)) = drained(sub.polls.iter().filter(|p| p.index > e.index))
            else {
                continue;
            };
            let arrived: HashSet<&str> = events
                .iter()
                .filter(|ev| ev.kind == EventKind::Created)
                .filter_map(|ev| ev.object.as_ref().map(|o| o.id().id.as_str()))
                .collect();
            let missing: Vec<String> = reply
                .items
                .iter()
                .filter(|id| !arrived.contains(id.as_str()))
                .map(|id| short(id))
                .collect();
            if missing.is_empty() {
                continue;
            }
            out.push(input.fail_at(
                NAME,
                end.index,
                format!(
                    "step \"{}\": {} of the {} item(s) created in step \"{}\" never arrived as CreatedEvent on subscription {}, although this GetEvents said MoreEvents=false: {} (events lost, R32)",
                    end.step,
                    missing.len(),
                    reply.items.len(),
                    e.step,
                    short(&sub.id),
                    examples(&missing)
                ),
            ));
        }
    }
}

fn examples(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(EXAMPLES)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > EXAMPLES {
        s.push_str(&format!(", … ({} in all)", items.len()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::template::Vars;
    use crate::check::exchange::Exchange;
    use crate::check::testing::*;

    fn notification(sub: &str, prev: &str, more: bool, events: &[(&str, &str, &str)]) -> String {
        let body: String = events
            .iter()
            .map(|(kind, wm, item)| {
                format!(
                    "<t:{kind}><t:Watermark>{wm}</t:Watermark><t:TimeStamp>2026-01-01T00:00:00Z</t:TimeStamp><t:ItemId Id=\"{item}\"/><t:ParentFolderId Id=\"F\"/></t:{kind}>"
                )
            })
            .collect();
        format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notification><t:SubscriptionId>{sub}</t:SubscriptionId><t:PreviousWatermark>{prev}</t:PreviousWatermark><t:MoreEvents>{more}</t:MoreEvents>{body}</m:Notification></m:GetEventsResponseMessage></m:ResponseMessages></m:GetEventsResponse></s:Body></s:Envelope>"#
        )
    }

    fn poll(sub: &str, sent: &str, body: String) -> Exchange {
        Exchange {
            request: get_events_request(sub, sent),
            ..exchange(200, &body)
        }
    }

    fn subscribe() -> Exchange {
        Exchange {
            request: SUBSCRIBE_REQUEST.into(),
            ..exchange(200, SUBSCRIBE_OK)
        }
    }

    const CREATE_REQUEST: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Body><m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId><t:FolderId Id="F"/></m:SavedItemFolderId><m:Items><t:Message><t:Subject>x</t:Subject></t:Message><t:Message><t:Subject>y</t:Subject></t:Message></m:Items></m:CreateItem></s:Body></s:Envelope>"#;
    const CREATE_OK: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:CreateItemResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:CreateItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Message><t:ItemId Id="I1"/></t:Message></m:Items></m:CreateItemResponseMessage><m:CreateItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Message><t:ItemId Id="I2"/></t:Message></m:Items></m:CreateItemResponseMessage></m:ResponseMessages></m:CreateItemResponse></s:Body></s:Envelope>"#;

    fn create() -> Exchange {
        Exchange {
            request: CREATE_REQUEST.into(),
            ..exchange(200, CREATE_OK)
        }
    }

    fn judge(exchanges: &[Exchange]) -> Vec<Finding> {
        let c = case(None);
        let vars = Vars::new();
        Watermark.check_case(&CaseInput::new(&c, exchanges, &vars))
    }

    #[test]
    fn a_clean_chain_passes() {
        let f = judge(&[
            subscribe(),
            create(),
            poll(
                "S1",
                "W0",
                notification("S1", "W0", true, &[("CreatedEvent", "w1", "I1")]),
            ),
            poll(
                "S1",
                "w1",
                notification("S1", "w1", false, &[("CreatedEvent", "w2", "I2")]),
            ),
        ]);
        assert!(fails(&f).is_empty(), "{f:?}");
    }

    #[test]
    fn previous_watermark_must_echo_the_sent_one() {
        let f = judge(&[
            subscribe(),
            poll("S1", "W0", notification("S1", "Wx", false, &[])),
        ]);
        assert_eq!(
            fails(&f),
            [
                "step \"s\": PreviousWatermark Wx is not the watermark this GetEvents sent (W0) (R31)"
            ]
        );
    }

    #[test]
    fn a_repeated_event_fails() {
        let f = judge(&[
            subscribe(),
            poll(
                "S1",
                "W0",
                notification("S1", "W0", true, &[("CreatedEvent", "w1", "I1")]),
            ),
            poll(
                "S1",
                "w1",
                notification("S1", "w1", false, &[("CreatedEvent", "w1", "I1")]),
            ),
        ]);
        assert_eq!(fails(&f).len(), 1, "{f:?}");
        assert!(
            fails(&f)[0].contains("1 event(s) of subscription S1 were delivered again on the chain: CreatedEvent of I1 (watermark w1)"),
            "{f:?}"
        );
    }

    #[test]
    fn a_lost_event_fails() {
        let f = judge(&[
            subscribe(),
            create(),
            poll(
                "S1",
                "W0",
                notification("S1", "W0", false, &[("CreatedEvent", "w1", "I1")]),
            ),
        ]);
        assert_eq!(
            fails(&f),
            [
                "step \"s\": 1 of the 2 item(s) created in step \"s\" never arrived as CreatedEvent on subscription S1, although this GetEvents said MoreEvents=false: I2 (events lost, R32)"
            ]
        );
    }

    #[test]
    fn a_save_into_a_named_mailbox_is_judged_only_where_the_subscription_names_it() {
        let into = |folder: &str| Exchange {
            request: CREATE_REQUEST.replace(r#"<t:FolderId Id="F"/>"#, folder),
            ..exchange(200, CREATE_OK)
        };
        let other_inbox = r#"<t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>bob@example.com</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>"#;
        let all_folders = Exchange {
            request: SUBSCRIBE_REQUEST.replace(
                r#"<m:PullSubscriptionRequest><t:FolderIds><t:FolderId Id="F"/></t:FolderIds>"#,
                r#"<m:PullSubscriptionRequest SubscribeToAllFolders="true">"#,
            ),
            ..exchange(200, SUBSCRIBE_OK)
        };
        let drained = poll("S1", "W0", notification("S1", "W0", false, &[]));
        // All of the subscriber's folders need not include another mailbox's Inbox.
        let f = judge(&[all_folders, into(other_inbox), drained.clone()]);
        assert!(fails(&f).is_empty(), "{f:?}");
        // A subscription to exactly that folder is judged as before.
        let named = Exchange {
            request: SUBSCRIBE_REQUEST.replace(r#"<t:FolderId Id="F"/>"#, other_inbox),
            ..exchange(200, SUBSCRIBE_OK)
        };
        let f = judge(&[named, into(other_inbox), drained]);
        assert_eq!(fails(&f).len(), 1, "{f:?}");
    }

    #[test]
    fn an_older_watermark_is_only_recorded() {
        let f = judge(&[
            subscribe(),
            poll(
                "S1",
                "W0",
                notification("S1", "W0", false, &[("CreatedEvent", "w1", "I1")]),
            ),
            poll(
                "S1",
                "W0",
                notification("S1", "w1", false, &[("CreatedEvent", "w1", "I1")]),
            ),
        ]);
        assert!(fails(&f).is_empty(), "{f:?}");
        assert!(
            f.iter().any(|n| n.message.contains("R40, recorded")
                && n.message.contains("1 event(s), 1 of them delivered before")),
            "{f:?}"
        );
    }
}
