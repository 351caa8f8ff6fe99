//! `asserts`: Hurl-style `[[step.assert]]` tests on the response documents.
//!
//! A path is evaluated on every response of the step and the matches are
//! taken together, in order (one response for most steps; every GetEvents
//! call of a DrainEvents). `count`/`exists` judge the number of matches;
//! `equals`, `not_equals`, `matches`, `one_of` and `is_datetime` judge
//! *every* matched value, and fail when nothing matched.

use super::finding::Finding;
use super::input::StepInput;
use super::kind::Check;
use crate::case::{Assert, Predicate};
use ews_proto::ews::time::is_xs_datetime;

pub struct Asserts;

const NAME: &str = "asserts";

impl Check for Asserts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(&self, input: &StepInput<'_>) -> Vec<Finding> {
        if input.step.asserts.is_empty() {
            return Vec::new();
        }
        let mut docs = Vec::new();
        let mut out = Vec::new();
        for (i, ex, parsed) in input.responses() {
            if ex.status.is_none() {
                continue;
            }
            match parsed {
                Ok(doc) => docs.push(doc),
                Err(e) => {
                    out.push(
                        input
                            .fail(
                                NAME,
                                format!(
                                    "step \"{}\": the response is not XML, so no assert can be evaluated: {e}",
                                    input.step.name
                                ),
                            )
                            .about(i)
                            .with_evidence(crate::client::excerpt::excerpt(&ex.response_text, 300)),
                    );
                }
            }
        }
        if !out.is_empty() {
            return out;
        }
        for a in &input.step.asserts {
            let values: Vec<String> = docs
                .iter()
                .flat_map(|d| a.path.select(d).strings())
                .collect();
            for p in &a.predicates {
                if let Some(problem) = judge(input, p, &values) {
                    out.push(finding(input, a, p, problem, &values));
                }
            }
        }
        out
    }
}

fn finding(
    input: &StepInput<'_>,
    a: &Assert,
    p: &Predicate,
    problem: String,
    values: &[String],
) -> Finding {
    let mut f = input.fail(
        NAME,
        format!(
            "step \"{}\": assert `{}` {p}: {problem}",
            input.step.name, a.path
        ),
    );
    f.line = a.line;
    f.evidence = Some(match values.len() {
        0 => "no match".to_string(),
        n => format!(
            "{n} match(es): {}",
            values
                .iter()
                .take(10)
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    });
    f
}

/// `None` when the predicate holds, else what is wrong.
fn judge(input: &StepInput<'_>, p: &Predicate, values: &[String]) -> Option<String> {
    let render = |t: &str| input.vars.render(t).map_err(|e| e.to_string());
    let every = |test: &dyn Fn(&str) -> bool, what: &str| -> Option<String> {
        if values.is_empty() {
            return Some("the path matched nothing".into());
        }
        values
            .iter()
            .find(|v| !test(v))
            .map(|bad| format!("got {bad:?}, {what}"))
    };
    match p {
        Predicate::Count(n) => {
            (values.len() != *n).then(|| format!("expected {n} match(es), got {}", values.len()))
        }
        Predicate::Exists(true) => values
            .is_empty()
            .then(|| "expected a match, got none".into()),
        Predicate::Exists(false) => {
            (!values.is_empty()).then(|| format!("expected no match, got {}", values.len()))
        }
        Predicate::Equals(t) => match render(t) {
            Err(e) => Some(format!("cannot evaluate: {e}")),
            Ok(want) => every(&|v| v == want, &format!("expected {want:?}")),
        },
        Predicate::NotEquals(t) => match render(t) {
            Err(e) => Some(format!("cannot evaluate: {e}")),
            Ok(want) => every(&|v| v != want, &format!("expected anything but {want:?}")),
        },
        Predicate::Matches(re) => every(&|v| re.is_match(v), "which does not match"),
        Predicate::OneOf(options) => {
            let rendered: Result<Vec<String>, String> = options.iter().map(|o| render(o)).collect();
            match rendered {
                Err(e) => Some(format!("cannot evaluate: {e}")),
                Ok(opts) => every(
                    &|v| opts.iter().any(|o| o == v),
                    &format!("expected one of {opts:?}"),
                ),
            }
        }
        Predicate::IsDatetime(true) => every(&is_xs_datetime, "which is not an xs:dateTime"),
        Predicate::IsDatetime(false) => every(&|v| !is_xs_datetime(v), "which is an xs:dateTime"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Expect;
    use crate::case::template::Vars;
    use crate::check::testing::*;
    use ews_proto::xml::path::XPath;

    fn run(asserts: Vec<(&str, Predicate)>, bodies: &[&str], vars: &Vars) -> Vec<Finding> {
        let c = case(None);
        let mut s = step("poll", Expect::default());
        s.asserts = asserts
            .into_iter()
            .map(|(path, p)| Assert {
                line: 30,
                path: XPath::parse(path).expect("path"),
                predicates: vec![p],
            })
            .collect();
        let ex: Vec<_> = bodies.iter().map(|b| exchange(200, b)).collect();
        Asserts.check(&StepInput::new(&c, &s, &ex, vars))
    }

    #[test]
    fn passing_asserts_give_no_findings() {
        let mut vars = Vars::new();
        vars.set("wm", "W0");
        let f = run(
            vec![
                ("//t:CreatedEvent", Predicate::Count(1)),
                ("//t:StatusEvent", Predicate::Exists(false)),
                ("//t:PreviousWatermark", Predicate::Equals("${wm}".into())),
                ("//t:SubscriptionId", Predicate::NotEquals("${wm}".into())),
                (
                    "//t:Watermark",
                    Predicate::Matches(regex::Regex::new("^W[0-9]$").expect("regex")),
                ),
                (
                    "//m:ResponseMessages/*/@ResponseClass",
                    Predicate::OneOf(vec!["Success".into(), "Warning".into()]),
                ),
                ("//t:TimeStamp", Predicate::IsDatetime(true)),
            ],
            &[GET_EVENTS_OK],
            &vars,
        );
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn failing_asserts_say_what_came_back() {
        let mut vars = Vars::new();
        vars.set("wm", "W9");
        let f = run(
            vec![
                ("//t:CreatedEvent", Predicate::Count(2)),
                ("//t:PreviousWatermark", Predicate::Equals("${wm}".into())),
                ("//t:StatusEvent", Predicate::Exists(true)),
                ("//t:SubscriptionId", Predicate::IsDatetime(true)),
                ("//t:Nothing", Predicate::Equals("x".into())),
                (
                    "//t:SubscriptionId",
                    Predicate::Equals("${undefined}".into()),
                ),
            ],
            &[GET_EVENTS_OK],
            &vars,
        );
        let msgs: Vec<&str> = f.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(msgs.len(), 6, "{msgs:#?}");
        assert_eq!(
            msgs[0],
            "step \"poll\": assert `//t:CreatedEvent` count = 2: expected 2 match(es), got 1"
        );
        assert!(
            msgs[1].contains("got \"W0\", expected \"W9\""),
            "{}",
            msgs[1]
        );
        assert!(msgs[2].contains("expected a match, got none"));
        assert!(msgs[3].contains("not an xs:dateTime"));
        assert!(msgs[4].contains("matched nothing"));
        assert!(msgs[5].contains("${undefined}"));
        assert_eq!(f[0].line, 30, "the finding points at the assert's line");
    }

    #[test]
    fn matches_are_pooled_across_responses_and_non_xml_fails() {
        let vars = Vars::new();
        let f = run(
            vec![("//t:CreatedEvent", Predicate::Count(2))],
            &[GET_EVENTS_OK, GET_EVENTS_OK],
            &vars,
        );
        assert!(f.is_empty(), "{f:?}");
        let f = run(
            vec![("//t:CreatedEvent", Predicate::Count(0))],
            &["<<not xml"],
            &vars,
        );
        assert!(f[0].message.contains("not XML"), "{f:?}");
    }
}
