//! The harness uses only the wire: the suite pointed at a separately
//! started reference server through the live-endpoint settings gives the
//! same verdict for every case as the embedded default target.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ews_conformance::report::Fanout;
use ews_conformance::settings::Settings;
use ews_conformance::suite::target::{self, Target};
use ews_conformance::suite::{Executor, Loader, RunOptions, run_suite};
use ews_server::ServerConfig;

const MINUTE_MS: u64 = 2_000;

async fn verdicts(target: Arc<dyn Target>) -> BTreeMap<String, String> {
    let executor = Arc::new(Executor::new(target).expect("executor"));
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    let suite = Loader::new(executor.ops(), executor.checks()).load_dir(&cases);
    assert!(
        suite.errors.is_empty(),
        "case files load: {:?}",
        suite.errors
    );
    assert!(suite.cases.len() >= 25, "the suite has its cases");
    let mut silent = Fanout::new();
    let result = run_suite(
        executor,
        suite.cases,
        &[],
        &RunOptions::default(),
        &mut silent,
    )
    .await;
    result
        .outcomes
        .iter()
        .map(|o| (o.id.clone(), o.verdict.label().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_endpoint_gets_the_same_verdicts_as_the_embedded_target() {
    let embedded_settings = Settings {
        protocol_minute_ms: Some(MINUTE_MS),
        ..Settings::default()
    };
    let embedded = target::start_embedded(&embedded_settings)
        .await
        .expect("embedded target");
    let embedded_verdicts = verdicts(Arc::new(embedded)).await;

    let config = ServerConfig {
        protocol_minute: Duration::from_millis(MINUTE_MS),
        ..ServerConfig::default()
    };
    let users = config.users.clone();
    let separate = ews_server::start(config)
        .await
        .expect("a separate server starts");
    let live_settings = Settings {
        endpoint: Some(separate.url()),
        user: Some(users[0].smtp.clone()),
        password: Some(users[0].password.clone()),
        user2: Some(users[1].smtp.clone()),
        password2: Some(users[1].password.clone()),
        protocol_minute_ms: Some(MINUTE_MS),
        profile: Some("reference".into()),
        slow: true,
        ..Settings::default()
    };
    let live = target::start_live(&live_settings, &separate.url())
        .await
        .expect("live target");
    assert!(
        live.config().label.contains("live"),
        "the second run goes through the live-endpoint path: {}",
        live.config().label
    );
    let live_verdicts = verdicts(Arc::new(live)).await;
    separate.shutdown().await;

    assert_eq!(
        embedded_verdicts, live_verdicts,
        "verdicts differ between the embedded target and the same server reached as a live endpoint"
    );
    // Cases written for another server profile (e.g. the Exchange 2010
    // soft-delete expectation) are skipped under `reference`.
    let ops = ews_conformance::suite::operation::OpRegistry::builtin();
    let checks = ews_conformance::check::CheckRegistry::builtin();
    let other_profile: Vec<String> = Loader::new(&ops, &checks)
        .load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("cases"))
        .cases
        .into_iter()
        .filter(|c| c.profile_exclusion(Some("reference")).is_some())
        .map(|c| c.id)
        .collect();
    assert!(
        embedded_verdicts.iter().all(|(id, v)| v == "pass"
            || v == "recorded"
            || (v == "skipped" && other_profile.contains(id))),
        "the reference server passes its own suite: {embedded_verdicts:?}"
    );
}
