//! A finding: what a check says about a step or case, how much it weighs,
//! and where in the case file and the exchange it points.

use serde::Serialize;

use crate::case::{Case, Step};

/// How much a finding weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A broken expectation: fails an `assert` case.
    Fail,
    /// An observation worth reporting (what form a rejection took, a recorded value).
    Note,
}

/// One verdict with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The check's stable name (`codes`, `events`, …, or `setup`, `transport`).
    pub check: String,
    pub severity: Severity,
    /// The requirement ids of the case.
    pub requirements: Vec<String>,
    pub step: String,
    /// The line of the step (or of the expectation) in the case file.
    pub line: usize,
    pub message: String,
    /// What came back, when the message alone does not show it.
    pub evidence: Option<String>,
    /// The index of the exchange within its step that this is about, if one.
    #[serde(skip)]
    pub exchange: Option<usize>,
}

impl Finding {
    /// A finding about `step` of `case`: the case's requirement ids, the
    /// step's name and line, no evidence, about no one exchange.
    pub fn new(
        check: &str,
        severity: Severity,
        case: &Case,
        step: &Step,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            check: check.to_string(),
            severity,
            requirements: case.requirements.clone(),
            step: step.name.clone(),
            line: step.line,
            message: message.into(),
            evidence: None,
            exchange: None,
        }
    }

    /// The same finding, about exchange `index` of its step.
    pub fn about(mut self, index: usize) -> Finding {
        self.exchange = Some(index);
        self
    }

    /// The same finding, with `evidence`.
    pub fn with_evidence(mut self, evidence: impl Into<String>) -> Finding {
        self.evidence = Some(evidence.into());
        self
    }

    /// The message followed by the case's requirement ids in parentheses,
    /// leaving out the ids the message already ends with: `… (R32)` stays
    /// `… (R32)` rather than `… (R32) (R32)`.
    pub fn headline(&self) -> String {
        let named = trailing_ids(&self.message);
        let rest: Vec<&str> = self
            .requirements
            .iter()
            .map(String::as_str)
            .filter(|r| !named.contains(r))
            .collect();
        if rest.is_empty() && !named.is_empty() {
            self.message.clone()
        } else {
            format!("{} ({})", self.message, rest.join(", "))
        }
    }
}

/// The requirement ids (`R` and digits) named in the parenthesis a message
/// ends with, if it ends with one.
fn trailing_ids(message: &str) -> Vec<&str> {
    let Some(inner) = message
        .trim_end()
        .strip_suffix(')')
        .and_then(|m| m.rfind('(').map(|open| &m[open + 1..]))
    else {
        return Vec::new();
    };
    inner
        .split(|c: char| !(c.is_ascii_alphanumeric()))
        .filter(|w| w.len() > 1 && w.starts_with('R') && w[1..].chars().all(|c| c.is_ascii_digit()))
        .collect()
}

/// ` (call 2 of 3)` for the second of a step's three exchanges; nothing
/// when the step made one.
pub(crate) fn call_label(index: usize, total: usize) -> String {
    if total > 1 {
        format!(" (call {} of {total})", index + 1)
    } else {
        String::new()
    }
}
