//! The requirement catalogue (`cases/requirements.toml`) and the coverage
//! listing (`ews-conformance list --coverage`): every requirement with its
//! level and the cases that cover it, the uncovered MUST requirements, and
//! the untestable ones with their reason.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::case::Case;

/// `level`: whether cases assert the requirement or record what a target does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Level {
    #[serde(rename = "MUST")]
    Must,
    #[serde(rename = "record")]
    Record,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Record => "record",
        })
    }
}

/// One `[[requirement]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub id: String,
    pub level: Level,
    pub summary: String,
    pub source: String,
    /// Why no case can exercise it.
    pub untestable: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    #[serde(rename = "requirement")]
    requirements: Vec<Requirement>,
}

/// A catalogue that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", file.display())]
pub struct CatalogueError {
    pub file: PathBuf,
    pub problem: String,
}

/// Every requirement, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    pub requirements: Vec<Requirement>,
}

impl Catalogue {
    /// `<cases>/requirements.toml`.
    pub fn file(cases_dir: &Path) -> PathBuf {
        cases_dir.join("requirements.toml")
    }

    pub fn load(cases_dir: &Path) -> Result<Catalogue, CatalogueError> {
        let file = Self::file(cases_dir);
        let text = std::fs::read_to_string(&file).map_err(|e| CatalogueError {
            file: file.clone(),
            problem: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &file)
    }

    pub fn parse(text: &str, file: &Path) -> Result<Catalogue, CatalogueError> {
        let err = |problem: String| CatalogueError {
            file: file.to_path_buf(),
            problem,
        };
        let raw: RawCatalogue = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            err(match line {
                Some(l) => format!("line {l}: {}", e.message().trim()),
                None => e.message().trim().to_string(),
            })
        })?;
        let mut seen = std::collections::BTreeSet::new();
        for r in &raw.requirements {
            if !seen.insert(r.id.as_str()) {
                return Err(err(format!("{} is listed twice", r.id)));
            }
        }
        Ok(Catalogue {
            requirements: raw.requirements,
        })
    }
}

/// One requirement and the cases naming it.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub requirement: &'a Requirement,
    /// Cases that can run (ids).
    pub cases: Vec<&'a str>,
    /// Cases that name it but are `pending` (they do not cover it yet).
    pub pending: Vec<&'a str>,
}

impl Row<'_> {
    pub fn covered(&self) -> bool {
        !self.cases.is_empty()
    }
}

/// The coverage of a catalogue by a set of cases.
#[derive(Debug, Clone)]
pub struct Coverage<'a> {
    pub rows: Vec<Row<'a>>,
    /// Requirement ids cases name that the catalogue lacks.
    pub unknown: Vec<(&'a str, &'a str)>,
}

impl<'a> Coverage<'a> {
    pub fn of(catalogue: &'a Catalogue, cases: &'a [Case]) -> Self {
        let rows = catalogue
            .requirements
            .iter()
            .map(|r| {
                let naming = cases
                    .iter()
                    .filter(|c| c.requirements.iter().any(|id| id == &r.id));
                let (pending, running): (Vec<&Case>, Vec<&Case>) =
                    naming.partition(|c| c.pending.is_some());
                Row {
                    requirement: r,
                    cases: running.iter().map(|c| c.id.as_str()).collect(),
                    pending: pending.iter().map(|c| c.id.as_str()).collect(),
                }
            })
            .collect();
        let unknown = cases
            .iter()
            .flat_map(|c| {
                c.requirements
                    .iter()
                    .map(move |r| (c.id.as_str(), r.as_str()))
            })
            .filter(|(_, r)| !catalogue.requirements.iter().any(|q| q.id == *r))
            .collect();
        Coverage { rows, unknown }
    }

    /// MUST requirements no runnable case covers and nothing marks untestable.
    pub fn uncovered_must(&self) -> Vec<&Row<'a>> {
        self.rows
            .iter()
            .filter(|r| {
                r.requirement.level == Level::Must
                    && !r.covered()
                    && r.requirement.untestable.is_none()
            })
            .collect()
    }

    /// The listing: one line per requirement, then the uncovered MUST
    /// requirements and the untestable ones with their reasons.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for r in &self.rows {
            let req = r.requirement;
            let mut what = if r.covered() {
                r.cases.join(", ")
            } else if req.untestable.is_some() {
                "(untestable)".to_string()
            } else {
                "(not covered)".to_string()
            };
            if !r.pending.is_empty() {
                what.push_str(&format!("  [pending: {}]", r.pending.join(", ")));
            }
            out.push_str(&format!(
                "{:<4} {:<6} {what}\n",
                req.id,
                req.level.to_string()
            ));
        }
        let uncovered = self.uncovered_must();
        out.push_str(&format!(
            "\nuncovered MUST requirements ({}):\n",
            uncovered.len()
        ));
        if uncovered.is_empty() {
            out.push_str("  none\n");
        }
        for r in &uncovered {
            out.push_str(&format!(
                "  {} — {}{}\n",
                r.requirement.id,
                r.requirement.summary,
                if r.pending.is_empty() {
                    String::new()
                } else {
                    format!(" (pending: {})", r.pending.join(", "))
                }
            ));
        }
        let untestable: Vec<&Row<'_>> = self
            .rows
            .iter()
            .filter(|r| r.requirement.untestable.is_some())
            .collect();
        out.push_str(&format!("\nuntestable ({}):\n", untestable.len()));
        for r in untestable {
            out.push_str(&format!(
                "  {} — {}\n",
                r.requirement.id,
                r.requirement.untestable.as_deref().unwrap_or_default()
            ));
        }
        let record_open: Vec<&str> = self
            .rows
            .iter()
            .filter(|r| r.requirement.level == Level::Record && !r.covered())
            .map(|r| r.requirement.id.as_str())
            .collect();
        if !record_open.is_empty() {
            out.push_str(&format!(
                "\nrecord-only requirements without a case: {}\n",
                record_open.join(", ")
            ));
        }
        for (case, id) in &self.unknown {
            out.push_str(&format!(
                "\nwarning: case {case} names {id}, which the catalogue lacks\n"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOGUE: &str = r#"
[[requirement]]
id = "R1"
level = "MUST"
summary = "one"
source = "s"

[[requirement]]
id = "R2"
level = "MUST"
summary = "two"
source = "s"
untestable = "needs public folders"

[[requirement]]
id = "R3"
level = "record"
summary = "three"
source = "s"

[[requirement]]
id = "R4"
level = "MUST"
summary = "four"
source = "s"
"#;

    fn case(id: &str, reqs: &[&str], pending: bool) -> Case {
        let mut c = crate::check::testing::case(None);
        c.id = id.into();
        c.requirements = reqs.iter().map(|r| r.to_string()).collect();
        c.pending = pending.then(|| "needs X".to_string());
        c
    }

    #[test]
    fn coverage_lists_cases_untestable_and_uncovered() {
        let cat = Catalogue::parse(CATALOGUE, Path::new("requirements.toml")).expect("valid");
        let cases = vec![case("a/one", &["R1"], false), case("a/four", &["R4"], true)];
        let cov = Coverage::of(&cat, &cases);
        let uncovered: Vec<&str> = cov
            .uncovered_must()
            .iter()
            .map(|r| r.requirement.id.as_str())
            .collect();
        assert_eq!(uncovered, ["R4"], "R2 is untestable, R3 is record");
        let text = cov.render();
        assert!(text.contains("R1   MUST   a/one"), "{text}");
        assert!(text.contains("R2   MUST   (untestable)"), "{text}");
        assert!(text.contains("R4 — four (pending: a/four)"), "{text}");
        assert!(text.contains("R2 — needs public folders"), "{text}");
    }

    #[test]
    fn duplicates_and_bad_levels_are_refused() {
        let twice = format!(
            "{CATALOGUE}\n[[requirement]]\nid = \"R1\"\nlevel = \"MUST\"\nsummary = \"x\"\nsource = \"s\"\n"
        );
        let e = Catalogue::parse(&twice, Path::new("r.toml")).expect_err("duplicate");
        assert!(e.to_string().contains("R1 is listed twice"), "{e}");
        let bad =
            "[[requirement]]\nid = \"R1\"\nlevel = \"SHOULD\"\nsummary = \"x\"\nsource = \"s\"\n";
        assert!(Catalogue::parse(bad, Path::new("r.toml")).is_err());
    }
}
