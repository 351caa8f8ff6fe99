//! The trait every kind of check implements: judge one step, the whole
//! case once it ran, or both.

use super::finding::Finding;
use super::input::{CaseInput, StepInput};

/// A kind of check.
pub trait Check: Send + Sync {
    /// The stable name case files use.
    fn name(&self) -> &'static str;
    /// Judges one step.
    fn check(&self, input: &StepInput<'_>) -> Vec<Finding>;
    /// Judges the whole case once every step has run (relations between
    /// exchanges of different steps). A finding's `exchange` is an index
    /// into [`CaseInput::exchanges`].
    fn check_case(&self, _input: &CaseInput<'_>) -> Vec<Finding> {
        Vec::new()
    }
    /// Whether [`Check::check_case`] reads [`CaseInput::entries`]: if a
    /// selected kind does, the executor reads each exchange while its step
    /// is judged, from the parses the step's checks share. Only a matter of
    /// speed: entries not read early are read when first asked for.
    fn reads_entries(&self) -> bool {
        false
    }
}
