//! The runner end to end against a small canned EWS responder on
//! 127.0.0.1:0: the example cases pass, a wrong expectation fails exactly
//! its case with file, step, expected and actual code, and the exit codes
//! separate failures (1), an unreachable or refusing target (2) and broken
//! case files (3).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;

use ews_conformance::check::CheckRegistry;
use ews_conformance::client::auth::Auth;
use ews_conformance::report::console::Console;
use ews_conformance::report::json::Json;
use ews_conformance::report::junit::Junit;
use ews_conformance::report::{Fanout, Reporter};
use ews_conformance::suite::operation::OpRegistry;
use ews_conformance::suite::{
    Executor, ExitStatus, Loader, RunOptions, RunResult, TargetConfig, Verdict, run_suite,
};
use ews_proto::ews::envelope::{EnvelopeStyle, ServerVersionInfo, open, response};
use ews_proto::ews::{
    Event, EventKind, GetEventsResponse, Id, Notification, ObjectId, ResponseCode, ResponseMessage,
    SoapFault, SubscribeResponse, UnsubscribeResponse, render_response,
};
use ews_proto::xml::{ElementExt, XmlWriter, ns};

const USER: &str = "alice@example.test";
const PASSWORD: &str = "canned-secret-pw";

// ------------------------------------------------------------ the responder

#[derive(Default)]
struct Mailbox {
    next: u64,
    /// The event log; a watermark `W<n>` is a cursor after the first n events.
    log: Vec<(String, Event)>,
    subscriptions: HashMap<String, Vec<String>>,
    folders_created: Vec<String>,
    folders_deleted: Vec<String>,
}

type Shared = Arc<Mutex<Mailbox>>;

fn soap(status: StatusCode, body: impl FnOnce(&mut XmlWriter)) -> Response {
    let text = response(EnvelopeStyle::Prefixed, &ServerVersionInfo::default(), body);
    (status, [("content-type", "text/xml; charset=utf-8")], text).into_response()
}

fn fault(code: ResponseCode, text: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [("content-type", "text/xml; charset=utf-8")],
        SoapFault::client(code, text).render(),
    )
        .into_response()
}

async fn ews(State(mb): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Ok(doc) = roxmltree::Document::parse(&body) else {
        return fault(ResponseCode::ErrorSchemaValidation, "not XML");
    };
    let Ok(opened) = open(&doc) else {
        return fault(ResponseCode::ErrorSchemaValidation, "not a SOAP envelope");
    };
    let op = opened.payload;
    if op.tag_name().namespace() != Some(ns::MESSAGES) {
        return fault(
            ResponseCode::ErrorSchemaValidation,
            "the operation is not in the messages namespace",
        );
    }
    let ids = |local: &str| -> Vec<String> {
        op.descendants()
            .filter(|n| n.is(ns::TYPES, local))
            .filter_map(|n| n.attribute("Id").map(str::to_string))
            .collect()
    };
    let text = |local: &str| -> String {
        op.descendants()
            .find(|n| n.is(ns::MESSAGES, local))
            .map(|n| n.text_trimmed())
            .unwrap_or_default()
    };
    let local = op.tag_name().name();
    if local == "GetFolder" {
        // Used to show that a stalled target fails within the deadline.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let mut mb = mb.lock().expect("mailbox lock");
    mb.next += 1;
    let n = mb.next;
    match local {
        "CreateFolder" => {
            let id = format!("F{n}");
            mb.folders_created.push(id.clone());
            soap(StatusCode::OK, |w| {
                render_response(
                    w,
                    "CreateFolderResponse",
                    "CreateFolderResponseMessage",
                    &ResponseMessage::success(),
                    |w| {
                        w.start("m:Folders", &[]).start("t:Folder", &[]);
                        w.empty("t:FolderId", &[("Id", &id), ("ChangeKey", "ck")]);
                        w.end("t:Folder").end("m:Folders");
                    },
                )
            })
        }
        "DeleteFolder" => {
            mb.folders_deleted.extend(ids("FolderId"));
            soap(StatusCode::OK, |w| {
                render_response(
                    w,
                    "DeleteFolderResponse",
                    "DeleteFolderResponseMessage",
                    &ResponseMessage::success(),
                    |_| {},
                )
            })
        }
        "Subscribe" => {
            let id = format!("S{n}");
            mb.subscriptions.insert(id.clone(), ids("FolderId"));
            let wm = format!("W{}", mb.log.len());
            soap(StatusCode::OK, |w| {
                SubscribeResponse {
                    message: ResponseMessage::success(),
                    subscription_id: Some(id),
                    watermark: Some(wm),
                }
                .render(w)
            })
        }
        "Unsubscribe" => {
            let id = text("SubscriptionId");
            let message = if mb.subscriptions.remove(&id).is_some() {
                ResponseMessage::success()
            } else {
                ResponseMessage::error(
                    ResponseCode::ErrorSubscriptionNotFound,
                    "The specified subscription was not found.",
                )
            };
            soap(StatusCode::OK, |w| {
                UnsubscribeResponse { message }.render(w)
            })
        }
        "CreateItem" => {
            let folder = ids("FolderId").first().cloned().unwrap_or_default();
            let count = op
                .descendants()
                .filter(|n| n.is(ns::TYPES, "Message"))
                .count();
            let mut items = Vec::new();
            for i in 0..count {
                let item = format!("I{n}-{i}");
                let wm = format!("W{}", mb.log.len() + 1);
                let mut ev = Event::status(Some(wm.clone()));
                ev.kind = EventKind::Created;
                ev.timestamp = Some("2026-01-01T00:00:00Z".into());
                ev.object = Some(ObjectId::Item(Id::new(&item)));
                ev.parent_folder_id = Some(Id::new(&folder));
                mb.log.push((folder.clone(), ev));
                items.push(item);
            }
            soap(StatusCode::OK, |w| {
                w.start(
                    "m:CreateItemResponse",
                    &[("xmlns:m", ns::MESSAGES), ("xmlns:t", ns::TYPES)],
                );
                w.start("m:ResponseMessages", &[]);
                for item in &items {
                    ResponseMessage::success().render_open(w, "m:CreateItemResponseMessage");
                    w.start("m:Items", &[]).start("t:Message", &[]);
                    w.empty("t:ItemId", &[("Id", item), ("ChangeKey", "ck")]);
                    w.end("t:Message").end("m:Items");
                    w.end("m:CreateItemResponseMessage");
                }
                w.end("m:ResponseMessages").end("m:CreateItemResponse");
            })
        }
        "GetEvents" => {
            let id = text("SubscriptionId");
            let wm = text("Watermark");
            let Some(folders) = mb.subscriptions.get(&id).cloned() else {
                return soap(StatusCode::OK, |w| {
                    GetEventsResponse {
                        message: ResponseMessage::error(
                            ResponseCode::ErrorSubscriptionNotFound,
                            "The specified subscription was not found.",
                        ),
                        notification: None,
                    }
                    .render(w)
                });
            };
            let Some(start) = wm.strip_prefix('W').and_then(|n| n.parse::<usize>().ok()) else {
                return soap(StatusCode::OK, |w| {
                    GetEventsResponse {
                        message: ResponseMessage::error(
                            ResponseCode::ErrorInvalidWatermark,
                            "bad watermark",
                        ),
                        notification: None,
                    }
                    .render(w)
                });
            };
            let pending: Vec<Event> = mb
                .log
                .iter()
                .skip(start)
                .filter(|(f, _)| folders.contains(f))
                .map(|(_, e)| e.clone())
                .collect();
            let more = pending.len() > 50;
            let mut events: Vec<Event> = pending.into_iter().take(50).collect();
            if events.is_empty() {
                events.push(Event::status(Some(wm.clone())));
            }
            soap(StatusCode::OK, |w| {
                GetEventsResponse {
                    message: ResponseMessage::success(),
                    notification: Some(Notification {
                        subscription_id: id,
                        previous_watermark: Some(wm),
                        more_events: Some(more),
                        events,
                    }),
                }
                .render(w)
            })
        }
        _ => soap(StatusCode::OK, |w| {
            render_response(
                w,
                &format!("{local}Response"),
                &format!("{local}ResponseMessage"),
                &ResponseMessage::error(ResponseCode::ErrorInvalidOperation, "not canned"),
                |_| {},
            )
        }),
    }
}

async fn start_responder() -> (String, Shared) {
    let state = Shared::default();
    let router = Router::new()
        .route("/EWS/Exchange.asmx", post(ews))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}/EWS/Exchange.asmx"), state)
}

// ------------------------------------------------------------------ helpers

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/runner/cases")
}

/// A fresh case folder whose `ex/` group holds copies of the example cases
/// plus `extra` files (cases live in groups below the case folder).
fn case_dir(tag: &str, extra: &[(&str, &str)]) -> PathBuf {
    let root = std::env::temp_dir().join(format!("ews-runner-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("ex");
    std::fs::create_dir_all(&dir).expect("temp case dir");
    for entry in std::fs::read_dir(examples_dir().join("ex")).expect("examples exist") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().expect("file name");
        std::fs::copy(&path, dir.join(name)).expect("copy example");
    }
    for (name, text) in extra {
        std::fs::write(dir.join(name), text).expect("write extra case");
    }
    root
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("buffer lock")).into_owned()
    }
}

fn target(endpoint: &str, password: &str, timeout: Duration) -> TargetConfig {
    TargetConfig::builder(endpoint)
        .user(
            USER,
            Auth::Basic {
                username: USER.into(),
                password: password.into(),
            },
        )
        .request_timeout(timeout)
        .build()
        .expect("valid target")
}

struct Ran {
    result: RunResult,
    console: String,
    json: String,
    junit: String,
}

async fn run_dir(target: TargetConfig, dir: &Path, tag: &str) -> Ran {
    let executor = Executor::new(Arc::new(target)).expect("executor");
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let suite = Loader::new(&ops, &checks).load_dir(dir);
    let captured = Captured::default();
    let json_path =
        std::env::temp_dir().join(format!("ews-runner-{tag}-{}.json", std::process::id()));
    let junit_path =
        std::env::temp_dir().join(format!("ews-runner-{tag}-{}.xml", std::process::id()));
    let mut reporters = Fanout::new()
        .with(Box::new(Console::new(Box::new(captured.clone()))))
        .with(Box::new(Json::new(&json_path, "canned responder")))
        .with(Box::new(Junit::new(&junit_path)));
    let result = run_suite(
        Arc::new(executor),
        suite.cases,
        &suite.errors,
        &RunOptions::default(),
        &mut reporters as &mut dyn Reporter,
    )
    .await;
    let read = |p: &Path| {
        let text = std::fs::read_to_string(p).expect("report written");
        let _ = std::fs::remove_file(p);
        text
    };
    Ran {
        result,
        console: captured.text(),
        json: read(&json_path),
        junit: read(&junit_path),
    }
}

fn verdict_of<'a>(ran: &'a Ran, id: &str) -> &'a Verdict {
    &ran.result
        .outcomes
        .iter()
        .find(|o| o.id == format!("ex/{id}"))
        .unwrap_or_else(|| panic!("no outcome for {id}"))
        .verdict
}

// -------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_cases_pass_against_a_conforming_responder() {
    let (endpoint, state) = start_responder().await;
    let ran = run_dir(
        target(&endpoint, PASSWORD, Duration::from_secs(10)),
        &examples_dir(),
        "examples",
    )
    .await;
    let s = &ran.result.summary;
    assert_eq!(
        (
            s.total,
            s.passed,
            s.recorded,
            s.failed,
            s.errors,
            s.unreachable
        ),
        (7, 6, 1, 0, 0, 0),
        "{}",
        ran.console
    );
    assert_eq!(ran.result.exit_status(), ExitStatus::Passed);
    assert_eq!(
        verdict_of(&ran, "getevents-old-watermark"),
        &Verdict::Recorded
    );
    // Every request the runner sent was read while it was in flight, and
    // read exactly as the checks would read it afresh.
    let sent: Vec<_> = ran
        .result
        .outcomes
        .iter()
        .flat_map(|o| &o.exchanges)
        .collect();
    assert!(sent.len() > 10, "{}", sent.len());
    for ex in sent {
        assert_eq!(
            ex.asked.as_ref(),
            Some(&ews_conformance::check::request::Asked::read(&ex.request)),
            "{ex:?}"
        );
    }
    // The recorded case reports what came back instead of failing.
    assert!(
        ran.console.contains("recorded observations:"),
        "{}",
        ran.console
    );
    assert!(
        ran.console
            .contains("the events are not exactly the expected ones"),
        "{}",
        ran.console
    );
    // Every isolated case created its folder and removed it again.
    let mb = state.lock().expect("mailbox lock");
    assert_eq!(mb.folders_created.len(), 6, "six cases isolate");
    let mut created = mb.folders_created.clone();
    let mut deleted = mb.folders_deleted.clone();
    created.sort();
    deleted.sort();
    assert_eq!(created, deleted);
    // Reports keep the grade and never the password.
    assert!(
        ran.json.contains("\"verdict\": \"recorded\""),
        "{}",
        ran.json
    );
    assert!(
        ran.junit
            .contains("<property name=\"verdict\" value=\"recorded\"/>")
    );
    for text in [&ran.console, &ran.json, &ran.junit] {
        assert!(!text.contains(PASSWORD));
        assert!(!text.contains("Basic "));
    }
}

const WRONG: &str = r#"title = "A deliberately wrong expectation"
requirements = ["R64"]

[[step]]
name = "subscribe"
op = "Subscribe"
with = { folders = ["${folder}"], event_types = ["CreatedEvent"] }
[step.capture]
sub = "//m:SubscriptionId"

[[step]]
name = "first"
op = "Unsubscribe"
with = { subscription = "${sub}" }

[[step]]
name = "second"
op = "Unsubscribe"
with = { subscription = "${sub}" }
[step.expect]
code = "NoError"

[[step]]
name = "still sent"
op = "Unsubscribe"
with = { subscription = "${sub}" }
[step.expect]
code = "ErrorSubscriptionNotFound"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_expectation_fails_exactly_that_case() {
    let (endpoint, _state) = start_responder().await;
    let dir = case_dir("wrong", &[("wrong.toml", WRONG)]);
    let ran = run_dir(
        target(&endpoint, PASSWORD, Duration::from_secs(10)),
        &dir,
        "wrong",
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);

    let s = &ran.result.summary;
    assert_eq!(
        (s.failed, s.passed, s.recorded),
        (1, 6, 1),
        "{}",
        ran.console
    );
    assert_eq!(verdict_of(&ran, "wrong"), &Verdict::Fail);
    assert_eq!(ran.result.exit_status(), ExitStatus::Failed);

    let wrong = ran
        .result
        .outcomes
        .iter()
        .find(|o| o.id == "ex/wrong")
        .expect("outcome");
    let failures: Vec<_> = wrong.failures().collect();
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!(failures[0].check, "codes");
    assert_eq!(failures[0].step, "second");
    assert_eq!(
        failures[0].line, 16,
        "the `[[step]]` line of step \"second\""
    );
    assert_eq!(
        failures[0].message,
        "step \"second\": expected ResponseCode NoError, got ErrorSubscriptionNotFound"
    );
    assert!(
        wrong.exchanges.iter().any(|e| e.step == "still sent"),
        "a step that does not depend on the failed one still runs"
    );
    assert!(
        wrong
            .exchanges
            .iter()
            .any(|e| e.step.starts_with("cleanup")),
        "the case folder is still removed"
    );

    let file = dir.join("ex").join("wrong.toml");
    let c = &ran.console;
    assert!(c.contains("FAIL        ex/wrong"), "{c}");
    assert!(
        c.contains(&format!("--> {}:16 (step \"second\")", file.display())),
        "{c}"
    );
    assert!(
        c.contains("[codes] step \"second\": expected ResponseCode NoError, got ErrorSubscriptionNotFound (R64)"),
        "{c}"
    );
    assert!(c.contains("response (HTTP 200"), "{c}");
    assert!(
        c.contains("The specified subscription was not found."),
        "{c}"
    );
    assert!(c.contains("result: 6 passed, 1 failed, 1 recorded"), "{c}");
    assert!(ran.junit.contains("<failure message=\"step &quot;second&quot;: expected ResponseCode NoError, got ErrorSubscriptionNotFound\" type=\"codes\">"), "{}", ran.junit);
    let json: serde_json::Value = serde_json::from_str(&ran.json).expect("JSON report parses");
    let cases = json["cases"].as_array().expect("cases array");
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(failed, ["ex/wrong"]);
    assert_eq!(json["exit_code"], 1);
}

const INDEPENDENT: &str = r#"title = "A failing middle step hides neither later failures nor later passes"
requirements = ["R29"]

[[step]]
name = "subscribe"
op = "Subscribe"
with = { folders = ["${folder}"], event_types = ["CreatedEvent"] }
capture = { sub = "//m:SubscriptionId", wm = "//m:SubscribeResponseMessage/m:Watermark" }

[[step]]
name = "wrong middle"
op = "Unsubscribe"
with = { subscription = "no-such-subscription" }
expect = { code = "NoError" }

[[step]]
name = "create"
op = "CreateItem"
with = { folder = "${folder}" }
expect = { code = "NoError" }

[[step]]
name = "poll"
op = "GetEvents"
with = { subscription = "${sub}", watermark = "${wm}" }
expect = { code = "NoError", event = [{ kind = "CreatedEvent" }] }

[[step]]
name = "wrong later"
op = "Unsubscribe"
with = { subscription = "another-missing-one" }
expect = { code = "NoError" }

[[step]]
name = "subscribe again"
op = "Subscribe"
with = { folders = ["${folder}"], event_types = ["CreatedEvent"] }
capture = { sub2 = "//m:NoSuchElement" }

[[step]]
name = "use the second subscription"
op = "Unsubscribe"
with = { subscription = "${sub2}" }

[[step]]
name = "poll the second subscription"
op = "GetEvents"
with = { subscription = "${sub2.1}", watermark = "${wm}" }
capture = { wm = "//t:Watermark" }

[[step]]
name = "use what the skipped poll captures"
op = "GetEvents"
with = { subscription = "${sub}", watermark = "${wm}" }

[[step]]
name = "unsubscribe"
op = "Unsubscribe"
with = { subscription = "${sub}" }
expect = { code = "NoError" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_steps_run_after_a_failure_and_dependent_ones_are_skipped_with_the_reason() {
    let (endpoint, state) = start_responder().await;
    let dir = single_case_dir("independent", &[("independent.toml", INDEPENDENT)]);
    let ran = run_dir(
        target(&endpoint, PASSWORD, Duration::from_secs(10)),
        &dir,
        "independent",
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(verdict_of(&ran, "independent"), &Verdict::Fail);
    let o = &ran.result.outcomes[0];
    let sent: Vec<&str> = o.exchanges.iter().map(|e| e.step.as_str()).collect();
    assert_eq!(
        sent,
        [
            "setup: create the case folder",
            "subscribe",
            "wrong middle",
            "create",
            "poll",
            "wrong later",
            "subscribe again",
            "unsubscribe",
            "cleanup: delete the case folder"
        ]
    );
    // Each failure is reported, the later one too; the steps in between passed.
    let failed: Vec<&str> = o.failures().map(|f| f.step.as_str()).collect();
    assert_eq!(
        failed,
        ["wrong middle", "wrong later", "subscribe again"],
        "{:#?}",
        o.failures().collect::<Vec<_>>()
    );
    // The dependent steps are skipped, each with why, transitively.
    let skipped: Vec<(&str, &str)> = o
        .findings
        .iter()
        .filter(|f| f.check == "skipped-step")
        .map(|f| (f.step.as_str(), f.message.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            (
                "use the second subscription",
                "step \"use the second subscription\" skipped: needs ${sub2}, which step \"subscribe again\" did not capture because it failed"
            ),
            (
                "poll the second subscription",
                "step \"poll the second subscription\" skipped: needs ${sub2.1}, which step \"subscribe again\" did not capture because it failed"
            ),
            (
                "use what the skipped poll captures",
                "step \"use what the skipped poll captures\" skipped: needs ${wm}, which step \"poll the second subscription\" did not bind because it was skipped"
            ),
        ]
    );
    assert!(
        o.findings
            .iter()
            .filter(|f| f.check == "skipped-step")
            .all(|f| f.severity == ews_conformance::check::Severity::Note)
    );
    // Every report shows the skipped steps.
    for (name, text) in [
        ("console", &ran.console),
        ("junit", &ran.junit),
        ("json", &ran.json),
    ] {
        assert!(
            text.contains("use the second subscription")
                && text.contains("did not capture because it failed"),
            "{name}: {text}"
        );
    }
    assert!(ran.console.contains("steps not run"), "{}", ran.console);
    let mb = state.lock().expect("mailbox lock");
    assert_eq!(mb.folders_created, mb.folders_deleted, "cleanup still runs");
}

const RECORD_NO_STREAM: &str = r#"title = "A record case whose stream cannot be opened for want of a capture"
requirements = ["R50"]
grade = "record"

[[step]]
name = "subscribe"
op = "Subscribe"
with = { mode = "streaming", folders = ["${folder}"], event_types = ["CreatedEvent"] }
capture = { sub = "//m:NoSuchElement" }

[[step]]
name = "connect"
op = "OpenStream"
with = { subscriptions = ["${sub}"] }

[[step]]
name = "await"
op = "AwaitStream"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_could_not_be_requested_is_a_finding_not_a_case_error() {
    let (endpoint, _state) = start_responder().await;
    let dir = single_case_dir("nostream", &[("nostream.toml", RECORD_NO_STREAM)]);
    let ran = run_dir(
        target(&endpoint, PASSWORD, Duration::from_secs(10)),
        &dir,
        "nostream",
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        verdict_of(&ran, "nostream"),
        &Verdict::Recorded,
        "{}",
        ran.console
    );
    let o = &ran.result.outcomes[0];
    assert!(
        o.all_findings().any(|f| f.step == "await"
            && f.message
                .contains("stream `s1` did not open (step \"connect\")")),
        "{:#?}",
        o.all_findings().collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_not_a_conformance_failure() {
    let (endpoint, _state) = start_responder().await;
    let ran = run_dir(
        target(&endpoint, "wrong-password", Duration::from_secs(10)),
        &examples_dir(),
        "refused",
    )
    .await;
    let s = &ran.result.summary;
    assert_eq!(s.unreachable, 7, "{}", ran.console);
    assert_eq!(s.failed, 0);
    assert_eq!(ran.result.exit_status(), ExitStatus::Unreachable);
    assert!(
        ran.console.contains("authentication refused: HTTP 401"),
        "{}",
        ran.console
    );
    assert!(!ran.console.contains("wrong-password"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_target_fails_within_the_deadline() {
    let (endpoint, _state) = start_responder().await;
    let stalled = "title = \"GetFolder on a target that never answers\"\nrequirements = [\"R1\"]\n\n[[step]]\nname = \"look\"\nop = \"GetFolder\"\nwith = { folder = \"${folder}\" }\n";
    let dir = single_case_dir("stalled", &[("stalled.toml", stalled)]);
    let started = std::time::Instant::now();
    let ran = run_dir(
        target(&endpoint, PASSWORD, Duration::from_millis(400)),
        &dir,
        "stalled",
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the run waited for the stalled answer"
    );
    assert_eq!(
        verdict_of(&ran, "stalled"),
        &Verdict::Fail,
        "{}",
        ran.console
    );
    assert!(
        ran.console
            .contains("[transport] step \"look\": no complete response within 0.4s"),
        "{}",
        ran.console
    );
}

fn single_case_dir(tag: &str, files: &[(&str, &str)]) -> PathBuf {
    let root = std::env::temp_dir().join(format!("ews-runner-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("ex");
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write case");
    }
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skips_serial_cases_bounded_drains_and_case_errors() {
    let (endpoint, _state) = start_responder().await;
    let head = "requirements = [\"R32\"]\n";
    let subscribe = "[[step]]\nname = \"subscribe\"\nop = \"Subscribe\"\nwith = { folders = [\"${folder}\"], event_types = [\"CreatedEvent\"] }\n[step.capture]\nsub = \"//m:SubscriptionId\"\nwm = \"//m:Watermark\"\n";
    let files = [
        (
            "needs-user2.toml",
            format!(
                "title = \"needs a second user\"\n{head}needs = [\"second-user\"]\n[[step]]\nas = \"user2\"\nop = \"GetFolder\"\nwith = {{ folder = \"inbox\" }}\n"
            ),
        ),
        (
            "only-2010.toml",
            format!(
                "title = \"2010 only\"\n{head}profiles = [\"exchange2010\"]\n[[step]]\nop = \"GetFolder\"\nwith = {{ folder = \"inbox\" }}\n"
            ),
        ),
        (
            "serial.toml",
            format!("title = \"alone\"\n{head}serial = true\n{subscribe}"),
        ),
        (
            "bounded-drain.toml",
            format!(
                "title = \"a drain that may not finish\"\n{head}{subscribe}[[step]]\nop = \"CreateItem\"\nwith = {{ count = 120 }}\n\
                 [[step]]\nname = \"drain\"\nop = \"DrainEvents\"\nwith = {{ subscription = \"${{sub}}\", watermark = \"${{wm}}\", max_calls = 2 }}\n"
            ),
        ),
        (
            "capture-miss.toml",
            format!(
                "title = \"a capture that finds nothing\"\n{head}{subscribe}nope = \"//m:NoSuchElement\"\n[[step]]\nname = \"use it\"\nop = \"Unsubscribe\"\nwith = {{ subscription = \"${{nope}}\" }}\n"
            ),
        ),
        (
            "capture-miss-recorded.toml",
            format!(
                "title = \"the same, recorded\"\ngrade = \"record\"\n{head}{subscribe}nope = \"//m:NoSuchElement\"\n[[step]]\nname = \"use it\"\nop = \"Unsubscribe\"\nwith = {{ subscription = \"${{nope}}\" }}\n"
            ),
        ),
        (
            "bad-value.toml",
            format!(
                "title = \"a parameter that renders wrong\"\n{head}[vars]\nn = \"many\"\n[[step]]\nop = \"CreateItem\"\nwith = {{ count = \"${{n}}\" }}\n"
            ),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let dir = single_case_dir("misc", &files);
    let ran = run_dir(
        target(&endpoint, PASSWORD, Duration::from_secs(10)),
        &dir,
        "misc",
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);

    match verdict_of(&ran, "needs-user2") {
        Verdict::Skipped { reason } => assert!(reason.contains("second-user"), "{reason}"),
        other => panic!("needs-user2: {other:?}"),
    }
    match verdict_of(&ran, "only-2010") {
        Verdict::Skipped { reason } => assert!(
            reason.contains("only under profile `exchange2010`"),
            "{reason}"
        ),
        other => panic!("only-2010: {other:?}"),
    }
    assert_eq!(
        verdict_of(&ran, "serial"),
        &Verdict::Pass,
        "{}",
        ran.console
    );
    assert_eq!(
        verdict_of(&ran, "bounded-drain"),
        &Verdict::Fail,
        "{}",
        ran.console
    );
    assert!(
        ran.console
            .contains("MoreEvents was still true after 2 GetEvents calls"),
        "{}",
        ran.console
    );
    assert_eq!(
        verdict_of(&ran, "capture-miss"),
        &Verdict::Fail,
        "{}",
        ran.console
    );
    assert_eq!(
        verdict_of(&ran, "capture-miss-recorded"),
        &Verdict::Recorded,
        "{}",
        ran.console
    );
    assert!(
        ran.console.contains(
            "[capture] step \"subscribe\": capture `nope` (//m:NoSuchElement) in step \"subscribe\" matched nothing"
        ),
        "{}",
        ran.console
    );
    let recorded = ran
        .result
        .outcomes
        .iter()
        .find(|o| o.id == "ex/capture-miss-recorded")
        .expect("outcome");
    assert!(
        recorded
            .all_findings()
            .any(|f| f.message.contains("step \"use it\" cannot be sent")),
        "{recorded:#?}"
    );
    match verdict_of(&ran, "bad-value") {
        Verdict::Error { reason } => {
            assert!(reason.contains("bad-value.toml:"), "{reason}");
            assert!(
                reason.contains("`with.count` = \"many\" is not an integer"),
                "{reason}"
            );
        }
        other => panic!("bad-value: {other:?}"),
    }
    assert_eq!(ran.result.exit_status(), ExitStatus::HarnessError);
    assert!(ran.junit.contains("<skipped message="), "{}", ran.junit);
    assert!(ran.junit.contains("<error message="), "{}", ran.junit);
}

// ------------------------------------------------------------ the CLI itself

async fn cli(args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ews-conformance"))
        .args(args)
        .env_clear()
        .output()
        .await
        .expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_exit_codes() {
    let (endpoint, _state) = start_responder().await;
    let examples = examples_dir();
    let examples = examples.to_str().expect("utf-8 path");
    let login = ["--user", USER, "--password", PASSWORD];

    let mut args = vec!["run", "--endpoint", &endpoint, "--cases", examples];
    args.extend(login);
    let (code, out) = cli(&args).await;
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains(PASSWORD), "{out}");

    let dir = case_dir("cli-wrong", &[("wrong.toml", WRONG)]);
    let dir_s = dir.to_str().expect("utf-8 path").to_string();
    let mut args = vec!["run", "--endpoint", &endpoint, "--cases", &dir_s];
    args.extend(login);
    let (code, out) = cli(&args).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("expected ResponseCode NoError, got ErrorSubscriptionNotFound"),
        "{out}"
    );

    std::fs::write(
        dir.join("ex").join("broken.toml"),
        "title = \"t\"\nrequirements = [\"R1\"]\n[[step]]\nop = \"Nope\"\n",
    )
    .expect("write broken case");
    let mut args = vec![
        "run",
        "--endpoint",
        &endpoint,
        "--cases",
        &dir_s,
        "--filter",
        "broken",
    ];
    args.extend(login);
    let (code, out) = cli(&args).await;
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("broken.toml:4:6: unknown operation `Nope`"),
        "{out}"
    );
    let (code, _) = cli(&["list", "--cases", &dir_s]).await;
    assert_eq!(code, 3, "list reports broken case files too");
    let _ = std::fs::remove_dir_all(&dir);

    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let dead_url = format!("http://{dead}/EWS/Exchange.asmx");
    let (code, out) = cli(&[
        "run",
        "--endpoint",
        &dead_url,
        "--cases",
        examples,
        "--request-timeout-secs",
        "5",
    ])
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("target unreachable"), "{out}");

    let mut args = vec![
        "run",
        "--endpoint",
        &endpoint,
        "--cases",
        examples,
        "--user",
        USER,
        "--password",
        "nope",
    ];
    args.truncate(args.len());
    let (code, out) = cli(&args).await;
    assert_eq!(code, 2, "{out}");
}
