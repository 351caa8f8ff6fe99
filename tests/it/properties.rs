//! Property tests over the wire: generated mailbox/subscription sequences
//! are run against a target by the driver and judged by the oracle.
//!
//! * One property per delivery mode (pull, streaming, push) against the
//!   target the settings name (the embedded reference server unless
//!   `EWS_ENDPOINT` is set): `EWS_PROPTEST_CASES` sequences each (default
//!   16), or `EWS_PROPTEST_SECONDS` of them; `EWS_PROPTEST_SEED` draws the
//!   same sequences again (every run prints its seed). A failure is shrunk
//!   against the target and written to `EWS_FOUND_DIR` (default
//!   `cases/found`), and the panic message shows the shrunk sequence and
//!   its first divergence.
//! * Rendered cases replay: the case file of a generated sequence, run by
//!   the ordinary executor, passes on the reference server.
//! * Broken targets: a proxy in front of the reference server that breaks
//!   GetEvents answers makes the property fail, shrink to a few operations
//!   and write a case that the suite's loader reads and the executor fails
//!   again on the same proxy (and passes on the clean server); a target
//!   that never answers fails a run with evidence instead of hanging.
//! * The reference server's own faults (its fault catalogue): a dropped
//!   event (one in a hundred), a batch of 51 and a stale PreviousWatermark
//!   are each found, shrunk, written and replayed the same way.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use ews_conformance::check::CheckRegistry;
use ews_conformance::client::auth::Auth;
use ews_conformance::model::drive::{
    DriveError, Driver, ExploreConfig, ExploreReport, Failure, Signature, explore,
};
use ews_conformance::model::{
    DivergenceKind, FolderHandle, GenConfig, ItemHandle, Latitude, Mode, Op, Scope, SubHandle,
    ops_strategy, predict, to_case_toml,
};
use ews_conformance::settings::Settings;
use ews_conformance::suite::operation::OpRegistry;
use ews_conformance::suite::target::{self, Target, TargetConfig};
use ews_conformance::suite::{Executor, Loader, Verdict};
use ews_proto::ews::EventKind;
use ews_server::{FaultSet, RunningServer, ServerConfig};

const MINUTE: Duration = Duration::from_millis(2_000);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn settings() -> Settings {
    Settings::from_env().expect("valid EWS_* settings")
}

/// The seed the settings fix, else a fresh one (printed by every run).
fn seed(settings: &Settings) -> u64 {
    settings.proptest_seed.unwrap_or_else(rand::random)
}

/// A folder relative to the package, as cargo runs tests from there.
fn in_package(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
    }
}

/// A fresh folder for case files a test writes (never under `cases/`).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ews-conformance-properties-{}-{name}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// Sequences that use the Inbox or all folders see each other's events:
/// against one live mailbox the three properties run one at a time (the
/// embedded target is a fresh server per property).
static LIVE_MAILBOX: Mutex<()> = Mutex::new(());

/// The property for one delivery mode against the target of the settings.
fn property(mode: Mode) {
    let settings = settings();
    let seed = seed(&settings);
    let _alone = settings
        .endpoint
        .is_some()
        .then(|| LIVE_MAILBOX.lock().unwrap_or_else(|p| p.into_inner()));
    let rt = runtime();
    let report = rt.block_on(async {
        let target = target::from_settings(&settings)
            .await
            .expect("the target starts");
        let driver = Driver::for_target(target).expect("a driver");
        if !driver.modes().contains(&mode) {
            println!(
                "skipped: {} cannot be driven in {} mode",
                driver.target().label,
                mode.as_str()
            );
            return None;
        }
        let config = ExploreConfig {
            generator: GenConfig {
                modes: vec![mode],
                ..GenConfig::default()
            },
            cases: match settings.proptest_seconds {
                Some(_) => None,
                None => Some(settings.proptest_cases as usize),
            },
            budget: settings.proptest_seconds.map(Duration::from_secs),
            seed,
            found_dir: Some(in_package(&settings.found_dir)),
            ..ExploreConfig::default()
        };
        Some(explore(&driver, &config).await)
    });
    let Some(report) = report else {
        return;
    };
    let report = report.unwrap_or_else(|e| panic!("{} mode, seed {seed}: {e}", mode.as_str()));
    println!("{}", report.summary());
    if let Some(found) = &report.found {
        panic!(
            "{} mode, seed {seed} (EWS_PROPTEST_SEED={seed} replays it):\n{}",
            mode.as_str(),
            found.report()
        );
    }
    assert!(report.sequences >= 1);
    assert!(
        report.events > 0,
        "the sequences predicted no events at all"
    );
}

#[test]
fn pull_sequences_are_delivered_as_the_model_predicts() {
    property(Mode::Pull);
}

#[test]
fn streaming_sequences_are_delivered_as_the_model_predicts() {
    property(Mode::Streaming);
}

#[test]
fn push_sequences_are_delivered_as_the_model_predicts() {
    property(Mode::Push);
}

// ------------------------------------------------------------ replayed cases

#[test]
fn rendered_cases_of_generated_sequences_pass_on_the_reference_server() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = ops_strategy(GenConfig {
        max_ops: 40,
        ..GenConfig::default()
    });
    let rt = runtime();
    rt.block_on(async {
        let target = target::embedded(&Settings::default())
            .await
            .expect("the embedded server starts");
        let executor = Executor::new(target).expect("an executor");
        let (ops_registry, checks) = (OpRegistry::builtin(), CheckRegistry::builtin());
        let loader = Loader::new(&ops_registry, &checks);
        for n in 0..6 {
            let ops = strategy
                .new_tree(&mut runner)
                .expect("a sequence")
                .current();
            let prediction = predict(&ops).expect("generated sequences are valid");
            let text = to_case_toml("generated", &ops, &prediction, &Latitude::reference());
            let id = format!("generated/{n}");
            let case = loader
                .parse(&text, Path::new("generated.toml"), &id)
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            let outcome = executor.run_case(&case).await;
            assert_eq!(
                outcome.verdict,
                Verdict::Pass,
                "{}\n{text}",
                ews_conformance::report::explain(&outcome)
            );
        }
    });
}

// ------------------------------------------------------------ broken targets

/// How the proxy breaks GetEvents answers.
#[derive(Clone, Copy)]
enum Break {
    /// A notification with two or more CreatedEvents loses the first.
    DropFirstOfTwoCreated,
    /// From a subscription's third GetEvents on, PreviousWatermark repeats
    /// the one its second call sent.
    StalePreviousWatermark,
    /// Mail is delivered asynchronously, as Exchange's transport does: a
    /// CreateItem SendOnly is answered at once and reaches the server later.
    LateDelivery,
}

/// How late [`Break::LateDelivery`] delivers.
const DELIVERY_DELAY: Duration = Duration::from_millis(400);

/// A CreateItem success naming no item, as Exchange answers a SendOnly.
const SENT: &str = r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:CreateItemResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:CreateItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items/></m:CreateItemResponseMessage></m:ResponseMessages></m:CreateItemResponse></s:Body></s:Envelope>"#;

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    how: Break,
    /// Per SubscriptionId: GetEvents calls and the watermark of the second.
    calls: Mutex<HashMap<String, (u32, String)>>,
}

/// A loopback proxy in front of the reference server that breaks GetEvents answers.
struct Proxy {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn text_between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}

fn rewrite(state: &ProxyState, request: &str, mut body: String) -> String {
    if !body.contains("GetEventsResponse") {
        return body;
    }
    match state.how {
        Break::LateDelivery => body,
        Break::DropFirstOfTwoCreated => {
            if body.matches("<t:CreatedEvent>").count() >= 2
                && let Some(start) = body.find("<t:CreatedEvent>")
                && let Some(len) = body[start..].find("</t:CreatedEvent>")
            {
                body.replace_range(start..start + len + "</t:CreatedEvent>".len(), "");
            }
            body
        }
        Break::StalePreviousWatermark => {
            let (Some(sub), Some(sent)) = (
                text_between(request, "<m:SubscriptionId>", "</m:SubscriptionId>"),
                text_between(request, "<m:Watermark>", "</m:Watermark>"),
            ) else {
                return body;
            };
            let mut calls = state.calls.lock().unwrap_or_else(|p| p.into_inner());
            let entry = calls.entry(sub.to_string()).or_default();
            entry.0 += 1;
            if entry.0 == 2 {
                entry.1 = sent.to_string();
            }
            if entry.0 >= 3
                && let Some(old) =
                    text_between(&body, "<t:PreviousWatermark>", "</t:PreviousWatermark>")
            {
                let old = format!("<t:PreviousWatermark>{old}</t:PreviousWatermark>");
                let stale = format!("<t:PreviousWatermark>{}</t:PreviousWatermark>", entry.1);
                body = body.replacen(&old, &stale, 1);
            }
            body
        }
    }
}

async fn forward(
    State(state): State<Arc<ProxyState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = String::from_utf8_lossy(&body).into_owned();
    let mut out = state
        .client
        .post(&state.upstream)
        .header(header::CONTENT_TYPE, "text/xml; charset=utf-8");
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        out = out.header(header::AUTHORIZATION, auth.clone());
    }
    if matches!(state.how, Break::LateDelivery) && request.contains("SendOnly") {
        tokio::spawn(async move {
            tokio::time::sleep(DELIVERY_DELAY).await;
            let _ = out.body(request).send().await;
        });
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            SENT,
        )
            .into_response();
    }
    let answer = match out.body(request.clone()).send().await {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let text = answer.text().await.unwrap_or_default();
    let text = rewrite(&state, &request, text);
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        text,
    )
        .into_response()
}

async fn start_proxy(upstream: String, how: Break) -> Proxy {
    let state = Arc::new(ProxyState {
        upstream,
        client: reqwest::Client::new(),
        how,
        calls: Mutex::new(HashMap::new()),
    });
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("the proxy binds");
    let addr = listener.local_addr().expect("a local address");
    let app = Router::new().fallback(forward).with_state(state);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Proxy {
        url: format!("http://{addr}/EWS/Exchange.asmx"),
        task,
    }
}

async fn reference_server(config: ServerConfig) -> RunningServer {
    ews_server::start(ServerConfig {
        protocol_minute: MINUTE,
        ..config
    })
    .await
    .expect("the reference server starts")
}

/// A pull-only target at `endpoint` acting as the server's first user,
/// judged with the strict reference profile.
fn pull_target(endpoint: &str, request_timeout: Duration) -> Arc<dyn Target> {
    target_with_users(endpoint, request_timeout, 1)
}

/// [`pull_target`] with the server's first `n` users (the second one for
/// the other-mailbox decoys).
fn target_with_users(endpoint: &str, request_timeout: Duration, n: usize) -> Arc<dyn Target> {
    let users = ServerConfig::default().users;
    let user = users.first().expect("the default server has users");
    let mut builder = TargetConfig::builder(endpoint);
    if n > 1 {
        let other = users.get(1).expect("the default server has two users");
        builder = builder.user2(
            other.smtp.clone(),
            Auth::Basic {
                username: other.smtp.clone(),
                password: other.password.clone(),
            },
        );
    }
    let config = builder
        .label(format!("test target {endpoint}"))
        .user(
            user.smtp.clone(),
            Auth::Basic {
                username: user.smtp.clone(),
                password: user.password.clone(),
            },
        )
        .protocol_minute(MINUTE)
        .request_timeout(request_timeout)
        .profile(Some("reference".into()))
        .build()
        .expect("a valid target");
    Arc::new(config)
}

/// Explores pull sequences on `broken` until one fails; the failure must be
/// shrunk to at most `max_ops` operations, show `kind`, be written as a case
/// that loads, fails again on `broken` and passes on `clean`.
async fn find_and_replay(
    broken: Arc<dyn Target>,
    clean: Arc<dyn Target>,
    generator: GenConfig,
    kinds: &[DivergenceKind],
    max_ops: usize,
    shrink_runs: usize,
) -> ExploreReport {
    let found_root = scratch("found");
    let driver = Driver::for_target(Arc::clone(&broken)).expect("a driver");
    let config = ExploreConfig {
        generator,
        cases: Some(200),
        seed: 11,
        shrink_runs,
        found_dir: Some(found_root.join("found")),
        ..ExploreConfig::default()
    };
    let report = explore(&driver, &config).await.expect("the target answers");
    let found = report
        .found
        .as_ref()
        .unwrap_or_else(|| panic!("the broken target passed: {}", report.summary()));
    let text = found.report();
    assert!(
        matches!(found.signature, Signature::Divergence { kind: k, .. } if kinds.contains(&k)),
        "{text}"
    );
    assert!(found.shrunk.ops.len() <= max_ops, "{text}");
    assert!(found.shrunk.ops.len() < found.original.len() || found.original.len() <= max_ops);
    assert!(
        text.contains(" = Subscribe(pull"),
        "the report lists the shrunk sequence: {text}"
    );
    assert!(text.contains("first problem:"), "{text}");
    let Some(Failure::Diverged(divergences)) = &found.shrunk.failure else {
        panic!("a divergence: {text}");
    };
    assert!(
        divergences.iter().any(|d| kinds.contains(&d.kind)),
        "{text}"
    );

    // The written case: an ordinary case file the suite loads and replays.
    let path = found
        .case_file
        .clone()
        .unwrap_or_else(|| panic!("the case was written: {text}"));
    assert!(
        path.starts_with(found_root.join("found")),
        "{}",
        path.display()
    );
    assert!(text.contains(&path.display().to_string()), "{text}");
    let (ops, checks) = (OpRegistry::builtin(), CheckRegistry::builtin());
    let loader = Loader::new(&ops, &checks);
    let suite = loader.load_dir(&found_root);
    assert!(suite.errors.is_empty(), "{:?}", suite.errors);
    let [case] = suite.cases.as_slice() else {
        panic!("one case in {}", found_root.display());
    };
    assert_eq!(case.id, format!("found/{}", found.case_name));
    let on_broken = Executor::new(broken)
        .expect("an executor")
        .run_case(case)
        .await;
    assert_eq!(
        on_broken.verdict,
        Verdict::Fail,
        "the replay fails again on the broken target:\n{}\n{}",
        ews_conformance::report::explain(&on_broken),
        found.case_text
    );
    let on_clean = Executor::new(clean)
        .expect("an executor")
        .run_case(case)
        .await;
    assert_eq!(
        on_clean.verdict,
        Verdict::Pass,
        "the replay passes on the clean server:\n{}\n{}",
        ews_conformance::report::explain(&on_clean),
        found.case_text
    );
    let _ = std::fs::remove_dir_all(&found_root);
    report
}

#[test]
fn a_dropped_event_is_found_shrunk_written_and_replayed() {
    runtime().block_on(async {
        let server = reference_server(ServerConfig::default()).await;
        let proxy = start_proxy(server.url(), Break::DropFirstOfTwoCreated).await;
        let report = find_and_replay(
            pull_target(&proxy.url, Duration::from_secs(10)),
            pull_target(&server.url(), Duration::from_secs(10)),
            GenConfig::isolated_pull(),
            &[DivergenceKind::Lost],
            5,
            300,
        )
        .await;
        println!("{}", report.summary());
        if let Some(f) = &report.found {
            println!("{}", f.report());
        }
    });
}

#[test]
fn a_stale_previous_watermark_is_found_shrunk_written_and_replayed() {
    runtime().block_on(async {
        let server = reference_server(ServerConfig::default()).await;
        let proxy = start_proxy(server.url(), Break::StalePreviousWatermark).await;
        let report = find_and_replay(
            pull_target(&proxy.url, Duration::from_secs(10)),
            pull_target(&server.url(), Duration::from_secs(10)),
            GenConfig::isolated_pull(),
            &[DivergenceKind::PreviousWatermark],
            // Subscribe, Poll, an event (or the watermark never moves), Poll, Poll.
            5,
            300,
        )
        .await;
        println!("{}", report.summary());
    });
}

fn tiny_sequence() -> Vec<Op> {
    vec![
        Op::Subscribe {
            sub: SubHandle(1),
            mode: Mode::Pull,
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
fn a_target_that_never_answers_fails_the_run_with_evidence_within_the_deadline() {
    runtime().block_on(async {
        // Accepts connections, reads nothing, answers nothing.
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("an address");
        let hold = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let target = pull_target(
            &format!("http://{addr}/EWS/Exchange.asmx"),
            Duration::from_millis(800),
        );
        let driver = Driver::for_target(target).expect("a driver");
        let started = Instant::now();
        let run = driver.run(&tiny_sequence()).await.expect("not fatal");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "bounded: {:?}",
            started.elapsed()
        );
        let Some(Failure::Step(step)) = &run.failure else {
            panic!("a step failure, got {:?}", run.failure);
        };
        assert_eq!(step.index, None, "setup could not create the case folder");
        assert_eq!(step.request, "CreateFolder");
        assert!(step.detail.contains("no complete response"), "{step}");
        hold.abort();
    });
}

#[test]
fn a_target_that_answers_garbage_fails_the_operation_with_its_answer() {
    runtime().block_on(async {
        let server = reference_server(ServerConfig::default()).await;
        let real = server.url();
        // The reference server, except that GetEvents answers HTML.
        let client = reqwest::Client::new();
        let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (client, real) = (client.clone(), real.clone());
            async move {
                let text = String::from_utf8_lossy(&body).into_owned();
                if text.contains("<m:GetEvents>") {
                    return (StatusCode::OK, "<html>maintenance</html>".to_string());
                }
                let mut out = client.post(&real).header(header::CONTENT_TYPE, "text/xml");
                if let Some(a) = headers.get(header::AUTHORIZATION) {
                    out = out.header(header::AUTHORIZATION, a.clone());
                }
                match out.body(text).send().await {
                    Ok(r) => (StatusCode::OK, r.text().await.unwrap_or_default()),
                    Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("an address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let driver = Driver::for_target(pull_target(
            &format!("http://{addr}/EWS/Exchange.asmx"),
            Duration::from_secs(10),
        ))
        .expect("a driver");
        let run = driver.run(&tiny_sequence()).await.expect("not fatal");
        let Some(Failure::Step(step)) = &run.failure else {
            panic!("a step failure, got {:?}", run.failure);
        };
        assert_eq!(step.index, Some(2), "{step}");
        assert_eq!(step.request, "GetEvents");
        assert!(step.detail.contains("not soap:Envelope"), "{step}");
        assert_eq!(
            step.evidence.as_deref(),
            Some("<html>maintenance</html>"),
            "the answer is quoted"
        );
        assert!(step.to_string().contains("Poll(s1)"), "{step}");
        task.abort();
    });
}

#[test]
fn an_unreachable_target_ends_the_run_as_unreachable() {
    runtime().block_on(async {
        // A port nothing listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
            l.local_addr().expect("an address").port()
        };
        let driver = Driver::for_target(pull_target(
            &format!("http://127.0.0.1:{port}/EWS/Exchange.asmx"),
            Duration::from_secs(5),
        ))
        .expect("a driver");
        let err = driver.run(&tiny_sequence()).await.expect_err("unreachable");
        assert!(matches!(err, DriveError::Unreachable(_)), "{err}");
    });
}

// ------------------------------------------------- the reference server's faults

/// The reference server with the first of `names` its fault catalogue
/// knows switched on (several spellings are accepted, so a renamed fault
/// fails here, loudly, rather than testing nothing).
fn faulty_server_config(names: &[&str]) -> ServerConfig {
    let faults = names
        .iter()
        .find_map(|n| FaultSet::parse(&[*n]).ok())
        .unwrap_or_else(|| panic!("none of {names:?} is in the fault catalogue"));
    ServerConfig {
        faults,
        ..ServerConfig::default()
    }
}

async fn fault_is_found(
    names: &[&str],
    generator: GenConfig,
    kind: DivergenceKind,
    max_ops: usize,
    shrink_runs: usize,
) {
    let broken = reference_server(faulty_server_config(names)).await;
    let clean = reference_server(ServerConfig::default()).await;
    let report = find_and_replay(
        pull_target(&broken.url(), Duration::from_secs(10)),
        pull_target(&clean.url(), Duration::from_secs(10)),
        generator,
        &[kind],
        max_ops,
        shrink_runs,
    )
    .await;
    println!("{}", report.summary());
    if let Some(f) = &report.found {
        println!("{}", f.report());
    }
}

/// The most operations a shrunk case of the server's faults may keep (final polls included).
const FAULT_MAX_OPS: usize = 6;

#[test]
fn fault_stale_previous_watermark_is_found() {
    runtime().block_on(fault_is_found(
        &["stale-previous-watermark"],
        GenConfig::isolated_pull(),
        DivergenceKind::PreviousWatermark,
        FAULT_MAX_OPS,
        300,
    ));
}

#[test]
fn fault_batch_of_51_is_found() {
    runtime().block_on(fault_is_found(
        &["batch-of-51", "batch-51"],
        GenConfig {
            min_ops: 4,
            max_ops: 30,
            poll_weight: 1,
            bulk_weight: 6,
            ..GenConfig::isolated_pull()
        },
        DivergenceKind::BatchTooLarge,
        // Subscribe, one CreateItem of 26 messages (52 events), Poll.
        FAULT_MAX_OPS,
        300,
    ));
}

#[test]
fn fault_drop_one_in_a_hundred_is_found() {
    runtime().block_on(fault_is_found(
        &["drop-one-in-hundred", "drop-event"],
        // Every item event in the case folder (fresh in every run, so the
        // fault strikes at the same operation in a replay), and soon.
        GenConfig {
            min_ops: 8,
            max_ops: 40,
            poll_weight: 1,
            max_user_folders: 0,
            delete_kinds: vec![ews_conformance::model::DeleteHow::HardDelete],
            bulk_weight: 6,
            ..GenConfig::isolated_pull()
        },
        DivergenceKind::Lost,
        // Subscribe, one CreateItem of a hundred messages, Poll.
        FAULT_MAX_OPS,
        150,
    ));
}

#[test]
fn fault_cross_mailbox_leak_is_found_through_the_second_users_decoys() {
    runtime().block_on(async {
        let broken = reference_server(faulty_server_config(&["cross-mailbox-leak"])).await;
        let clean = reference_server(ServerConfig::default()).await;
        let timeout = Duration::from_secs(10);
        let report = find_and_replay(
            target_with_users(&broken.url(), timeout, 2),
            target_with_users(&clean.url(), timeout, 2),
            // Pull subscriptions that may watch the Inbox; the second user
            // delivers and saves mail in their own (same-named) Inbox.
            GenConfig {
                modes: vec![Mode::Pull],
                all_folders: false,
                ..GenConfig::default()
            },
            // Their message shows where one of ours was due, or where none was.
            &[DivergenceKind::Mismatch, DivergenceKind::Unexpected],
            FAULT_MAX_OPS,
            300,
        )
        .await;
        let found = report.found.as_ref().expect("found");
        assert!(
            found
                .shrunk
                .ops
                .iter()
                .any(|op| matches!(op, Op::OtherMailbox { .. })),
            "the shrunk sequence keeps the decoy: {}",
            found.report()
        );
        assert!(
            found.case_text.contains("as = \"user2\""),
            "{}",
            found.case_text
        );
        assert!(found.case_text.contains("needs = [\"second-user\"]"));
    });
}

#[test]
fn a_late_delivery_is_awaited_before_the_next_operation() {
    runtime().block_on(async {
        let server = reference_server(ServerConfig::default()).await;
        let proxy = start_proxy(server.url(), Break::LateDelivery).await;
        let driver =
            Driver::for_target(pull_target(&proxy.url, Duration::from_secs(10))).expect("a driver");
        let inbox = [FolderHandle::Inbox];
        let ops = vec![
            Op::Subscribe {
                sub: SubHandle(1),
                mode: Mode::Pull,
                scope: Scope::Folders(inbox.into_iter().collect()),
                event_types: [EventKind::Created, EventKind::NewMail, EventKind::Modified].into(),
            },
            Op::Deliver {
                item: ItemHandle(1),
            },
            Op::Poll { sub: SubHandle(1) },
        ];
        // The strict reference profile: a poll right after the send sees
        // the delivery's events only if the driver waited for it.
        let run = driver.run(&ops).await.expect("the target answers");
        assert!(
            run.passed(),
            "{:?}\n{:?}",
            run.failure.as_ref().map(Failure::first),
            run.notes
        );
        assert_eq!(run.predicted_events(), 3);
    });
}

#[test]
fn a_run_past_its_deadline_is_cut_and_not_judged() {
    runtime().block_on(async {
        let server = reference_server(ServerConfig::default()).await;
        let driver = Driver::for_target(pull_target(&server.url(), Duration::from_secs(10)))
            .expect("a driver");
        let past = Instant::now();
        let run = driver
            .run_until(&tiny_sequence(), Some(past))
            .await
            .expect("answers");
        assert!(run.cut && run.failure.is_none(), "{:?}", run.notes);
        assert!(
            run.notes
                .iter()
                .any(|n| n.contains("cut before operation 0")),
            "{:?}",
            run.notes
        );
        let later = Instant::now() + Duration::from_secs(600);
        let run = driver
            .run_until(&tiny_sequence(), Some(later))
            .await
            .expect("answers");
        assert!(!run.cut && run.passed(), "{:?}", run.failure);
    });
}

#[test]
fn shrinking_stops_when_the_time_budget_is_spent_and_writes_the_smallest_case_so_far() {
    runtime().block_on(async {
        let broken = reference_server(faulty_server_config(&["stale-previous-watermark"])).await;
        let driver = Driver::for_target(pull_target(&broken.url(), Duration::from_secs(10)))
            .expect("a driver");
        let found_root = scratch("budget");
        let config = ExploreConfig {
            // Many polls of few subscriptions: the first sequence fails (R31).
            generator: GenConfig {
                min_ops: 40,
                max_ops: 60,
                poll_weight: 40,
                max_subscriptions: 1,
                ..GenConfig::isolated_pull()
            },
            cases: None,
            // Spent before the first sequence ends: shrinking must not start.
            budget: Some(Duration::from_millis(1)),
            seed: 11,
            shrink_runs: 10_000,
            shrink_budget: Duration::from_secs(600),
            found_dir: Some(found_root.clone()),
            long_every: None,
        };
        let started = Instant::now();
        let report = explore(&driver, &config).await.expect("the target answers");
        let found = report
            .found
            .as_ref()
            .unwrap_or_else(|| panic!("the broken target passed: {}", report.summary()));
        let text = found.report();
        assert_eq!(report.sequences, 1, "{text}");
        assert_eq!(found.shrink_runs, 0, "{text}");
        assert!(
            found
                .shrink_cut_short
                .as_deref()
                .is_some_and(|why| why.contains("time budget")),
            "{text}"
        );
        assert!(text.contains("shrinking was cut short"), "{text}");
        // The smallest failing sequence so far (the original) is written.
        assert_eq!(found.shrunk.ops, found.original, "{text}");
        let path = found
            .case_file
            .clone()
            .unwrap_or_else(|| panic!("written: {text}"));
        assert!(path.exists());
        assert!(started.elapsed() < Duration::from_secs(60), "{text}");
        let _ = std::fs::remove_dir_all(&found_root);
    });
}

// ------------------------------------------------------------ the CLI

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ews-conformance"))
        .args(args)
        .env_remove("EWS_ENDPOINT")
        .env_remove("EWS_PROPTEST_SECONDS")
        .env("EWS_LOG", "error")
        .output()
        .expect("the binary runs")
}

#[test]
fn explore_exits_0_on_the_reference_server_and_1_with_a_written_case_on_a_broken_one() {
    let clean = cli(&["explore", "--sequences", "3", "--seed", "4", "--no-write"]);
    let out = String::from_utf8_lossy(&clean.stdout);
    assert_eq!(clean.status.code(), Some(0), "{out}");
    assert!(out.contains("explored 3 sequences"), "{out}");
    assert!(out.contains("seed 4: no divergence"), "{out}");

    let rt = runtime();
    let server = rt.block_on(reference_server(ServerConfig::default()));
    let proxy = rt.block_on(start_proxy(server.url(), Break::DropFirstOfTwoCreated));
    let found_root = scratch("cli");
    let found_dir = found_root.join("found");
    let users = ServerConfig::default().users;
    let user = users.first().expect("a user");
    let broken = cli(&[
        "explore",
        "--endpoint",
        &proxy.url,
        "--user",
        &user.smtp,
        "--password",
        &user.password,
        "--profile",
        "reference",
        "--protocol-minute-ms",
        "2000",
        "--mode",
        "pull",
        "--isolated",
        "--max-ops",
        "20",
        "--sequences",
        "100",
        "--seed",
        "3",
        "--found-dir",
        found_dir.to_str().expect("a UTF-8 path"),
    ]);
    let out = String::from_utf8_lossy(&broken.stdout);
    assert_eq!(broken.status.code(), Some(1), "{out}");
    assert!(out.contains("FAILED: "), "{out}");
    assert!(out.contains("first problem:"), "{out}");
    assert!(out.contains("case written to"), "{out}");
    assert!(
        !out.contains(&user.password),
        "no credentials in the output"
    );
    let written: Vec<_> = std::fs::read_dir(&found_dir)
        .expect("the found folder exists")
        .filter_map(Result::ok)
        .collect();
    assert_eq!(written.len(), 1, "{out}");
    let text = std::fs::read_to_string(written[0].path()).expect("readable");
    assert!(!text.contains(&user.password), "no credentials in the case");
    assert!(
        text.contains("# Found by `ews-conformance explore` (seed 3)"),
        "{text}"
    );
    drop(proxy);
    rt.block_on(server.shutdown());
    let _ = std::fs::remove_dir_all(&found_root);
}
