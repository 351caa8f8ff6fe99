//! The self-test in `cargo test`: the suite passes against the clean
//! reference server, and every fault of the catalogue makes it fail in the
//! cases the catalogue names, for the right reason.
//!
//! By default each fault runs only its named catchers (seconds); with
//! EWS_SELFTEST_FULL=1 every fault runs the whole suite, as the CLI does.
//!
//! The specificity half: the whole suite against one server with every
//! compatible dialect at once, and against the profile-bound dialect with
//! its profile (two servers side by side, about 30 s on two cores); with
//! EWS_SELFTEST_DIALECTS=1 one server per dialect as well, as the CLI does
//! (a few minutes).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use ews_conformance::case::Case;
use ews_conformance::check::CheckRegistry;
use ews_conformance::report::explain;
use ews_conformance::selftest::{self, FaultVerdict, Scope, SelftestOptions, expectation};
use ews_conformance::settings::Settings;
use ews_conformance::suite::operation::OpRegistry;
use ews_conformance::suite::{ExitStatus, Loader};
use ews_server::{CATALOGUE, DIALECTS, Dialect, DialectSet, Fault};

fn cases_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cases")
}

fn load_cases() -> Vec<Case> {
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let suite = Loader::new(&ops, &checks).load_dir(&cases_dir());
    assert!(
        suite.errors.is_empty(),
        "the suite must load: {:?}",
        suite.errors
    );
    suite.cases
}

#[test]
fn the_catalogue_names_real_requirements_and_cases() {
    let text = std::fs::read_to_string(cases_dir().join("requirements.toml"))
        .expect("the requirement catalogue is readable");
    let table: toml::Table = text.parse().expect("the requirement catalogue is TOML");
    let known: BTreeSet<String> = table["requirement"]
        .as_array()
        .expect("[[requirement]] entries")
        .iter()
        .filter_map(|r| r.get("id").and_then(|i| i.as_str()).map(str::to_string))
        .collect();
    let cases: BTreeSet<String> = load_cases().into_iter().map(|c| c.id).collect();
    let checks = CheckRegistry::builtin();
    for info in CATALOGUE.iter().map(|i| expectation(i.fault)) {
        for rule in info.rules {
            assert!(
                known.contains(*rule),
                "{}: unknown requirement {rule}",
                info.name
            );
        }
        if !info.pending {
            for c in info.catchers {
                assert!(cases.contains(*c), "{}: no case {c}", info.name);
            }
            assert!(
                info.checks.iter().any(|c| checks.contains(c)),
                "{}: none of {:?} is a registered check",
                info.name,
                info.checks
            );
        }
    }
    let pending = CATALOGUE
        .iter()
        .filter(|i| expectation(i.fault).pending)
        .count();
    assert!(
        CATALOGUE.len() - pending >= 25,
        "at least 25 faults caught now"
    );
    // Every notification operation and every built-in check kind is covered.
    for op in [
        "Subscribe",
        "GetEvents",
        "Unsubscribe",
        "GetStreamingEvents",
        "SendNotification",
    ] {
        assert!(CATALOGUE.iter().any(|i| i.operation == op), "{op}");
    }
    for check in checks.names() {
        assert!(
            CATALOGUE
                .iter()
                .map(|i| expectation(i.fault))
                .any(|e| !e.pending && e.checks.contains(&check)),
            "no fault is caught by `{check}`"
        );
    }
}

#[test]
fn the_suite_is_clean_and_catches_every_fault() {
    let settings = Settings::from_env().expect("valid settings");
    let scope = if settings.selftest_full {
        Scope::Full
    } else {
        Scope::Catalogue
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let options = SelftestOptions {
        scope,
        dialect_runs: Vec::new(),
        ..SelftestOptions::default()
    };
    let report = runtime.block_on(selftest::run(&settings, load_cases(), &options));
    println!("{}", report.render(true));

    let dirty: Vec<String> = report.clean_failures().map(explain).collect();
    assert!(
        dirty.is_empty() && report.clean_start_error.is_none(),
        "the clean server must pass every case:\n{}",
        dirty.join("\n")
    );
    assert_eq!(report.runs.len(), CATALOGUE.len(), "every fault ran");
    for run in &report.runs {
        let info = run.info();
        let name = info.name;
        assert!(run.errors.is_empty(), "{name}: {:?}", run.errors);
        if info.pending {
            assert!(
                matches!(
                    run.verdict,
                    FaultVerdict::AwaitingCatcher | FaultVerdict::CaughtWhilePending
                ),
                "{name}: {:?}",
                run.verdict
            );
            continue;
        }
        assert!(!run.catching.is_empty(), "{name}: no case failed");
        for c in info.catchers {
            assert!(
                run.catching.iter().any(|x| x == c),
                "{name}: {c} did not fail (failing: {:?})",
                run.catching
            );
            let finding = run
                .reason(c)
                .unwrap_or_else(|| panic!("{name}: {c} failed without naming the rule"));
            // The readable account names the check kind or the requirement.
            let outcome = run
                .outcomes
                .iter()
                .find(|o| o.id == *c)
                .expect("the catching outcome is kept");
            let text = explain(outcome);
            assert!(
                text.contains(&format!("[{}]", finding.check))
                    && (info.checks.contains(&finding.check.as_str())
                        || info.rules.iter().any(|r| text.contains(r))),
                "{name}: the failure of {c} does not name the rule:\n{text}"
            );
        }
        assert_eq!(run.verdict, FaultVerdict::Caught, "{name}");
    }
    let (caught, judged) = report.score();
    assert_eq!(caught, judged);
    assert_eq!(report.exit_status(), ExitStatus::Passed);
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ews-conformance"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("EWS_ENDPOINT")
        .output()
        .expect("the binary runs")
}

#[test]
fn the_cli_prints_the_matrix_and_its_exit_code_follows_the_score() {
    let out = cli(&[
        "selftest",
        "--quick",
        "--no-dialects",
        "--fault",
        "batch-51",
        "--fault",
        "no-owner-check",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("2/2 faults caught"), "{stdout}");
    assert!(stdout.contains("getevents/batching-120*"), "{stdout}");
    assert!(stdout.contains("getevents/other-user-denied*"), "{stdout}");
    assert!(stdout.contains("— clean"), "{stdout}");

    let out = cli(&["selftest", "--fault", "no-such-fault"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown fault `no-such-fault`"), "{stderr}");
    assert!(stderr.contains("batch-51"), "{stderr}");

    let out = cli(&["selftest", "--list"]);
    assert_eq!(out.status.code(), Some(0));
    let listing = String::from_utf8_lossy(&out.stdout);
    let sections: Vec<&str> = listing.split("# dialects").collect();
    assert_eq!(sections.len(), 2, "{listing}");
    let faults = sections[0].lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(faults, CATALOGUE.len());
    let dialects = sections[1].lines().skip(1).count();
    assert_eq!(dialects, DIALECTS.len(), "{listing}");
    assert!(
        sections[1]
            .lines()
            .any(|l| l.starts_with("soft-delete-as-deleted\tevents\texchange2010\t")),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("stream-never-closes\tactive\tGetStreamingEvents\tR45\t"))
    );
    assert!(
        listing.lines().all(|l| !l.contains("\tpending\t")),
        "every fault has a catcher in the suite: {listing}"
    );

    let out = cli(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--fault",
        "no-such-fault",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown fault"));

    let out = cli(&["serve", "--listen", "127.0.0.1:0", "--dialect", "gzipp"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown dialect `gzipp`"));
    let out = cli(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--dialect",
        "soap-prefix",
        "--dialect",
        "default-namespace",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exclude each other"));
    let out = cli(&["serve", "--dialect", "list"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        DIALECTS.len()
    );
}

#[test]
fn serve_announces_its_dialects() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ews-conformance"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dialect",
            "all",
            "--dialect",
            "soft-delete-as-deleted",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.contains("EWS_PROFILE=exchange2010"))
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    let announced = lines.iter().filter(|l| l.contains("DIALECT ")).count();
    assert_eq!(
        announced,
        DialectSet::all_compatible().len() + 1,
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("DIALECT soft-delete-as-deleted")),
        "{lines:?}"
    );
}

#[test]
fn the_readme_lists_every_dialect() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .expect("the README is readable");
    for info in DIALECTS {
        assert!(
            readme.contains(&format!("| `{}` |", info.name)),
            "README's dialect table lacks {}",
            info.name
        );
    }
}

#[test]
fn profile_bound_dialects_name_real_profiles() {
    for info in DIALECTS {
        if let Some(p) = info.profile {
            let file = cases_dir().join("profiles").join(format!("{p}.toml"));
            assert!(file.is_file(), "{}: no profile {p}", info.name);
        }
    }
}

/// The specificity half in `cargo test`: a correct server that makes
/// Exchange's other legal choices must pass every case (recorded is fine).
/// A failure here is a bug in the case or its check, never in the dialect.
#[test]
fn the_suite_passes_against_every_compatible_dialect_at_once() {
    let settings = Settings::from_env().expect("valid settings");
    let mut runs = vec![
        DialectSet::all_compatible(),
        DialectSet::of([Dialect::SoftDeleteAsDeleted]),
    ];
    if std::env::var("EWS_SELFTEST_DIALECTS").is_ok_and(|v| v == "1") {
        runs = selftest::standard_dialect_runs();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let options = SelftestOptions {
        run_faults: false,
        dialect_runs: runs.clone(),
        ..SelftestOptions::default()
    };
    let report = runtime.block_on(selftest::run(&settings, load_cases(), &options));
    println!("{}", report.render(true));
    assert_eq!(report.dialect_runs.len(), runs.len());
    for run in &report.dialect_runs {
        assert!(run.cases_run > 0, "{}: no case ran", run.label());
        assert!(
            run.start_error.is_none(),
            "{}: {:?}",
            run.label(),
            run.start_error
        );
        assert!(
            run.passed(),
            "{} makes cases fail (a bug in the case or check, not the dialect): {:?}",
            run.label(),
            run.findings()
        );
    }
    assert_eq!(report.exit_status(), ExitStatus::Passed);
}

#[test]
fn serve_announces_its_faults() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ews-conformance"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--fault",
            "batch-51",
            "--fault",
            "never-expire",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.contains("FAULT never-expire"))
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines[0].starts_with("EWS reference server listening at http://127.0.0.1:"),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("FAULT batch-51")),
        "{lines:?}"
    );
    assert_eq!(Fault::from_name("never-expire"), Some(Fault::NeverExpire));
}
