//! The record of one exchange with the target: what a step sent, what
//! came back and when, and the findings the checks made on it. The executor
//! fills it in; the checks read it; the reports print it.

use std::time::Duration;

use serde::Serialize;

use super::finding::Finding;
use super::request::Asked;

/// One HTTP request and what came back.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// The step's name.
    pub step: String,
    /// The step's line in the case file.
    pub line: usize,
    /// The request body as sent (credentials travel in headers and are never recorded).
    pub request: String,
    /// `None` when no response arrived (see `error`).
    pub status: Option<u16>,
    pub response_text: String,
    /// How long the response took; for a document a waiting step received
    /// (a streaming envelope, a push), how long after the step began it arrived.
    #[serde(rename = "duration_ms", serialize_with = "as_millis")]
    pub duration: Duration,
    /// Why there is no response.
    pub error: Option<String>,
    pub findings: Vec<Finding>,
    /// What the request says, when the executor read it while the target
    /// worked on it (`None`: read from `request` when a check needs it).
    /// It must be `Asked::read(&request)`.
    #[serde(skip)]
    pub asked: Option<Asked>,
    /// When the exchange ended (its response or document arrived, or it
    /// failed), counted from the start of its case: the report's timeline.
    #[serde(rename = "at_ms", serialize_with = "as_millis")]
    pub at: Duration,
    /// The end of the wait the step was in when this arrived, counted from
    /// the start of the case (a waiting step's deadline, slack included).
    #[serde(
        rename = "deadline_ms",
        serialize_with = "opt_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub deadline: Option<Duration>,
}

pub(crate) fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

pub(crate) fn opt_millis<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(d.as_millis() as u64),
        None => s.serialize_none(),
    }
}
