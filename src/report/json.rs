//! `--json FILE`: every outcome with its grade, reason, exchanges and findings.
//! Bodies are capped ([`super::capped_outcome`]); serde_json escapes every
//! control character, so the file is valid JSON whatever the target sent.

use std::io;
use std::path::PathBuf;

use serde::Serialize;

use super::{Reporter, capped_outcome};
use crate::client::push::{PushStats, PushStatsHandle};
use crate::suite::outcome::Outcome;
use crate::suite::run::Summary;
use ews_proto::ews::ServerVersionInfo;

pub struct Json {
    path: PathBuf,
    target: String,
    push: Option<PushStatsHandle>,
}

impl Json {
    /// `target` is the target's label (never credentials).
    pub fn new(path: impl Into<PathBuf>, target: impl Into<String>) -> Self {
        Json {
            path: path.into(),
            target: target.into(),
            push: None,
        }
    }

    /// Adds the push listener's counters (`push_listener`).
    pub fn with_push_stats(mut self, push: PushStatsHandle) -> Self {
        self.push = Some(push);
        self
    }
}

#[derive(Serialize)]
struct Document<'a> {
    tool: &'static str,
    version: &'static str,
    target: &'a str,
    /// What the target said it is (its first response's ServerVersionInfo).
    #[serde(skip_serializing_if = "Option::is_none")]
    server_version: Option<ServerVersionInfo>,
    summary: &'a Summary,
    exit_code: u8,
    /// What the push listener kept and refused, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    push_listener: Option<PushStats>,
    cases: Vec<Outcome>,
}

/// The JSON report as text.
pub fn render(target: &str, outcomes: &[Outcome], summary: &Summary) -> io::Result<String> {
    render_with(target, outcomes, summary, None)
}

/// [`render`] with the push listener's counters.
pub fn render_with(
    target: &str,
    outcomes: &[Outcome],
    summary: &Summary,
    push: Option<PushStats>,
) -> io::Result<String> {
    serde_json::to_string_pretty(&Document {
        tool: "ews-conformance",
        version: env!("CARGO_PKG_VERSION"),
        target,
        server_version: super::server_version(outcomes),
        summary,
        exit_code: summary.exit_status().code(),
        push_listener: push,
        cases: outcomes.iter().map(capped_outcome).collect(),
    })
    .map_err(io::Error::other)
}

impl Reporter for Json {
    fn case_finished(&mut self, _outcome: &Outcome) {}

    fn finished(&mut self, outcomes: &[Outcome], summary: &Summary) -> io::Result<()> {
        let push = self.push.as_ref().map(PushStatsHandle::get);
        let text = render_with(&self.target, outcomes, summary, push)?;
        std::fs::write(&self.path, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_push_listeners_counts_reach_the_report() {
        let summary = Summary::of(&[], std::time::Duration::ZERO);
        let stats = PushStats {
            accepted: 3,
            wrong_path: 2,
            too_large: 1,
            ..PushStats::default()
        };
        let text = render_with("t", &[], &summary, Some(stats)).expect("json");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(doc["push_listener"]["wrong_path"], 2);
        assert_eq!(doc["push_listener"]["too_large"], 1);
        assert_eq!(doc["push_listener"]["accepted"], 3);
        let without = render("t", &[], &summary).expect("json");
        assert!(!without.contains("push_listener"), "{without}");
        let xml = crate::report::junit::render_with(&[], &summary, Some(&stats));
        let doc = roxmltree::Document::parse(&xml).expect("valid XML");
        let refused = doc
            .descendants()
            .find(|n| n.attribute("name") == Some("push-refused"))
            .and_then(|n| n.attribute("value"));
        assert_eq!(refused, Some("3"));
    }
}
