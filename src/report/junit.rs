//! `--junit FILE`: JUnit XML for CI systems. Pass, fail, error and skipped
//! map to JUnit's own elements (an expected failure is a skip, an unexpected
//! pass a failure); the full grade (recorded, unreachable, expected-failure,
//! unexpected-pass), its reason and the requirement ids are kept as
//! properties, recorded observations in `system-out`.

use std::io;
use std::path::PathBuf;

use super::{Reporter, describe_findings, skipped_steps, verdict_reason};
use crate::check::Severity;
use crate::suite::exec::{Outcome, Verdict};
use crate::suite::run::Summary;
use crate::xml::XmlWriter;

pub struct Junit {
    path: PathBuf,
}

impl Junit {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Junit { path: path.into() }
    }
}

/// The JUnit document as text.
pub fn render(outcomes: &[Outcome], s: &Summary) -> String {
    let mut w = XmlWriter::new();
    w.declaration();
    let tests = s.total.to_string();
    let failures = (s.failed + s.unexpected_passes).to_string();
    let errors = (s.errors + s.unreachable).to_string();
    let skipped = (s.skipped + s.expected_failures).to_string();
    let time = format!("{:.3}", s.duration.as_secs_f64());
    let totals = [
        ("tests", tests.as_str()),
        ("failures", failures.as_str()),
        ("errors", errors.as_str()),
        ("skipped", skipped.as_str()),
        ("time", time.as_str()),
    ];
    let mut attrs = vec![("name", "ews-conformance")];
    attrs.extend(totals);
    w.start("testsuites", &attrs);
    w.start("testsuite", &attrs);
    for o in outcomes {
        let classname = o.id.rsplit_once('/').map_or("cases", |(dir, _)| dir);
        let time = format!("{:.3}", o.duration.as_secs_f64());
        w.start(
            "testcase",
            &[("name", &o.id), ("classname", classname), ("time", &time)],
        );
        w.start("properties", &[]);
        w.empty(
            "property",
            &[("name", "verdict"), ("value", o.verdict.label())],
        );
        w.empty(
            "property",
            &[
                ("name", "requirements"),
                ("value", &o.requirements.join(",")),
            ],
        );
        w.empty("property", &[("name", "title"), ("value", &o.title)]);
        if let Some(reason) = verdict_reason(&o.verdict) {
            w.empty("property", &[("name", "reason"), ("value", reason)]);
        }
        if let Some(src) = &o.source {
            w.empty("property", &[("name", "source"), ("value", src)]);
        }
        w.end("properties");
        let details = describe_findings(o, Severity::Fail) + &skipped_steps(o);
        match &o.verdict {
            Verdict::Fail => {
                let first = o.failures().next();
                let message = first.map(|f| f.message.as_str()).unwrap_or("failed");
                let kind = first.map(|f| f.check.as_str()).unwrap_or("fail");
                w.start("failure", &[("message", message), ("type", kind)])
                    .text(&details)
                    .end("failure");
            }
            Verdict::Unreachable { reason } | Verdict::Error { reason } => {
                w.start("error", &[("message", reason), ("type", o.verdict.label())])
                    .text(&details)
                    .end("error");
            }
            Verdict::Skipped { reason } => {
                w.empty("skipped", &[("message", reason)]);
            }
            Verdict::ExpectedFailure { reason } => {
                let message = format!("expected failure: {reason}");
                w.empty("skipped", &[("message", &message)]);
                w.start("system-out", &[]).text(&details).end("system-out");
            }
            Verdict::UnexpectedPass { reason } => {
                let message = format!("unexpected pass: {reason}");
                w.start(
                    "failure",
                    &[("message", &message), ("type", "unexpected-pass")],
                )
                .text(reason)
                .end("failure");
            }
            Verdict::Pass | Verdict::Recorded => {}
        }
        if matches!(o.verdict, Verdict::Recorded) {
            let notes = details + &describe_findings(o, Severity::Note);
            let text = if notes.is_empty() {
                "recorded: every expectation held".to_string()
            } else {
                format!("recorded:\n{notes}")
            };
            w.start("system-out", &[]).text(&text).end("system-out");
        } else if let Some(reason) = verdict_reason(&o.verdict).filter(|_| o.exchanges.is_empty()) {
            w.start("system-out", &[]).text(reason).end("system-out");
        }
        w.end("testcase");
    }
    w.end("testsuite").end("testsuites");
    w.into_string()
}

impl Reporter for Junit {
    fn case_finished(&mut self, _outcome: &Outcome) {}

    fn finished(&mut self, outcomes: &[Outcome], summary: &Summary) -> io::Result<()> {
        std::fs::write(&self.path, render(outcomes, summary))
    }
}
