//! The streaming and push steps against tiny misbehaving targets on
//! 127.0.0.1:0: a target that never answers GetStreamingEvents, one that
//! sends the headers and then nothing, one whose stream never closes, and
//! one that never posts to the push listener. Each case must fail by its
//! deadline with a report that says what was awaited, for how long, and
//! what did arrive. A well-behaved stream shows which envelopes a step is
//! judged on and which it passes over.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::stream;

use ews_conformance::check::{CheckRegistry, Severity};
use ews_conformance::report::explain;
use ews_conformance::settings::Settings;
use ews_conformance::suite::operation::OpRegistry;
use ews_conformance::suite::target::start_live;
use ews_conformance::suite::{Executor, Loader, Outcome, Verdict};
use ews_proto::ews::envelope::{EnvelopeStyle, ServerVersionInfo, response};
use ews_proto::ews::{
    ConnectionStatus, GetStreamingEventsResponse, ResponseCode, ResponseMessage, SubscribeResponse,
};

/// One protocol minute on these targets.
const MINUTE_MS: u64 = 1_000;
/// Pause between the envelopes of a never-ending stream.
const TICK: Duration = Duration::from_millis(100);

// ------------------------------------------------------------ the responder

fn xml(text: String) -> Response {
    (
        StatusCode::OK,
        [("content-type", "text/xml; charset=utf-8")],
        text,
    )
        .into_response()
}

fn envelope(class_error: bool, status: ConnectionStatus) -> Bytes {
    let message = if class_error {
        ResponseMessage::error(ResponseCode::ErrorSubscriptionNotFound, "gone")
    } else {
        ResponseMessage::success()
    };
    let r = GetStreamingEventsResponse {
        message,
        notifications: Vec::new(),
        error_subscription_ids: if class_error {
            vec!["late-error".into()]
        } else {
            Vec::new()
        },
        connection_status: Some(status),
    };
    Bytes::from(response(
        EnvelopeStyle::Unprefixed,
        &ServerVersionInfo::default(),
        |w| r.render(w, "m:Notification"),
    ))
}

fn heartbeat() -> Bytes {
    envelope(false, ConnectionStatus::Ok)
}

/// Heartbeats every tick, forever.
fn endless() -> Body {
    Body::from_stream(stream::unfold((), |()| async {
        tokio::time::sleep(TICK).await;
        Some((Ok::<_, Infallible>(heartbeat()), ()))
    }))
}

/// Two heartbeats, an Error envelope about `late-error`, then heartbeats.
fn late_error() -> Body {
    Body::from_stream(stream::unfold(0u32, |n| async move {
        tokio::time::sleep(TICK).await;
        let env = if n == 2 {
            envelope(true, ConnectionStatus::Ok)
        } else {
            heartbeat()
        };
        Some((Ok::<_, Infallible>(env), n + 1))
    }))
}

const DECLARATION: &[u8] = br#"<?xml version="1.0" encoding="utf-8"?>"#;

/// Three heartbeats and a Closed envelope, one declaration before each.
/// `irregular`: junk before the first, two declarations before the next two.
fn declared(irregular: bool) -> Body {
    let chunk = |before: &[&[u8]], env: Bytes| {
        let mut v: Vec<u8> = before.concat();
        v.extend_from_slice(&env);
        Ok::<_, Infallible>(Bytes::from(v))
    };
    let (first, next): (&[&[u8]], &[&[u8]]) = if irregular {
        (&[b"junk"], &[DECLARATION, DECLARATION])
    } else {
        (&[DECLARATION], &[DECLARATION])
    };
    Body::from_stream(stream::iter(vec![
        chunk(first, heartbeat()),
        chunk(next, heartbeat()),
        chunk(next, heartbeat()),
        chunk(&[DECLARATION], envelope(false, ConnectionStatus::Closed)),
    ]))
}

/// Answers Subscribe with the id named in the folder id (`<FolderId Id="…">`),
/// and GetStreamingEvents as that id says. It never posts a push.
async fn ews(body: String) -> Response {
    if body.contains("Subscribe>") || body.contains("Subscribe ") {
        let id = body
            .split("FolderId Id=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("plain")
            .to_string();
        let push = body.contains("PushSubscriptionRequest");
        let r = SubscribeResponse {
            message: ResponseMessage::success(),
            subscription_id: Some(id),
            watermark: push.then(|| "W0".to_string()),
        };
        return xml(response(
            EnvelopeStyle::Prefixed,
            &ServerVersionInfo::default(),
            |w| r.render(w),
        ));
    }
    if body.contains("GetStreamingEvents") {
        let body_for = |b: Body| {
            (
                StatusCode::OK,
                [("content-type", "text/xml; charset=utf-8")],
                b,
            )
                .into_response()
        };
        if body.contains(">silent<") {
            std::future::pending::<()>().await;
        }
        if body.contains(">stall<") {
            return body_for(Body::from_stream(stream::pending::<
                Result<Bytes, Infallible>,
            >()));
        }
        if body.contains(">late-error<") {
            return body_for(late_error());
        }
        if body.contains(">irregular<") {
            return body_for(declared(true));
        }
        if body.contains(">declared<") {
            return body_for(declared(false));
        }
        if body.contains(">flood<") {
            return body_for(Body::from_stream(stream::repeat_with(|| {
                Ok::<_, Infallible>(heartbeat())
            })));
        }
        return body_for(endless());
    }
    (StatusCode::BAD_REQUEST, "unexpected request").into_response()
}

struct Harness {
    executor: Executor,
}

impl Harness {
    async fn start() -> Harness {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            let app = Router::new().route("/EWS/Exchange.asmx", post(ews));
            let _ = axum::serve(listener, app).await;
        });
        let endpoint = format!("http://{addr}/EWS/Exchange.asmx");
        let settings = Settings {
            endpoint: Some(endpoint.clone()),
            user: Some("alice@example.test".into()),
            password: Some("not-checked".into()),
            protocol_minute_ms: Some(MINUTE_MS),
            request_timeout_secs: 10,
            ..Settings::default()
        };
        let target = start_live(&settings, &endpoint)
            .await
            .expect("a loopback target with a push listener");
        let executor = Executor::new(Arc::new(target)).expect("executor");
        Harness { executor }
    }

    /// The embedded reference server, its protocol minute `minute_ms` long.
    async fn embedded(minute_ms: u64) -> Harness {
        let settings = Settings {
            protocol_minute_ms: Some(minute_ms),
            ..Settings::default()
        };
        let target = ews_conformance::suite::target::start_embedded(&settings)
            .await
            .expect("the embedded target starts");
        let executor = Executor::new(Arc::new(target)).expect("executor");
        Harness { executor }
    }

    async fn run(&self, case: &str) -> (Outcome, Duration) {
        let ops = OpRegistry::builtin();
        let checks = CheckRegistry::builtin();
        let case = Loader::new(&ops, &checks)
            .parse(case, Path::new("cases/x/case.toml"), "x/case")
            .unwrap_or_else(|e| panic!("the test case loads: {e}"));
        let started = Instant::now();
        let outcome = self.executor.run_case(&case).await;
        (outcome, started.elapsed())
    }
}

fn case(subscription: &str, steps: &str) -> String {
    format!(
        r#"title = "t"
requirements = ["R45"]
isolate = false

[[step]]
name = "subscribe"
op = "Subscribe"
with = {{ mode = "streaming", folders = ["{subscription}"], event_types = ["CreatedEvent"] }}
capture = {{ sub = "//m:SubscriptionId" }}
{steps}"#
    )
}

fn assert_failed_with(outcome: &Outcome, took: Duration, limit: Duration, needles: &[&str]) {
    let report = explain(outcome);
    assert_eq!(outcome.verdict, Verdict::Fail, "{report}");
    assert!(took < limit, "took {took:?}, limit {limit:?}:\n{report}");
    for n in needles {
        assert!(report.contains(n), "missing {n:?} in:\n{report}");
    }
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn a_target_that_never_answers_fails_open_stream_at_its_deadline() {
    let h = Harness::start().await;
    let (outcome, took) = h
        .run(&case(
            "silent",
            r#"
[[step]]
name = "open"
op = "OpenStream"
with = { subscriptions = ["${sub}"], within_seconds = 30 }
"#,
        ))
        .await;
    // 30 protocol seconds = 0.5 s, plus the 2 s minimum slack.
    assert_failed_with(
        &outcome,
        took,
        Duration::from_secs(6),
        &[
            "step \"open\": awaited the HTTP response to GetStreamingEvents on stream `s1` for 2.5",
            "(30 protocol seconds = 0.50 s + 2.00 s slack)",
            "no status line or headers arrived",
            "case.toml",
        ],
    );
    assert!(
        took >= Duration::from_millis(2400),
        "not before the deadline: {took:?}"
    );
}

#[tokio::test]
async fn headers_then_silence_fail_open_stream_at_its_deadline() {
    let h = Harness::start().await;
    let (outcome, took) = h
        .run(&case(
            "stall",
            r#"
[[step]]
name = "open"
op = "OpenStream"
with = { subscriptions = ["${sub}"], within_minutes = 1 }
"#,
        ))
        .await;
    // 1 protocol minute = 1 s, plus 2 s slack.
    assert_failed_with(
        &outcome,
        took,
        Duration::from_secs(7),
        &[
            "awaited the first envelope of stream `s1` for 3.0",
            "(1 protocol minute = 1.00 s + 2.00 s slack)",
            "HTTP 200 arrived after",
            "no complete envelope",
        ],
    );
}

#[tokio::test]
async fn a_stream_that_never_closes_fails_await_stream_closed_with_what_arrived() {
    let h = Harness::start().await;
    let (outcome, took) = h
        .run(&case(
            "endless",
            r#"
[[step]]
name = "open"
op = "OpenStream"
with = { subscriptions = ["${sub}"], connection_timeout = 1 }

[[step]]
name = "closed"
op = "AwaitStreamClosed"
"#,
        ))
        .await;
    // The deadline: the opening + ConnectionTimeout (1 s) + 2 s slack.
    assert_failed_with(
        &outcome,
        took,
        Duration::from_secs(8),
        &[
            "step \"closed\": awaited ConnectionStatus Closed on stream `s1`",
            "(ConnectionTimeout 1 protocol minute(s) from the opening = 1.00 s + 2.00 s slack",
            "envelope(s) arrived in this step",
            "envelope at",
            "Success/NoError, ConnectionStatus OK, heartbeat",
        ],
    );
    // Every heartbeat was recorded (and passed over, as it is not Closed).
    let envelopes = outcome
        .exchanges
        .iter()
        .filter(|e| e.step == "closed")
        .count();
    assert!(envelopes >= 15, "about one per 100 ms: {envelopes}");
}

#[tokio::test]
async fn a_target_that_never_pushes_fails_await_push_at_its_deadline() {
    let h = Harness::start().await;
    let (outcome, took) = h
        .run(
            r#"title = "t"
requirements = ["R65"]
isolate = false
needs = ["push"]

[[step]]
name = "subscribe"
op = "Subscribe"
with = { mode = "push", folders = ["quiet"], event_types = ["CreatedEvent"], status_frequency = 1 }
capture = { sub = "//m:SubscriptionId" }

[[step]]
name = "status"
op = "AwaitPush"
with = { subscription = "${sub}", within_minutes = 1 }
expect = { event = [{ kind = "StatusEvent" }] }
"#,
        )
        .await;
    assert_failed_with(
        &outcome,
        took,
        Duration::from_secs(7),
        &[
            "step \"status\": awaited a push with events StatusEvent for subscription quiet for 3.0",
            "(1 protocol minute = 1.00 s + 2.00 s slack); 0 push(es) for it arrived",
            "arrived: none",
        ],
    );
}

#[tokio::test]
async fn awaited_envelopes_are_judged_and_the_others_passed_over() {
    let h = Harness::start().await;
    let (outcome, _) = h
        .run(&case(
            "late-error",
            r#"
[[step]]
name = "open"
op = "OpenStream"
with = { subscriptions = ["${sub}"], await_first = false }

[[step]]
name = "the error"
op = "AwaitStream"
with = { within_minutes = 1 }
expect = { class = "Error", code = "ErrorSubscriptionNotFound", error_subscription_ids = ["late-error"], connection_status = "OK" }
"#,
        ))
        .await;
    assert_eq!(outcome.verdict, Verdict::Pass, "{}", explain(&outcome));
    let awaited: Vec<_> = outcome
        .exchanges
        .iter()
        .filter(|e| e.step == "the error")
        .collect();
    assert_eq!(awaited.len(), 3, "two heartbeats, then the error");
    assert!(
        awaited[2]
            .response_text
            .contains("ErrorSubscriptionNotFound")
    );
    assert!(
        awaited
            .iter()
            .all(|e| e.findings.iter().all(|f| f.severity != Severity::Fail)),
        "the heartbeats before it are passed over, not failed"
    );
    // Arrival times are kept: each envelope after the one before.
    assert!(awaited[0].duration < awaited[2].duration);

    // The same wait for a code that never comes: it fails at the deadline,
    // judging the last envelope, and lists what came.
    let (outcome, took) = h
        .run(&case(
            "late-error",
            r#"
[[step]]
name = "open"
op = "OpenStream"
with = { subscriptions = ["${sub}"], await_first = false }

[[step]]
name = "never"
op = "AwaitStream"
with = { within_seconds = 30 }
expect = { code = "ErrorNewEventStreamConnectionOpened" }
"#,
        ))
        .await;
    assert_failed_with(
        &outcome,
        took,
        Duration::from_secs(6),
        &[
            "awaited an envelope with ResponseCode ErrorNewEventStreamConnectionOpened on stream `s1`",
            "the last one did not do: expected ResponseCode ErrorNewEventStreamConnectionOpened, got NoError",
            "Error/ErrorSubscriptionNotFound, ErrorSubscriptionIds [late-error], ConnectionStatus OK",
        ],
    );
}

#[tokio::test]
async fn ill_formed_xml_between_envelopes_fails_once_per_stream_and_junk_is_noted() {
    let h = Harness::start().await;
    let steps = r#"
[[step]]
name = "open"
op = "OpenStream"
with = { subscriptions = ["${sub}"], connection_timeout = 1 }

[[step]]
name = "closed"
op = "AwaitStreamClosed"
"#;
    let wire = |outcome: &Outcome| -> Vec<(Severity, String)> {
        outcome
            .findings
            .iter()
            .chain(outcome.exchanges.iter().flat_map(|e| e.findings.iter()))
            .filter(|f| f.message.contains("XML declaration") || f.message.contains("non-envelope"))
            .map(|f| (f.severity, f.message.clone()))
            .collect()
    };
    // One declaration before each envelope is legal: nothing to say.
    let (outcome, _) = h.run(&case("declared", steps)).await;
    assert_eq!(outcome.verdict, Verdict::Pass, "{}", explain(&outcome));
    assert!(wire(&outcome).is_empty(), "{:?}", wire(&outcome));

    // Junk before the first envelope is a note; two declarations before the
    // second and the third are one failure, on the step that saw them first.
    let (outcome, _) = h.run(&case("irregular", steps)).await;
    assert_eq!(outcome.verdict, Verdict::Fail, "{}", explain(&outcome));
    let found = wire(&outcome);
    let fails: Vec<&String> = found
        .iter()
        .filter(|(s, _)| *s == Severity::Fail)
        .map(|(_, m)| m)
        .collect();
    assert_eq!(fails.len(), 1, "{found:?}");
    assert!(
        fails[0].starts_with("step \"closed\": stream `s1` is not well-formed XML before or in envelope 2: 2 XML declarations precede this envelope"),
        "{}",
        fails[0]
    );
    assert!(
        found.iter().any(|(s, m)| *s == Severity::Note
            && m.starts_with("step \"open\": stream `s1` before or in envelope 1: 4 bytes of non-envelope content")),
        "{found:?}"
    );
    assert!(explain(&outcome).contains("[notify]"));
}

#[test]
fn stream_and_push_keys_are_checked_when_the_case_loads() {
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let loader = Loader::new(&ops, &checks);
    let load = |step: &str| {
        let text = format!(
            "title = \"t\"\nrequirements = [\"R45\"]\nisolate = false\n\n[[step]]\nname = \"s\"\n{step}\n"
        );
        loader
            .parse(&text, Path::new("cases/x/y.toml"), "x/y")
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        load(
            "op = \"AwaitStream\"\nwith = { stream = \"s1\", count = 3, within_minutes = 2 }\nexpect = { connection_status = \"OK\" }"
        ),
        Ok(())
    );
    let e = load("op = \"AwaitStream\"\nexpect = { connection_status = \"Open\" }")
        .expect_err("bad status");
    assert!(
        e.contains("x/y.toml:8:") && e.contains("`Open` is not a ConnectionStatus (OK, Closed)"),
        "{e}"
    );
    let e = load("op = \"Subscribe\"\nexpect = { arrivals_minutes = [0.0, 0.5] }")
        .expect_err("not a waiting step");
    assert!(
        e.contains("arrivals_minutes is judged by the steps that wait"),
        "{e}"
    );
    let e = load("op = \"AwaitPush\"\nwith = { subscription = \"x\" }\nexpect = { arrivals_minutes = [1.0, 0.5] }").expect_err("descending");
    assert!(e.contains("non-negative and ascending"), "{e}");
    let e = load("op = \"OpenStream\"\nwith = { subscription = \"x\" }").expect_err("unknown key");
    assert!(
        e.contains("OpenStream has no parameter `subscription`"),
        "{e}"
    );
    let e = load("op = \"AwaitPush\"\nwith = { within_minutes = 1 }").expect_err("missing key");
    assert!(e.contains("AwaitPush needs `with.subscription`"), "{e}");
    let e = load("op = \"AwaitStream\"\nexpect = { event = [{ kind = \"CreatedEvent\", subscription = \"${nope}\" }] }").expect_err("unknown var");
    assert!(e.contains("unknown variable `${nope}`"), "{e}");
}

#[tokio::test]
async fn steps_on_a_stream_that_did_not_open_fail_without_blaming_the_case() {
    let h = Harness::start().await;
    let (outcome, took) = h
        .run(
            r#"title = "t"
requirements = ["R48"]
grade = "record"
isolate = false

[[step]]
name = "open"
op = "OpenStream"
with = { request = "<not-a-request/>" }

[[step]]
name = "await"
op = "AwaitStream"

[[step]]
name = "close"
op = "CloseStream"
"#,
        )
        .await;
    let report = ews_conformance::report::observations(&outcome);
    assert_eq!(outcome.verdict, Verdict::Recorded, "{report}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(outcome.exchanges[0].status, Some(400), "{report}");
    assert!(
        report.contains("step \"await\" cannot be sent: stream `s1` did not open (step \"open\")"),
        "{report}"
    );
    assert!(report.contains("step \"close\" cannot be sent"), "{report}");
}

#[tokio::test]
async fn a_flooding_stream_cannot_keep_a_step_waiting() {
    let h = Harness::start().await;
    let (outcome, took) = h
        .run(&case(
            "flood",
            r#"
[[step]]
name = "open"
op = "OpenStream"
with = { subscriptions = ["${sub}"], await_first = false }

[[step]]
name = "an event that never comes"
op = "AwaitStream"
with = { within_minutes = 20 }
expect = { event = [{ kind = "CreatedEvent" }] }
"#,
        ))
        .await;
    // The deadline would be 30 s away; the step gives up after 500 envelopes.
    assert_failed_with(
        &outcome,
        took,
        Duration::from_secs(15),
        &["500 documents arrived without meeting the expectations, and a step takes no more"],
    );
    let taken = outcome
        .exchanges
        .iter()
        .filter(|e| e.step == "an event that never comes")
        .count();
    assert_eq!(taken, 500);
}

#[tokio::test]
async fn an_unexpected_push_fails_expect_no_push_with_the_push_as_evidence() {
    let h = Harness::embedded(500).await;
    let (outcome, took) = h
        .run(
            r#"title = "t"
requirements = ["R67"]
needs = ["push"]

[[step]]
name = "subscribe"
op = "Subscribe"
with = { mode = "push", folders = ["${folder}"], event_types = ["CreatedEvent"], status_frequency = 1 }
capture = { sub = "//m:SubscriptionId" }

[[step]]
name = "quiet, wrongly"
op = "ExpectNoPush"
with = { subscription = "${sub}", for_minutes = 3 }
"#,
        )
        .await;
    // The status notification right after Subscribe (or the one a protocol
    // minute later) ends the window early.
    assert_failed_with(
        &outcome,
        took,
        Duration::from_millis(1500),
        &[
            "step \"quiet, wrongly\": a push for subscription",
            "the window of 3 protocol minutes (1.50 s) in which none was expected",
            "StatusEvent",
            "evidence: <?xml",
            "m:SendNotification",
        ],
    );
}
