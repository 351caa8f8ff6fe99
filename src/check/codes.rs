//! `codes`: HTTP status, ResponseClass, ResponseCode, SOAP fault and
//! "rejected" expectations, applied to every exchange of a step.
//!
//! A named operation with no outcome expectation must succeed (HTTP 200, no
//! fault, ResponseClass not Error), so a failed setup step (CreateItem…)
//! fails where it happened instead of confusing a later event check.

use super::answer::Answer;
use super::finding::Finding;
use super::finding::call_label;
use super::input::StepInput;
use super::kind::Check;
use crate::case::Action;
use crate::client::excerpt::excerpt;
use ews_proto::ews::ResponseClass;

pub struct Codes;

const NAME: &str = "codes";

impl Check for Codes {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(&self, input: &StepInput<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (i, ex, parsed) in input.responses() {
            let Some(status) = ex.status else {
                continue; // no response: the transport finding already says so
            };
            let answer = Answer::read_parsed(&ex.response_text, parsed);
            let call = call_label(i, input.exchanges.len());
            if super::answer::reports_missed_events(&input.step.expect, &answer) {
                let step = &input.step.name;
                out.push(
                    input
                        .note(
                            NAME,
                            format!(
                                "step \"{step}\"{call}: the server reported {} instead of delivering the events, which the case accepts (GS6)",
                                super::answer::MISSED_EVENTS
                            ),
                        )
                        .about(i),
                );
                continue;
            }
            let mut fails = judge(input, status, &answer, &call);
            if fails.is_empty() {
                continue;
            }
            let evidence = match answer.server_text() {
                Some(t) => format!(
                    "HTTP {status}, {}: \"{}\"",
                    answer.describe(),
                    excerpt(t, 300)
                ),
                None => format!("HTTP {status}, {}", answer.describe()),
            };
            for f in &mut fails {
                f.exchange = Some(i);
                if f.severity == crate::check::finding::Severity::Fail {
                    f.evidence = Some(evidence.clone());
                }
            }
            out.extend(fails);
        }
        out
    }
}

fn judge(input: &StepInput<'_>, status: u16, answer: &Answer, call: &str) -> Vec<Finding> {
    let e = &input.step.expect;
    let step = &input.step.name;
    let mut out = Vec::new();
    let is_fault = matches!(answer, Answer::Fault(_));
    let class = match answer {
        Answer::Message { class, .. } => *class,
        _ => None,
    };

    if !e.has_outcome_expectation() {
        if matches!(input.step.action, Action::Op { .. })
            && (status != 200
                || is_fault
                || class != Some(ResponseClass::Success) && class != Some(ResponseClass::Warning))
        {
            out.push(input.fail(
                NAME,
                format!(
                    "step \"{step}\"{call}: expected success (HTTP 200, ResponseClass Success), got HTTP {status} and {} \
                     (implicit expectation of a named operation; set expect.class, expect.code or expect.rejected to change it)",
                    answer.describe()
                ),
            ));
        }
        return out;
    }

    if let Some(want) = e.status
        && want != status
    {
        out.push(input.fail(
            NAME,
            format!("step \"{step}\"{call}: expected HTTP status {want}, got {status}"),
        ));
    }
    if let Some(want) = e.fault {
        if want && !is_fault {
            out.push(input.fail(
                NAME,
                format!(
                    "step \"{step}\"{call}: expected a SOAP fault, got {}",
                    answer.describe()
                ),
            ));
        } else if !want && is_fault {
            out.push(input.fail(
                NAME,
                format!(
                    "step \"{step}\"{call}: expected no SOAP fault, got {}",
                    answer.describe()
                ),
            ));
        }
    }
    if let Some(want) = e.class {
        match answer {
            Answer::Message {
                class: Some(got), ..
            } if *got == want => {}
            Answer::Message { class_text, .. } => out.push(input.fail(
                NAME,
                format!(
                    "step \"{step}\"{call}: expected ResponseClass {want}, got {}",
                    class_text.as_deref().unwrap_or("no ResponseClass")
                ),
            )),
            other => out.push(input.fail(
                NAME,
                format!(
                    "step \"{step}\"{call}: expected ResponseClass {want}, got {}",
                    other.describe()
                ),
            )),
        }
    }
    if !e.codes.is_empty() {
        let wanted = e.codes.join(" or ");
        match answer.code() {
            Some(got) if e.codes.iter().any(|c| c == got) => {}
            Some(got) => out.push(input.fail(
                NAME,
                format!("step \"{step}\"{call}: expected ResponseCode {wanted}, got {got}"),
            )),
            None => out.push(input.fail(
                NAME,
                format!(
                    "step \"{step}\"{call}: expected ResponseCode {wanted}, got {} (no ResponseCode)",
                    answer.describe()
                ),
            )),
        }
    }
    if !e.record_codes.is_empty() {
        let named = e.record_codes.join(" or ");
        let got = answer.code().unwrap_or("no ResponseCode");
        let said = if e.record_codes.iter().any(|c| c == got) {
            format!("answered {got}, as the documentation suggests")
        } else {
            format!(
                "answered {got}; the documentation suggests {named} but is unsure (recorded, not judged)"
            )
        };
        out.push(input.note(NAME, format!("step \"{step}\"{call}: {said}")));
    }
    if let Some(want) = e.rejected {
        let form = rejection_form(status, answer);
        match (want, form) {
            (true, Some(form)) => {
                out.push(input.note(
                    NAME,
                    format!("step \"{step}\"{call}: rejected as {form}"),
                ));
            }
            (true, None) => out.push(input.fail(
                NAME,
                format!(
                    "step \"{step}\"{call}: expected the request to be rejected (a SOAP fault, ResponseClass Error or HTTP 4xx/5xx), \
                     got HTTP {status} and {}",
                    answer.describe()
                ),
            )),
            (false, Some(form)) => out.push(input.fail(
                NAME,
                format!("step \"{step}\"{call}: expected the request to be accepted, but it was rejected as {form}"),
            )),
            (false, None) => {}
        }
    }
    out
}

/// How a request was rejected, if it was: the digest (S8) allows several forms.
fn rejection_form(status: u16, answer: &Answer) -> Option<String> {
    match answer {
        Answer::Fault(_) => Some(format!("{} with HTTP {status}", answer.describe())),
        Answer::Message {
            class: Some(ResponseClass::Error),
            ..
        } => Some(format!("{} with HTTP {status}", answer.describe())),
        _ if status >= 400 => Some(format!("HTTP {status} and {}", answer.describe())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::template::Vars;
    use crate::case::{Args, Expect};
    use crate::check::finding::Severity;
    use crate::check::testing::*;

    fn run(expect: Expect, status: u16, body: &str) -> Vec<Finding> {
        let c = case(None);
        let s = step("poll", expect);
        let ex = [exchange(status, body)];
        let vars = Vars::new();
        Codes.check(&StepInput::new(&c, &s, &ex, &vars))
    }

    #[test]
    fn wrong_code_names_step_expected_and_actual() {
        let f = run(
            Expect {
                codes: vec!["NoError".into()],
                ..Default::default()
            },
            200,
            NOT_FOUND,
        );
        assert_eq!(
            fails(&f),
            ["step \"poll\": expected ResponseCode NoError, got ErrorSubscriptionNotFound"]
        );
        assert_eq!(f[0].requirements, ["R29"]);
        assert_eq!(f[0].line, 12);
        assert!(
            f[0].evidence
                .as_deref()
                .is_some_and(|e| e.contains("ErrorSubscriptionNotFound"))
        );
    }

    #[test]
    fn any_of_several_codes_passes() {
        let expect = Expect {
            codes: vec![
                "ErrorSubscriptionNotFound".into(),
                "ErrorSubscriptionUnsubscribed".into(),
            ],
            class: Some(ResponseClass::Error),
            ..Default::default()
        };
        assert!(run(expect.clone(), 200, NOT_FOUND).is_empty());
        let f = run(expect, 200, GET_EVENTS_OK);
        assert_eq!(
            fails(&f),
            [
                "step \"poll\": expected ResponseClass Error, got Success",
                "step \"poll\": expected ResponseCode ErrorSubscriptionNotFound or ErrorSubscriptionUnsubscribed, got NoError"
            ]
        );
    }

    #[test]
    fn record_code_records_another_code_and_never_fails() {
        let expect = Expect {
            class: Some(ResponseClass::Error),
            record_codes: vec!["ErrorSubscriptionAccessDenied".into()],
            ..Default::default()
        };
        let f = run(expect.clone(), 200, NOT_FOUND);
        assert_eq!(fails(&f), Vec::<&str>::new());
        assert!(
            f.iter().any(|n| n.severity == Severity::Note
                && n.message.contains("answered ErrorSubscriptionNotFound; the documentation suggests ErrorSubscriptionAccessDenied")),
            "{f:?}"
        );
        // The class is still asserted: accepting the request fails.
        let f = run(expect, 200, GET_EVENTS_OK);
        assert_eq!(
            fails(&f),
            ["step \"poll\": expected ResponseClass Error, got Success"]
        );
    }

    #[test]
    fn status_and_fault() {
        let expect = Expect {
            status: Some(500),
            fault: Some(true),
            codes: vec!["ErrorSchemaValidation".into()],
            ..Default::default()
        };
        assert!(run(expect.clone(), 500, FAULT).is_empty());
        let f = run(expect, 200, NOT_FOUND);
        let msgs = fails(&f);
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs[0].contains("expected HTTP status 500, got 200"));
        assert!(msgs[1].contains("expected a SOAP fault"));
    }

    #[test]
    fn rejected_accepts_every_form_and_records_which() {
        let expect = Expect {
            rejected: Some(true),
            ..Default::default()
        };
        for (status, body, form) in [
            (
                500,
                FAULT,
                "a SOAP fault (ErrorSchemaValidation) with HTTP 500",
            ),
            (
                200,
                NOT_FOUND,
                "ResponseClass Error with ResponseCode ErrorSubscriptionNotFound",
            ),
            (400, "", "HTTP 400"),
        ] {
            let f = run(expect.clone(), status, body);
            assert_eq!(fails(&f), Vec::<&str>::new());
            assert!(
                f.iter()
                    .any(|n| n.severity == Severity::Note && n.message.contains(form)),
                "{f:?}"
            );
        }
        let f = run(expect, 200, GET_EVENTS_OK);
        assert!(fails(&f)[0].contains("expected the request to be rejected"));
    }

    #[test]
    fn named_operations_must_succeed_by_default() {
        assert!(run(Expect::default(), 200, GET_EVENTS_OK).is_empty());
        let f = run(Expect::default(), 200, NOT_FOUND);
        assert!(fails(&f)[0].contains("implicit expectation"), "{f:?}");
        // A raw `send` step has no implicit expectation.
        let c = case(None);
        let mut s = step("raw", Expect::default());
        s.action = crate::case::Action::Send {
            body: "<x/>".into(),
        };
        let ex = [exchange(500, FAULT)];
        let vars = Vars::new();
        let _ = Args::default();
        assert!(Codes.check(&StepInput::new(&c, &s, &ex, &vars)).is_empty());
    }
}
