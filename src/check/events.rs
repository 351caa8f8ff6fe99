//! `events`: the notifications a step received against `[[step.expect.event]]`
//! patterns, `no_events`, `more_events` and `batches`.
//!
//! Events are collected from every response of the step in order, so a
//! DrainEvents step is judged on everything it drained.

use super::answer::notifications_parsed;
use super::event_match::{self, Mismatch, Rendered};
use super::finding::Finding;
use super::input::StepInput;
use super::kind::Check;
use crate::case::{EventPattern, EventsMode};
use ews_proto::ews::{Event, Notification, ObjectId};

pub struct Events;

const NAME: &str = "events";

impl Check for Events {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(&self, input: &StepInput<'_>) -> Vec<Finding> {
        let e = &input.step.expect;
        if e.events.is_empty()
            && e.no_events.is_empty()
            && e.more_events.is_none()
            && e.batches.is_none()
        {
            return Vec::new();
        }
        let step = &input.step.name;
        let mut out = Vec::new();
        // The server said it lost the events: nothing to match (the codes
        // check notes the report).
        if input.responses().any(|(_, ex, parsed)| {
            super::answer::reports_missed_events(
                e,
                &super::answer::Answer::read_parsed(&ex.response_text, parsed),
            )
        }) {
            return out;
        }
        let mut per_call: Vec<Vec<Notification>> = Vec::new();
        for (i, ex, parsed) in input.responses() {
            if ex.status.is_none() {
                continue;
            }
            match notifications_parsed(parsed) {
                Ok(n) => per_call.push(n),
                Err(problem) => {
                    out.push(
                        input
                            .fail(
                                NAME,
                                format!("step \"{step}\": cannot read the notification: {problem}"),
                            )
                            .about(i)
                            .with_evidence(crate::client::excerpt::excerpt(&ex.response_text, 600)),
                    );
                    return out;
                }
            }
        }
        let all: Vec<&Event> = per_call
            .iter()
            .flatten()
            .flat_map(|n| n.events.iter())
            .collect();
        let listing = list_events(&all);

        // Expected patterns, rendered first so a template error is reported once.
        let mut patterns = Vec::new();
        for p in &e.events {
            match render_pattern(input, NAME, p) {
                Ok(r) => patterns.push(r),
                Err(f) => out.push(*f),
            }
        }
        let exact_events;
        let (matched, all) = match e.events_mode {
            EventsMode::InOrder => (event_match::in_order(&patterns, &all), &all),
            EventsMode::Exact => {
                exact_events = event_match::counted(&patterns, &all);
                (event_match::exact(&patterns, &exact_events), &exact_events)
            }
        };
        if let Err(m) = matched {
            let (message, line) = match m {
                Mismatch::Missing { pattern, earlier } => {
                    let why = if earlier {
                        "it arrived only before an event of an earlier operation"
                    } else {
                        "it did not arrive"
                    };
                    let p = &patterns[pattern];
                    (
                        format!("step \"{step}\": expected event {p}: {why}"),
                        Some(p.line),
                    )
                }
                Mismatch::NotExact { burst, at } => {
                    let wanted: Vec<String> = patterns[burst.clone()]
                        .iter()
                        .map(|p| p.to_string())
                        .collect();
                    let got: Vec<String> = all[at..(at + burst.len()).min(all.len())]
                        .iter()
                        .map(|ev| describe(ev))
                        .collect();
                    let detail = if burst.len() == 1 {
                        format!(
                            "event {} should be {}, got {}",
                            at + 1,
                            wanted[0],
                            got.join(", ")
                        )
                    } else {
                        format!(
                            "events {}..{} should be, in any order, [{}], got [{}]",
                            at + 1,
                            at + burst.len(),
                            wanted.join(", "),
                            got.join(", ")
                        )
                    };
                    (
                        format!(
                            "step \"{step}\": the events are not exactly the expected ones: {detail}"
                        ),
                        patterns.get(burst.start).map(|p| p.line),
                    )
                }
                Mismatch::Count { expected, got } => (
                    format!(
                        "step \"{step}\": the events are not exactly the expected ones: expected exactly {expected} event(s), got {got}"
                    ),
                    None,
                ),
            };
            let mut f = input.fail(NAME, message);
            if let Some(line) = line {
                f.line = line;
            }
            f.evidence = Some(listing.clone());
            out.push(f);
        }

        for kind in &e.no_events {
            let n = all.iter().filter(|ev| ev.kind == *kind).count();
            if n > 0 {
                let mut f = input.fail(
                    NAME,
                    format!("step \"{step}\": expected no {kind}, got {n}"),
                );
                f.evidence = Some(listing.clone());
                out.push(f);
            }
        }

        if let Some(want) = e.more_events {
            let got = per_call.iter().flatten().last().map(|n| n.more_events);
            match got {
                Some(Some(got)) if got == want => {}
                Some(Some(got)) => out.push(input.fail(
                    NAME,
                    format!("step \"{step}\": expected MoreEvents {want}, got {got}"),
                )),
                Some(None) => out.push(input.fail(
                    NAME,
                    format!("step \"{step}\": expected MoreEvents {want}, but the notification has no MoreEvents"),
                )),
                None => out.push(input.fail(
                    NAME,
                    format!("step \"{step}\": expected MoreEvents {want}, but no notification arrived"),
                )),
            }
        }

        if let Some(want) = &e.batches {
            let got: Vec<usize> = per_call
                .iter()
                .map(|call| call.iter().map(|n| n.events.len()).sum())
                .collect();
            if &got != want {
                out.push(input.fail(
                    NAME,
                    format!(
                        "step \"{step}\": expected batches of {want:?} events per call, got {got:?}"
                    ),
                ));
            }
        }
        out
    }
}

/// Substitutes the templates of `p`; a template error is a finding of
/// check `check` at the pattern's line.
pub(crate) fn render_pattern(
    input: &StepInput<'_>,
    check: &str,
    p: &EventPattern,
) -> Result<Rendered, Box<Finding>> {
    Rendered::from_pattern(p, |t| {
        input.render(check, t).map_err(|mut f| {
            f.line = p.line;
            f
        })
    })
}

/// Whether each of `patterns`, its templates rendered with `vars`, matches
/// one of `events` in this order, other events between them allowed: what
/// this check requires in `in-order` mode. `None` when a template cannot be
/// rendered. Pull steps use it to decide when to stop polling for delivery.
pub fn patterns_arrived(
    patterns: &[EventPattern],
    vars: &crate::case::template::Vars,
    events: &[&Event],
) -> Option<bool> {
    let rendered: Vec<Rendered> = patterns
        .iter()
        .map(|p| Rendered::from_pattern(p, |t| vars.render(t).map_err(|_| ())))
        .collect::<Result<_, ()>>()
        .ok()?;
    Some(event_match::in_order(&rendered, events).is_ok())
}

fn describe(ev: &Event) -> String {
    let mut parts = Vec::new();
    match &ev.object {
        Some(ObjectId::Item(id)) => parts.push(format!("item={}", id.id)),
        Some(ObjectId::Folder(id)) => parts.push(format!("folder={}", id.id)),
        None => {}
    }
    if let Some(p) = &ev.parent_folder_id {
        parts.push(format!("parent={}", p.id));
    }
    match &ev.old_object {
        Some(ObjectId::Item(id)) => parts.push(format!("old_item={}", id.id)),
        Some(ObjectId::Folder(id)) => parts.push(format!("old_folder={}", id.id)),
        None => {}
    }
    if let Some(p) = &ev.old_parent_folder_id {
        parts.push(format!("old_parent={}", p.id));
    }
    if let Some(n) = ev.unread_count {
        parts.push(format!("unread_count={n}"));
    }
    if parts.is_empty() {
        ev.kind.to_string()
    } else {
        format!("{} ({})", ev.kind, parts.join(", "))
    }
}

fn list_events(all: &[&Event]) -> String {
    if all.is_empty() {
        return "no events arrived".into();
    }
    let mut s = format!("{} event(s) arrived:", all.len());
    for (i, ev) in all.iter().enumerate().take(60) {
        s.push_str(&format!("\n  {}. {}", i + 1, describe(ev)));
    }
    if all.len() > 60 {
        s.push_str(&format!("\n  … and {} more", all.len() - 60));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Expect;
    use crate::case::template::Vars;
    use crate::check::testing::*;
    use ews_proto::ews::EventKind;

    fn pattern(kind: EventKind) -> EventPattern {
        EventPattern {
            line: 40,
            kind,
            item: None,
            folder: None,
            parent: None,
            old_parent: None,
            old_item: None,
            old_folder: None,
            unread_count: None,
        }
    }

    fn run(expect: Expect, bodies: &[&str]) -> Vec<Finding> {
        let c = case(None);
        let s = step("poll", expect);
        let ex: Vec<_> = bodies.iter().map(|b| exchange(200, b)).collect();
        let mut vars = Vars::new();
        vars.set("item", "I1");
        vars.set("folder", "F1");
        Events.check(&StepInput::new(&c, &s, &ex, &vars))
    }

    #[test]
    fn in_order_patterns_with_templates_pass() {
        let created = EventPattern {
            item: Some("${item}".into()),
            parent: Some("${folder}".into()),
            ..pattern(EventKind::Created)
        };
        let moved = EventPattern {
            old_item: Some("${item}".into()),
            old_parent: Some("${folder}".into()),
            ..pattern(EventKind::Moved)
        };
        let f = run(
            Expect {
                events: vec![created, moved],
                no_events: vec![EventKind::Deleted],
                more_events: Some(false),
                batches: Some(vec![3]),
                ..Default::default()
            },
            &[GET_EVENTS_OK],
        );
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn out_of_order_missing_and_forbidden_events_fail() {
        let f = run(
            Expect {
                events: vec![pattern(EventKind::Moved), pattern(EventKind::Created)],
                ..Default::default()
            },
            &[GET_EVENTS_OK],
        );
        assert_eq!(f.len(), 1);
        assert!(
            f[0].message.contains(
                "expected event CreatedEvent: it arrived only before an event of an earlier operation"
            ),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].line, 40);
        assert!(
            f[0].evidence
                .as_deref()
                .is_some_and(|e| e.contains("3 event(s) arrived"))
        );

        let wrong_parent = EventPattern {
            parent: Some("OTHER".into()),
            ..pattern(EventKind::Created)
        };
        let f = run(
            Expect {
                events: vec![wrong_parent],
                no_events: vec![EventKind::Modified],
                more_events: Some(true),
                batches: Some(vec![2]),
                ..Default::default()
            },
            &[GET_EVENTS_OK],
        );
        let msgs: Vec<&str> = f.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(msgs.len(), 4, "{msgs:#?}");
        assert!(msgs[0].contains("CreatedEvent (parent=OTHER): it did not arrive"));
        assert!(msgs[1].contains("expected no ModifiedEvent, got 1"));
        assert!(msgs[2].contains("expected MoreEvents true, got false"));
        assert!(msgs[3].contains("expected batches of [2] events per call, got [3]"));
    }

    #[test]
    fn a_report_of_missed_events_stands_in_for_the_events_only_where_the_case_accepts_it() {
        let missed = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetStreamingEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Error"><m:MessageText>Missed some notification events.</m:MessageText><m:ResponseCode>ErrorMissedNotificationEvents</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></s:Body></s:Envelope>"#;
        let expect = |ok: bool| Expect {
            events_mode: EventsMode::Exact,
            events: vec![pattern(EventKind::Created)],
            missed_events_ok: ok,
            ..Default::default()
        };
        assert!(run(expect(true), &[missed]).is_empty());
        let f = run(expect(false), &[missed]);
        assert!(!f.is_empty(), "without the key the events are still owed");
        // With the key, events that do arrive are judged as ever.
        let f = run(expect(true), &[GET_EVENTS_OK]);
        assert!(
            f[0].message.contains("expected exactly 1 event(s), got 3"),
            "{f:?}"
        );
        // The codes check notes the report instead of failing the Error class.
        let c = case(None);
        let s = step("poll", expect(true));
        let ex = [exchange(200, missed)];
        let vars = Vars::new();
        let notes = crate::check::codes::Codes.check(&StepInput::new(&c, &s, &ex, &vars));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].severity, crate::check::finding::Severity::Note);
        let s = step("poll", expect(false));
        let fails = crate::check::codes::Codes.check(&StepInput::new(&c, &s, &ex, &vars));
        assert!(
            fails
                .iter()
                .any(|f| f.severity == crate::check::finding::Severity::Fail),
            "{fails:?}"
        );
    }

    #[test]
    fn exact_mode_refuses_extra_events() {
        let f = run(
            Expect {
                events_mode: EventsMode::Exact,
                events: vec![pattern(EventKind::Created), pattern(EventKind::Modified)],
                ..Default::default()
            },
            &[GET_EVENTS_OK],
        );
        assert!(
            f[0].message.contains("expected exactly 2 event(s), got 3"),
            "{f:?}"
        );
        let f = run(
            Expect {
                events_mode: EventsMode::Exact,
                events: vec![
                    pattern(EventKind::Created),
                    pattern(EventKind::Modified),
                    pattern(EventKind::Moved),
                ],
                batches: Some(vec![3, 3]),
                ..Default::default()
            },
            &[GET_EVENTS_OK, GET_EVENTS_OK],
        );
        let msgs: Vec<&str> = f.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "step \"poll\": the events are not exactly the expected ones: expected exactly 3 event(s), got 6"
            ]
        );
    }
}
