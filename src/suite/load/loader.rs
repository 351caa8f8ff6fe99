//! Finding and parsing case files: one bad file never stops the others.

use std::path::Path;

use super::discover::*;
use super::source::{LoadError, Source};
use crate::case::*;
use crate::check::CheckRegistry;
use crate::suite::operation::OpRegistry;

/// The highest requirement id of the digest (R1..R78).
pub const MAX_REQUIREMENT: u32 = 78;

/// Rules the digest states in its notes without an R-id, asserted by name.
pub const NOTE_REQUIREMENTS: &[&str] = &["GS6"];

/// The built-in variables every case sees (`${folder}` only when isolated).
pub const BUILTIN_VARS: &[&str] = &["user", "user2", "push_url", "case", "unique"];

/// Every case under a folder, and the files that failed.
#[derive(Debug, Default)]
pub struct LoadedSuite {
    pub cases: Vec<Case>,
    pub errors: Vec<LoadError>,
}

/// Loads cases with the operations and checks they may name.
#[derive(Debug, Clone)]
pub struct Loader<'a> {
    pub(super) ops: &'a OpRegistry,
    pub(super) checks: &'a CheckRegistry,
}

impl<'a> Loader<'a> {
    pub fn new(ops: &'a OpRegistry, checks: &'a CheckRegistry) -> Self {
        Loader { ops, checks }
    }

    /// Every `*.toml` in the subfolders of `dir` (recursively, sorted). Files
    /// at the top (the requirement catalogue) and `profiles/` are not cases.
    pub fn load_dir(&self, dir: &Path) -> LoadedSuite {
        let mut suite = LoadedSuite::default();
        let mut files = Vec::new();
        if let Err(e) = collect(dir, dir, &mut files) {
            suite.errors.push(LoadError {
                file: dir.to_path_buf(),
                case_id: String::new(),
                line: 0,
                col: 0,
                problem: format!("cannot read the case folder: {e}"),
                snippet: None,
            });
            return suite;
        }
        files.sort();
        for file in files {
            match self.load_file(dir, &file) {
                Ok(case) => suite.cases.push(case),
                Err(e) => suite.errors.push(e),
            }
        }
        suite
    }

    /// One file, its id taken relative to `root`.
    pub fn load_file(&self, root: &Path, file: &Path) -> Result<Case, LoadError> {
        let id = case_id(root, file);
        let text = std::fs::read_to_string(file).map_err(|e| LoadError {
            file: file.to_path_buf(),
            case_id: id.clone(),
            line: 0,
            col: 0,
            problem: format!("cannot read the file: {e}"),
            snippet: None,
        })?;
        self.parse(&text, file, &id)
    }

    /// Parses and validates case text (`file` and `id` are used in messages and the result).
    pub fn parse(&self, text: &str, file: &Path, id: &str) -> Result<Case, LoadError> {
        let src = Source { text, file, id };
        let raw: RawCase = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            src.error(span, e.message().trim().to_string())
        })?;
        self.validate(&src, raw)
    }
}
