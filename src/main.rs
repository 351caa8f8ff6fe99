//! `ews-conformance`: run the conformance cases against an EWS endpoint (or
//! the embedded reference server), record golden snapshots from a trusted
//! target, list the cases or their coverage of the requirement catalogue,
//! serve the reference server (optionally with faults), or self-test the
//! suite against the faults.
//!
//! Exit codes: 0 all passed (recorded and skipped count as passed), 1
//! conformance failures, 2 target unreachable or authentication refused,
//! 3 harness or case-file error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use ews_conformance::check::CheckRegistry;
use ews_conformance::check::golden::GoldenMode;
use ews_conformance::report::compare::Comparison;
use ews_conformance::report::console::Console;
use ews_conformance::report::html::{Html, render_comparison};
use ews_conformance::report::json::Json;
use ews_conformance::report::junit::Junit;
use ews_conformance::report::progress::{Progress, RunProgress};
use ews_conformance::report::{Fanout, Reporter};
use ews_conformance::selftest::{self, Scope, SelftestOptions};
use ews_conformance::settings::Settings;
use ews_conformance::suite::checks::registry_for;
use ews_conformance::suite::operation::OpRegistry;
use ews_conformance::suite::requirements::{Catalogue, Coverage};
use ews_conformance::suite::{
    Executor, ExitStatus, Loader, Profile, RunOptions, Signal, run_suite, target,
};
use ews_server::{CATALOGUE, DIALECTS, DialectSet, Fault, FaultSet};

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

#[derive(Args)]
struct CompareArgs {
    /// JSON reports written by `run --json` (at least two).
    #[arg(required = true, num_args = 2..)]
    reports: Vec<PathBuf>,
    /// Also write the matrix as a self-contained HTML page here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Exit 1 when any case differs (for a CI job that must keep two servers in step).
    #[arg(long)]
    fail_on_difference: bool,
}

#[derive(Args)]
struct StressArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Pull subscriptions, each polled every --poll-ms.
    #[arg(long, default_value_t = 20)]
    subscriptions: usize,
    /// Streaming subscriptions, dealt over --stream-connections connections.
    #[arg(long, default_value_t = 10)]
    streams: usize,
    /// GetStreamingEvents connections the streaming subscriptions share
    /// (servers limit each user's open streams; Exchange's default is 10).
    #[arg(long, default_value_t = 4)]
    stream_connections: usize,
    /// Push subscriptions, delivering to the harness's push listener.
    #[arg(long, default_value_t = 5)]
    push: usize,
    /// How long items are created.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Items created per second.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// Milliseconds between the GetEvents polls of one pull subscription.
    #[arg(long, default_value_t = 200)]
    poll_ms: u64,
    /// Seconds to wait for the last deliveries after the last item.
    #[arg(long, default_value_t = 15)]
    drain_seconds: u64,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// A delivery mode on the command line.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ModeArg {
    Pull,
    Streaming,
    Push,
}

#[derive(Args)]
struct ExploreArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Explore for this long (EWS_PROPTEST_SECONDS); without it, --sequences of them.
    #[arg(long)]
    seconds: Option<u64>,
    /// Sequences to run when there is no time budget (EWS_PROPTEST_CASES, default 16).
    #[arg(long = "sequences")]
    sequences: Option<u32>,
    /// Delivery modes to use (repeatable); default: every mode the target supports.
    #[arg(long = "mode", value_enum)]
    modes: Vec<ModeArg>,
    /// Stay in the case folder: no Inbox, Deleted Items, delivered mail or
    /// all-folder subscriptions (for a mailbox with other activity).
    #[arg(long)]
    isolated: bool,
    /// Long sequences (200-400 operations, rare polls): queues past 50 events.
    #[arg(long)]
    long: bool,
    /// At most this many generated operations a sequence (default 60, with
    /// every eighth sequence 200-400 long; 400 with --long).
    #[arg(long)]
    max_ops: Option<usize>,
    /// The generator's seed (EWS_PROPTEST_SEED); default a fresh one, printed.
    #[arg(long)]
    seed: Option<u64>,
    /// Where a shrunk failure is written as a case (EWS_FOUND_DIR, default cases/found).
    #[arg(long)]
    found_dir: Option<PathBuf>,
    /// Report a failure without writing a case file.
    #[arg(long)]
    no_write: bool,
}

#[derive(Args)]
struct SelftestArgs {
    /// Only this fault (repeatable); default: the whole catalogue.
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<String>,
    /// Run only the catalogue's named catchers against each fault (faster;
    /// the matrix then lists only those). Default: the whole suite per fault.
    #[arg(long)]
    quick: bool,
    /// Print the fault and dialect catalogues and exit.
    #[arg(long)]
    list: bool,
    /// Only this dialect run (repeatable; `all` = every compatible dialect
    /// on one server); default: one server per dialect, then `all`.
    #[arg(long = "dialect", value_name = "NAME")]
    dialects: Vec<String>,
    /// Skip the dialect half (specificity).
    #[arg(long, conflicts_with = "dialects")]
    no_dialects: bool,
    /// Run only the dialect half (no clean run, no faults).
    #[arg(long, conflicts_with = "no_dialects")]
    dialects_only: bool,
    /// After its suite run, explore each dialect server with this many
    /// generated sequences (bounded; divergences are listed, nothing written).
    #[arg(long, value_name = "SEQUENCES")]
    explore: Option<usize>,
    /// Show, for each named catcher, the finding that names the broken rule.
    #[arg(long)]
    verbose: bool,
    /// The case folder (EWS_CASES), default `cases`.
    #[arg(long)]
    cases: Option<PathBuf>,
    /// Faulty servers running at once.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Cases running at once against one server.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (default: the config file's `listen`, else
    /// 127.0.0.1:8080). Anything but loopback exposes the test users'
    /// fixed passwords to the network.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// A TOML file with users and server settings (see README).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Length of a protocol minute in milliseconds (default 60000).
    #[arg(long)]
    protocol_minute_ms: Option<u64>,
    /// Switch on a fault of the catalogue (repeatable; `selftest --list` names them).
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<String>,
    /// Answer in a dialect: a legal variation of Exchange's wire behaviour
    /// (repeatable; `all` = every compatible one; `list` prints them).
    #[arg(long = "dialect", value_name = "NAME")]
    dialects: Vec<String>,
    /// Push notifications go only to this network (repeatable, CIDR or a
    /// single address; replaces the config's `push_allow`). Without any,
    /// everything but link-local and cloud metadata addresses is allowed.
    #[arg(long = "push-allow", value_name = "CIDR")]
    push_allow: Vec<String>,
}

/// Where `serve` listens when neither the flag nor the config file says.
const SERVE_LISTEN: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

/// Flags that override the environment (see the settings module for every variable).
#[derive(Args, Default)]
struct TargetArgs {
    /// The EWS URL (EWS_ENDPOINT). Without one, the embedded reference server is used.
    #[arg(long)]
    endpoint: Option<String>,
    /// The first user's login and SMTP address (EWS_USER).
    #[arg(long)]
    user: Option<String>,
    /// The first user's password (EWS_PASSWORD); prefer the environment.
    #[arg(long)]
    password: Option<String>,
    /// A second user for owner checks (EWS_USER2).
    #[arg(long)]
    user2: Option<String>,
    /// The second user's password (EWS_PASSWORD2).
    #[arg(long)]
    password2: Option<String>,
    /// An OAuth bearer token for the first user (EWS_BEARER_TOKEN).
    #[arg(long)]
    bearer_token: Option<String>,
    /// How passwords authenticate: basic (default) or ntlm (EWS_AUTH).
    #[arg(long, value_name = "basic|ntlm")]
    auth: Option<String>,
    /// RequestServerVersion (EWS_VERSION), default Exchange2013.
    #[arg(long = "request-version")]
    version: Option<String>,
    /// ExchangeImpersonation SMTP address (EWS_IMPERSONATE).
    #[arg(long)]
    impersonate: Option<String>,
    /// X-AnchorMailbox header value (EWS_ANCHOR_MAILBOX).
    #[arg(long)]
    anchor_mailbox: Option<String>,
    /// Do not verify TLS certificates (EWS_INSECURE_TLS).
    #[arg(long)]
    insecure_tls: bool,
    /// Deadline of one HTTP exchange in seconds (EWS_REQUEST_TIMEOUT_SECS).
    #[arg(long)]
    request_timeout_secs: Option<u64>,
    /// Length of a protocol minute in milliseconds (EWS_PROTOCOL_MINUTE_MS).
    #[arg(long)]
    protocol_minute_ms: Option<u64>,
    /// Where the push listener binds (EWS_PUSH_BIND).
    #[arg(long)]
    push_bind: Option<String>,
    /// The URL the target must post notifications to (EWS_PUSH_URL).
    #[arg(long)]
    push_url: Option<String>,
    /// The server profile (EWS_PROFILE).
    #[arg(long)]
    profile: Option<String>,
    /// Run cases that take real protocol minutes (EWS_SLOW).
    #[arg(long)]
    slow: bool,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The case folder (EWS_CASES), default `cases`.
    #[arg(long)]
    cases: Option<PathBuf>,
    /// Only cases whose id contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Write a JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write a self-contained HTML report into this folder (`index.html`).
    #[arg(long, value_name = "DIR")]
    html: Option<PathBuf>,
    /// Cases run at once (serial cases always run alone). Most cases spend
    /// their time waiting on the target's clock, so more than the cores.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Print only the cases that did not pass.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct ListArgs {
    /// The case folder (EWS_CASES), default `cases`.
    #[arg(long)]
    cases: Option<PathBuf>,
    /// Only cases whose id contains this.
    #[arg(long)]
    filter: Option<String>,
    /// List every requirement of the catalogue with the cases covering it;
    /// exit 1 when a MUST requirement is neither covered nor untestable.
    #[arg(long)]
    coverage: bool,
}

fn apply(settings: &mut Settings, t: TargetArgs) {
    let set = |slot: &mut Option<String>, v: Option<String>| {
        if v.is_some() {
            *slot = v;
        }
    };
    set(&mut settings.endpoint, t.endpoint);
    set(&mut settings.user, t.user);
    set(&mut settings.password, t.password);
    set(&mut settings.user2, t.user2);
    set(&mut settings.password2, t.password2);
    set(&mut settings.bearer_token, t.bearer_token);
    if let Some(a) = t.auth {
        match ews_conformance::settings::parse_auth("--auth", &a) {
            Ok(ntlm) => settings.ntlm = ntlm,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(i32::from(ExitStatus::HarnessError.code()));
            }
        }
    }
    set(&mut settings.impersonate, t.impersonate);
    set(&mut settings.anchor_mailbox, t.anchor_mailbox);
    set(&mut settings.push_url, t.push_url);
    set(&mut settings.profile, t.profile);
    if let Some(v) = t.version {
        settings.version = v;
    }
    if let Some(v) = t.push_bind {
        settings.push_bind = v;
    }
    if let Some(v) = t.request_timeout_secs {
        settings.request_timeout_secs = v.max(1);
    }
    if let Some(v) = t.protocol_minute_ms {
        settings.protocol_minute_ms = Some(v.max(1));
    }
    settings.insecure_tls |= t.insecure_tls;
    settings.slow |= t.slow;
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

fn compare(args: CompareArgs) -> anyhow::Result<ExitStatus> {
    let comparison = Comparison::load(&args.reports)?;
    // A closed pipe (`| head`) is no error worth a panic.
    let mut out = std::io::stdout().lock();
    if let Err(e) = std::io::Write::write_all(&mut out, comparison.render_text().as_bytes())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    drop(out);
    if let Some(path) = &args.html {
        std::fs::write(path, render_comparison(&comparison))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("HTML: {}", path.display());
    }
    Ok(if args.fail_on_difference && comparison.differences() > 0 {
        ExitStatus::Failed
    } else {
        ExitStatus::Passed
    })
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitStatus> {
    let mut config = match &args.config {
        Some(path) => ews_server::ServerConfig::from_file_listening(path, SERVE_LISTEN)?,
        None => ews_server::ServerConfig {
            listen: SERVE_LISTEN,
            ..Default::default()
        },
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if !args.push_allow.is_empty() {
        config.push_destinations = ews_server::PushDestinations::allow_only(&args.push_allow)?;
    }
    if let Some(ms) = args.protocol_minute_ms {
        config.protocol_minute = std::time::Duration::from_millis(ms.max(10));
    }
    for fault in FaultSet::parse(&args.faults)?.iter() {
        config.faults.insert(fault);
    }
    if args.dialects.iter().any(|d| d.trim() == "list") {
        print_dialects();
        return Ok(ExitStatus::Passed);
    }
    for dialect in DialectSet::parse(&args.dialects)?.iter() {
        config.dialects.insert(dialect);
    }
    config.dialects.check()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let server = ews_server::start(config.clone())
            .await
            .context("starting the reference server")?;
        println!("EWS reference server listening at {}", server.url());
        println!(
            "  push notifications go {}",
            config.push_destinations.describe()
        );
        println!(
            "  limits: request head {} ms (also the idle keep-alive wait), request body {} ms, {} connections",
            config.limits.header_timeout.as_millis(),
            config.limits.body_timeout.as_millis(),
            config.limits.max_connections
        );
        for user in &config.users {
            println!("  user {} ({})", user.smtp, user.display_name);
        }
        for fault in config.faults.iter() {
            println!("  FAULT {fault}: {}", fault.info().description);
        }
        for dialect in config.dialects.iter() {
            let info = dialect.info();
            println!("  DIALECT {dialect}: {}", info.description);
            if let Some(p) = info.profile {
                println!("    (run the suite with EWS_PROFILE={p})");
            }
        }
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        server.shutdown().await;
        Ok(ExitStatus::Passed)
    })
}

fn stress(mut settings: Settings, args: StressArgs) -> anyhow::Result<ExitStatus> {
    use ews_conformance::stress::{StressConfig, StressError, stress};
    apply(&mut settings, args.target);
    let config = StressConfig {
        pull: args.subscriptions,
        streams: args.streams,
        stream_connections: args.stream_connections.max(1),
        push: args.push,
        generate_for: std::time::Duration::from_secs(args.seconds),
        rate: args.rate.max(1),
        poll_every: std::time::Duration::from_millis(args.poll_ms.max(1)),
        drain_for: std::time::Duration::from_secs(args.drain_seconds),
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
        println!(
            "stress: {} pull, {} streaming, {} push subscriptions; {} items/s for {} s against {}",
            config.pull,
            config.streams,
            config.push,
            config.rate,
            args.seconds,
            target.config().label
        );
        let report = match stress(target.clone(), &config).await {
            Ok(r) => r,
            Err(StressError::Unreachable(e)) => {
                eprintln!("error: {e}");
                return Ok(ExitStatus::Unreachable);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitStatus::HarnessError);
            }
        };
        print!("{}", report.table());
        if let Some(path) = &args.json {
            let text = serde_json::to_string_pretty(&report)?;
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(if report.passed() {
            ExitStatus::Passed
        } else {
            ExitStatus::Failed
        })
    })
}

fn explore(mut settings: Settings, args: ExploreArgs) -> anyhow::Result<ExitStatus> {
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
struct ExploreLine(Progress);

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

fn list(mut settings: Settings, args: ListArgs) -> anyhow::Result<ExitStatus> {
    if let Some(c) = args.cases {
        settings.cases = c;
    }
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let suite = Loader::new(&ops, &checks).load_dir(&settings.cases);
    if args.coverage {
        let catalogue = Catalogue::load(&settings.cases)?;
        let coverage = Coverage::of(&catalogue, &suite.cases);
        print!("{}", coverage.render());
        for e in &suite.errors {
            eprintln!("error: {e}");
        }
        return Ok(if !suite.errors.is_empty() {
            ExitStatus::HarnessError
        } else if coverage.uncovered_must().is_empty() {
            ExitStatus::Passed
        } else {
            ExitStatus::Failed
        });
    }
    let keep = |id: &str| args.filter.as_deref().is_none_or(|f| id.contains(f));
    for case in suite.cases.iter().filter(|c| keep(&c.id)) {
        println!(
            "{}\t{}\t{}",
            case.id,
            case.title,
            case.requirements.join(",")
        );
    }
    let errors: Vec<_> = suite.errors.iter().filter(|e| keep(&e.case_id)).collect();
    for e in &errors {
        eprintln!("error: {e}");
    }
    Ok(if errors.is_empty() {
        ExitStatus::Passed
    } else {
        ExitStatus::HarnessError
    })
}

fn run(mut settings: Settings, args: RunArgs, golden: GoldenMode) -> anyhow::Result<ExitStatus> {
    apply(&mut settings, args.target);
    if let Some(c) = args.cases {
        settings.cases = c;
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let target = match target::from_settings(&settings).await {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitStatus::HarnessError);
            }
        };
        let label = target.config().label.clone();
        let checks = match registry_for(&settings, target.config(), golden).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitStatus::HarnessError);
            }
        };
        let profile = match Profile::for_target(&settings.cases, target.config()) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitStatus::HarnessError);
            }
        };
        // What the push listener refused reaches every report.
        let push_stats = target.push_listener().map(|l| l.stats_handle());
        let executor = match Executor::new(target) {
            Ok(x) => x.with_checks(checks).with_profile(profile),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitStatus::Unreachable);
            }
        };
        let mut suite = Loader::new(executor.ops(), executor.checks()).load_dir(&settings.cases);
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
async fn watch_signals(stop: tokio::sync::watch::Sender<Option<Signal>>) {
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

/// The dialect catalogue, one line each: name, class, profile, exclusions,
/// description, source.
fn print_dialects() {
    for info in DIALECTS {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            info.name,
            info.class,
            info.profile.unwrap_or("-"),
            if info.excludes.is_empty() {
                "-".to_string()
            } else {
                format!(
                    "excludes {}",
                    info.excludes
                        .iter()
                        .map(|d| d.name())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            },
            info.description,
            info.source
        );
    }
}

fn selftest(mut settings: Settings, args: SelftestArgs) -> anyhow::Result<ExitStatus> {
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
