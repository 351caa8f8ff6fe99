//! Checks: code that judges a step's exchanges against the case's
//! expectations. Each kind has a stable name that case files use in
//! `checks = [...]`; the registry holds the kinds a run knows.
//!
//! Built in: `codes`, `asserts`, `events`, `notify`, `structure`, `shape`,
//! `batching`, `watermark`, `golden` (and `xsd` with the `xsd` feature, when
//! the settings name schema files). A kind judges one step at a time
//! ([`Check::check`]), the whole case once it has run ([`Check::check_case`]),
//! or both.

mod answer;
pub mod asserts;
pub mod batching;
pub mod codes;
mod event_match;
pub mod events;
pub mod exchange;
pub mod expected_shape;
mod finding;
pub mod golden;
mod input;
mod kind;
pub mod normalize;
pub mod notify;
mod registry;
pub mod request;
pub mod shape;
pub mod structure;
#[cfg(test)]
pub(crate) mod testing;
pub mod watermark;
pub mod wire;
#[cfg(feature = "xsd")]
pub mod xsd;
#[cfg(feature = "xsd")]
pub mod xsd_check;

pub use answer::{
    Answer, MISSED_EVENTS, notifications, notifications_parsed, reports_missed_events,
};
pub use finding::{Finding, Severity};
pub use input::{CaseInput, Parsed, StepInput};
pub use kind::Check;
pub use registry::CheckRegistry;

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::case::template::Vars;
    use ews_proto::ews::ResponseClass;

    #[test]
    fn answers_are_read_in_every_form() {
        assert_eq!(Answer::read(GET_EVENTS_OK).code(), Some("NoError"));
        assert!(matches!(
            Answer::read(GET_EVENTS_OK),
            Answer::Message {
                class: Some(ResponseClass::Success),
                ..
            }
        ));
        assert_eq!(
            Answer::read(NOT_FOUND).code(),
            Some("ErrorSubscriptionNotFound")
        );
        let fault = Answer::read(FAULT);
        assert!(matches!(fault, Answer::Fault(_)));
        assert_eq!(fault.code(), Some("ErrorSchemaValidation"));
        assert!(matches!(Answer::read("oops"), Answer::NotSoap { .. }));
        assert!(matches!(Answer::read(""), Answer::NotSoap { .. }));
    }

    #[test]
    fn notifications_are_found() {
        let n = notifications(GET_EVENTS_OK).expect("parses");
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].events.len(), 3);
        assert_eq!(n[0].more_events, Some(false));
        assert!(notifications(NOT_FOUND).expect("parses").is_empty());
    }

    #[test]
    fn registry_filters_by_case_checks() {
        let r = CheckRegistry::builtin();
        assert_eq!(
            r.names(),
            [
                "codes",
                "asserts",
                "events",
                "notify",
                "structure",
                "shape",
                "batching",
                "watermark",
                "golden"
            ]
        );
        let expect = crate::case::Expect {
            codes: vec!["NoError".into()],
            ..Default::default()
        };
        let ex = [exchange(200, NOT_FOUND)];
        let vars = Vars::new();
        let all = case(None);
        let s = step("poll", expect);
        let input = StepInput::new(&all, &s, &ex, &vars);
        assert!(r.run(&input).iter().any(|f| f.check == "codes"));
        let only_events = case(Some(vec!["events".into()]));
        let input = StepInput::new(&only_events, input.step, input.exchanges, input.vars);
        assert!(r.run(&input).is_empty(), "codes is not selected");
    }

    #[test]
    fn early_readings_are_what_the_case_checks_would_read() {
        let streamed = format!("{GET_EVENTS_OK}{NOT_FOUND}");
        let mut unanswered = exchange(200, "");
        unanswered.status = None;
        let mut exchanges = vec![
            exchange(200, GET_EVENTS_OK),
            exchange(500, FAULT),
            exchange(200, &streamed),
            exchange(200, "<not xml"),
            unanswered,
        ];
        exchanges[0].request = get_events_request("S1", "W0");
        exchanges[1].request = SUBSCRIBE_REQUEST.into();
        let vars = Vars::new();
        let c = case(None);
        let s = step("poll", Default::default());
        for with_asked in [false, true] {
            let mut exchanges = exchanges.clone();
            if with_asked {
                for ex in &mut exchanges {
                    ex.asked = Some(request::Asked::read(&ex.request));
                }
            }
            let input = StepInput::new(&c, &s, &exchanges, &vars);
            let early: Vec<Option<wire::Reading>> =
                (0..exchanges.len()).map(|i| input.reading(i)).collect();
            // Handing the replies over reads the same, whether or not a
            // check read them first.
            let handed = StepInput::new(&c, &s, &exchanges, &vars);
            let _ = handed.reply(2);
            assert_eq!(handed.into_readings(), early);
            assert_eq!(
                StepInput::new(&c, &s, &exchanges, &vars).into_readings(),
                early
            );
            for (i, ex) in exchanges.iter().enumerate() {
                assert_eq!(
                    early[i].as_ref(),
                    Some(&wire::read_exchange(ex)),
                    "exchange {i}"
                );
                assert_eq!(
                    input.requested_version(i),
                    request::requested_version(&ex.request)
                );
            }
            assert_eq!(
                early[0]
                    .as_ref()
                    .and_then(|r| r.reply.as_ref())
                    .map(|r| r.notifications.len()),
                Some(1)
            );
            assert_eq!(
                early[2]
                    .as_ref()
                    .and_then(|r| r.reply.as_ref())
                    .map(|r| r.notifications.len()),
                Some(1),
                "both envelopes of a stream are read"
            );
            assert_eq!(input.requested_version(1).as_deref(), Some("Exchange2013"));
            // A case input built from them lists the same entries as one that reads afresh.
            let prefilled = CaseInput::with_readings(&c, &exchanges, &vars, early);
            let fresh = CaseInput::new(&c, &exchanges, &vars);
            let strip =
                |e: &wire::Entry| (e.index, e.step.clone(), e.request.clone(), e.reply.clone());
            assert_eq!(
                prefilled.entries().iter().map(strip).collect::<Vec<_>>(),
                fresh.entries().iter().map(strip).collect::<Vec<_>>()
            );
        }
        // Gaps (and a short list) are read on demand.
        let prefilled = CaseInput::with_readings(&c, &exchanges, &vars, vec![None]);
        assert_eq!(prefilled.entries().len(), exchanges.len());
    }

    #[test]
    fn a_headline_names_each_requirement_once() {
        let with = |message: &str, reqs: &[&str]| Finding {
            check: "batching".into(),
            severity: Severity::Fail,
            requirements: reqs.iter().map(|r| r.to_string()).collect(),
            step: "drain".into(),
            line: 3,
            message: message.into(),
            evidence: None,
            exchange: None,
        };
        assert_eq!(
            with("too many (R32)", &["R32"]).headline(),
            "too many (R32)"
        );
        assert_eq!(
            with("lost (events lost, R32)", &["R32", "R33"]).headline(),
            "lost (events lost, R32) (R33)"
        );
        assert_eq!(with("no id", &["R29"]).headline(), "no id (R29)");
        assert_eq!(
            with("said (call 1 of 2)", &["R29"]).headline(),
            "said (call 1 of 2) (R29)"
        );
    }
}
