//! What a case run comes to: its verdict, its exchanges and findings, its
//! duration. The run hands outcomes to the reporters.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::load::LoadError;
use crate::case::Case;
use crate::check::exchange::{Exchange, as_millis};
use crate::check::wire::Reading;
use crate::check::{Finding, Severity};
/// The verdict on one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    /// An expectation broke (an `assert` case).
    Fail,
    /// A `record` case ran: what came back is reported, nothing is judged.
    Recorded,
    /// The case did not run.
    Skipped {
        reason: String,
    },
    /// The target could not be reached or refused the credentials.
    Unreachable {
        reason: String,
    },
    /// The case file or the harness is at fault.
    Error {
        reason: String,
    },
    /// The case failed, and the profile's baseline lists it as a known failure.
    #[serde(rename = "expected-failure")]
    ExpectedFailure {
        reason: String,
    },
    /// The case passed, yet the profile's baseline lists it as a known
    /// failure: a CI failure, so the baseline gets updated.
    #[serde(rename = "unexpected-pass")]
    UnexpectedPass {
        reason: String,
    },
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Recorded => "recorded",
            Verdict::Skipped { .. } => "skipped",
            Verdict::Unreachable { .. } => "unreachable",
            Verdict::Error { .. } => "error",
            Verdict::ExpectedFailure { .. } => "expected-failure",
            Verdict::UnexpectedPass { .. } => "unexpected-pass",
        }
    }

    /// Pass, recorded, skipped and expected failures count as passed for the exit code.
    pub fn is_ok(&self) -> bool {
        matches!(
            self,
            Verdict::Pass
                | Verdict::Recorded
                | Verdict::Skipped { .. }
                | Verdict::ExpectedFailure { .. }
        )
    }
}

/// Everything known about one case run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub id: String,
    pub file: PathBuf,
    pub title: String,
    pub requirements: Vec<String>,
    pub source: Option<String>,
    pub defect: Option<String>,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub exchanges: Vec<Exchange>,
    /// Findings not tied to one exchange (setup, cleanup, a step that sent nothing).
    pub findings: Vec<Finding>,
    #[serde(rename = "duration_ms", serialize_with = "as_millis")]
    pub duration: Duration,
    /// The exchanges as read while their steps were judged, for the
    /// case-level checks; emptied when those run.
    #[serde(skip)]
    pub(crate) readings: Vec<Option<Reading>>,
    /// When the case began: exchanges' `at` count from here.
    #[serde(skip)]
    pub(crate) started: Instant,
}

impl Outcome {
    pub(crate) fn start(case: &Case) -> Self {
        Outcome {
            id: case.id.clone(),
            file: case.file.clone(),
            title: case.title.clone(),
            requirements: case.requirements.clone(),
            source: case.source.clone(),
            defect: case.defect.clone(),
            verdict: Verdict::Pass,
            exchanges: Vec::new(),
            findings: Vec::new(),
            duration: Duration::ZERO,
            readings: Vec::new(),
            started: Instant::now(),
        }
    }

    /// The outcome of a case file that could not be loaded.
    pub fn from_load_error(err: &LoadError) -> Self {
        Outcome {
            id: err.case_id.clone(),
            file: err.file.clone(),
            title: String::new(),
            requirements: Vec::new(),
            source: None,
            defect: None,
            verdict: Verdict::Error {
                reason: err.to_string(),
            },
            exchanges: Vec::new(),
            findings: Vec::new(),
            duration: Duration::ZERO,
            readings: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Every finding, exchange-level first, in order.
    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        self.exchanges
            .iter()
            .flat_map(|e| e.findings.iter())
            .chain(self.findings.iter())
    }

    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.all_findings().filter(|f| f.severity == Severity::Fail)
    }
}
