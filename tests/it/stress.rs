//! The stress mode against the embedded reference server: the faithful
//! server loses, repeats and reorders nothing with many subscriptions of
//! every kind, and the accounting is shown to count each kind of defect
//! on a server that has it.

use std::sync::Arc;
use std::time::Duration;

use ews_conformance::settings::Settings;
use ews_conformance::stress::{StressConfig, StressReport, stress};
use ews_conformance::suite::target::{Target, start_embedded_with};
use ews_server::{Fault, FaultSet};

fn config(pull: usize, streams: usize, push: usize) -> StressConfig {
    StressConfig {
        pull,
        streams,
        stream_connections: 3,
        push,
        generate_for: Duration::from_secs(2),
        rate: 60,
        poll_every: Duration::from_millis(100),
        drain_for: Duration::from_secs(20),
    }
}

async fn run(faults: FaultSet, config: &StressConfig) -> StressReport {
    let settings = Settings::default();
    let target: Arc<dyn Target> = Arc::new(
        start_embedded_with(&settings, faults)
            .await
            .expect("the embedded server starts"),
    );
    stress(target, config).await.expect("the stress run runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reference_server_loses_nothing_under_load() {
    let report = run(FaultSet::none(), &config(30, 12, 8)).await;
    println!("{}", report.table());
    assert!(report.generated >= 60, "{}", report.table());
    assert!(report.passed(), "{}", report.table());
    assert_eq!(report.modes.len(), 3);
    for m in &report.modes {
        assert_eq!(m.delivered, m.expected, "{}", report.table());
        assert!(m.latency_ms.max > 0.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_defect_is_counted() {
    // A loss leaves the run waiting its whole drain time: keep it short.
    let small = StressConfig {
        drain_for: Duration::from_secs(4),
        ..config(2, 1, 1)
    };
    let dropped = run(FaultSet::of([Fault::DropEvent]), &small).await;
    assert!(dropped.generated > 100, "{}", dropped.table());
    assert!(
        dropped.modes.iter().all(|m| m.lost > 0),
        "{}",
        dropped.table()
    );
    let repeated = run(FaultSet::of([Fault::RepeatEvent]), &small).await;
    assert!(
        repeated.modes.iter().all(|m| m.duplicated > 0),
        "{}",
        repeated.table()
    );
    let reordered = run(FaultSet::of([Fault::ReorderEvents]), &small).await;
    assert!(
        reordered
            .modes
            .iter()
            .find(|m| m.mode == "pull")
            .is_some_and(|m| m.reordered > 0),
        "{}",
        reordered.table()
    );
    for r in [&dropped, &repeated, &reordered] {
        assert!(!r.passed());
    }
}
