//! The self-test: proves that the suite can fail. It runs the cases against
//! the faithful embedded reference server (every case must pass), then
//! against one fresh embedded server per fault of the catalogue
//! ([`ews_server::faults`]), and reports which cases caught each fault.
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
mod report;

pub use catchers::{Catchers, Expectation, Scope, expectation};
use report::dialect_label;
pub use report::{
    DialectRun, ExploreOutcome, FaultRun, FaultVerdict, SelftestReport, explaining_finding,
};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::case::Case;
use crate::check::CheckRegistry;
use crate::check::golden::{Golden, GoldenMode};
use crate::report::Reporter;
use crate::report::progress::Progress;
use crate::settings::Settings;
use crate::suite::exec::Executor;
use crate::suite::outcome::{Outcome, Verdict};
use crate::suite::run::{RunOptions, Summary, run_suite};
use crate::suite::target::{RunningTarget, Target, TargetError, start_embedded_variant};
use ews_server::{Dialect, DialectSet, Fault, FaultSet};

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
    use crate::suite::run::ExitStatus;

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
        assert_eq!(runs.len(), ews_server::DIALECTS.len() + 1);
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
