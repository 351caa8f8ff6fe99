//! Finding, parsing and validating case files.
//!
//! Every mistake is reported as `file:LINE:COL: problem` with the source
//! line and a caret underneath, and one bad file never stops the others.

mod discover;
mod loader;
mod source;
mod validate;

#[cfg(test)]
mod tests;

pub use discover::case_id;
pub use loader::{BUILTIN_VARS, LoadedSuite, Loader, MAX_REQUIREMENT, NOTE_REQUIREMENTS};
pub use source::LoadError;
