//! `--html DIR`: one self-contained page (`DIR/index.html`) to read a run
//! in a browser, and the comparison page of `compare --html`.
//!
//! Safe against whatever the target sent: every text goes through maud's
//! escaping (and [`super::escape_controls`]), and the page's Content
//! Security Policy allows no network access and only this module's own
//! style and script, by hash, so even a mistake in escaping could not run
//! a script a target smuggled into a body.

mod compare;
mod page;
mod run;
mod timeline;

use std::io;
use std::path::{Path, PathBuf};

use crate::suite::outcome::Outcome;
use crate::suite::run::Reporter;
use crate::suite::run::Summary;

pub use compare::render as render_comparison;
pub use run::render as render_run;

/// Writes `index.html` into a folder when the run is over.
pub struct Html {
    dir: PathBuf,
    target: String,
}

impl Html {
    /// `target` is the target's label (never credentials).
    pub fn new(dir: impl Into<PathBuf>, target: impl Into<String>) -> Self {
        Html {
            dir: dir.into(),
            target: target.into(),
        }
    }

    /// Where the page goes.
    pub fn page_path(dir: &Path) -> PathBuf {
        dir.join("index.html")
    }
}

impl Reporter for Html {
    fn case_finished(&mut self, _outcome: &Outcome) {}

    fn finished(&mut self, outcomes: &[Outcome], summary: &Summary) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let page = run::render(&self.target, outcomes, summary);
        std::fs::write(Self::page_path(&self.dir), page)
    }
}
