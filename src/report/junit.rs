//! `--junit FILE`: JUnit XML for CI systems, written by `quick-junit`. Pass,
//! fail, error and skipped map to JUnit's own elements (an expected failure
//! is a skip, an unexpected pass a failure); the full grade (recorded,
//! unreachable, expected-failure, unexpected-pass), its reason and the
//! requirement ids are kept as properties, recorded observations in
//! `system-out`.
//!
//! Every text passes through [`sanitize`] first: the target's bytes may hold
//! characters XML 1.0 cannot carry even escaped, and they are shown as
//! `\u{..}` rather than dropped.

use std::io;
use std::path::PathBuf;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::{Reporter, describe_findings, escape_controls, skipped_steps, verdict_reason};
use crate::check::Severity;
use crate::client::push::PushStatsHandle;
use crate::suite::outcome::{Outcome, Verdict};
use crate::suite::run::Summary;

pub struct Junit {
    path: PathBuf,
    push: Option<PushStatsHandle>,
}

impl Junit {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Junit {
            path: path.into(),
            push: None,
        }
    }

    /// Adds the push listener's counters as suite properties.
    pub fn with_push_stats(mut self, push: PushStatsHandle) -> Self {
        self.push = Some(push);
        self
    }
}

/// Text fit for an XML 1.0 document: control characters other than tab and
/// newline (and the non-characters U+FFFE, U+FFFF) become visible `\u{..}`.
pub fn sanitize(text: &str) -> String {
    escape_controls(text).into_owned()
}

fn property(name: &str, value: &str) -> Property {
    Property::new(sanitize(name), sanitize(value))
}

fn non_success(kind: NonSuccessKind, message: &str, ty: &str, text: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(kind);
    status.set_message(sanitize(message)).set_type(sanitize(ty));
    if !text.is_empty() {
        status.set_description(sanitize(text));
    }
    status
}

fn skipped(message: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::skipped();
    status.set_message(sanitize(message));
    status
}

fn case(o: &Outcome) -> TestCase {
    let details = describe_findings(o, Severity::Fail) + &skipped_steps(o);
    let mut system_out = None;
    let status = match &o.verdict {
        Verdict::Fail => {
            let first = o.failures().next();
            let message = first.map(|f| f.message.as_str()).unwrap_or("failed");
            let kind = first.map(|f| f.check.as_str()).unwrap_or("fail");
            non_success(NonSuccessKind::Failure, message, kind, &details)
        }
        Verdict::Unreachable { reason } | Verdict::Error { reason } => {
            non_success(NonSuccessKind::Error, reason, o.verdict.label(), &details)
        }
        Verdict::Skipped { reason } => skipped(reason),
        Verdict::ExpectedFailure { reason } => {
            system_out = Some(details.clone());
            skipped(&format!("expected failure: {reason}"))
        }
        Verdict::UnexpectedPass { reason } => non_success(
            NonSuccessKind::Failure,
            &format!("unexpected pass: {reason}"),
            "unexpected-pass",
            reason,
        ),
        Verdict::Pass | Verdict::Recorded => TestCaseStatus::success(),
    };
    if matches!(o.verdict, Verdict::Recorded) {
        let notes = details + &describe_findings(o, Severity::Note);
        system_out = Some(if notes.is_empty() {
            "recorded: every expectation held".to_string()
        } else {
            format!("recorded:\n{notes}")
        });
    } else if let Some(reason) = verdict_reason(&o.verdict).filter(|_| o.exchanges.is_empty())
        && system_out.is_none()
    {
        system_out = Some(reason.to_string());
    }
    let mut tc = TestCase::new(sanitize(&o.id), status);
    let classname = o.id.rsplit_once('/').map_or("cases", |(dir, _)| dir);
    tc.set_classname(sanitize(classname)).set_time(o.duration);
    tc.add_property(property("verdict", o.verdict.label()));
    tc.add_property(property("requirements", &o.requirements.join(",")));
    tc.add_property(property("title", &o.title));
    if let Some(reason) = verdict_reason(&o.verdict) {
        tc.add_property(property("reason", reason));
    }
    if let Some(src) = &o.source {
        tc.add_property(property("source", src));
    }
    if let Some(out) = system_out.filter(|s| !s.is_empty()) {
        tc.set_system_out(sanitize(&out));
    }
    tc
}

/// The JUnit document as text.
pub fn render(outcomes: &[Outcome], s: &Summary) -> String {
    render_with(outcomes, s, None)
}

/// [`render`], with the push listener's counters as suite properties.
pub fn render_with(
    outcomes: &[Outcome],
    s: &Summary,
    push: Option<&crate::client::push::PushStats>,
) -> String {
    let mut suite = TestSuite::new("ews-conformance");
    suite.set_time(s.duration);
    if let Some(signal) = s.interrupted {
        suite.add_property(property("interrupted", signal.name()));
    }
    if let Some(p) = push {
        suite.add_property(property("push-accepted", &p.accepted.to_string()));
        suite.add_property(property("push-refused", &p.refused().to_string()));
        suite.add_property(property("push-listener", &p.to_string()));
    }
    suite.add_test_cases(outcomes.iter().map(case));
    let mut report = Report::new("ews-conformance");
    report.set_time(s.duration).add_test_suite(suite);
    // Writing to memory fails only on a bug in the writer; keep the file valid.
    report.to_string().unwrap_or_else(|e| {
        tracing::error!(error = %e, "the JUnit report could not be written");
        r#"<?xml version="1.0" encoding="UTF-8"?><testsuites name="ews-conformance"/>"#.into()
    })
}

impl Reporter for Junit {
    fn case_finished(&mut self, _outcome: &Outcome) {}

    fn finished(&mut self, outcomes: &[Outcome], summary: &Summary) -> io::Result<()> {
        let push = self.push.as_ref().map(PushStatsHandle::get);
        std::fs::write(&self.path, render_with(outcomes, summary, push.as_ref()))
    }
}
