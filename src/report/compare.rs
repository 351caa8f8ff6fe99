//! `compare a.json b.json …`: cases × targets from finished JSON reports,
//! one verdict per cell, the cases where the targets differ first (the way
//! Autobahn|Testsuite compares implementations).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use ews_proto::ews::ServerVersionInfo;

/// A JSON report that could not be read as one.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: not an ews-conformance JSON report: {message}", file.display())]
    Parse {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: written by `{tool}`, not by ews-conformance", file.display())]
    OtherTool { file: PathBuf, tool: String },
    #[error("compare needs at least two reports (got {0})")]
    TooFew(usize),
}

#[derive(Deserialize)]
struct ReportFile {
    tool: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    server_version: Option<ServerVersionInfo>,
    #[serde(default)]
    cases: Vec<CaseEntry>,
}

#[derive(Deserialize)]
struct CaseEntry {
    id: String,
    #[serde(default)]
    title: String,
    verdict: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    exchanges: Vec<ExchangeEntry>,
    #[serde(default)]
    findings: Vec<FindingEntry>,
}

#[derive(Deserialize)]
struct ExchangeEntry {
    #[serde(default)]
    findings: Vec<FindingEntry>,
}

#[derive(Deserialize)]
struct FindingEntry {
    #[serde(default)]
    check: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    message: String,
}

/// One compared report.
#[derive(Debug, Clone)]
pub struct Column {
    pub file: PathBuf,
    /// The target's label as the run named it.
    pub target: String,
    pub server_version: Option<ServerVersionInfo>,
    /// The ews-conformance version that wrote the report.
    pub tool_version: String,
}

impl Column {
    /// `label` plus the server's version, when the report has it.
    pub fn heading(&self) -> String {
        match &self.server_version {
            Some(v) => format!("{} · {}", self.target, v.display()),
            None => self.target.clone(),
        }
    }
}

/// One case's verdict in one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub verdict: String,
    /// The verdict's reason or the first failing finding, in one line.
    pub why: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub title: String,
    /// One per column; `None`: the report has no such case.
    pub cells: Vec<Option<Cell>>,
}

impl Row {
    /// Whether the reports disagree on this case (a missing case disagrees).
    pub fn differs(&self) -> bool {
        let first = self
            .cells
            .first()
            .and_then(|c| c.as_ref().map(|c| &c.verdict));
        self.cells
            .iter()
            .any(|c| c.as_ref().map(|c| &c.verdict) != first || c.is_none())
    }
}

/// Cases × reports.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub columns: Vec<Column>,
    /// Differing cases first, each group by id.
    pub rows: Vec<Row>,
}

impl Comparison {
    /// Reads the reports at `paths` (at least two).
    pub fn load(paths: &[PathBuf]) -> Result<Self, CompareError> {
        if paths.len() < 2 {
            return Err(CompareError::TooFew(paths.len()));
        }
        let mut reports = Vec::new();
        for p in paths {
            reports.push((p.clone(), read(p)?));
        }
        Ok(Self::from_reports(reports))
    }

    fn from_reports(reports: Vec<(PathBuf, ReportFile)>) -> Self {
        let n = reports.len();
        let mut rows: BTreeMap<String, Row> = BTreeMap::new();
        let mut columns = Vec::new();
        for (i, (file, report)) in reports.into_iter().enumerate() {
            columns.push(Column {
                file,
                target: report.target,
                server_version: report.server_version,
                tool_version: report.version,
            });
            for case in report.cases {
                let row = rows.entry(case.id.clone()).or_insert_with(|| Row {
                    id: case.id.clone(),
                    title: case.title.clone(),
                    cells: vec![None; n],
                });
                if row.title.is_empty() {
                    row.title = case.title.clone();
                }
                let why = case.reason.clone().or_else(|| first_failure(&case));
                row.cells[i] = Some(Cell {
                    verdict: case.verdict,
                    why: why.map(|w| one_line(&w)),
                });
            }
        }
        let (mut rows, same): (Vec<Row>, Vec<Row>) = rows.into_values().partition(|r| r.differs());
        rows.extend(same);
        Comparison { columns, rows }
    }

    /// How many cases differ.
    pub fn differences(&self) -> usize {
        self.rows.iter().filter(|r| r.differs()).count()
    }

    /// Per column, each verdict's count.
    pub fn tallies(&self) -> Vec<BTreeMap<String, usize>> {
        (0..self.columns.len())
            .map(|i| {
                let mut t = BTreeMap::new();
                for row in &self.rows {
                    let v = row.cells[i]
                        .as_ref()
                        .map_or("absent", |c| c.verdict.as_str());
                    *t.entry(v.to_string()).or_insert(0) += 1;
                }
                t
            })
            .collect()
    }

    /// The verdicts that occur anywhere, in a fixed order.
    pub fn verdicts(&self) -> BTreeSet<String> {
        self.rows
            .iter()
            .flat_map(|r| r.cells.iter().flatten().map(|c| c.verdict.clone()))
            .collect()
    }

    /// The matrix for a terminal: numbered columns, then one line per case.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for (i, c) in self.columns.iter().enumerate() {
            out.push_str(&format!(
                "[{}] {} ({})\n",
                i + 1,
                super::escape_controls(&c.heading()),
                c.file.display()
            ));
        }
        let width = self
            .rows
            .iter()
            .map(|r| r.id.chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        out.push('\n');
        out.push_str(&format!("  {:width$}", "case"));
        for i in 0..self.columns.len() {
            out.push_str(&format!("  {:16}", format!("[{}]", i + 1)));
        }
        out.push('\n');
        let differences = self.differences();
        for (k, row) in self.rows.iter().enumerate() {
            if k == differences && differences > 0 && differences < self.rows.len() {
                out.push_str("  -- the same in every report --\n");
            }
            out.push_str(if row.differs() { "≠ " } else { "  " });
            out.push_str(&format!("{:width$}", row.id));
            for cell in &row.cells {
                let v = cell.as_ref().map_or("-", |c| c.verdict.as_str());
                out.push_str(&format!("  {v:16}"));
            }
            out.push('\n');
        }
        out.push('\n');
        for (i, t) in self.tallies().iter().enumerate() {
            let counts: Vec<String> = t.iter().map(|(v, n)| format!("{n} {v}")).collect();
            out.push_str(&format!("[{}] {}\n", i + 1, counts.join(", ")));
        }
        out.push_str(&format!(
            "{} of {} cases differ\n",
            differences,
            self.rows.len()
        ));
        out
    }
}

fn read(path: &Path) -> Result<ReportFile, CompareError> {
    let text = std::fs::read_to_string(path).map_err(|source| CompareError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let report: ReportFile = serde_json::from_str(&text).map_err(|e| CompareError::Parse {
        file: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    if report.tool != "ews-conformance" {
        return Err(CompareError::OtherTool {
            file: path.to_path_buf(),
            tool: report.tool,
        });
    }
    Ok(report)
}

fn first_failure(case: &CaseEntry) -> Option<String> {
    case.exchanges
        .iter()
        .flat_map(|e| e.findings.iter())
        .chain(case.findings.iter())
        .find(|f| f.severity == "fail")
        .map(|f| format!("[{}] {}", f.check, f.message))
}

fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let cut = line.floor_char_boundary(240);
    let mut s = super::escape_controls(&line[..cut]).into_owned();
    if cut < line.len() || text.lines().nth(1).is_some() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(target: &str, cases: &[(&str, &str)]) -> String {
        let cases: Vec<serde_json::Value> = cases
            .iter()
            .map(|(id, v)| {
                serde_json::json!({
                    "id": id, "title": format!("title of {id}"), "verdict": v,
                    "exchanges": [{"findings": [{"check": "codes", "severity": "fail",
                        "message": format!("{id} broke\nsecond line")}]}],
                    "findings": []
                })
            })
            .collect();
        serde_json::json!({
            "tool": "ews-conformance", "version": "0.1.0", "target": target,
            "server_version": {"major": 15, "minor": 1, "major_build": 2507,
                "minor_build": 6, "version": "V2017_07_11"},
            "cases": cases
        })
        .to_string()
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn differing_cases_come_first_and_missing_cases_differ() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = write(
            dir.path(),
            "a.json",
            &report(
                "a",
                &[
                    ("x/same", "pass"),
                    ("x/split", "pass"),
                    ("x/only-a", "pass"),
                ],
            ),
        );
        let b = write(
            dir.path(),
            "b.json",
            &report("b", &[("x/same", "pass"), ("x/split", "fail")]),
        );
        let c = Comparison::load(&[a, b]).expect("loads");
        let ids: Vec<&str> = c.rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["x/only-a", "x/split", "x/same"]);
        assert_eq!(c.differences(), 2);
        let split = &c.rows[1];
        assert_eq!(
            split.cells[1]
                .as_ref()
                .and_then(|c| c.why.clone())
                .as_deref(),
            Some("[codes] x/split broke…")
        );
        assert_eq!(c.columns[0].heading(), "a · 15.1.2507.6 (V2017_07_11)");
        let text = c.render_text();
        assert!(text.contains("≠ x/split"), "{text}");
        assert!(text.contains("  x/same"), "{text}");
        assert!(text.contains("2 of 3 cases differ"), "{text}");
        assert!(text.contains("[2] 1 absent, 1 fail, 1 pass"), "{text}");
    }

    #[test]
    fn bad_reports_are_named_with_their_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = write(dir.path(), "good.json", &report("a", &[]));
        let broken = write(
            dir.path(),
            "broken.json",
            "{\n  \"tool\": \"ews-conformance\",\n  \"cases\": 7\n}",
        );
        let err = Comparison::load(&[good.clone(), broken]).expect_err("broken");
        let text = err.to_string();
        assert!(text.contains("broken.json:3:"), "{text}");
        let other = write(dir.path(), "other.json", r#"{"tool": "autobahn"}"#);
        let err = Comparison::load(&[good.clone(), other]).expect_err("other tool");
        assert!(err.to_string().contains("written by `autobahn`"), "{err}");
        assert!(matches!(
            Comparison::load(&[good]),
            Err(CompareError::TooFew(1))
        ));
        let missing = dir.path().join("missing.json");
        let err = Comparison::load(&[missing.clone(), missing]).expect_err("missing");
        assert!(err.to_string().contains("missing.json"), "{err}");
    }
}
