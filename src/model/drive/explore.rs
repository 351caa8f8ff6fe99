//! The search: generate sequences, run each against the target, and on the
//! first failure shrink it — proptest's shrinking of the drawn numbers,
//! then [`Minimizer`] on the operations — re-running every candidate
//! against the target, and render the smallest failing sequence as an
//! ordinary case file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::driver::Driver;
use super::failure::{DriveError, Failure, SequenceRun, Signature};
use crate::model::case::to_case_toml;
use crate::model::generate::{GenConfig, ops_strategy};
use crate::model::mailbox::predict_for;
use crate::model::ops::{Mode, Op, describe_sequence};
use crate::model::shrink::Minimizer;

/// Proptest shrinking stops after this many runs without a shorter sequence.
const PROPTEST_STALL: usize = 25;

/// What to explore and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExploreConfig {
    pub generator: GenConfig,
    /// Stop after this many sequences (`None`: only the time budget counts).
    pub cases: Option<usize>,
    /// The whole exploration's time, shrinking included: no new sequence
    /// starts after it, and shrinking stops when it is spent (the smallest
    /// failing sequence found so far is written).
    pub budget: Option<Duration>,
    /// The generator's seed: the same seed against the same target draws
    /// the same sequences.
    pub seed: u64,
    /// Runs spent shrinking a failure, at most.
    pub shrink_runs: usize,
    /// Time spent shrinking a failure, at most.
    pub shrink_budget: Duration,
    /// Where the shrunk failure is written as a case file (`None`: not written).
    pub found_dir: Option<PathBuf>,
    /// Every n-th sequence is a long one (200-400 operations, rare polls):
    /// queues past 50 events, for the batching and MoreEvents rules.
    /// `None` (or a generator that already is long): never.
    pub long_every: Option<usize>,
}

impl Default for ExploreConfig {
    fn default() -> Self {
        ExploreConfig {
            generator: GenConfig::default(),
            cases: Some(16),
            budget: None,
            seed: 0,
            shrink_runs: 500,
            shrink_budget: Duration::from_secs(300),
            found_dir: None,
            long_every: Some(8),
        }
    }
}

/// A failure and its shrunk form.
#[derive(Debug, Clone)]
pub struct Found {
    /// The sequence that failed first.
    pub original: Vec<Op>,
    /// The run of the smallest sequence that still fails the same way.
    pub shrunk: SequenceRun,
    /// What "the same way" meant while shrinking.
    pub signature: Signature,
    /// Runs made while shrinking.
    pub shrink_runs: usize,
    /// Why shrinking stopped before it ran out of candidates (the time
    /// budget, the shrinking budget or the run limit), if it did.
    pub shrink_cut_short: Option<String>,
    /// The case file rendered from the shrunk sequence.
    pub case_name: String,
    pub case_text: String,
    /// Where it was written, or why it could not be.
    pub case_file: Option<PathBuf>,
    pub write_error: Option<String>,
}

impl Found {
    /// The shrunk sequence and its first problem (predicted vs received),
    /// as a panic message or the CLI prints them.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} — shrunk from {} to {} operations in {} runs:",
            self.signature,
            self.original.len(),
            self.shrunk.ops.len(),
            self.shrink_runs
        );
        if let Some(why) = &self.shrink_cut_short {
            let _ = writeln!(
                out,
                "shrinking was cut short ({why}): a smaller failing sequence may exist"
            );
        }
        out.push_str(&describe_sequence(&self.shrunk.ops));
        if let Some(f) = &self.shrunk.failure {
            let _ = writeln!(out, "first problem:\n  {}", f.first().replace('\n', "\n  "));
            if let Failure::Diverged(list) = f
                && list.len() > 1
            {
                let _ = writeln!(out, "  ({} more divergences)", list.len() - 1);
            }
        }
        for note in self.shrunk.notes.iter().take(5) {
            let _ = writeln!(out, "note: {note}");
        }
        match (&self.case_file, &self.write_error) {
            (Some(path), _) => {
                let root = path
                    .parent()
                    .and_then(Path::parent)
                    .map_or_else(|| ".".to_string(), |p| p.display().to_string());
                let _ = writeln!(
                    out,
                    "case written to {}\nreplay it: ews-conformance run --cases {root} --filter {}",
                    path.display(),
                    self.case_name
                );
            }
            (None, Some(e)) => {
                let _ = writeln!(out, "the case could not be written: {e}");
            }
            (None, None) => {}
        }
        out
    }
}

/// What an exploration did.
#[derive(Debug, Clone)]
pub struct ExploreReport {
    pub seed: u64,
    pub sequences: usize,
    pub operations: usize,
    pub requests: usize,
    /// Predicted events the oracle judged.
    pub events: usize,
    pub elapsed: Duration,
    pub modes: Vec<Mode>,
    pub found: Option<Found>,
    /// Sequences stopped unjudged because the time budget ran out.
    pub cut_sequences: usize,
}

impl ExploreReport {
    /// One closing line.
    pub fn summary(&self) -> String {
        let modes: Vec<&str> = self.modes.iter().map(|m| m.as_str()).collect();
        let verdict = match &self.found {
            None => "no divergence".to_string(),
            Some(f) => format!("FAILED: {}", f.signature),
        };
        let cut = if self.cut_sequences > 0 {
            " (one more was cut short by the time budget)"
        } else {
            ""
        };
        format!(
            "explored {} sequences{cut} ({} operations, {} predicted events, {} requests; {}) in {:.1}s with seed {}: {verdict}",
            self.sequences,
            self.operations,
            self.events,
            self.requests,
            modes.join("/"),
            self.elapsed.as_secs_f64(),
            self.seed
        )
    }
}

fn rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let word = seed
            .wrapping_add(i as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// Told what explore is doing, for a progress line (the CLI's); the model
/// knows nothing of terminals.
pub trait ExploreProgress: Sync {
    /// Sequence `n` (from 1) of `ops` operations starts.
    fn sequence_started(&self, _n: usize, _ops: usize) {}
    /// Sequence `n` ended; `diverged`: the target did not do what the model predicts.
    fn sequence_finished(&self, _n: usize, _ops: usize, _diverged: bool) {}
    /// Shrinking: the smallest failing sequence so far has `ops` operations after `runs` runs.
    fn shrinking(&self, _ops: usize, _runs: usize) {}
}

/// No progress shown.
struct Unseen;
impl ExploreProgress for Unseen {}

/// Generates and runs sequences until the count or the time budget is
/// reached or one fails; a failure is shrunk against the target and, when
/// `found_dir` is set, written as a case file.
pub async fn explore(driver: &Driver, config: &ExploreConfig) -> Result<ExploreReport, DriveError> {
    explore_with_progress(driver, config, &Unseen).await
}

/// [`explore`], telling `progress` what it does.
pub async fn explore_with_progress(
    driver: &Driver,
    config: &ExploreConfig,
    progress: &dyn ExploreProgress,
) -> Result<ExploreReport, DriveError> {
    let started = Instant::now();
    let available = driver.modes();
    let mut generator = config.generator.clone();
    generator.modes.retain(|m| available.contains(m));
    // The second user's decoys need a second user, and a shared Inbox
    // (their same-named folder): only where shared folders are used.
    generator.other_mailbox &= driver.target().user2.is_some() && generator.shared_folders;
    if generator.modes.is_empty() {
        return Err(DriveError::Harness(format!(
            "the target supports none of the requested delivery modes (it has: {})",
            available
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut report = ExploreReport {
        seed: config.seed,
        sequences: 0,
        operations: 0,
        requests: 0,
        events: 0,
        elapsed: Duration::ZERO,
        modes: generator.modes.clone(),
        found: None,
        cut_sequences: 0,
    };
    let long = GenConfig {
        min_ops: generator.min_ops.max(200),
        max_ops: generator.max_ops.max(400),
        poll_weight: 1,
        ..generator.clone()
    };
    let strategy = ops_strategy(generator);
    let long_strategy = ops_strategy(long);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng(config.seed));
    loop {
        let counted_out = config.cases.is_some_and(|n| report.sequences >= n);
        // At least one sequence runs, however small the budget.
        let timed_out =
            report.sequences > 0 && config.budget.is_some_and(|b| started.elapsed() >= b);
        let unbounded = config.cases.is_none() && config.budget.is_none();
        if counted_out || timed_out || (unbounded && report.sequences > 0) {
            break;
        }
        let is_long = config
            .long_every
            .is_some_and(|n| n > 0 && report.sequences % n == n - 1);
        let tree = if is_long { &long_strategy } else { &strategy }
            .new_tree(&mut runner)
            .map_err(|r| DriveError::Harness(format!("the generator gave up: {r}")))?;
        let ops = tree.current();
        let deadline = config.budget.map(|b| started + b);
        let n = report.sequences + 1;
        progress.sequence_started(n, ops.len());
        let run = driver
            .run_until(&ops, deadline.filter(|_| report.sequences > 0))
            .await?;
        progress.sequence_finished(n, ops.len(), run.failure.is_some());
        if run.cut {
            // The budget ran out in the middle: nothing was judged.
            report.cut_sequences += 1;
            break;
        }
        report.sequences += 1;
        report.operations += ops.len();
        report.requests += run.requests;
        report.events += run.predicted_events();
        tracing::debug!(
            sequence = report.sequences,
            ops = ops.len(),
            passed = run.passed(),
            "explored a sequence"
        );
        if run.failure.is_some() {
            let mut found = shrink(driver, config, tree, run, deadline, progress).await?;
            if let Some(dir) = &config.found_dir {
                match write_found_case(dir, &found.case_name, &found.case_text) {
                    Ok(path) => found.case_file = Some(path),
                    Err(e) => found.write_error = Some(e.to_string()),
                }
            }
            report.found = Some(found);
            break;
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

async fn shrink(
    driver: &Driver,
    config: &ExploreConfig,
    mut tree: Box<dyn ValueTree<Value = Vec<Op>>>,
    first: SequenceRun,
    deadline: Option<Instant>,
    progress: &dyn ExploreProgress,
) -> Result<Found, DriveError> {
    let Some(signature) = first.failure.as_ref().map(|f| f.signature()) else {
        return Err(DriveError::Harness("shrinking a run that passed".into()));
    };
    let started = Instant::now();
    let original = first.ops.clone();
    let mut best = first;
    let mut runs = 0usize;
    // Why shrinking may not go on, if it may not.
    let stop = |runs: usize| -> Option<String> {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            Some("the exploration's time budget is spent".to_string())
        } else if started.elapsed() >= config.shrink_budget {
            Some(format!(
                "the shrinking budget of {:?} is spent",
                config.shrink_budget
            ))
        } else if runs >= config.shrink_runs {
            Some(format!("{} shrinking runs made", config.shrink_runs))
        } else {
            None
        }
    };
    let within = |runs: usize| stop(runs).is_none();
    let same = |r: &SequenceRun| r.failure.as_ref().is_some_and(|f| f.shows(&signature));

    // Proptest's shrinking of the drawn numbers: it simplifies choices
    // number by number, which is slow on long sequences, so it gets a third
    // of the runs and stops once the sequence stops getting shorter;
    // removing operations (below) is where the size goes.
    let proptest_runs = config.shrink_runs / 3;
    let mut stalled = 0;
    if tree.simplify() {
        while within(runs) && runs < proptest_runs && stalled < PROPTEST_STALL {
            let candidate = tree.current();
            runs += 1;
            progress.shrinking(best.ops.len(), runs);
            let r = driver.run_until(&candidate, deadline).await?;
            if same(&r) {
                stalled = if r.ops.len() < best.ops.len() {
                    0
                } else {
                    stalled + 1
                };
                best = r;
                if !tree.simplify() {
                    break;
                }
            } else {
                stalled += 1;
                if !tree.complicate() {
                    break;
                }
            }
        }
    }
    // Then operation by operation.
    let mut m = Minimizer::new(&best.ops);
    let mut cut_short = None;
    while let Some(candidate) = m.candidate() {
        if let Some(why) = stop(runs) {
            cut_short = Some(why);
            break;
        }
        runs += 1;
        progress.shrinking(best.ops.len(), runs);
        let r = driver.run_until(&candidate, deadline).await?;
        let fails = same(&r);
        if fails {
            best = r;
        }
        m.report(fails);
    }
    let case_name = found_case_name(&best.ops, &signature);
    let case_text = render_found_case(driver, config.seed, &original, &best, &signature)?;
    Ok(Found {
        original,
        shrunk: best,
        signature,
        shrink_runs: runs,
        shrink_cut_short: cut_short,
        case_name,
        case_text,
        case_file: None,
        write_error: None,
    })
}

/// The modes of a sequence's subscriptions, for names and titles.
fn modes_of(ops: &[Op]) -> String {
    let mut modes: Vec<&str> = Vec::new();
    for op in ops {
        let m = match op {
            Op::Subscribe { mode, .. } => mode.as_str(),
            Op::Resubscribe { .. } => Mode::Pull.as_str(),
            _ => continue,
        };
        if !modes.contains(&m) {
            modes.push(m);
        }
    }
    match modes.len() {
        0 => "plain".into(),
        1 => modes[0].into(),
        _ => "mixed".into(),
    }
}

/// FNV-1a: a short, stable fingerprint of a sequence for file names.
fn fingerprint(text: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32
}

/// `<mode>-<failure>-<fingerprint>`, e.g. `pull-lost-event-1a2b3c4d`.
pub fn found_case_name(ops: &[Op], signature: &Signature) -> String {
    let what = match signature {
        Signature::Step { request, .. } => format!("{request}-failed").to_ascii_lowercase(),
        Signature::Divergence { kind, .. } => kind.as_str().replace(' ', "-"),
    };
    format!(
        "{}-{what}-{:08x}",
        modes_of(ops),
        fingerprint(&describe_sequence(ops))
    )
}

/// The case file for a shrunk failure: [`to_case_toml`] with a header
/// saying where it came from and what went wrong.
pub fn render_found_case(
    driver: &Driver,
    seed: u64,
    original: &[Op],
    shrunk: &SequenceRun,
    signature: &Signature,
) -> Result<String, DriveError> {
    // Without the unread counts this mailbox had: the case must replay on another.
    let prediction = predict_for(&driver.config.profile, &shrunk.ops)?;
    let title = format!(
        "{signature} in a {} sequence of {} operations (found by explore)",
        modes_of(&shrunk.ops),
        shrunk.ops.len()
    );
    let body = to_case_toml(&title, &shrunk.ops, &prediction, &driver.config.profile);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Found by `ews-conformance explore` (seed {seed}) against {}: a generated\n\
         # sequence of {} operations failed, shrunk to these {}. Review before keeping it:\n\
         # the suite replays every case under cases/.",
        driver.target().label,
        original.len(),
        shrunk.ops.len()
    );
    if let Some(f) = &shrunk.failure {
        out.push_str("#\n# The first problem when it was found:\n");
        for line in f.first().lines() {
            let _ = writeln!(out, "#   {line}");
        }
    }
    out.push_str("#\n");
    out.push_str(&body);
    Ok(out)
}

/// Writes `text` as `<dir>/<name>.toml`, creating the folder.
pub fn write_found_case(dir: &Path, name: &str, text: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ops::{FolderHandle, ItemHandle, Scope, SubHandle};
    use crate::model::oracle::DivergenceKind;

    fn ops(mode: Mode) -> Vec<Op> {
        vec![
            Op::Subscribe {
                sub: SubHandle(1),
                mode,
                scope: Scope::Folders([FolderHandle::Case].into()),
                event_types: [ews_proto::ews::EventKind::Created].into(),
            },
            Op::CreateItem {
                item: ItemHandle(1),
                folder: FolderHandle::Case,
                read: false,
            },
            Op::Poll { sub: SubHandle(1) },
        ]
    }

    #[test]
    fn found_cases_are_named_by_mode_failure_and_sequence() {
        let lost = Signature::Divergence {
            kind: DivergenceKind::Lost,
            rule: "R32",
        };
        let name = found_case_name(&ops(Mode::Streaming), &lost);
        assert!(name.starts_with("streaming-lost-event-"), "{name}");
        assert_eq!(name.len(), "streaming-lost-event-".len() + 8);
        assert_eq!(
            name,
            found_case_name(&ops(Mode::Streaming), &lost),
            "stable"
        );
        assert_ne!(name, found_case_name(&ops(Mode::Pull)[..2], &lost));
        let step = Signature::Step {
            request: "GetEvents",
            code: Some("ErrorSubscriptionNotFound".into()),
        };
        assert!(found_case_name(&ops(Mode::Pull), &step).starts_with("pull-getevents-failed-"));
        assert_eq!(modes_of(&[]), "plain");
        let mut mixed = ops(Mode::Pull);
        mixed.extend(ops(Mode::Push).into_iter().map(|op| match op {
            Op::Subscribe {
                mode,
                scope,
                event_types,
                ..
            } => Op::Subscribe {
                sub: SubHandle(2),
                mode,
                scope,
                event_types,
            },
            other => other,
        }));
        assert_eq!(modes_of(&mixed), "mixed");
    }

    #[test]
    fn seeds_give_distinct_reproducible_generators() {
        let draw = |seed| {
            let mut runner = TestRunner::new_with_rng(Config::default(), rng(seed));
            ops_strategy(GenConfig::default())
                .new_tree(&mut runner)
                .expect("a sequence")
                .current()
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
    }
}
