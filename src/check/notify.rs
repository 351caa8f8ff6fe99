//! `notify`: the expectations only streaming envelopes and push
//! notifications carry, applied to the documents a step is judged on.
//!
//! Per document: `connection_status`, `error_subscription_ids` (both read
//! from a GetStreamingEvents envelope) and `previous_watermark` (every
//! notification in the document). Across the step's documents, in order:
//! `watermark_chain`, `more_events_until_last`, and expected events that
//! name a `subscription` (they must arrive in a Notification of that
//! subscription and of no other).

use std::collections::BTreeSet;

use super::answer::notifications;
use super::events::render_pattern;
use super::finding::Finding;
use super::input::StepInput;
use super::kind::Check;
use crate::case::Expect;
use crate::client::excerpt::excerpt;
use crate::client::stream::parse_envelope;
use ews_proto::ews::{Event, Notification, ObjectId};

pub struct Notify;

const NAME: &str = "notify";

impl Check for Notify {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(&self, input: &StepInput<'_>) -> Vec<Finding> {
        let e = &input.step.expect;
        if !applies(e) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut all: Vec<Notification> = Vec::new();
        for (i, ex) in input.exchanges.iter().enumerate() {
            if ex.status.is_none() {
                continue;
            }
            out.extend(
                document(input, &ex.response_text)
                    .into_iter()
                    .map(|f| f.about(i)),
            );
            if let Ok(n) = notifications(&ex.response_text) {
                all.extend(n);
            }
        }
        out.extend(collection(input, &all));
        out
    }
}

fn applies(e: &Expect) -> bool {
    e.connection_status.is_some()
        || e.error_subscription_ids.is_some()
        || e.previous_watermark.is_some()
        || e.watermark_chain == Some(true)
        || e.more_events_until_last.is_some()
        || e.event_subscriptions.iter().any(Option::is_some)
}

/// The per-document expectations of the step, judged on one response body.
pub fn document(input: &StepInput<'_>, body: &str) -> Vec<Finding> {
    let e = &input.step.expect;
    let step = &input.step.name;
    let mut out = Vec::new();
    if e.connection_status.is_some() || e.error_subscription_ids.is_some() {
        match parse_envelope(body) {
            Err(problem) => {
                let mut f = input.fail(
                    NAME,
                    format!(
                        "step \"{step}\": expected a GetStreamingEvents envelope ({}), got {problem}",
                        describe_stream_expectation(e)
                    ),
                );
                f.evidence = Some(excerpt(body, 600));
                out.push(f);
            }
            Ok(r) => {
                if let Some(want) = e.connection_status {
                    match r.connection_status {
                        Some(got) if got == want => {}
                        Some(got) => out.push(input.fail(
                            NAME,
                            format!(
                                "step \"{step}\": expected ConnectionStatus {}, got {}",
                                want.as_str(),
                                got.as_str()
                            ),
                        )),
                        None => out.push(input.fail(
                            NAME,
                            format!(
                                "step \"{step}\": expected ConnectionStatus {}, but the envelope has none",
                                want.as_str()
                            ),
                        )),
                    }
                }
                if let Some(want) = &e.error_subscription_ids {
                    let mut wanted = BTreeSet::new();
                    for w in want {
                        match input.render(NAME, w) {
                            Ok(v) => {
                                wanted.insert(v);
                            }
                            Err(f) => {
                                out.push(*f);
                                return out;
                            }
                        }
                    }
                    let got: BTreeSet<String> = r.error_subscription_ids.iter().cloned().collect();
                    if got != wanted {
                        out.push(input.fail(
                            NAME,
                            format!(
                                "step \"{step}\": expected ErrorSubscriptionIds {}, got {}",
                                id_list(&wanted),
                                id_list(&got)
                            ),
                        ));
                    }
                }
            }
        }
    }
    if let Some(template) = &e.previous_watermark {
        let want = match input.render(NAME, template) {
            Ok(v) => v,
            Err(f) => {
                out.push(*f);
                return out;
            }
        };
        match notifications(body) {
            Err(problem) => out.push(input.fail(
                NAME,
                format!("step \"{step}\": expected PreviousWatermark {want:?}, but {problem}"),
            )),
            Ok(list) if list.is_empty() => out.push(input.fail(
                NAME,
                format!(
                    "step \"{step}\": expected PreviousWatermark {want:?}, but the document holds no notification"
                ),
            )),
            Ok(list) => {
                for n in list {
                    match &n.previous_watermark {
                        Some(got) if *got == want => {}
                        Some(got) => out.push(input.fail(
                            NAME,
                            format!(
                                "step \"{step}\": expected PreviousWatermark {want:?} (subscription {}), got {got:?}",
                                n.subscription_id
                            ),
                        )),
                        None => out.push(input.fail(
                            NAME,
                            format!(
                                "step \"{step}\": expected PreviousWatermark {want:?} (subscription {}), but the notification has none",
                                n.subscription_id
                            ),
                        )),
                    }
                }
            }
        }
    }
    out
}

/// The expectations judged across all the step's notifications, in order.
pub fn collection(input: &StepInput<'_>, all: &[Notification]) -> Vec<Finding> {
    let e = &input.step.expect;
    let step = &input.step.name;
    let mut out = Vec::new();

    if e.watermark_chain == Some(true) {
        let mut ids: Vec<&str> = Vec::new();
        for n in all {
            if !ids.contains(&n.subscription_id.as_str()) {
                ids.push(&n.subscription_id);
            }
        }
        for id in ids {
            let chain: Vec<&Notification> =
                all.iter().filter(|n| n.subscription_id == id).collect();
            for (k, pair) in chain.windows(2).enumerate() {
                let (before, after) = (pair[0], pair[1]);
                let Some(last) = before.last_watermark() else {
                    out.push(input.fail(
                        NAME,
                        format!(
                            "step \"{step}\": watermark chain of subscription {id}: notification {} carries no event watermark to continue from",
                            k + 1
                        ),
                    ));
                    break;
                };
                if after.previous_watermark.as_deref() != Some(last) {
                    let mut f = input.fail(
                        NAME,
                        format!(
                            "step \"{step}\": watermark chain of subscription {id} breaks at notification {}: PreviousWatermark is {}, the last watermark of notification {} is {last:?}",
                            k + 2,
                            after
                                .previous_watermark
                                .as_deref()
                                .map_or("absent".to_string(), |w| format!("{w:?}")),
                            k + 1
                        ),
                    );
                    f.evidence = Some(chain_listing(&chain));
                    out.push(f);
                    break;
                }
            }
        }
    }

    if let Some(want) = e.more_events_until_last {
        let got: Vec<Option<bool>> = all.iter().map(|n| n.more_events).collect();
        let ok = match got.split_last() {
            None => false,
            Some((last, rest)) => rest.iter().all(|m| *m == Some(true)) && *last == Some(false),
        };
        if ok != want {
            let shown: Vec<String> = got
                .iter()
                .map(|m| m.map_or("absent".to_string(), |b| b.to_string()))
                .collect();
            out.push(input.fail(
                NAME,
                format!(
                    "step \"{step}\": expected MoreEvents {} (true on every notification but the last, false on the last), got [{}] over {} notification(s)",
                    if want { "to run true…false" } else { "not to run true…false" },
                    shown.join(", "),
                    all.len()
                ),
            ));
        }
    }

    // The server said it lost the events (a step that accepts that):
    // there is nothing to place under a subscription.
    let missed = input.responses().any(|(_, ex, parsed)| {
        super::answer::reports_missed_events(
            e,
            &super::answer::Answer::read_parsed(&ex.response_text, parsed),
        )
    });
    for (p, sub) in e.events.iter().zip(&e.event_subscriptions) {
        let Some(sub) = sub.as_ref().filter(|_| !missed) else {
            continue;
        };
        let (sub, pattern) = match (input.render(NAME, sub), render_pattern(input, NAME, p)) {
            (Ok(s), Ok(r)) => (s, r),
            (Err(f), _) | (_, Err(f)) => {
                out.push(*f);
                continue;
            }
        };
        let under: Vec<&str> = all
            .iter()
            .filter(|n| n.events.iter().any(|ev| pattern.matches(ev)))
            .map(|n| n.subscription_id.as_str())
            .collect();
        let elsewhere: BTreeSet<&str> = under.iter().copied().filter(|s| *s != sub).collect();
        let problem = if !under.contains(&sub.as_str()) {
            Some(if elsewhere.is_empty() {
                format!("it did not arrive under subscription {sub}")
            } else {
                format!(
                    "it arrived under subscription {} instead of {sub}",
                    elsewhere.into_iter().collect::<Vec<_>>().join(", ")
                )
            })
        } else if !elsewhere.is_empty() {
            Some(format!(
                "it arrived under subscription {sub} and also under {}",
                elsewhere.into_iter().collect::<Vec<_>>().join(", ")
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            let mut f = input.fail(
                NAME,
                format!("step \"{step}\": expected event {pattern}: {problem}"),
            );
            f.line = p.line;
            f.evidence = Some(by_subscription(all));
            out.push(f);
        }
    }
    out
}

fn describe_stream_expectation(e: &Expect) -> String {
    let mut parts = Vec::new();
    if let Some(s) = e.connection_status {
        parts.push(format!("ConnectionStatus {}", s.as_str()));
    }
    if let Some(ids) = &e.error_subscription_ids {
        parts.push(format!("ErrorSubscriptionIds [{}]", ids.join(", ")));
    }
    parts.join(", ")
}

fn id_list(ids: &BTreeSet<String>) -> String {
    if ids.is_empty() {
        "none".into()
    } else {
        format!("[{}]", ids.iter().cloned().collect::<Vec<_>>().join(", "))
    }
}

fn chain_listing(chain: &[&Notification]) -> String {
    let mut s = String::from("notifications in order:");
    for (k, n) in chain.iter().enumerate().take(40) {
        s.push_str(&format!(
            "\n  {}. PreviousWatermark {:?}, {} event(s), last watermark {:?}",
            k + 1,
            n.previous_watermark.as_deref().unwrap_or("(absent)"),
            n.events.len(),
            n.last_watermark().unwrap_or("(none)")
        ));
    }
    s
}

fn by_subscription(all: &[Notification]) -> String {
    let mut s = format!("{} notification(s) arrived:", all.len());
    for n in all.iter().take(40) {
        let kinds: Vec<String> = n.events.iter().take(20).map(describe).collect();
        s.push_str(&format!(
            "\n  subscription {}: {}",
            n.subscription_id,
            kinds.join("; ")
        ));
    }
    s
}

fn describe(ev: &Event) -> String {
    match &ev.object {
        Some(ObjectId::Item(id)) => format!("{} (item={})", ev.kind, id.id),
        Some(ObjectId::Folder(id)) => format!("{} (folder={})", ev.kind, id.id),
        None => ev.kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::EventPattern;
    use crate::case::template::Vars;
    use crate::check::testing::*;
    use ews_proto::ews::{ConnectionStatus, EventKind};

    const STREAM_ERROR: &str = r#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><m:GetStreamingEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Error"><m:MessageText>x</m:MessageText><m:ResponseCode>ErrorSubscriptionNotFound</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:ErrorSubscriptionIds><t:SubscriptionId>BAD</t:SubscriptionId></m:ErrorSubscriptionIds><m:ConnectionStatus>OK</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></Body></Envelope>"#;

    fn push(sub: &str, previous: &str, more: bool, watermarks: &[&str]) -> String {
        let events: String = watermarks
            .iter()
            .map(|w| format!("<t:CreatedEvent><t:Watermark>{w}</t:Watermark><t:TimeStamp>2026-01-01T00:00:00Z</t:TimeStamp><t:ItemId Id=\"I{w}\"/><t:ParentFolderId Id=\"F\"/></t:CreatedEvent>"))
            .collect();
        format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:SendNotification xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:SendNotificationResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notification><t:SubscriptionId>{sub}</t:SubscriptionId><t:PreviousWatermark>{previous}</t:PreviousWatermark><t:MoreEvents>{more}</t:MoreEvents>{events}</m:Notification></m:SendNotificationResponseMessage></m:ResponseMessages></m:SendNotification></s:Body></s:Envelope>"#
        )
    }

    fn run(expect: Expect, bodies: &[&str]) -> Vec<Finding> {
        let c = case(None);
        let s = step("await", expect);
        let ex: Vec<_> = bodies.iter().map(|b| exchange(200, b)).collect();
        let mut vars = Vars::new();
        vars.set("bad", "BAD");
        vars.set("a", "SA");
        vars.set("b", "SB");
        Notify.check(&StepInput::new(&c, &s, &ex, &vars))
    }

    #[test]
    fn stream_envelope_expectations() {
        let ok = Expect {
            connection_status: Some(ConnectionStatus::Ok),
            error_subscription_ids: Some(vec!["${bad}".into()]),
            ..Default::default()
        };
        assert!(run(ok, &[STREAM_ERROR]).is_empty());
        let wrong = Expect {
            connection_status: Some(ConnectionStatus::Closed),
            error_subscription_ids: Some(vec!["${bad}".into(), "OTHER".into()]),
            ..Default::default()
        };
        let f = run(wrong, &[STREAM_ERROR]);
        let m = fails(&f);
        assert!(
            m[0].contains("expected ConnectionStatus Closed, got OK"),
            "{m:?}"
        );
        assert!(
            m[1].contains("expected ErrorSubscriptionIds [BAD, OTHER], got [BAD]"),
            "{m:?}"
        );
        let f = run(
            Expect {
                connection_status: Some(ConnectionStatus::Ok),
                ..Default::default()
            },
            &[GET_EVENTS_OK],
        );
        assert!(
            fails(&f)[0].contains("expected a GetStreamingEvents envelope"),
            "{f:?}"
        );
    }

    #[test]
    fn previous_watermark_chain_and_more_events() {
        let p1 = push("S", "W0", true, &["W1", "W2"]);
        let p2 = push("S", "W2", true, &["W3"]);
        let p3 = push("S", "W3", false, &["W4"]);
        let expect = Expect {
            watermark_chain: Some(true),
            more_events_until_last: Some(true),
            ..Default::default()
        };
        assert!(run(expect.clone(), &[&p1, &p2, &p3]).is_empty());
        let broken = push("S", "W9", false, &["W4"]);
        let f = run(expect, &[&p1, &p2, &broken]);
        let m = fails(&f);
        assert!(
            m[0].contains("breaks at notification 3: PreviousWatermark is \"W9\""),
            "{m:?}"
        );
        let f = run(
            Expect {
                more_events_until_last: Some(true),
                ..Default::default()
            },
            &[&p1, &p3, &p2],
        );
        assert!(fails(&f)[0].contains("got [true, false, true]"), "{f:?}");
        let f = run(
            Expect {
                previous_watermark: Some("W0".into()),
                ..Default::default()
            },
            &[&p1, &p2],
        );
        assert_eq!(fails(&f).len(), 1, "{f:?}");
        assert!(fails(&f)[0].contains("got \"W2\""), "{f:?}");
    }

    #[test]
    fn events_must_arrive_under_their_subscription() {
        let a = push("SA", "W0", false, &["1"]);
        let b = push("SB", "W0", false, &["2"]);
        let pattern = |item: &str| EventPattern {
            line: 7,
            kind: EventKind::Created,
            item: Some(item.into()),
            folder: None,
            parent: None,
            old_parent: None,
            old_item: None,
            old_folder: None,
            unread_count: None,
        };
        let expect = |sub_for_1: &str| Expect {
            events: vec![pattern("I1"), pattern("I2")],
            event_subscriptions: vec![Some(sub_for_1.into()), Some("${b}".into())],
            ..Default::default()
        };
        assert!(run(expect("${a}"), &[&a, &b]).is_empty());
        let f = run(expect("${b}"), &[&a, &b]);
        let m = fails(&f);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].contains("CreatedEvent (item=I1): it arrived under subscription SA instead of SB"),
            "{m:?}"
        );
        assert_eq!(f[0].line, 7);
        let twice = push("SB", "W0", false, &["1"]);
        let f = run(expect("${a}"), &[&a, &b, &twice]);
        assert!(fails(&f)[0].contains("also under SB"), "{f:?}");
    }
}
