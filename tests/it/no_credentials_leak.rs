//! Credentials never appear in any output: the CLI runs with full tracing
//! (EWS_LOG=trace) against the embedded reference server and against a
//! hostile target that echoes the Authorization header back, and its
//! stdout, stderr and JSON and JUnit reports are searched for every
//! password, token and Basic credential it was given.

use crate::support::hostile_target as hostile;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;

use hostile::{Behaviour, Hostile, Scope};

const ALICE: (&str, &str) = ("alice@example.com", "alice-Secret-1");
const BOB: (&str, &str) = ("bob@example.com", "bob-Secret-2");
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOi.leak-canary-token";

fn basic((user, password): (&str, &str)) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// Everything that must never be printed or written.
fn secrets() -> Vec<String> {
    vec![
        ALICE.1.to_string(),
        BOB.1.to_string(),
        basic(ALICE),
        basic(BOB),
        TOKEN.to_string(),
    ]
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
    json: String,
    junit: String,
}

impl Output {
    fn assert_clean(&self, what: &str) {
        for (name, text) in [
            ("stdout", &self.stdout),
            ("stderr", &self.stderr),
            ("JSON report", &self.json),
            ("JUnit report", &self.junit),
        ] {
            for s in secrets() {
                assert!(
                    !text.contains(&s),
                    "{what}: `{s}` appears in {name}:\n{}",
                    excerpt_around(text, &s)
                );
            }
        }
    }
}

fn excerpt_around(text: &str, needle: &str) -> String {
    let at = text.find(needle).unwrap_or(0);
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(300)
        .map_or(0, |(i, _)| i);
    text[start..].chars().take(700).collect()
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ews-leak-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A case folder with one passing suite case and one that fails on purpose,
/// so the failure report (requests, responses, evidence) is printed too.
fn cases(dir: &Path) -> PathBuf {
    let root = dir.join("cases");
    let group = root.join("leak");
    std::fs::create_dir_all(&group).expect("case group");
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    std::fs::copy(
        suite.join("getevents/created-item-event.toml"),
        group.join("created-item-event.toml"),
    )
    .expect("copy a suite case");
    std::fs::write(
        group.join("fails.toml"),
        "title = \"fails on purpose, as user2 too\"\nrequirements = [\"R64\"]\nneeds = [\"second-user\"]\n\n\
         [[step]]\nname = \"subscribe\"\nop = \"Subscribe\"\nwith = { folders = [\"${folder}\"], event_types = [\"CreatedEvent\"] }\n\
         capture = { sub = \"//m:SubscriptionId\" }\n\n\
         [[step]]\nname = \"as bob\"\nas = \"user2\"\nop = \"Unsubscribe\"\nwith = { subscription = \"${sub}\" }\nexpect = { code = \"NoError\" }\n",
    )
    .expect("write the failing case");
    root
}

async fn run_cli(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let json = dir.join("report.json");
    let junit = dir.join("report.xml");
    let cases = cases(dir);
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ews-conformance"));
    cmd.arg("run")
        .args(args)
        .args(["--cases", cases.to_str().expect("utf-8 path")])
        .args(["--json", json.to_str().expect("utf-8 path")])
        .args(["--junit", junit.to_str().expect("utf-8 path")])
        .args(["--request-timeout-secs", "5"])
        .env_clear()
        .env("EWS_LOG", "trace")
        // Snapshots of these scratch cases must not land in the repository's golden/.
        .env("EWS_GOLDEN_DIR", dir.join("golden"))
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the CLI finishes")
        .expect("the binary runs");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        json: read(&json),
        junit: read(&junit),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_server_run_with_tracing_leaks_nothing() {
    let dir = scratch("embedded");
    let out = run_cli(&dir, &[], &[]).await;
    assert_eq!(out.code, 1, "one case fails on purpose:\n{}", out.stdout);
    assert!(
        out.stderr.contains("TRACE") || out.stderr.contains("DEBUG"),
        "tracing was on"
    );
    assert!(out.json.contains("\"verdict\": \"fail\""), "{}", out.json);
    assert!(out.junit.contains("<failure"), "{}", out.junit);
    out.assert_clean("embedded server");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_echoing_credentials_leaks_nothing() {
    let server = ews_server::start(Default::default())
        .await
        .expect("the reference server starts");
    let echo = Hostile::start(
        Behaviour::EchoCredentials,
        Scope::Op("GetEvents"),
        Some(server.url()),
    )
    .await;

    // Credentials as flags.
    let dir = scratch("echo-flags");
    let out = run_cli(
        &dir,
        &[
            "--endpoint",
            &echo.url,
            "--user",
            ALICE.0,
            "--password",
            ALICE.1,
            "--user2",
            BOB.0,
            "--password2",
            BOB.1,
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("Rejected credentials Basic <redacted>"),
        "{}",
        out.stdout
    );
    out.assert_clean("credentials as flags");
    let _ = std::fs::remove_dir_all(&dir);

    // Credentials from the environment.
    let dir = scratch("echo-env");
    let endpoint = echo.url.clone();
    let out = run_cli(
        &dir,
        &[],
        &[
            ("EWS_ENDPOINT", &endpoint),
            ("EWS_USER", ALICE.0),
            ("EWS_PASSWORD", ALICE.1),
            ("EWS_USER2", BOB.0),
            ("EWS_PASSWORD2", BOB.1),
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    out.assert_clean("credentials from the environment");
    let _ = std::fs::remove_dir_all(&dir);

    // A bearer token (the target refuses it: every case is unreachable).
    let dir = scratch("echo-token");
    let out = run_cli(
        &dir,
        &[],
        &[
            ("EWS_ENDPOINT", &endpoint),
            ("EWS_USER", ALICE.0),
            ("EWS_BEARER_TOKEN", TOKEN),
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    out.assert_clean("bearer token");
    let _ = std::fs::remove_dir_all(&dir);

    drop(echo);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_target_leaks_nothing() {
    let refuse = Hostile::start(Behaviour::Status401, Scope::All, None).await;
    let dir = scratch("refuse");
    let out = run_cli(
        &dir,
        &[
            "--endpoint",
            &refuse.url,
            "--user",
            ALICE.0,
            "--password",
            ALICE.1,
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stdout.contains("authentication refused: HTTP 401"));
    out.assert_clean("refusing target");
    let _ = std::fs::remove_dir_all(&dir);
}
