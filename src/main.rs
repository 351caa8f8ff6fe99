//! `ews-conformance`: run the conformance cases against an EWS endpoint (or
//! the embedded reference server), record golden snapshots from a trusted
//! target, list the cases or their coverage of the requirement catalogue,
//! serve the reference server (optionally with faults), or self-test the
//! suite against the faults.
//!
//! Exit codes: 0 all passed (recorded and skipped count as passed), 1
//! conformance failures, 2 target unreachable or authentication refused,
//! 3 harness or case-file error.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::*;
use ews_conformance::check::golden::GoldenMode;
use ews_conformance::settings::Settings;
use ews_conformance::suite::ExitStatus;

#[derive(Parser)]
#[command(
    name = "ews-conformance",
    version,
    about = "Conformance harness for the EWS notification protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the cases and print every verdict and a summary.
    Run(Box<RunArgs>),
    /// Run the cases that have golden snapshots against a trusted target and
    /// write (bless) their snapshots instead of comparing them.
    Record(Box<RunArgs>),
    /// List the cases: id, title, requirements.
    List(ListArgs),
    /// Start the reference server alone (a faithful local EWS notification server).
    Serve(ServeArgs),
    /// Run generated event sequences against a target until a time budget
    /// runs out or one diverges; shrink the failure and write it as a case.
    Explore(Box<ExploreArgs>),
    /// Prove the suite can fail: run it against the clean reference server,
    /// then against one server per fault of the catalogue, and print the matrix.
    Selftest(SelftestArgs),
    /// Load a target with many pull, streaming and push subscriptions while
    /// items are created; count lost, duplicated and reordered events.
    Stress(Box<StressArgs>),
    /// Put the JSON reports of several runs side by side: cases × targets,
    /// the cases where they differ first.
    Compare(CompareArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(ExitStatus::HarnessError.code());
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&settings.log))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::List(args) => list(settings, args),
        Command::Run(args) => run(settings, *args, GoldenMode::Compare),
        Command::Record(args) => run(settings, *args, GoldenMode::Record),
        Command::Serve(args) => serve(args),
        Command::Selftest(args) => selftest(settings, args),
        Command::Explore(args) => explore(settings, *args),
        Command::Stress(args) => stress(settings, *args),
        Command::Compare(args) => compare(args),
    };
    match result {
        Ok(status) => ExitCode::from(status.code()),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(ExitStatus::HarnessError.code())
        }
    }
}
