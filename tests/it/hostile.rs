//! The harness against hostile targets: every behaviour of the hostile
//! server (tests/it/support/hostile_target.rs) is met by a few of the suite's own cases
//! with a one-second request deadline. Each test asserts that the affected
//! cases fail (or are unreachable) with a message naming the problem, that
//! the others pass, that nothing panics or waits past its deadline, that
//! memory stays bounded, and that the reports are complete. The CLI's exit
//! codes are checked against hostile targets too, and the streaming reader
//! against hostile streams.

use crate::support::hostile_target as hostile;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ews_conformance::check::CheckRegistry;
use ews_conformance::client::auth::Auth;
use ews_conformance::client::stream::{StreamError, StreamReader, parse_envelope};
use ews_conformance::report::console::Console;
use ews_conformance::report::html::Html;
use ews_conformance::report::json::Json;
use ews_conformance::report::junit::Junit;
use ews_conformance::report::{Fanout, REPORT_BODY_KEEP, Reporter};
use ews_conformance::suite::operation::OpRegistry;
use ews_conformance::suite::{
    Executor, ExitStatus, Loader, Outcome, RunOptions, TargetConfig, Verdict, run_suite,
};
use ews_server::{RunningServer, ServerConfig};

use hostile::{Behaviour as B, Hostile, Scope};

const USER: &str = "alice@example.com";
const PASSWORD: &str = "alice-Secret-1";
const DEADLINE: Duration = Duration::from_secs(1);
/// How far past its deadline an exchange may end (a loaded two-core machine).
// Generous: these tests prove that waits are bounded, not how fast they end
// (a loaded 2-core CI machine once took more than 2 s extra).
const SLACK: Duration = Duration::from_secs(8);

/// The suite's own cases used as probes: one that polls (GetEvents) and two that do not.
const PROBES: &[&str] = &[
    "getevents/created-item-event",
    "subscribe/pull-inbox",
    "unsubscribe/twice",
];
const POLLS: &str = "getevents/created-item-event";

fn cases_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cases")
}

/// Peak resident memory of this process in KiB (0 where /proc is missing).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
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

struct Ran {
    outcomes: Vec<Outcome>,
    exit: ExitStatus,
    console: String,
    json: serde_json::Value,
    junit: String,
    html: String,
    elapsed: Duration,
}

impl Ran {
    fn outcome(&self, id: &str) -> &Outcome {
        self.outcomes
            .iter()
            .find(|o| o.id == id)
            .unwrap_or_else(|| panic!("no outcome for {id}: {}", self.console))
    }

    /// Everything a reader of the report learns about one case.
    fn text_of(&self, id: &str) -> String {
        let o = self.outcome(id);
        let mut t = format!("{:?}\n", o.verdict);
        for f in o.all_findings() {
            t.push_str(&format!(
                "[{}] {} {}\n",
                f.check,
                f.message,
                f.evidence.as_deref().unwrap_or("")
            ));
        }
        for e in &o.exchanges {
            if let Some(err) = &e.error {
                t.push_str(&format!("error: {err}\n"));
            }
        }
        t
    }
}

async fn reference_server() -> RunningServer {
    ews_server::start(ServerConfig::default())
        .await
        .expect("the reference server starts")
}

fn target(endpoint: &str) -> TargetConfig {
    TargetConfig::builder(endpoint)
        .user(
            USER,
            Auth::Basic {
                username: USER.into(),
                password: PASSWORD.into(),
            },
        )
        .request_timeout(DEADLINE)
        .build()
        .expect("valid target")
}

async fn run_probes(endpoint: &str, tag: &str) -> Ran {
    let executor = Executor::new(Arc::new(target(endpoint))).expect("executor");
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let loader = Loader::new(&ops, &checks);
    let root = cases_root();
    let cases: Vec<_> = PROBES
        .iter()
        .map(|id| {
            loader
                .load_file(&root, &root.join(format!("{id}.toml")))
                .expect("a suite case loads")
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("ews-hostile-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("report dir");
    let (json_path, junit_path) = (dir.join("report.json"), dir.join("report.xml"));
    let captured = Captured::default();
    let mut reporters = Fanout::new()
        .with(Box::new(Console::new(Box::new(captured.clone()))))
        .with(Box::new(Json::new(&json_path, "hostile target")))
        .with(Box::new(Junit::new(&junit_path)))
        .with(Box::new(Html::new(dir.join("html"), "hostile target")));
    let started = Instant::now();
    let result = run_suite(
        Arc::new(executor),
        cases,
        &[],
        &RunOptions::default(),
        &mut reporters as &mut dyn Reporter,
    )
    .await;
    let elapsed = started.elapsed();
    assert!(result.report_error.is_none(), "{:?}", result.report_error);
    let console = String::from_utf8_lossy(&captured.0.lock().expect("lock")).into_owned();
    let json_text = std::fs::read_to_string(&json_path).expect("the JSON report is written");
    let json: serde_json::Value = serde_json::from_str(&json_text).expect("the JSON report parses");
    let junit = std::fs::read_to_string(&junit_path).expect("the JUnit report is written");
    let html = std::fs::read_to_string(Html::page_path(&dir.join("html")))
        .expect("the HTML report is written");
    let _ = std::fs::remove_dir_all(&dir);
    Ran {
        exit: result.exit_status(),
        outcomes: result.outcomes,
        console,
        json,
        junit,
        html,
        elapsed,
    }
}

/// What a behaviour must do to the probe cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Affected {
    /// The sabotaged cases fail, the others pass.
    Fail,
    /// The sabotaged cases are unreachable (exit code 2).
    Unreachable,
    /// Nothing fails: the oddity is legal or outside what the checks judge.
    Pass,
}

/// Runs the probes through a hostile proxy in front of the reference server.
async fn probe(behaviour: B, scope: Scope, affected: Affected, message: &str) -> Ran {
    let server = reference_server().await;
    let hostile = Hostile::start(behaviour, scope.clone(), Some(server.url())).await;
    let ran = run_probes(&hostile.url, &format!("{behaviour:?}")).await;
    let all = ran.console.clone();

    // Every case has an outcome, in every report; nothing crashed.
    assert_eq!(ran.outcomes.len(), PROBES.len(), "{all}");
    let cases = ran.json["cases"].as_array().expect("a cases array");
    assert_eq!(cases.len(), PROBES.len());
    for c in cases {
        assert!(c["verdict"].is_string(), "{c}");
    }
    assert_eq!(ran.junit.matches("<testcase").count(), PROBES.len());
    // The JUnit file is well-formed XML whatever the target sent.
    let junit = roxmltree::Document::parse(&ran.junit)
        .unwrap_or_else(|e| panic!("{behaviour:?}: the JUnit report is not XML: {e}"));
    let testcases = junit
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .count();
    assert_eq!(testcases, PROBES.len(), "{behaviour:?}");
    // The HTML page runs only its own script and shows the target's
    // markup as text; no raw control character reaches it.
    assert_eq!(ran.html.matches("<script").count(), 1, "{behaviour:?}");
    for raw in ["<img", "<form", "<input name"] {
        assert!(
            !ran.html.contains(raw),
            "{behaviour:?}: raw {raw} in the HTML report"
        );
    }
    for bad in ['\u{1b}', '\0', '\u{9b}', '\u{7}'] {
        assert!(
            !ran.html.contains(bad),
            "{behaviour:?}: a raw {bad:?} in the HTML report"
        );
    }
    assert!(
        ran.html.len() < 8 * 1024 * 1024,
        "{behaviour:?}: {} bytes of HTML",
        ran.html.len()
    );
    // Stored bodies are capped in the JSON report.
    let cap = 2 * REPORT_BODY_KEEP + 64;
    for c in cases {
        for e in c["exchanges"].as_array().into_iter().flatten() {
            for field in ["request", "response_text"] {
                let len = e[field].as_str().map_or(0, str::len);
                assert!(len <= cap, "{behaviour:?}: a stored {field} of {len} bytes");
            }
        }
    }
    // No control character from the target reaches the terminal raw.
    for bad in ['\u{1b}', '\0', '\u{9b}', '\r', '\u{7}'] {
        assert!(
            !ran.console.contains(bad),
            "{behaviour:?}: the console prints a raw {bad:?}"
        );
    }
    for o in &ran.outcomes {
        assert!(
            !matches!(o.verdict, Verdict::Error { .. }),
            "{behaviour:?}: the harness itself failed on {}: {:?}",
            o.id,
            o.verdict
        );
        // No exchange outlived its deadline by more than the slack.
        for e in &o.exchanges {
            assert!(
                e.duration <= DEADLINE + SLACK,
                "{behaviour:?}: {} step \"{}\" took {:?}",
                o.id,
                e.step,
                e.duration
            );
        }
    }
    assert!(
        ran.elapsed < Duration::from_secs(20),
        "{behaviour:?}: the run took {:?}",
        ran.elapsed
    );
    assert!(
        hostile.sabotaged() > 0 || behaviour == B::PassThrough,
        "{behaviour:?}: no request was sabotaged"
    );

    let hit = |id: &str| match &scope {
        Scope::All => true,
        Scope::Op(_) => id == POLLS,
    };
    for id in PROBES {
        let verdict = &ran.outcome(id).verdict;
        let text = ran.text_of(id);
        if !hit(id) || affected == Affected::Pass {
            assert_eq!(
                verdict,
                &Verdict::Pass,
                "{behaviour:?}: {id} should pass:\n{text}\n{all}"
            );
            continue;
        }
        match affected {
            Affected::Fail => assert_eq!(verdict, &Verdict::Fail, "{behaviour:?}: {id}:\n{text}"),
            Affected::Unreachable => assert!(
                matches!(verdict, Verdict::Unreachable { .. }),
                "{behaviour:?}: {id}: {text}"
            ),
            Affected::Pass => {}
        }
        assert!(
            text.to_lowercase().contains(&message.to_lowercase()),
            "{behaviour:?}: {id}: the report does not say `{message}`:\n{text}"
        );
    }
    let expected_exit = match affected {
        Affected::Fail => ExitStatus::Failed,
        Affected::Unreachable => ExitStatus::Unreachable,
        Affected::Pass => ExitStatus::Passed,
    };
    assert_eq!(ran.exit, expected_exit, "{behaviour:?}\n{all}");
    assert_eq!(ran.json["exit_code"], expected_exit.code());
    // Credentials never reach a report.
    for text in [&ran.console, &ran.json.to_string(), &ran.junit] {
        assert!(!text.contains(PASSWORD), "{behaviour:?}: password leaked");
        assert!(
            !text.contains("YWxpY2VAZXhhbXBsZS5jb206YWxpY2UtU2VjcmV0LTE="),
            "{behaviour:?}: Basic credential leaked"
        );
    }
    drop(hostile);
    server.shutdown().await;
    ran
}

macro_rules! hostile_test {
    ($name:ident, $behaviour:expr, $scope:expr, $affected:expr, $message:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            probe($behaviour, $scope, $affected, $message).await;
        }
    };
}

const POLL: Scope = Scope::Op("GetEvents");
use Affected::{Fail, Pass, Unreachable};

// ---------------------------------------------------- broken HTTP framing
hostile_test!(garbage_bytes, B::GarbageBytes, POLL, Fail, "protocol error");
hostile_test!(http09_answer, B::Http09, POLL, Fail, "protocol error");
hostile_test!(
    garbled_status_line,
    B::GarbledStatusLine,
    POLL,
    Fail,
    "protocol error"
);
hostile_test!(
    enormous_header,
    B::EnormousHeader,
    POLL,
    Fail,
    "protocol error"
);
hostile_test!(many_headers, B::ManyHeaders, POLL, Fail, "protocol error");
hostile_test!(
    immediate_close,
    B::ImmediateClose,
    POLL,
    Fail,
    "protocol error"
);
hostile_test!(
    reset_mid_body,
    B::ResetMidBody,
    POLL,
    Fail,
    "protocol error"
);
hostile_test!(
    truncated_body,
    B::TruncatedBody,
    POLL,
    Fail,
    "protocol error"
);
hostile_test!(chunked_error, B::ChunkedError, POLL, Fail, "protocol error");

// ---------------------------------------------------------- time and size
hostile_test!(
    stall_after_headers,
    B::StallAfterHeaders,
    POLL,
    Fail,
    "no complete response within 1s"
);
hostile_test!(
    endless_continue,
    B::EndlessContinue,
    POLL,
    Fail,
    "no complete response within 1s"
);
hostile_test!(
    stall_mid_envelope,
    B::StallMidEnvelope,
    POLL,
    Fail,
    "no complete response within 1s"
);
hostile_test!(
    slow_drip,
    B::SlowDrip,
    POLL,
    Fail,
    "no complete response within 1s"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_body_is_cut_at_the_cap() {
    let server = reference_server().await;
    let hostile = Hostile::start(B::EndlessBody, POLL, Some(server.url())).await;
    let ran = run_probes(&hostile.url, "endless").await;
    let text = ran.text_of(POLLS);
    // Either the cap or the deadline ends it, whichever comes first on this machine.
    assert!(
        text.contains("exceeds the limit of 16777216 bytes")
            || text.contains("no complete response within 1s"),
        "{text}"
    );
    assert_eq!(ran.outcome(POLLS).verdict, Verdict::Fail);
    assert!(
        hostile.bytes_sent() < 200 * 1024 * 1024,
        "the harness kept reading: {} bytes",
        hostile.bytes_sent()
    );
    assert!(
        peak_rss_kib() < 1024 * 1024,
        "peak RSS {} KiB",
        peak_rss_kib()
    );
    drop(hostile);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_body_is_refused_unread() {
    let ran = probe(
        B::HugeBody,
        POLL,
        Fail,
        "declares a body of 536870912 bytes, above the limit",
    )
    .await;
    // Far below the 512 MiB the target offered.
    assert!(
        peak_rss_kib() < 1024 * 1024,
        "peak RSS {} KiB",
        peak_rss_kib()
    );
    assert!(ran.elapsed < Duration::from_secs(20));
}

hostile_test!(
    huge_attribute,
    B::HugeAttribute,
    POLL,
    Fail,
    // Well-formed XML, but the schema allows no such attribute: the structure check names it.
    "attribute Huge is not allowed on m:GetEventsResponse"
);

// ----------------------------------------------------- wrong bytes in the body
hostile_test!(
    truncated_envelope,
    B::TruncatedEnvelope,
    POLL,
    Fail,
    "not well-formed XML"
);
hostile_test!(garbage_body, B::GarbageBody, POLL, Fail, "not valid UTF-8");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_bytes_reach_no_report_raw() {
    let ran = probe(B::ControlBytes, POLL, Fail, "not well-formed XML").await;
    // The reader is told what was there, visibly.
    assert!(ran.console.contains("\\u{1b}[2J"), "{}", ran.console);
    assert!(ran.junit.contains("\\u{1b}[2J"), "{}", ran.junit);
    let json = ran.json.to_string();
    assert!(json.contains("\\u001b[2J"), "serde_json escapes ESC");
}
hostile_test!(
    utf16_body,
    B::Utf16Body,
    POLL,
    Fail,
    "UTF-16LE byte order mark (UTF-16 text follows); EWS responses are UTF-8"
);
hostile_test!(
    invalid_utf8,
    B::InvalidUtf8,
    POLL,
    Fail,
    "the body is not valid UTF-8: byte 0xC3"
);
hostile_test!(
    bom_mismatch,
    B::BomMismatch,
    POLL,
    Fail,
    "UTF-16LE byte order mark (but the text after it is not UTF-16)"
);
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_login_page() {
    let ran = probe(
        B::HtmlPage,
        POLL,
        Fail,
        "the root element is html, not soap:Envelope",
    )
    .await;
    // The page's markup is in the HTML report as text (tests/it/html_report.rs
    // loads such a page in a browser and sees that nothing of it ran).
    assert!(
        ran.html
            .contains("&lt;script&gt;window.hostile=1&lt;/script&gt;"),
        "the response is shown escaped"
    );
}
hostile_test!(
    wrong_content_type,
    B::WrongContentType,
    POLL,
    Pass,
    "" // clients ignore the response Content-Type (clients.md), so does the harness
);
hostile_test!(
    entity_bomb,
    B::EntityBomb,
    POLL,
    Fail,
    "entity reference loop"
);
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_nesting() {
    let ran = probe(B::DeepNesting, POLL, Fail, "without a response message").await;
    // The 700 KB body is stored capped: the report stays small.
    let size = ran.json.to_string().len();
    eprintln!("deep nesting: JSON report {size} bytes");
    assert!(size < 2 * 1024 * 1024, "a JSON report of {size} bytes");
}
hostile_test!(
    not_soap,
    B::NotSoap,
    POLL,
    Fail,
    "the root element is status, not soap:Envelope"
);
hostile_test!(
    two_bodies,
    B::TwoBodies,
    POLL,
    Fail,
    "unexpected element soap:Body"
);
hostile_test!(empty_body, B::EmptyBody, POLL, Fail, "the body is empty");

// ---------------------------------------------------------- HTTP statuses
hostile_test!(
    status_500_empty,
    B::Status500Empty,
    POLL,
    Fail,
    "HTTP 500, no SOAP envelope (the body is empty)"
);
hostile_test!(
    status_500_fault,
    B::Status500Fault,
    POLL,
    Fail,
    "a SOAP fault (ErrorInternalServerError)"
);
hostile_test!(
    fault_with_garbage_detail,
    B::FaultGarbageDetail,
    POLL,
    Fail,
    "a SOAP fault (Not A Code"
);
hostile_test!(
    status_401,
    B::Status401,
    Scope::All,
    Unreachable,
    "authentication refused: HTTP 401"
);
hostile_test!(
    status_401_on_one_operation,
    B::Status401,
    POLL,
    Unreachable,
    "authentication refused: HTTP 401"
);
hostile_test!(
    status_403,
    B::Status403,
    Scope::All,
    Unreachable,
    "authentication refused: HTTP 403"
);
hostile_test!(
    redirect_loop,
    B::RedirectLoop,
    Scope::All,
    Unreachable,
    "redirects (HTTP 302)"
);
hostile_test!(
    everything_garbage,
    B::GarbageBytes,
    Scope::All,
    Fail,
    "setup: the case folder could not be created"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_to_another_host_is_never_followed() {
    let server = reference_server().await;
    let hostile = Hostile::start(B::RedirectElsewhere, Scope::All, Some(server.url())).await;
    let ran = run_probes(&hostile.url, "elsewhere").await;
    for id in PROBES {
        let text = ran.text_of(id);
        assert!(
            matches!(ran.outcome(id).verdict, Verdict::Unreachable { .. }),
            "{text}"
        );
        assert!(
            text.contains("redirects (HTTP 307) to `http://127.0.0.1:"),
            "{text}"
        );
    }
    assert_eq!(
        hostile.other_host_connections(),
        0,
        "the credentials went to the other host"
    );
    assert_eq!(ran.exit, ExitStatus::Unreachable);
    drop(hostile);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_credentials_are_redacted() {
    let ran = probe(B::EchoCredentials, POLL, Fail, "<redacted>").await;
    let text = ran.text_of(POLLS);
    assert!(
        text.contains("Rejected credentials Basic <redacted>"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_through_is_clean() {
    probe(B::PassThrough, Scope::All, Pass, "").await;
}

// ------------------------------------------------------ streaming bodies

async fn open_stream(hostile: &Hostile) -> StreamReader {
    let response = reqwest::Client::new()
        .post(&hostile.url)
        .basic_auth(USER, Some(PASSWORD))
        .body("<GetStreamingEvents/>")
        .send()
        .await
        .expect("the stream's headers arrive");
    assert_eq!(response.status().as_u16(), 200);
    StreamReader::from_response(response)
}

fn soon(d: Duration) -> tokio::time::Instant {
    tokio::time::Instant::now() + d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_with_one_envelope_then_silence() {
    let hostile = Hostile::start(B::StreamOneThenStall, Scope::All, None).await;
    let mut reader = open_stream(&hostile).await;
    let first = reader
        .next_envelope(soon(Duration::from_secs(5)))
        .await
        .expect("no error")
        .expect("one envelope");
    let parsed = parse_envelope(&first.text).expect("a GetStreamingEvents response");
    assert!(parsed.message.is_success());
    let started = Instant::now();
    let err = reader
        .next_envelope(soon(Duration::from_millis(500)))
        .await
        .expect_err("nothing more comes");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_millis(500) + SLACK,
        "{waited:?}"
    );
    match err {
        StreamError::Deadline {
            envelopes_so_far,
            partial,
            ..
        } => {
            assert_eq!(envelopes_so_far, 1);
            assert!(partial.is_none());
        }
        other => panic!("{other:?}"),
    }
    // The reader can be asked again, and again it waits only until its deadline.
    let again = reader.next_envelope(soon(Duration::from_millis(100))).await;
    assert!(
        matches!(again, Err(StreamError::Deadline { .. })),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_stalled_after_headers() {
    let hostile = Hostile::start(B::StallAfterHeaders, Scope::All, None).await;
    let mut reader = open_stream(&hostile).await;
    let started = Instant::now();
    let err = reader
        .next_envelope(soon(Duration::from_millis(300)))
        .await
        .expect_err("nothing comes");
    assert!(started.elapsed() < Duration::from_millis(300) + SLACK);
    assert!(
        err.to_string().contains("no complete envelope within"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_with_an_endless_envelope_stays_bounded() {
    let hostile = Hostile::start(B::StreamEndlessEnvelope, Scope::All, None).await;
    let mut reader = open_stream(&hostile).await.with_max_envelope(1024 * 1024);
    let started = Instant::now();
    let end = soon(Duration::from_secs(2));
    let mut too_large = 0;
    loop {
        match reader.next_envelope(end).await {
            Err(StreamError::Split(e)) => {
                assert!(
                    e.to_string().contains("exceeds the limit of 1048576 bytes"),
                    "{e}"
                );
                too_large += 1;
            }
            Err(StreamError::Deadline { .. }) => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(2) + SLACK);
    assert_eq!(too_large, 1, "one envelope, reported once");
    assert!(
        reader.bytes_read() > 2 * 1024 * 1024,
        "{}",
        reader.bytes_read()
    );
    assert!(
        peak_rss_kib() < 1024 * 1024,
        "peak RSS {} KiB",
        peak_rss_kib()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_of_endless_heartbeats_is_read_in_bounded_memory() {
    let hostile = Hostile::start(B::StreamEndlessHeartbeats, Scope::All, None).await;
    let mut reader = open_stream(&hostile).await;
    let end = soon(Duration::from_secs(10));
    for _ in 0..5000 {
        let env = reader
            .next_envelope(end)
            .await
            .expect("heartbeats keep coming")
            .expect("the stream goes on");
        assert!(env.text.contains("ConnectionStatus"));
    }
    assert!(reader.history().len() <= 64, "the history is bounded");
    assert_eq!(reader.envelopes_read(), 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_reset_mid_envelope_keeps_the_partial_evidence() {
    let hostile = Hostile::start(B::ResetMidBody, Scope::All, None).await;
    let mut reader = open_stream(&hostile).await;
    let err = reader
        .next_envelope(soon(Duration::from_secs(5)))
        .await
        .expect_err("the body breaks");
    match &err {
        StreamError::Body { partial, .. } => {
            let p = partial.as_ref().expect("the unfinished envelope is kept");
            assert!(p.len > 0);
        }
        StreamError::Truncated { partial } => assert!(partial.len > 0),
        other => panic!("{other:?}"),
    }
    assert!(reader.is_ended());
}

// ------------------------------------------------------------ the CLI

async fn cli(args: &[&str]) -> (i32, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_ews-conformance"))
            .args(args)
            .env_clear()
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the CLI finishes")
    .expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A case folder holding copies of the probe cases (and `extra` files in their group).
fn probe_dir(tag: &str, extra: &[(&str, &str)]) -> PathBuf {
    let root = std::env::temp_dir().join(format!("ews-hostile-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for id in PROBES {
        let to = root.join(format!("{id}.toml"));
        std::fs::create_dir_all(to.parent().expect("a group")).expect("case dir");
        std::fs::copy(cases_root().join(format!("{id}.toml")), &to).expect("copy case");
    }
    for (name, text) in extra {
        std::fs::write(root.join("getevents").join(name), text).expect("write case");
    }
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_exit_codes_against_hostile_targets() {
    let server = reference_server().await;
    let dir = probe_dir("codes", &[]);
    let broken = probe_dir(
        "broken",
        &[(
            "broken.toml",
            "title = \"t\"\nrequirements = [\"R1\"]\n[[step]]\nop = \"Nope\"\n",
        )],
    );
    let json = dir.join("report.json");
    let run = |endpoint: String, cases: PathBuf| {
        let json = json.clone();
        async move {
            let args = [
                "run",
                "--endpoint",
                &endpoint,
                "--cases",
                cases.to_str().expect("utf-8 path"),
                "--user",
                USER,
                "--password",
                PASSWORD,
                "--request-timeout-secs",
                "2",
                "--json",
                json.to_str().expect("utf-8 path"),
            ];
            let (code, out) = cli(&args).await;
            let report: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(&json).expect("the JSON report is written"),
            )
            .expect("the JSON report parses");
            assert_eq!(report["exit_code"], code, "{out}");
            assert!(!out.contains(PASSWORD));
            (code, out, report)
        }
    };

    // 0: a well-behaved proxy.
    let h = Hostile::start(B::PassThrough, Scope::All, Some(server.url())).await;
    let (code, out, report) = run(h.url.clone(), dir.clone()).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(report["cases"].as_array().map(Vec::len), Some(PROBES.len()));

    // 1: garbage where GetEvents answers.
    let h = Hostile::start(B::GarbageBody, POLL, Some(server.url())).await;
    let (code, out, _) = run(h.url.clone(), dir.clone()).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL        getevents/created-item-event"),
        "{out}"
    );
    assert!(out.contains("not valid UTF-8"), "{out}");

    // 1: a stall; the run ends within the deadlines.
    let h = Hostile::start(B::StallAfterHeaders, POLL, Some(server.url())).await;
    let started = Instant::now();
    let (code, out, _) = run(h.url.clone(), dir.clone()).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no complete response within 2s"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(30));

    // 2: credentials refused, a redirect, a port nothing listens on.
    for behaviour in [B::Status401, B::Status403, B::RedirectLoop] {
        let h = Hostile::start(behaviour, Scope::All, Some(server.url())).await;
        let (code, out, _) = run(h.url.clone(), dir.clone()).await;
        assert_eq!(code, 2, "{behaviour:?}: {out}");
        assert!(out.contains("UNREACHABLE"), "{out}");
    }

    // 3: a broken case file, even while the target misbehaves.
    let h = Hostile::start(B::GarbageBody, POLL, Some(server.url())).await;
    let (code, out, _) = run(h.url.clone(), broken.clone()).await;
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("broken.toml:4:6: unknown operation `Nope`"),
        "{out}"
    );

    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&broken);
    server.shutdown().await;
}
