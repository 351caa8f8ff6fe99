//! A whole run: cases concurrently (bounded), `serial` cases alone, every
//! outcome to the reporters, and the summary that decides the exit code.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::exec::Executor;
use super::load::LoadError;
use super::outcome::{Outcome, Verdict};
use crate::case::Case;

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Cases running at once (serial cases always run alone). Default 8:
    /// most cases spend their time waiting on the target's clock.
    pub concurrency: usize,
    /// Only cases whose id contains this.
    pub filter: Option<String>,
    /// Becomes `Some(signal name)` when the run must stop: running cases
    /// are abandoned, the rest are not started, and the reports are
    /// written with what finished.
    pub stop: Option<tokio::sync::watch::Receiver<Option<Signal>>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            concurrency: 8,
            filter: None,
            stop: None,
        }
    }
}

/// A signal that ends a run early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Signal {
    /// Ctrl-C.
    Interrupt,
    /// A CI job cancelled or timed out.
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The conventional exit code: 128 + the signal's number.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

/// The process exit code a run maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ExitStatus {
    /// Everything passed (recorded and skipped count as passed).
    Passed = 0,
    /// At least one conformance failure.
    Failed = 1,
    /// The target could not be reached or refused the credentials.
    Unreachable = 2,
    /// A case file or the harness itself is broken.
    HarnessError = 3,
    /// Stopped by SIGINT (128 + 2).
    Interrupted = 130,
    /// Stopped by SIGTERM (128 + 15).
    Terminated = 143,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Counts per verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub recorded: usize,
    pub skipped: usize,
    pub unreachable: usize,
    pub errors: usize,
    /// Failures the profile's baseline lists (not CI failures).
    pub expected_failures: usize,
    /// Passes of cases the baseline lists as failing (CI failures).
    pub unexpected_passes: usize,
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// The signal that stopped the run before every case had finished.
    pub interrupted: Option<Signal>,
    /// The case that took longest: the run's critical path.
    pub longest_case: Option<String>,
    #[serde(rename = "longest_case_ms", serialize_with = "millis")]
    pub longest_case_duration: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl Summary {
    pub fn of(outcomes: &[Outcome], duration: Duration) -> Self {
        let mut s = Summary {
            total: outcomes.len(),
            duration,
            ..Summary::default()
        };
        if let Some(o) = outcomes.iter().max_by_key(|o| o.duration) {
            s.longest_case = Some(o.id.clone());
            s.longest_case_duration = o.duration;
        }
        for o in outcomes {
            match o.verdict {
                Verdict::Pass => s.passed += 1,
                Verdict::Fail => s.failed += 1,
                Verdict::Recorded => s.recorded += 1,
                Verdict::Skipped { .. } => s.skipped += 1,
                Verdict::Unreachable { .. } => s.unreachable += 1,
                Verdict::Error { .. } => s.errors += 1,
                Verdict::ExpectedFailure { .. } => s.expected_failures += 1,
                Verdict::UnexpectedPass { .. } => s.unexpected_passes += 1,
            }
        }
        s
    }

    /// An unreachable target outranks broken case files, which outrank
    /// conformance failures: each earlier condition makes the later ones noise.
    pub fn exit_status(&self) -> ExitStatus {
        if let Some(signal) = self.interrupted {
            return match signal {
                Signal::Interrupt => ExitStatus::Interrupted,
                Signal::Terminate => ExitStatus::Terminated,
            };
        }
        if self.unreachable > 0 {
            ExitStatus::Unreachable
        } else if self.errors > 0 {
            ExitStatus::HarnessError
        } else if self.failed > 0 || self.unexpected_passes > 0 {
            ExitStatus::Failed
        } else {
            ExitStatus::Passed
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunResult {
    /// Every outcome, sorted by case id.
    pub outcomes: Vec<Outcome>,
    pub summary: Summary,
    /// Reports that could not be written.
    pub report_error: Option<std::io::Error>,
}

impl RunResult {
    /// The exit status, counting an unwritten report as a harness error.
    pub fn exit_status(&self) -> ExitStatus {
        match (self.summary.exit_status(), &self.report_error) {
            (ExitStatus::Passed | ExitStatus::Failed, Some(_)) => ExitStatus::HarnessError,
            (s, _) => s,
        }
    }
}

/// The signal, once one has been sent; never resolves without one.
async fn stopped(
    stop: &mut Option<tokio::sync::watch::Receiver<Option<Signal>>>,
) -> Option<Signal> {
    let Some(rx) = stop.as_mut() else {
        return std::future::pending().await;
    };
    let got = rx.wait_for(Option::is_some).await.map(|s| *s);
    match got {
        Ok(signal) => signal,
        // The sender is gone without a signal: never stop.
        Err(_) => std::future::pending().await,
    }
}

/// Receives a run's progress (ui_test style): the one status-emitter
/// trait; the console, JSON, JUnit and HTML reports implement it.
pub trait Reporter: Send {
    fn case_started(&mut self, _id: &str, _title: &str) {}
    fn case_finished(&mut self, outcome: &Outcome);
    /// The run is over: `outcomes` are sorted by id.
    fn finished(&mut self, outcomes: &[Outcome], summary: &Summary) -> io::Result<()>;
}

/// Runs `cases` (and reports `load_errors` as errors) through `reporter`.
pub async fn run_suite(
    executor: Arc<Executor>,
    cases: Vec<Case>,
    load_errors: &[LoadError],
    options: &RunOptions,
    reporter: &mut dyn Reporter,
) -> RunResult {
    let started = Instant::now();
    let keep = |id: &str| options.filter.as_deref().is_none_or(|f| id.contains(f));
    let mut outcomes = Vec::new();
    for err in load_errors.iter().filter(|e| keep(&e.case_id)) {
        let o = Outcome::from_load_error(err);
        reporter.case_finished(&o);
        outcomes.push(o);
    }

    // Serial cases first, each holding every slot so it runs alone; then
    // the others, longest first, so no long case is left to run alone at
    // the end. A case is started only when its slots are free, in this
    // order: tasks that raced for slots would start in any order.
    let mut queue: VecDeque<Case> = cases.into_iter().filter(|c| keep(&c.id)).collect();
    queue.make_contiguous().sort_by(|a, b| {
        b.serial
            .cmp(&a.serial)
            .then(b.declared_minutes().total_cmp(&a.declared_minutes()))
            .then(a.id.cmp(&b.id))
    });
    let width = u32::try_from(options.concurrency.max(1)).unwrap_or(u32::MAX);
    let slots = Arc::new(Semaphore::new(width as usize));
    let mut tasks = JoinSet::new();
    let mut ids = HashMap::new();
    let mut running: HashMap<String, (String, PathBuf)> = HashMap::new();
    let mut stop = options.stop.clone();
    let mut interrupted = None;

    loop {
        // Checked here, not by `select!`'s `else`: the stop branch stays
        // armed (pending) for the whole run, so `else` would never fire.
        if queue.is_empty() && tasks.is_empty() {
            break;
        }
        let next_needs = queue.front().map(|c| if c.serial { width } else { 1 });
        tokio::select! {
            Some(signal) = stopped(&mut stop), if interrupted.is_none() => {
                interrupted = Some(signal);
                tasks.abort_all();
                let reason = format!("not finished: the run was stopped by {}", signal.name());
                let unfinished = running
                    .drain()
                    .map(|(id, (title, file))| (id, title, file))
                    .chain(queue.drain(..).map(|c| (c.id, c.title, c.file)));
                for (id, title, file) in unfinished {
                    let mut o = Outcome::from_load_error(&LoadError {
                        file,
                        case_id: id,
                        line: 0,
                        col: 0,
                        problem: String::new(),
                        snippet: None,
                    });
                    o.title = title;
                    o.verdict = Verdict::Skipped { reason: reason.clone() };
                    reporter.case_finished(&o);
                    outcomes.push(o);
                }
                break;
            }
            Ok(permit) = async {
                slots.clone().acquire_many_owned(next_needs.unwrap_or(1)).await
            }, if next_needs.is_some() => {
                let Some(case) = queue.pop_front() else { continue };
                reporter.case_started(&case.id, &case.title);
                running.insert(case.id.clone(), (case.title.clone(), case.file.clone()));
                let executor = executor.clone();
                let id = case.id.clone();
                let handle = tasks.spawn(async move {
                    let _slots = permit;
                    executor.run_case(&case).await
                });
                ids.insert(handle.id(), id);
            }
            joined = tasks.join_next_with_id(), if !tasks.is_empty() => match joined {
                None => {}
                Some(Ok((_, outcome))) => {
                    running.remove(&outcome.id);
                    reporter.case_finished(&outcome);
                    outcomes.push(outcome);
                }
                Some(Err(e)) => {
                    let id = ids.get(&e.id()).cloned().unwrap_or_default();
                    running.remove(&id);
                    let outcome = Outcome::from_load_error(&LoadError {
                        file: Default::default(),
                        case_id: id.clone(),
                        line: 0,
                        col: 0,
                        problem: format!("the harness crashed while running case `{id}`: {e}"),
                        snippet: None,
                    });
                    reporter.case_finished(&outcome);
                    outcomes.push(outcome);
                }
            },
        }
    }
    outcomes.sort_by(|a, b| a.id.cmp(&b.id));
    let mut summary = Summary::of(&outcomes, started.elapsed());
    summary.interrupted = interrupted;
    let report_error = reporter.finished(&outcomes, &summary).err();
    RunResult {
        outcomes,
        summary,
        report_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(verdict: Verdict) -> Outcome {
        Outcome::from_load_error(&LoadError {
            file: Default::default(),
            case_id: "x".into(),
            line: 0,
            col: 0,
            problem: String::new(),
            snippet: None,
        })
        .with_verdict(verdict)
    }

    impl Outcome {
        fn with_verdict(mut self, v: Verdict) -> Self {
            self.verdict = v;
            self
        }
    }

    fn status(verdicts: Vec<Verdict>) -> ExitStatus {
        let outcomes: Vec<_> = verdicts.into_iter().map(outcome).collect();
        Summary::of(&outcomes, Duration::ZERO).exit_status()
    }

    #[test]
    fn exit_codes_follow_the_worst_condition() {
        let skipped = || Verdict::Skipped { reason: "r".into() };
        let error = || Verdict::Error { reason: "r".into() };
        let unreachable = || Verdict::Unreachable { reason: "r".into() };
        assert_eq!(status(vec![]), ExitStatus::Passed);
        assert_eq!(
            status(vec![Verdict::Pass, Verdict::Recorded, skipped()]),
            ExitStatus::Passed
        );
        assert_eq!(
            status(vec![Verdict::Pass, Verdict::Fail]),
            ExitStatus::Failed
        );
        let xfail = || Verdict::ExpectedFailure { reason: "r".into() };
        let xpass = || Verdict::UnexpectedPass { reason: "r".into() };
        assert_eq!(status(vec![Verdict::Pass, xfail()]), ExitStatus::Passed);
        assert_eq!(status(vec![Verdict::Pass, xpass()]), ExitStatus::Failed);
        assert_eq!(
            status(vec![Verdict::Fail, error()]),
            ExitStatus::HarnessError
        );
        assert_eq!(
            status(vec![Verdict::Fail, error(), unreachable()]),
            ExitStatus::Unreachable
        );
        assert_eq!(ExitStatus::Passed.code(), 0);
        assert_eq!(ExitStatus::Failed.code(), 1);
        assert_eq!(ExitStatus::Unreachable.code(), 2);
        assert_eq!(ExitStatus::HarnessError.code(), 3);
    }
}
