//! The self-test's results: one run per fault and per dialect set, the
//! verdicts, and how they are printed (the fault matrix and the dialect
//! table).

use std::time::Duration;

use super::catchers::{Expectation, Scope, expectation};
use crate::check::Finding;
use crate::suite::outcome::{Outcome, Verdict};
use crate::suite::run::{ExitStatus, Summary};
use ews_server::{DialectSet, Fault};

/// The suite against one server with some dialects: it must not fail.
#[derive(Debug, Clone)]
pub struct DialectRun {
    pub dialects: DialectSet,
    /// The profile the run used (the dialects' own, or the settings').
    pub profile: String,
    pub cases_run: usize,
    pub summary: Summary,
    /// The cases that failed or found the server unreachable.
    pub failing: Vec<Outcome>,
    /// Cases the harness could not judge: `(id, reason)`.
    pub errors: Vec<(String, String)>,
    pub start_error: Option<String>,
    /// The bounded explore run, when one was asked for.
    pub explore: Option<ExploreOutcome>,
    pub duration: Duration,
}

impl DialectRun {
    /// The run's label: the dialect's name, or `all (N dialects)`.
    pub fn label(&self) -> String {
        dialect_label(self.dialects)
    }

    pub fn passed(&self) -> bool {
        self.failing.is_empty()
            && self.errors.is_empty()
            && self.start_error.is_none()
            && self.explore.as_ref().is_none_or(|e| e.divergence.is_none())
    }

    /// Each failing case with its first finding.
    pub fn findings(&self) -> Vec<(String, String)> {
        self.failing
            .iter()
            .map(|o| {
                let first = o
                    .failures()
                    .next()
                    .map(|f| format!("[{}] {}", f.check, f.headline()))
                    .unwrap_or_else(|| match &o.verdict {
                        Verdict::Unreachable { .. } => "the target was unreachable".to_string(),
                        _ => "failed without a finding".to_string(),
                    });
                (o.id.clone(), first)
            })
            .collect()
    }
}

/// What became of one fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultVerdict {
    /// Every named catcher failed for the right reason.
    Caught,
    /// Some cases failed, but not every named catcher did, or not for the right reason.
    Partly,
    /// No case failed: a hole in the suite.
    Missed,
    /// Marked pending and not (fully) caught yet.
    AwaitingCatcher,
    /// Marked pending, but already caught: the mark can go.
    CaughtWhilePending,
}

impl FaultVerdict {
    pub fn label(self) -> &'static str {
        match self {
            FaultVerdict::Caught => "caught",
            FaultVerdict::Partly => "PARTLY CAUGHT",
            FaultVerdict::Missed => "MISSED",
            FaultVerdict::AwaitingCatcher => "awaiting catcher",
            FaultVerdict::CaughtWhilePending => "caught (pending)",
        }
    }

    /// Whether the verdict fails the self-test.
    pub fn is_failure(self) -> bool {
        matches!(self, FaultVerdict::Partly | FaultVerdict::Missed)
    }
}

/// The runs of the suite against one faulty server.
#[derive(Debug, Clone)]
pub struct FaultRun {
    pub fault: Fault,
    pub verdict: FaultVerdict,
    /// How many cases ran.
    pub cases_run: usize,
    /// The cases that failed (or found the target unreachable), sorted.
    pub catching: Vec<String>,
    /// Named catchers that ran and did not fail.
    pub missing: Vec<String>,
    /// Named catchers that are not in the loaded suite.
    pub absent: Vec<String>,
    /// Named catchers that failed without naming the fault's rule or check.
    pub wrong_reason: Vec<String>,
    /// Cases the harness could not judge (case-file or harness errors): `(id, reason)`.
    pub errors: Vec<(String, String)>,
    /// The outcomes of the catching cases.
    pub outcomes: Vec<Outcome>,
    /// Why the server could not start, if it could not.
    pub start_error: Option<String>,
    pub duration: Duration,
}

impl FaultRun {
    /// The fault's rules and the suite's catchers for it.
    pub fn info(&self) -> Expectation {
        expectation(self.fault)
    }

    /// The finding of a catching case that names the fault's rule or check.
    pub fn reason(&self, case: &str) -> Option<&Finding> {
        let o = self.outcomes.iter().find(|o| o.id == case)?;
        explaining_finding(&self.info(), o)
    }
}

/// The first failing finding of `outcome` that names `info`'s rule or check kind.
pub fn explaining_finding<'o>(info: &Expectation, outcome: &'o Outcome) -> Option<&'o Finding> {
    outcome.failures().find(|f| {
        info.checks.contains(&f.check.as_str())
            || f.requirements
                .iter()
                .any(|r| info.rules.contains(&r.as_str()))
    })
}

/// Everything a self-test found.
#[derive(Debug, Clone)]
pub struct SelftestReport {
    pub scope: Scope,
    /// Cases in the suite.
    pub cases: usize,
    /// The run against the faithful server.
    pub clean: Vec<Outcome>,
    pub clean_summary: Summary,
    /// Why the clean server could not start, if it could not.
    pub clean_start_error: Option<String>,
    /// One per fault, in catalogue order.
    pub runs: Vec<FaultRun>,
    /// Whether the fault half ran.
    pub faults_ran: bool,
    /// The specificity half, in the order asked for.
    pub dialect_runs: Vec<DialectRun>,
    pub parallel_servers: usize,
    pub duration: Duration,
}

impl SelftestReport {
    /// The clean run's cases that did not pass (recorded and skipped count as passing).
    pub fn clean_failures(&self) -> impl Iterator<Item = &Outcome> {
        self.clean.iter().filter(|o| !o.verdict.is_ok())
    }

    /// (caught, judged): faults caught among those not pending.
    pub fn score(&self) -> (usize, usize) {
        let judged: Vec<&FaultRun> = self.runs.iter().filter(|r| !r.info().pending).collect();
        let caught = judged
            .iter()
            .filter(|r| r.verdict == FaultVerdict::Caught)
            .count();
        (caught, judged.len())
    }

    /// 0 when the clean run passed and every fault not pending was caught;
    /// 1 for a clean-run failure or a hole; 2 when a server could not be
    /// reached; 3 for case-file or harness errors.
    pub fn exit_status(&self) -> ExitStatus {
        let clean = self.clean_summary.exit_status();
        if self.clean_start_error.is_some()
            || self.runs.iter().any(|r| r.start_error.is_some())
            || self.dialect_runs.iter().any(|r| r.start_error.is_some())
        {
            return ExitStatus::Unreachable;
        }
        if clean != ExitStatus::Passed && clean != ExitStatus::Failed {
            return clean;
        }
        if self.runs.iter().any(|r| !r.errors.is_empty())
            || self.dialect_runs.iter().any(|r| !r.errors.is_empty())
        {
            return ExitStatus::HarnessError;
        }
        if clean == ExitStatus::Failed
            || self.runs.iter().any(|r| r.verdict.is_failure())
            || self.dialect_runs.iter().any(|r| !r.passed())
        {
            return ExitStatus::Failed;
        }
        ExitStatus::Passed
    }

    /// The specificity table: dialect → result, each failing case with its
    /// first finding (a dialect that makes a case fail is a bug in the case
    /// or its check).
    pub fn render_dialects(&self) -> String {
        let mut out = String::new();
        if self.dialect_runs.is_empty() {
            return out;
        }
        let width = self
            .dialect_runs
            .iter()
            .map(|r| r.label().len())
            .max()
            .unwrap_or(7)
            .max(7);
        out.push_str(&format!(
            "\n{:width$}  {:8}  {:>5}  RESULT (whole suite per server; every case must pass, recorded is fine)\n",
            "DIALECT", "PROFILE", "CASES"
        ));
        for r in &self.dialect_runs {
            let s = &r.summary;
            let result = if let Some(e) = &r.start_error {
                format!("COULD NOT START: {e}")
            } else if r.passed() {
                format!(
                    "ok: {} passed, {} recorded, {} skipped ({:.1} s)",
                    s.passed,
                    s.recorded,
                    s.skipped,
                    r.duration.as_secs_f64()
                )
            } else if r.failing.is_empty() && r.errors.is_empty() {
                format!(
                    "suite ok: {} passed, {} recorded, {} skipped; EXPLORE DIVERGED ({:.1} s)",
                    s.passed,
                    s.recorded,
                    s.skipped,
                    r.duration.as_secs_f64()
                )
            } else {
                format!(
                    "FAILS {} case(s), {} error(s) ({:.1} s)",
                    r.failing.len(),
                    r.errors.len(),
                    r.duration.as_secs_f64()
                )
            };
            out.push_str(&format!(
                "{:width$}  {:8}  {:>5}  {result}\n",
                r.label(),
                r.profile,
                r.cases_run
            ));
            for (id, finding) in r.findings() {
                out.push_str(&format!("{:width$}    {id}: {finding}\n", ""));
            }
            for (id, reason) in &r.errors {
                out.push_str(&format!(
                    "{:width$}    {id}: could not be judged: {reason}\n",
                    ""
                ));
            }
            if let Some(e) = &r.explore {
                let line = match (&e.error, &e.divergence) {
                    (Some(err), _) => format!("explore could not run: {err}"),
                    (None, Some(d)) => {
                        format!("explore DIVERGED: {}", d.lines().next().unwrap_or_default())
                    }
                    (None, None) => {
                        format!("explore: {}", e.summary.lines().next().unwrap_or_default())
                    }
                };
                out.push_str(&format!("{:width$}    {line}\n", ""));
            }
        }
        let failing = self.dialect_runs.iter().filter(|r| !r.passed()).count();
        out.push_str(&format!(
            "\n{}/{} dialect run(s) clean\n",
            self.dialect_runs.len() - failing,
            self.dialect_runs.len()
        ));
        out
    }

    /// The matrix: fault → catching cases, the score and every problem.
    /// `verbose` adds, per named catcher, the finding that names the rule.
    pub fn render(&self, verbose: bool) -> String {
        if !self.faults_ran {
            return format!(
                "self-test: {} case(s); the dialect half only\n{}",
                self.cases,
                self.render_dialects()
            );
        }
        let mut out = self.render_faults(verbose);
        out.push_str(&self.render_dialects());
        out
    }

    fn render_faults(&self, verbose: bool) -> String {
        let mut out = String::new();
        let s = &self.clean_summary;
        out.push_str(&format!(
            "self-test: {} case(s); {} ({} fault(s), {} server(s) at a time)\n\n",
            self.cases,
            self.scope.describe(),
            self.runs.len(),
            self.parallel_servers,
        ));
        match &self.clean_start_error {
            Some(e) => out.push_str(&format!("clean reference server: could not start: {e}\n")),
            None => out.push_str(&format!(
                "clean reference server: {} passed, {} recorded, {} skipped, {} failed, {} error(s) — {}\n",
                s.passed,
                s.recorded,
                s.skipped,
                s.failed + s.unreachable,
                s.errors,
                if self.clean_failures().next().is_none() {
                    "clean"
                } else {
                    "NOT CLEAN"
                }
            )),
        }
        for o in self.clean_failures() {
            out.push_str(&crate::report::explain(o));
        }
        let width = self
            .runs
            .iter()
            .map(|r| r.fault.name().len())
            .max()
            .unwrap_or(5)
            .max(5);
        out.push_str(&format!(
            "\n{:width$}  {:16}  CATCHING CASES (* = named in the catalogue)\n",
            "FAULT", "RESULT"
        ));
        for r in &self.runs {
            let info = r.info();
            let cases = if r.catching.is_empty() {
                match r.verdict {
                    FaultVerdict::AwaitingCatcher => format!(
                        "waits for: {} on {}",
                        info.checks.join("/"),
                        info.catchers
                            .iter()
                            .map(|c| if r.absent.iter().any(|a| a == c) {
                                format!("{c} (not in the suite yet)")
                            } else {
                                c.to_string()
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    _ => "(none)".to_string(),
                }
            } else {
                r.catching
                    .iter()
                    .map(|c| {
                        if info.catchers.contains(&c.as_str()) {
                            format!("{c}*")
                        } else {
                            c.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push_str(&format!(
                "{:width$}  {:16}  {cases}\n",
                r.fault.name(),
                r.verdict.label()
            ));
            if verbose {
                for c in info.catchers {
                    if let Some(f) = r.reason(c) {
                        out.push_str(&format!(
                            "{:width$}    {c}: [{}] {}\n",
                            "",
                            f.check,
                            f.headline()
                        ));
                    }
                }
            }
        }
        let problems = self.problems();
        if !problems.is_empty() {
            out.push_str("\nproblems:\n");
            for p in &problems {
                out.push_str(&format!("  {p}\n"));
            }
        }
        let (caught, judged) = self.score();
        let awaiting = self
            .runs
            .iter()
            .filter(|r| r.info().pending && r.verdict != FaultVerdict::CaughtWhilePending)
            .count();
        let holes = self
            .runs
            .iter()
            .filter(|r| r.verdict == FaultVerdict::Missed)
            .count();
        out.push_str(&format!(
            "\n{caught}/{judged} faults caught; {awaiting} awaiting a catcher (pending); {holes} hole(s); {:.1} s\n",
            self.duration.as_secs_f64()
        ));
        out
    }

    /// One line per thing that is wrong or worth acting on.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.runs {
            let name = r.fault.name();
            let info = r.info();
            if let Some(e) = &r.start_error {
                out.push(format!("{name}: the faulty server could not start: {e}"));
            }
            for (id, reason) in &r.errors {
                out.push(format!("{name}: case {id} could not be judged: {reason}"));
            }
            if info.pending {
                if r.verdict == FaultVerdict::CaughtWhilePending {
                    out.push(format!(
                        "{name}: caught although marked pending; the mark can go"
                    ));
                }
                continue;
            }
            match r.verdict {
                FaultVerdict::Missed => out.push(format!(
                    "hole: {name}: no case failed ({} case(s) ran; the catalogue names {})",
                    r.cases_run,
                    info.catchers.join(", ")
                )),
                FaultVerdict::Partly => {
                    for c in &r.absent {
                        out.push(format!("{name}: named catcher {c} is not in the suite"));
                    }
                    for c in &r.missing {
                        out.push(format!("{name}: named catcher {c} did not fail"));
                    }
                    for c in &r.wrong_reason {
                        out.push(format!(
                            "{name}: {c} failed without naming {} or a {} finding",
                            info.rules.join("/"),
                            info.checks.join("/")
                        ));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// What a bounded explore run against a dialect server found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExploreOutcome {
    pub summary: String,
    /// The (shrunk) divergence, if a sequence diverged from the model.
    pub divergence: Option<String>,
    /// Why exploring could not run.
    pub error: Option<String>,
}

/// A dialect set's name: the dialect's, or `all (N dialects)`.
pub(super) fn dialect_label(dialects: DialectSet) -> String {
    if dialects == DialectSet::all_compatible() && dialects.len() > 1 {
        format!("all ({} dialects)", dialects.len())
    } else {
        dialects.to_string()
    }
}
