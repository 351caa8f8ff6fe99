//! A whole run: cases concurrently (bounded), `serial` cases alone, every
//! outcome to the reporters, and the summary that decides the exit code.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::case::Case;
use super::exec::{Executor, Outcome, Verdict};
use super::load::LoadError;
use crate::report::Reporter;

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Cases running at once (serial cases always run alone). Default 8:
    /// most cases spend their time waiting on the target's clock.
    pub concurrency: usize,
    /// Only cases whose id contains this.
    pub filter: Option<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            concurrency: 8,
            filter: None,
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

    loop {
        let next_needs = queue.front().map(|c| if c.serial { width } else { 1 });
        tokio::select! {
            Ok(permit) = async {
                slots.clone().acquire_many_owned(next_needs.unwrap_or(1)).await
            }, if next_needs.is_some() => {
                let Some(case) = queue.pop_front() else { continue };
                reporter.case_started(&case.id, &case.title);
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
                    reporter.case_finished(&outcome);
                    outcomes.push(outcome);
                }
                Some(Err(e)) => {
                    let id = ids.get(&e.id()).cloned().unwrap_or_default();
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
            else => break,
        }
    }
    outcomes.sort_by(|a, b| a.id.cmp(&b.id));
    let summary = Summary::of(&outcomes, started.elapsed());
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
