//! `--html DIR`: one self-contained page (`DIR/index.html`) to read a run
//! in a browser, and the comparison page of `compare --html`.
//!
//! Safe against whatever the target sent: every text goes through maud's
//! escaping (and [`super::escape_controls`]), and the page's Content
//! Security Policy allows no network access and only this module's own
//! style and script, by hash, so even a mistake in escaping could not run
//! a script a target smuggled into a body.

mod compare;
mod run;
mod timeline;

use std::io;
use std::path::{Path, PathBuf};

use base64::Engine;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};

use super::Reporter;
use crate::suite::outcome::Outcome;
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

const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

fn csp_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The page around `body`: no network fetches, only our style and script.
fn page(title: &str, body: Markup) -> String {
    let policy = format!(
        "default-src 'none'; style-src {}; script-src {}; img-src data:",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    );
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(policy);
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                (body)
                script { (PreEscaped(SCRIPT)) }
            }
        }
    };
    markup.into_string()
}

/// Target text fit for the page: control characters shown, not sent.
fn shown(text: &str) -> String {
    super::escape_controls(text).into_owned()
}

/// The filter bar: one checkbox per verdict present, a text search, and
/// the count of visible rows (`page.js` drives them).
fn filters(verdicts: &[(String, usize)], placeholder: &str) -> Markup {
    html! {
        div #filters {
            @for (v, n) in verdicts {
                label class={ "filter v-" (v) } {
                    input type="checkbox" class="verdict-filter" value=(v) checked;
                    " " (v) " (" (n) ")"
                }
            }
            button type="button" #only-problems { "problems only" }
            button type="button" #show-all { "all" }
            input type="search" #search placeholder=(placeholder);
            span #shown {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_admits_exactly_the_pages_own_style_and_script() {
        let text = page("t", html! { p { "x" } });
        assert!(text.contains(&csp_hash(SCRIPT)));
        assert!(text.contains(&csp_hash(STYLE)));
        assert!(text.contains("default-src 'none'"));
        assert_eq!(text.matches("<script").count(), 1);
        // The hash is of the script exactly as embedded.
        assert!(text.contains(&format!("<script>{SCRIPT}</script>")));
    }
}
