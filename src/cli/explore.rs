//! `explore`: generated event sequences until one diverges, shrunk and written as a case.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::target::{TargetArgs, apply};
use ews_conformance::report::progress::Progress;
use ews_conformance::settings::Settings;
use ews_conformance::suite::{ExitStatus, target};

/// A delivery mode on the command line.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ModeArg {
    Pull,
    Streaming,
    Push,
}

#[derive(Args)]
pub(crate) struct ExploreArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Explore for this long (EWS_PROPTEST_SECONDS); without it, --sequences of them.
    #[arg(long)]
    pub(crate) seconds: Option<u64>,
    /// Sequences to run when there is no time budget (EWS_PROPTEST_CASES, default 16).
    #[arg(long = "sequences")]
    pub(crate) sequences: Option<u32>,
    /// Delivery modes to use (repeatable); default: every mode the target supports.
    #[arg(long = "mode", value_enum)]
    pub(crate) modes: Vec<ModeArg>,
    /// Stay in the case folder: no Inbox, Deleted Items, delivered mail or
    /// all-folder subscriptions (for a mailbox with other activity).
    #[arg(long)]
    pub(crate) isolated: bool,
    /// Long sequences (200-400 operations, rare polls): queues past 50 events.
    #[arg(long)]
    pub(crate) long: bool,
    /// At most this many generated operations a sequence (default 60, with
    /// every eighth sequence 200-400 long; 400 with --long).
    #[arg(long)]
    pub(crate) max_ops: Option<usize>,
    /// The generator's seed (EWS_PROPTEST_SEED); default a fresh one, printed.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Where a shrunk failure is written as a case (EWS_FOUND_DIR, default cases/found).
    #[arg(long)]
    pub(crate) found_dir: Option<PathBuf>,
    /// Report a failure without writing a case file.
    #[arg(long)]
    pub(crate) no_write: bool,
}

pub(crate) fn explore(mut settings: Settings, args: ExploreArgs) -> anyhow::Result<ExitStatus> {
    use ews_conformance::model::drive::{DriveError, Driver, ExploreConfig};
    use ews_conformance::model::{GenConfig, Mode};

    apply(&mut settings, args.target);
    let seed = args
        .seed
        .or(settings.proptest_seed)
        .unwrap_or_else(rand::random);
    let seconds = args.seconds.or(settings.proptest_seconds);
    let mut generator = if args.long {
        GenConfig::long()
    } else {
        GenConfig::default()
    };
    if let Some(n) = args.max_ops {
        generator.max_ops = n.max(1);
        generator.min_ops = generator.min_ops.min(generator.max_ops);
    }
    if args.isolated {
        generator.shared_folders = false;
        generator.all_folders = false;
    }
    if !args.modes.is_empty() {
        generator.modes = args
            .modes
            .iter()
            .map(|m| match m {
                ModeArg::Pull => Mode::Pull,
                ModeArg::Streaming => Mode::Streaming,
                ModeArg::Push => Mode::Push,
            })
            .collect();
    }
    let config = ExploreConfig {
        generator,
        cases: match seconds {
            Some(_) => None,
            None => Some(args.sequences.unwrap_or(settings.proptest_cases) as usize),
        },
        budget: seconds.map(std::time::Duration::from_secs),
        seed,
        found_dir: (!args.no_write).then(|| args.found_dir.unwrap_or(settings.found_dir.clone())),
        // Every eighth sequence is long (batches past 50), unless the length is fixed.
        long_every: (args.max_ops.is_none() && !args.long).then_some(8),
        ..ExploreConfig::default()
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let target = match target::from_settings(&settings).await {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitStatus::HarnessError);
            }
        };
        let driver = match Driver::for_target(target) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitStatus::HarnessError);
            }
        };
        let budget = match config.budget {
            Some(b) => format!("for {}s", b.as_secs()),
            None => format!("{} sequences", config.cases.unwrap_or(0)),
        };
        println!(
            "exploring {} ({} profile), {budget}, seed {seed}",
            driver.target().label,
            driver.config().profile.name
        );
        let progress = ExploreLine(
            Progress::stderr("sequences", config.cases.unwrap_or(0))
                .with_budget(config.budget)
                .with_min_gap(std::time::Duration::from_secs(5)),
        );
        let result =
            ews_conformance::model::drive::explore_with_progress(&driver, &config, &progress).await;
        progress.0.clear();
        match result {
            Ok(report) => {
                if let Some(found) = &report.found {
                    println!("{}", found.report());
                }
                println!("{}", report.summary());
                Ok(if report.found.is_some() {
                    ExitStatus::Failed
                } else {
                    ExitStatus::Passed
                })
            }
            Err(DriveError::Unreachable(m)) => {
                eprintln!("error: {m}");
                Ok(ExitStatus::Unreachable)
            }
            Err(e) => {
                eprintln!("error: {e}");
                Ok(ExitStatus::HarnessError)
            }
        }
    })
}

/// Explore's progress: one line per sequence, and the shrinking.
pub(crate) struct ExploreLine(Progress);

impl ews_conformance::model::drive::ExploreProgress for ExploreLine {
    fn sequence_started(&self, n: usize, ops: usize) {
        self.0.started(&format!("sequence {n} ({ops} operations)"));
    }

    fn sequence_finished(&self, n: usize, ops: usize, diverged: bool) {
        let note = if diverged { "diverged" } else { "as predicted" };
        self.0
            .finished(&format!("sequence {n} ({ops} operations)"), note);
    }

    fn shrinking(&self, ops: usize, runs: usize) {
        self.0
            .status(&format!("shrinking: {ops} operations after {runs} runs"));
    }
}
