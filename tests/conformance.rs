//! `cargo test --test conformance`: one trial per case file, named after
//! its path under the case folder (`getevents/idle-status-event`), so the
//! usual name filters work.
//!
//! The target comes from the settings: a live endpoint when EWS_ENDPOINT is
//! set, else the embedded reference server. Recorded cases pass with their
//! observations printed; skipped cases are ignored with the reason; a
//! malformed case file is a failing trial carrying its file:line message.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use ews_conformance::check::CheckRegistry;
use ews_conformance::report::{explain, observations};
use ews_conformance::settings::Settings;

use ews_conformance::suite::operation::OpRegistry;
use ews_conformance::suite::{Harness, HarnessError, Loader, Verdict};

fn main() {
    let args = Arguments::from_args();
    let trials = match trials() {
        Ok(t) => t,
        Err(message) => vec![Trial::test("setup", move || Err(Failed::from(message)))],
    };
    libtest_mimic::run(&args, trials).exit();
}

fn trials() -> Result<Vec<Trial>, String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    // Relative to the package (where cargo runs tests), shown as written.
    let cases_dir = if settings.cases.is_absolute() || settings.cases.is_dir() {
        settings.cases.clone()
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(&settings.cases)
    };
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?,
    );
    // Without a target every case is ignored with the reason, not failed:
    // that is the environment, not a verdict on a server.
    let built = runtime.block_on(Harness::builder(settings.clone()).cases(&cases_dir).build());
    let (executor, suite) = match built {
        Ok(h) => (Ok(Arc::new(h.executor)), h.suite),
        Err(HarnessError::Target(e)) => (
            Err(format!(
                "{e}; set EWS_ENDPOINT to run against a live server"
            )),
            Loader::new(&OpRegistry::builtin(), &CheckRegistry::builtin()).load_dir(&cases_dir),
        ),
        Err(e) => return Err(e.to_string()),
    };

    // Serial cases take the write side: nothing else runs beside them.
    let alone = Arc::new(RwLock::new(()));
    let mut trials = Vec::new();
    for err in suite.errors {
        let name = if err.case_id.is_empty() {
            "case-folder".to_string()
        } else {
            err.case_id.clone()
        };
        trials.push(Trial::test(name, move || {
            Err(Failed::from(err.to_string()))
        }));
    }
    for case in suite.cases {
        let executor = executor.clone();
        let runtime = runtime.clone();
        let alone = alone.clone();
        trials.push(Trial::ignorable_test(case.id.clone(), move || {
            let executor = match executor {
                Ok(x) => x,
                Err(reason) => return Ok(Completion::ignored_with(reason)),
            };
            let outcome = if case.serial {
                let _alone = alone.write().unwrap_or_else(|p| p.into_inner());
                runtime.block_on(executor.run_case(&case))
            } else {
                let _shared = alone.read().unwrap_or_else(|p| p.into_inner());
                runtime.block_on(executor.run_case(&case))
            };
            match &outcome.verdict {
                Verdict::Pass => Ok(Completion::Completed),
                Verdict::Recorded => {
                    println!("recorded {}:\n{}", outcome.id, observations(&outcome));
                    Ok(Completion::Completed)
                }
                Verdict::Skipped { reason } => Ok(Completion::ignored_with(reason)),
                Verdict::ExpectedFailure { reason } => Ok(Completion::ignored_with(format!(
                    "expected failure: {reason}"
                ))),
                Verdict::Fail
                | Verdict::Unreachable { .. }
                | Verdict::Error { .. }
                | Verdict::UnexpectedPass { .. } => Err(Failed::from(explain(&outcome))),
            }
        }));
    }
    Ok(trials)
}
