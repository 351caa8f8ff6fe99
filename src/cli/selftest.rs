//! `selftest`: the fault matrix and the dialect table.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::serve::print_dialects;
use ews_conformance::check::CheckRegistry;
use ews_conformance::report::progress::Progress;
use ews_conformance::selftest::{self, Scope, SelftestOptions};
use ews_conformance::settings::Settings;
use ews_conformance::suite::operation::OpRegistry;
use ews_conformance::suite::{ExitStatus, Loader};
use ews_server::{CATALOGUE, DialectSet, Fault};

#[derive(Args)]
pub(crate) struct SelftestArgs {
    /// Only this fault (repeatable); default: the whole catalogue.
    #[arg(long = "fault", value_name = "NAME")]
    pub(crate) faults: Vec<String>,
    /// Run only the catalogue's named catchers against each fault (faster;
    /// the matrix then lists only those). Default: the whole suite per fault.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Print the fault and dialect catalogues and exit.
    #[arg(long)]
    pub(crate) list: bool,
    /// Only this dialect run (repeatable; `all` = every compatible dialect
    /// on one server); default: one server per dialect, then `all`.
    #[arg(long = "dialect", value_name = "NAME")]
    pub(crate) dialects: Vec<String>,
    /// Skip the dialect half (specificity).
    #[arg(long, conflicts_with = "dialects")]
    pub(crate) no_dialects: bool,
    /// Run only the dialect half (no clean run, no faults).
    #[arg(long, conflicts_with = "no_dialects")]
    pub(crate) dialects_only: bool,
    /// After its suite run, explore each dialect server with this many
    /// generated sequences (bounded; divergences are listed, nothing written).
    #[arg(long, value_name = "SEQUENCES")]
    pub(crate) explore: Option<usize>,
    /// Show, for each named catcher, the finding that names the broken rule.
    #[arg(long)]
    pub(crate) verbose: bool,
    /// The case folder (EWS_CASES), default `cases`.
    #[arg(long)]
    pub(crate) cases: Option<PathBuf>,
    /// Faulty servers running at once.
    #[arg(long, default_value_t = 8)]
    pub(crate) parallel: usize,
    /// Cases running at once against one server.
    #[arg(long, default_value_t = 4)]
    pub(crate) concurrency: usize,
}

pub(crate) fn selftest(mut settings: Settings, args: SelftestArgs) -> anyhow::Result<ExitStatus> {
    if args.list {
        println!("# faults: name, state, operation, rules, catchers, description");
        for info in CATALOGUE {
            let expected = ews_conformance::selftest::expectation(info.fault);
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                info.name,
                if expected.pending {
                    "pending"
                } else {
                    "active"
                },
                info.operation,
                info.rules.join(","),
                expected.catchers.join(","),
                info.description
            );
        }
        println!("# dialects: name, class, profile, exclusions, description, source");
        print_dialects();
        return Ok(ExitStatus::Passed);
    }
    let mut dialect_runs = Vec::new();
    for name in &args.dialects {
        let run = if name.trim() == "all" {
            DialectSet::all_compatible()
        } else {
            match DialectSet::parse(&name.split('+').collect::<Vec<_>>()) {
                Ok(set) => set,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitStatus::HarnessError);
                }
            }
        };
        dialect_runs.push(run);
    }
    if args.dialects.is_empty() && !args.no_dialects {
        dialect_runs = selftest::standard_dialect_runs();
    }
    let mut faults = Vec::new();
    for name in &args.faults {
        match name.parse::<Fault>() {
            Ok(f) => faults.push(f),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitStatus::HarnessError);
            }
        }
    }
    if let Some(c) = args.cases {
        settings.cases = c;
    }
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let suite = Loader::new(&ops, &checks).load_dir(&settings.cases);
    if !suite.errors.is_empty() {
        for e in &suite.errors {
            eprintln!("error: {e}");
        }
        return Ok(ExitStatus::HarnessError);
    }
    let servers = if args.dialects_only {
        0
    } else if faults.is_empty() {
        1 + ews_server::Fault::all().count()
    } else {
        1 + faults.len()
    } + dialect_runs.len();
    let progress = std::sync::Arc::new(Progress::stderr("servers", servers));
    let options = SelftestOptions {
        progress: Some(progress.clone()),
        faults,
        scope: if args.quick {
            Scope::Catalogue
        } else {
            Scope::Full
        },
        parallel_servers: args.parallel.max(1),
        case_concurrency: args.concurrency.max(1),
        run_faults: !args.dialects_only,
        dialect_runs,
        explore: args
            .explore
            .filter(|n| *n > 0)
            .map(|sequences| selftest::ExploreBound {
                sequences,
                seed: settings.proptest_seed.unwrap_or_else(rand::random),
            }),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let report = runtime.block_on(selftest::run(&settings, suite.cases, &options));
    progress.clear();
    print!("{}", report.render(args.verbose));
    Ok(report.exit_status())
}
