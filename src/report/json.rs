//! `--json FILE`: every outcome with its grade, reason, exchanges and findings.

use std::io;
use std::path::PathBuf;

use serde::Serialize;

use super::Reporter;
use crate::suite::exec::Outcome;
use crate::suite::run::Summary;

pub struct Json {
    path: PathBuf,
    target: String,
}

impl Json {
    /// `target` is the target's label (never credentials).
    pub fn new(path: impl Into<PathBuf>, target: impl Into<String>) -> Self {
        Json {
            path: path.into(),
            target: target.into(),
        }
    }
}

#[derive(Serialize)]
struct Document<'a> {
    tool: &'static str,
    version: &'static str,
    target: &'a str,
    summary: &'a Summary,
    exit_code: u8,
    cases: &'a [Outcome],
}

/// The JSON report as text.
pub fn render(target: &str, outcomes: &[Outcome], summary: &Summary) -> io::Result<String> {
    serde_json::to_string_pretty(&Document {
        tool: "ews-conformance",
        version: env!("CARGO_PKG_VERSION"),
        target,
        summary,
        exit_code: summary.exit_status().code(),
        cases: outcomes,
    })
    .map_err(io::Error::other)
}

impl Reporter for Json {
    fn case_finished(&mut self, _outcome: &Outcome) {}

    fn finished(&mut self, outcomes: &[Outcome], summary: &Summary) -> io::Result<()> {
        let text = render(&self.target, outcomes, summary)?;
        std::fs::write(&self.path, text)
    }
}
