//! Where a mistake is: `file:LINE:COL: problem` with the source line and a
//! caret underneath.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A case file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file as shown (`cases/x/y.toml`).
    pub file: PathBuf,
    /// The case id the file would have had.
    pub case_id: String,
    /// 1-based; 0 when the problem has no position (an unreadable file).
    pub line: usize,
    pub col: usize,
    pub problem: String,
    /// The source line and a caret line, when there is a position.
    pub snippet: Option<String>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.problem)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.col,
                self.problem
            )?;
        }
        if let Some(s) = &self.snippet {
            write!(f, "\n{s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// A case file's text, for positions and snippets.
pub(super) struct Source<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a Path,
    pub(super) id: &'a str,
}

impl Source<'_> {
    pub(super) fn line_of(&self, offset: usize) -> usize {
        self.position(offset).0
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(super) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    pub(super) fn error(&self, span: Range<usize>, problem: impl Into<String>) -> LoadError {
        let (line, col) = self.position(span.start);
        let source_line = self.text.lines().nth(line - 1).unwrap_or("");
        let span_end = span.end.max(span.start + 1);
        let (end_line, end_col) = self.position(span_end);
        let width = if end_line == line {
            end_col.saturating_sub(col).max(1)
        } else {
            source_line.chars().count().saturating_sub(col - 1).max(1)
        };
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        let snippet = format!(
            "{pad} |\n{line} | {source_line}\n{pad} | {}{}",
            " ".repeat(col - 1),
            "^".repeat(width)
        );
        LoadError {
            file: self.file.to_path_buf(),
            case_id: self.id.to_string(),
            line,
            col,
            problem: problem.into(),
            snippet: Some(snippet),
        }
    }
}

pub(super) fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
