//! How a driven sequence can end: the target gone ([`DriveError`]), a
//! step the target refused or garbled ([`StepFailure`]), or a divergence
//! from the model; and the record of one run ([`SequenceRun`]).

use std::time::Duration;

use crate::model::mailbox::{InvalidOp, Prediction};
use crate::model::ops::Op;
use crate::model::oracle::{Divergence, DivergenceKind, Observed};

/// Why a run could not judge the target at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriveError {
    /// The sequence is not valid for the model.
    #[error(transparent)]
    Invalid(#[from] InvalidOp),
    /// The target cannot be reached or refuses the credentials.
    #[error("{0}")]
    Unreachable(String),
    /// The harness itself failed (an HTTP client could not be built).
    #[error("{0}")]
    Harness(String),
}

/// An operation the target did not perform as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    /// The operation's index in the sequence; `None` for setup.
    pub index: Option<usize>,
    /// The operation (or setup step) in words.
    pub op: String,
    /// The EWS request that failed (`CreateItem`, `GetEvents`, …).
    pub request: &'static str,
    /// The ResponseCode, when the answer had one.
    pub code: Option<String>,
    pub detail: String,
    /// The start of the response body, when there was one.
    pub evidence: Option<String>,
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "operation {i} ({}): ", self.op)?,
            None => write!(f, "{}: ", self.op)?,
        }
        write!(f, "{} failed: {}", self.request, self.detail)?;
        if let Some(e) = &self.evidence {
            write!(f, "\n  response: {e}")?;
        }
        Ok(())
    }
}

/// How a run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Step(StepFailure),
    /// What arrived departs from the prediction (never empty).
    Diverged(Vec<Divergence>),
}

/// What "the same failure" means while shrinking: the request and code of
/// a step failure, or the kind and rule of the first divergence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    Step {
        request: &'static str,
        code: Option<String>,
    },
    Divergence {
        kind: DivergenceKind,
        rule: &'static str,
    },
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signature::Step { request, code } => {
                write!(f, "{request} failed")?;
                if let Some(c) = code {
                    write!(f, " ({c})")?;
                }
                Ok(())
            }
            Signature::Divergence { kind, rule } => write!(f, "{} ({rule})", kind.as_str()),
        }
    }
}

impl Failure {
    pub fn signature(&self) -> Signature {
        match self {
            Failure::Step(s) => Signature::Step {
                request: s.request,
                code: s.code.clone(),
            },
            Failure::Diverged(d) => match d.first() {
                Some(first) => Signature::Divergence {
                    kind: first.kind,
                    rule: first.rule,
                },
                None => Signature::Divergence {
                    kind: DivergenceKind::Unexpected,
                    rule: "R32",
                },
            },
        }
    }

    /// Whether this failure shows `sig` (for a divergence: any of them).
    pub fn shows(&self, sig: &Signature) -> bool {
        match (self, sig) {
            (Failure::Step(_), Signature::Step { .. }) => self.signature() == *sig,
            (Failure::Diverged(list), Signature::Divergence { kind, rule }) => {
                list.iter().any(|d| d.kind == *kind && d.rule == *rule)
            }
            _ => false,
        }
    }

    /// The first problem, with its evidence, as a report shows it.
    pub fn first(&self) -> String {
        match self {
            Failure::Step(s) => s.to_string(),
            Failure::Diverged(d) => d.first().map(ToString::to_string).unwrap_or_default(),
        }
    }
}

/// Everything one run produced.
#[derive(Debug, Clone)]
pub struct SequenceRun {
    pub ops: Vec<Op>,
    pub prediction: Prediction,
    pub observed: Observed,
    pub failure: Option<Failure>,
    /// Requests sent to the EWS endpoint.
    pub requests: usize,
    pub duration: Duration,
    /// What is worth knowing besides the verdict: stream problems, waits
    /// that ran out, a cleanup that failed.
    pub notes: Vec<String>,
    /// The deadline of [`Driver::run_until`] passed before the sequence
    /// ended: nothing was judged.
    pub cut: bool,
}

impl SequenceRun {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// Events the prediction expected, over all subscriptions.
    pub fn predicted_events(&self) -> usize {
        self.prediction
            .subscriptions
            .values()
            .map(|p| p.events.len())
            .sum()
    }
}
