//! `run` and `record`: the cases against a target, with every report.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::target::{TargetArgs, apply};
use ews_conformance::check::golden::GoldenMode;
use ews_conformance::report::console::Console;
use ews_conformance::report::html::Html;
use ews_conformance::report::json::Json;
use ews_conformance::report::junit::Junit;
use ews_conformance::report::progress::{Progress, RunProgress};
use ews_conformance::report::{Fanout, Reporter};
use ews_conformance::settings::Settings;
use ews_conformance::suite::{ExitStatus, Harness, HarnessError, RunOptions, Signal, run_suite};

#[derive(Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// The case folder (EWS_CASES), default `cases`.
    #[arg(long)]
    pub(crate) cases: Option<PathBuf>,
    /// Only cases whose id contains this.
    #[arg(long)]
    pub(crate) filter: Option<String>,
    /// Write a JSON report here.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub(crate) junit: Option<PathBuf>,
    /// Write a self-contained HTML report into this folder (`index.html`).
    #[arg(long, value_name = "DIR")]
    pub(crate) html: Option<PathBuf>,
    /// Cases run at once (serial cases always run alone). Most cases spend
    /// their time waiting on the target's clock, so more than the cores.
    #[arg(long, default_value_t = 8)]
    pub(crate) concurrency: usize,
    /// Print only the cases that did not pass.
    #[arg(long)]
    pub(crate) quiet: bool,
}

pub(crate) fn run(
    mut settings: Settings,
    args: RunArgs,
    golden: GoldenMode,
) -> anyhow::Result<ExitStatus> {
    apply(&mut settings, args.target);
    if let Some(c) = args.cases {
        settings.cases = c;
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let harness = match Harness::builder(settings.clone())
            .golden(golden)
            .build()
            .await
        {
            Ok(h) => h,
            Err(e @ HarnessError::Unreachable(_)) => {
                eprintln!("error: {e}");
                return Ok(ExitStatus::Unreachable);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitStatus::HarnessError);
            }
        };
        let label = harness.config().label.clone();
        // What the push listener refused reaches every report.
        let push_stats = harness.target.push_listener().map(|l| l.stats_handle());
        let Harness {
            executor,
            mut suite,
            ..
        } = harness;
        if let Some(p) = executor.profile() {
            let ids: Vec<&str> = suite.cases.iter().map(|c| c.id.as_str()).collect();
            for stale in p.unknown_cases(&ids) {
                eprintln!(
                    "warning: profile `{}` lists `{stale}`, which is not a case",
                    p.name
                );
            }
        }
        if golden == GoldenMode::Record {
            suite.cases.retain(|c| c.uses_golden());
            println!(
                "recording golden snapshots under {} for profile `{}`",
                settings.golden.display(),
                executor.profile().map_or("default", |p| p.name.as_str())
            );
        }
        println!(
            "running {} case file(s) from {} against {label}",
            suite.cases.len() + suite.errors.len(),
            settings.cases.display()
        );
        let mut console = Console::stdout();
        console.verbose = !args.quiet;
        let mut json = args.json.map(|path| Json::new(path, label.clone()));
        let mut junit = args.junit.map(Junit::new);
        let html = args.html.map(|dir| Html::new(dir, label.clone()));
        if let Some(h) = push_stats {
            console = console.with_push_stats(h.clone());
            json = json.map(|j| j.with_push_stats(h.clone()));
            junit = junit.map(|j| j.with_push_stats(h));
        }
        let mut reporters = Fanout::new().with(Box::new(console));
        // On a terminal, a progress line; in logs the console's lines suffice.
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            let total = suite.cases.len() + suite.errors.len();
            reporters.push(Box::new(RunProgress(Progress::stderr("cases", total))));
        }
        if let Some(j) = json {
            reporters.push(Box::new(j));
        }
        if let Some(j) = junit {
            reporters.push(Box::new(j));
        }
        if let Some(h) = html {
            reporters.push(Box::new(h));
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(None);
        tokio::spawn(watch_signals(stop_tx));
        let options = RunOptions {
            concurrency: args.concurrency,
            filter: args.filter,
            stop: Some(stop_rx),
        };
        let result = run_suite(
            Arc::new(executor),
            suite.cases,
            &suite.errors,
            &options,
            &mut reporters as &mut dyn Reporter,
        )
        .await;
        if let Some(e) = &result.report_error {
            eprintln!("error: a report could not be written: {e}");
        }
        Ok(result.exit_status())
    })
}

/// The first SIGINT or SIGTERM stops the run (the reports are finished
/// with the cases done so far); a second one ends the process at once.
pub(crate) async fn watch_signals(stop: tokio::sync::watch::Sender<Option<Signal>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let first = tokio::select! {
        _ = int.recv() => Signal::Interrupt,
        _ = term.recv() => Signal::Terminate,
    };
    eprintln!(
        "\n{}: stopping; the reports are written with the cases finished so far (send it again to quit at once)",
        first.name()
    );
    let _ = stop.send(Some(first));
    let second = tokio::select! {
        _ = int.recv() => Signal::Interrupt,
        _ = term.recv() => Signal::Terminate,
    };
    std::process::exit(i32::from(second.exit_code()));
}
