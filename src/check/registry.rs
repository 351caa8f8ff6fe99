//! The registry of the check kinds a run knows, by name.

use std::sync::Arc;

use super::finding::*;
use super::input::*;
use super::kind::Check;
use super::{
    asserts, batching, codes, events, expected_shape, golden, notify, structure, watermark,
};
use crate::case::Case;

/// The check kinds a run knows, in the order they run.
#[derive(Clone, Default)]
pub struct CheckRegistry {
    checks: Vec<Arc<dyn Check>>,
}

impl CheckRegistry {
    pub fn empty() -> Self {
        Self::default()
    }

    /// `codes`, `asserts`, `events`, `notify`, `structure`, `shape`,
    /// `batching`, `watermark`, and `golden` comparing with the snapshots
    /// under `golden/` (see [`golden::Golden::new`] to place them elsewhere
    /// or record them).
    pub fn builtin() -> Self {
        let mut r = Self::empty();
        r.register(Arc::new(codes::Codes));
        r.register(Arc::new(asserts::Asserts));
        r.register(Arc::new(events::Events));
        r.register(Arc::new(notify::Notify));
        r.register(Arc::new(structure::Structure));
        r.register(Arc::new(expected_shape::ExpectedShape));
        r.register(Arc::new(batching::Batching));
        r.register(Arc::new(watermark::Watermark));
        r.register(Arc::new(golden::Golden::default()));
        r
    }

    /// Adds a kind; a later kind with the same name replaces the earlier one.
    pub fn register(&mut self, check: Arc<dyn Check>) {
        self.checks.retain(|c| c.name() != check.name());
        self.checks.push(check);
    }

    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.checks.iter().map(|c| c.name()).collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.checks.iter().any(|c| c.name() == name)
    }

    /// Runs every check the case allows on one step.
    pub fn run(&self, input: &StepInput<'_>) -> Vec<Finding> {
        self.checks
            .iter()
            .filter(|c| input.case.runs_check(c.name()))
            .flat_map(|c| c.check(input))
            .collect()
    }

    /// Whether a kind the case allows reads [`CaseInput::entries`].
    pub fn reads_entries(&self, case: &Case) -> bool {
        self.checks
            .iter()
            .any(|c| c.reads_entries() && case.runs_check(c.name()))
    }

    /// Runs every check the case allows on the whole case.
    pub fn run_case(&self, input: &CaseInput<'_>) -> Vec<Finding> {
        self.checks
            .iter()
            .filter(|c| input.case.runs_check(c.name()))
            .flat_map(|c| c.check_case(input))
            .collect()
    }
}

impl std::fmt::Debug for CheckRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
