//! The self-test: proves that the suite can fail. It runs the cases against
//! the faithful embedded reference server (every case must pass), then
//! against one fresh embedded server per fault of the catalogue
//! ([`crate::server::faults`]), and reports which cases caught each fault.
//!
//! A fault is *caught* when at least one case fails, every case the
//! catalogue names as its catcher fails, and each of those failures names
//! the broken rule: a finding of one of the fault's check kinds, or one
//! carrying one of its requirement ids. A fault no case notices is a hole in
//! the suite. Faults marked `pending` in the catalogue wait for catchers
//! other work will add; they are reported as "awaiting catcher" and never
//! fail the self-test.
//!
//! [`Scope::Full`] runs the whole suite against every fault, so the matrix
//! lists every case that notices it; [`Scope::Catalogue`] runs only the
//! catalogue's named catchers (faster, and the matrix then says so).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod catchers;

pub use catchers::{Catchers, Expectation, expectation};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::check::CheckRegistry;
use crate::check::Finding;
use crate::check::golden::{Golden, GoldenMode};
use crate::report::Reporter;
use crate::report::progress::Progress;
use crate::server::{Dialect, DialectSet, Fault, FaultSet};
use crate::settings::Settings;
use crate::suite::Case;
use crate::suite::exec::{Executor, Outcome, Verdict};
use crate::suite::run::{ExitStatus, RunOptions, Summary, run_suite};
use crate::suite::target::{RunningTarget, Target, TargetError, start_embedded_variant};

/// Which cases run against each fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every case: the matrix shows every case that notices the fault.
    Full,
    /// Only the cases the catalogue names as the fault's catchers.
    Catalogue,
}

impl Scope {
    pub fn describe(self) -> &'static str {
        match self {
            Scope::Full => "the whole suite against every fault",
            Scope::Catalogue => "only the catalogue's named catchers against each fault",
        }
    }
}

/// How a self-test runs.
#[derive(Debug, Clone)]
pub struct SelftestOptions {
    /// The faults to try; empty means the whole catalogue.
    pub faults: Vec<Fault>,
    pub scope: Scope,
    /// Faulty servers running at once.
    pub parallel_servers: usize,
    /// Cases running at once against one server.
    pub case_concurrency: usize,
    /// Run the fault half (the clean server and one server per fault).
    pub run_faults: bool,
    /// The specificity half: each set is one server running the whole
    /// suite; every case must pass (recorded is fine). Default:
    /// [`standard_dialect_runs`].
    pub dialect_runs: Vec<DialectSet>,
    /// A bounded explore run against each dialect server, after its suite run.
    pub explore: Option<ExploreBound>,
    /// Told when each server's run starts and ends.
    pub progress: Option<Arc<Progress>>,
}

impl Default for SelftestOptions {
    fn default() -> Self {
        SelftestOptions {
            faults: Vec::new(),
            scope: Scope::Full,
            parallel_servers: 8,
            case_concurrency: 4,
            run_faults: true,
            dialect_runs: standard_dialect_runs(),
            explore: None,
            progress: None,
        }
    }
}

/// One server per dialect of the catalogue, then one with every
/// compatible dialect at once.
pub fn standard_dialect_runs() -> Vec<DialectSet> {
    let mut runs: Vec<DialectSet> = Dialect::all().map(|d| DialectSet::of([d])).collect();
    runs.push(DialectSet::all_compatible());
    runs
}

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

/// A reporter that keeps nothing: the self-test reads the outcomes itself.
struct Silent;

impl Reporter for Silent {
    fn case_finished(&mut self, _outcome: &Outcome) {}
    fn finished(&mut self, _o: &[Outcome], _s: &Summary) -> std::io::Result<()> {
        Ok(())
    }
}

/// Settings for the self-test's own embedded servers: every listener on an
/// ephemeral loopback port, so many servers can run side by side.
fn server_settings(settings: &Settings) -> Settings {
    Settings {
        endpoint: None,
        push_bind: "127.0.0.1:0".into(),
        push_url: None,
        ..settings.clone()
    }
}

/// The built-in checks, with `golden` comparing against the reference
/// server's snapshots without writing anything (a faulty server's answers
/// are not snapshots to review).
fn checks_for(settings: &Settings) -> CheckRegistry {
    let mut r = CheckRegistry::builtin();
    r.register(Arc::new(Golden::new(
        settings.golden.clone(),
        GoldenMode::Verify,
        Some("reference".into()),
    )));
    r
}

/// Runs `cases` against a fresh embedded server with `faults`.
async fn run_against(
    settings: &Settings,
    faults: FaultSet,
    cases: Vec<Case>,
    case_concurrency: usize,
) -> Result<Vec<Outcome>, TargetError> {
    run_variant(
        settings,
        faults,
        DialectSet::none(),
        cases,
        case_concurrency,
        None,
    )
    .await
    .map(|(outcomes, _)| outcomes)
}

/// Runs `cases` against a fresh embedded server with `faults` and
/// `dialects`, then (when asked) a bounded explore run against the same server.
async fn run_variant(
    settings: &Settings,
    faults: FaultSet,
    dialects: DialectSet,
    cases: Vec<Case>,
    case_concurrency: usize,
    explore: Option<ExploreBound>,
) -> Result<(Vec<Outcome>, Option<ExploreOutcome>), TargetError> {
    let target = Arc::new(start_embedded_variant(settings, faults, dialects).await?);
    let executor = Executor::new(target.clone() as Arc<dyn Target>)
        .map_err(|e| TargetError::Start(e.to_string()))?
        .with_checks(checks_for(settings));
    let options = RunOptions {
        concurrency: case_concurrency,
        ..RunOptions::default()
    };
    let result = run_suite(Arc::new(executor), cases, &[], &options, &mut Silent).await;
    let explored = match explore {
        Some(bound) => {
            // The explorer's future is not Send: it gets a thread and a
            // runtime of its own, and talks to the server over HTTP as ever.
            let t = target.clone() as Arc<dyn Target>;
            let joined = tokio::task::spawn_blocking(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(explore_against(t, bound)),
                    Err(e) => ExploreOutcome {
                        summary: String::new(),
                        divergence: None,
                        error: Some(format!("no runtime for exploring: {e}")),
                    },
                }
            })
            .await;
            Some(joined.unwrap_or_else(|e| ExploreOutcome {
                summary: String::new(),
                divergence: None,
                error: Some(format!("the explore run crashed: {e}")),
            }))
        }
        None => None,
    };
    // Every clone went with the executor: stop the server and listener cleanly.
    if let Ok(target) = Arc::try_unwrap(target) {
        RunningTarget::shutdown(target).await;
    }
    Ok((result.outcomes, explored))
}

/// How much exploring each dialect server gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExploreBound {
    pub sequences: usize,
    pub seed: u64,
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

/// Generated event sequences against the dialect server, through the
/// model's public entry point; nothing is written to disk.
async fn explore_against(target: Arc<dyn Target>, bound: ExploreBound) -> ExploreOutcome {
    use crate::model::drive::{Driver, ExploreConfig, explore};
    let failed = |e: String| ExploreOutcome {
        summary: String::new(),
        divergence: None,
        error: Some(e),
    };
    let driver = match Driver::for_target(target) {
        Ok(d) => d,
        Err(e) => return failed(e.to_string()),
    };
    let config = ExploreConfig {
        cases: Some(bound.sequences),
        seed: bound.seed,
        shrink_runs: 50,
        shrink_budget: Duration::from_secs(20),
        found_dir: None,
        long_every: None,
        ..ExploreConfig::default()
    };
    match explore(&driver, &config).await {
        Ok(report) => ExploreOutcome {
            summary: report.summary(),
            divergence: report.found.as_ref().map(|f| f.report()),
            error: None,
        },
        Err(e) => failed(e.to_string()),
    }
}

fn judge(
    fault: Fault,
    suite: &BTreeSet<String>,
    ran: usize,
    outcomes: Vec<Outcome>,
    duration: Duration,
) -> FaultRun {
    let info = expectation(fault);
    let mut catching = Vec::new();
    let mut errors = Vec::new();
    let mut kept = Vec::new();
    for o in outcomes {
        match &o.verdict {
            Verdict::Fail | Verdict::Unreachable { .. } => {
                catching.push(o.id.clone());
                kept.push(o);
            }
            Verdict::Error { reason } => errors.push((o.id.clone(), reason.clone())),
            _ => {}
        }
    }
    catching.sort();
    let absent: Vec<String> = info
        .catchers
        .iter()
        .filter(|c| !suite.contains(**c))
        .map(|c| c.to_string())
        .collect();
    let missing: Vec<String> = info
        .catchers
        .iter()
        .filter(|c| suite.contains(**c) && !catching.iter().any(|x| x == *c))
        .map(|c| c.to_string())
        .collect();
    let wrong_reason: Vec<String> = info
        .catchers
        .iter()
        .filter_map(|c| kept.iter().find(|o| o.id == *c))
        .filter(|o| explaining_finding(&info, o).is_none())
        .map(|o| o.id.clone())
        .collect();
    let complete =
        !catching.is_empty() && absent.is_empty() && missing.is_empty() && wrong_reason.is_empty();
    let verdict = match (info.pending, complete) {
        (true, true) => FaultVerdict::CaughtWhilePending,
        (true, false) => FaultVerdict::AwaitingCatcher,
        (false, true) => FaultVerdict::Caught,
        (false, false) if catching.is_empty() => FaultVerdict::Missed,
        (false, false) => FaultVerdict::Partly,
    };
    FaultRun {
        fault,
        verdict,
        cases_run: ran,
        catching,
        missing,
        absent,
        wrong_reason,
        errors,
        outcomes: kept,
        start_error: None,
        duration,
    }
}

/// Runs the self-test. `cases` is the loaded suite (load errors are the
/// caller's to report). Every wait is bounded by the cases' own deadlines.
pub async fn run(
    settings: &Settings,
    cases: Vec<Case>,
    options: &SelftestOptions,
) -> SelftestReport {
    let started = Instant::now();
    let settings = server_settings(settings);
    let suite: BTreeSet<String> = cases.iter().map(|c| c.id.clone()).collect();
    let case_concurrency = options.case_concurrency.max(1);

    let slots = Arc::new(Semaphore::new(options.parallel_servers.max(1)));
    // The specificity half runs beside the fault half, sharing the slots.
    let dialect_half = {
        let slots = slots.clone();
        let settings = settings.clone();
        let cases = cases.clone();
        let runs = options.dialect_runs.clone();
        let explore = options.explore;
        let progress = options.progress.clone();
        tokio::spawn(async move {
            run_dialects(
                &settings,
                &cases,
                runs,
                slots,
                case_concurrency,
                explore,
                progress,
            )
            .await
        })
    };
    let progress = options.progress.clone();
    let (clean, clean_start_error) = if options.run_faults {
        let _slot = slots.acquire().await.ok();
        let name = "clean reference server";
        if let Some(p) = &progress {
            p.started(name);
        }
        let result =
            match run_against(&settings, FaultSet::none(), cases.clone(), case_concurrency).await {
                Ok(o) => (o, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
        if let Some(p) = &progress {
            let failed = result.0.iter().filter(|o| !o.verdict.is_ok()).count();
            p.finished(name, &format!("{failed} case(s) not passing"));
        }
        result
    } else {
        (Vec::new(), None)
    };
    let clean_summary = Summary::of(&clean, started.elapsed());

    let faults: Vec<Fault> = if !options.run_faults {
        Vec::new()
    } else if options.faults.is_empty() {
        Fault::all().collect()
    } else {
        let mut f = options.faults.clone();
        f.sort();
        f.dedup();
        f
    };
    let suite = Arc::new(suite);
    let mut tasks = JoinSet::new();
    let mut ids = std::collections::HashMap::new();
    for fault in faults {
        let chosen: Vec<Case> = match options.scope {
            Scope::Full => cases.clone(),
            Scope::Catalogue => cases
                .iter()
                .filter(|c| expectation(fault).catchers.contains(&c.id.as_str()))
                .cloned()
                .collect(),
        };
        let slots = slots.clone();
        let settings = settings.clone();
        let suite = suite.clone();
        let progress = progress.clone();
        let handle = tasks.spawn(async move {
            let began = Instant::now();
            let ran = chosen.len();
            let name = format!("fault {fault}");
            if ran == 0 {
                let r = judge(fault, &suite, 0, Vec::new(), Duration::ZERO);
                if let Some(p) = &progress {
                    p.finished(&name, r.verdict.label());
                }
                return r;
            }
            let _slot = slots.acquire().await.ok();
            if let Some(p) = &progress {
                p.started(&name);
            }
            let r = match run_against(&settings, FaultSet::of([fault]), chosen, case_concurrency)
                .await
            {
                Ok(outcomes) => judge(fault, &suite, ran, outcomes, began.elapsed()),
                Err(e) => {
                    let mut r = judge(fault, &suite, 0, Vec::new(), began.elapsed());
                    r.start_error = Some(e.to_string());
                    r
                }
            };
            if let Some(p) = &progress {
                p.finished(&name, r.verdict.label());
            }
            r
        });
        ids.insert(handle.id(), fault);
    }
    let mut runs = Vec::new();
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((_, run)) => runs.push(run),
            Err(e) => {
                if let Some(fault) = ids.get(&e.id()) {
                    let mut r = judge(*fault, &suite, 0, Vec::new(), Duration::ZERO);
                    r.start_error = Some(format!("the self-test task crashed: {e}"));
                    runs.push(r);
                }
            }
        }
    }
    runs.sort_by_key(|r| r.fault);
    let dialect_runs = dialect_half.await.unwrap_or_default();
    SelftestReport {
        scope: options.scope,
        cases: cases.len(),
        clean,
        clean_summary,
        clean_start_error,
        runs,
        faults_ran: options.run_faults,
        dialect_runs,
        parallel_servers: options.parallel_servers.max(1),
        duration: started.elapsed(),
    }
}

/// A dialect set's name: the dialect's, or `all (N dialects)`.
fn dialect_label(dialects: DialectSet) -> String {
    if dialects == DialectSet::all_compatible() && dialects.len() > 1 {
        format!("all ({} dialects)", dialects.len())
    } else {
        dialects.to_string()
    }
}

/// The specificity half: the whole suite against one server per dialect
/// set, each with the profile (and version) its dialects need.
async fn run_dialects(
    settings: &Settings,
    cases: &[Case],
    runs: Vec<DialectSet>,
    slots: Arc<Semaphore>,
    case_concurrency: usize,
    explore: Option<ExploreBound>,
    progress: Option<Arc<Progress>>,
) -> Vec<DialectRun> {
    let mut tasks = JoinSet::new();
    let mut crashed = Vec::new();
    for (index, dialects) in runs.into_iter().enumerate() {
        let mut settings = settings.clone();
        if let Some(p) = dialects.profile() {
            settings.profile = Some(p.to_string());
        }
        if let Some(v) = dialects.version() {
            settings.version = v.to_string();
        }
        let profile = settings
            .profile
            .clone()
            .unwrap_or_else(|| "reference".into());
        let cases = cases.to_vec();
        let slots = slots.clone();
        let progress = progress.clone();
        tasks.spawn(async move {
            let _slot = slots.acquire().await.ok();
            let name = format!("dialects {}", dialect_label(dialects));
            if let Some(p) = &progress {
                p.started(&name);
            }
            let began = Instant::now();
            let ran = cases.len();
            let outcome = run_variant(
                &settings,
                FaultSet::none(),
                dialects,
                cases,
                case_concurrency,
                explore,
            )
            .await;
            let mut run = DialectRun {
                dialects,
                profile,
                cases_run: ran,
                summary: Summary::of(&[], Duration::ZERO),
                failing: Vec::new(),
                errors: Vec::new(),
                start_error: None,
                explore: None,
                duration: began.elapsed(),
            };
            match outcome {
                Ok((outcomes, explored)) => {
                    run.explore = explored;
                    run.duration = began.elapsed();
                    run.summary = Summary::of(&outcomes, began.elapsed());
                    for o in outcomes {
                        match &o.verdict {
                            Verdict::Error { reason } => {
                                run.errors.push((o.id.clone(), reason.clone()))
                            }
                            v if !v.is_ok() => run.failing.push(o),
                            _ => {}
                        }
                    }
                    run.failing.sort_by(|a, b| a.id.cmp(&b.id));
                }
                Err(e) => run.start_error = Some(e.to_string()),
            }
            if let Some(p) = &progress {
                let note = if run.start_error.is_some() {
                    "did not start".to_string()
                } else {
                    format!("{} case(s) failing", run.failing.len() + run.errors.len())
                };
                p.finished(&name, &note);
            }
            (index, run)
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(r) => done.push(r),
            Err(e) => crashed.push(e.to_string()),
        }
    }
    done.sort_by_key(|(i, _)| *i);
    let mut runs: Vec<DialectRun> = done.into_iter().map(|(_, r)| r).collect();
    // A crashed run still shows (and fails the self-test), never vanishes.
    for e in crashed {
        runs.push(DialectRun {
            dialects: DialectSet::none(),
            profile: String::new(),
            cases_run: 0,
            summary: Summary::of(&[], Duration::ZERO),
            failing: Vec::new(),
            errors: Vec::new(),
            start_error: Some(format!("a dialect run crashed: {e}")),
            explore: None,
            duration: Duration::ZERO,
        });
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialect_run(dialects: DialectSet) -> DialectRun {
        DialectRun {
            dialects,
            profile: "reference".into(),
            cases_run: 3,
            summary: Summary::of(&[], Duration::ZERO),
            failing: Vec::new(),
            errors: Vec::new(),
            start_error: None,
            explore: None,
            duration: Duration::from_secs(1),
        }
    }

    fn report(dialect_runs: Vec<DialectRun>) -> SelftestReport {
        SelftestReport {
            scope: Scope::Full,
            cases: 3,
            clean: Vec::new(),
            clean_summary: Summary::of(&[], Duration::ZERO),
            clean_start_error: None,
            runs: Vec::new(),
            faults_ran: false,
            dialect_runs,
            parallel_servers: 1,
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn the_standard_runs_are_every_dialect_then_all() {
        let runs = standard_dialect_runs();
        assert_eq!(runs.len(), crate::server::DIALECTS.len() + 1);
        assert_eq!(runs.last(), Some(&DialectSet::all_compatible()));
        assert!(runs.iter().all(|r| r.check().is_ok()));
    }

    #[test]
    fn a_dialect_run_that_cannot_be_judged_fails_the_selftest() {
        let gzip = DialectSet::of([Dialect::Gzip]);
        let clean = report(vec![dialect_run(gzip)]);
        assert_eq!(clean.exit_status(), ExitStatus::Passed);
        let table = clean.render(false);
        assert!(
            table.contains("gzip") && table.contains("1/1 dialect run(s) clean"),
            "{table}"
        );

        let mut errored = dialect_run(gzip);
        errored
            .errors
            .push(("a/case".into(), "bad case file".into()));
        let r = report(vec![errored]);
        assert_eq!(r.exit_status(), ExitStatus::HarnessError);
        assert!(r.render(false).contains("a/case: could not be judged"));

        let mut unstarted = dialect_run(DialectSet::all_compatible());
        unstarted.start_error = Some("no port".into());
        let r = report(vec![unstarted]);
        assert_eq!(r.exit_status(), ExitStatus::Unreachable);
        assert!(r.render(false).contains("all ("), "{}", r.render(false));

        let mut diverged = dialect_run(gzip);
        diverged.explore = Some(ExploreOutcome {
            summary: String::new(),
            divergence: Some("lost event".into()),
            error: None,
        });
        assert!(!diverged.passed());
        assert!(
            report(vec![diverged])
                .render(false)
                .contains("explore DIVERGED: lost event")
        );
    }
}
