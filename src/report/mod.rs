//! Reporters: where outcomes go. One trait, several formats, each in its
//! own module; a run feeds them all through [`Fanout`].
//!
//! No reporter ever sees credentials: exchanges hold request bodies only,
//! and the target's Authorization travels in headers that are not recorded.

pub mod console;
pub mod json;
pub mod junit;

use std::io;

use crate::check::{Finding, Severity};
use crate::suite::exec::{Exchange, Outcome, Verdict};
use crate::suite::run::Summary;

/// Receives a run's progress (ui_test style).
pub trait Reporter: Send {
    fn case_started(&mut self, _id: &str, _title: &str) {}
    fn case_finished(&mut self, outcome: &Outcome);
    /// The run is over: `outcomes` are sorted by id.
    fn finished(&mut self, outcomes: &[Outcome], summary: &Summary) -> io::Result<()>;
}

/// Sends everything to several reporters.
#[derive(Default)]
pub struct Fanout {
    reporters: Vec<Box<dyn Reporter>>,
}

impl Fanout {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, reporter: Box<dyn Reporter>) -> Self {
        self.reporters.push(reporter);
        self
    }

    pub fn push(&mut self, reporter: Box<dyn Reporter>) {
        self.reporters.push(reporter);
    }
}

impl Reporter for Fanout {
    fn case_started(&mut self, id: &str, title: &str) {
        for r in &mut self.reporters {
            r.case_started(id, title);
        }
    }

    fn case_finished(&mut self, outcome: &Outcome) {
        for r in &mut self.reporters {
            r.case_finished(outcome);
        }
    }

    /// Every reporter gets to finish; the first error is returned.
    fn finished(&mut self, outcomes: &[Outcome], summary: &Summary) -> io::Result<()> {
        let mut first = Ok(());
        for r in &mut self.reporters {
            let result = r.finished(outcomes, summary);
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}

/// The reason line of a verdict that carries one.
pub fn verdict_reason(v: &Verdict) -> Option<&str> {
    match v {
        Verdict::Skipped { reason }
        | Verdict::Unreachable { reason }
        | Verdict::Error { reason } => Some(reason),
        _ => None,
    }
}

/// The exchange a finding is attached to, if any.
pub fn exchange_of<'a>(outcome: &'a Outcome, finding: &Finding) -> Option<&'a Exchange> {
    outcome
        .exchanges
        .iter()
        .find(|e| e.findings.iter().any(|f| std::ptr::eq(f, finding)))
}

/// A readable account of one outcome's findings: for each, the place
/// (`file:line`, step), the check and requirement ids, the message, the
/// evidence and an excerpt of the response it is about.
pub fn describe_findings(outcome: &Outcome, severity: Severity) -> String {
    let mut out = String::new();
    for f in outcome.all_findings().filter(|f| f.severity == severity) {
        out.push_str(&format!(
            "  --> {}:{}{}\n",
            outcome.file.display(),
            f.line,
            if f.step.is_empty() {
                String::new()
            } else {
                format!(" (step \"{}\")", f.step)
            }
        ));
        out.push_str(&format!(
            "   [{}] {} ({})\n",
            f.check,
            f.message,
            f.requirements.join(", ")
        ));
        if let Some(ev) = &f.evidence {
            if exchange_of(outcome, f).is_none_or(|e| !ev.starts_with(e.response_text.trim())) {
                out.push_str(&indent(&format!("evidence: {ev}"), 5));
            }
        }
        if let Some(ex) = exchange_of(outcome, f) {
            match (ex.status, &ex.error) {
                (Some(status), _) => {
                    out.push_str(&format!(
                        "     response (HTTP {status}, {} ms):\n",
                        ex.duration.as_millis()
                    ));
                    out.push_str(&indent(&crate::check::excerpt(&ex.response_text, 1200), 7));
                }
                (None, Some(err)) => out.push_str(&format!("     no response: {err}\n")),
                (None, None) => {}
            }
        }
    }
    out
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    let mut s = String::new();
    for line in text.lines() {
        s.push_str(&pad);
        s.push_str(line);
        s.push('\n');
    }
    s
}
