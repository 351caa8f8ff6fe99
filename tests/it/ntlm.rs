//! The harness's NTLM against the reference server's: suite cases pass
//! with `Auth::Ntlm` (the handshake on each connection, its later requests
//! without a header; a stream on its own authenticated connection), a
//! wrong password is a refusal that names no secret,
//! and the CLI's `--auth ntlm` works end to end. (exchangelib's NTLM, an
//! independent implementation, meets the server in tests/it/interop.rs.)

use std::path::PathBuf;
use std::sync::Arc;

use ews_conformance::check::CheckRegistry;
use ews_conformance::client::auth::Auth;
use ews_conformance::suite::operation::OpRegistry;
use ews_conformance::suite::{Executor, Loader, TargetConfig, Verdict};
use ews_server::{ServerConfig, start};

const CASES: &[&str] = &[
    "getevents/created-item-event",
    "getevents/batching-120",
    "subscribe/pull-inbox",
    "unsubscribe/twice",
    // A stream: the handshake on the stream's own connection.
    "streaming/event-type-filter",
];

fn ntlm(user: &str, password: &str) -> Auth {
    Auth::Ntlm {
        username: user.into(),
        domain: "EXAMPLE".into(),
        password: password.into(),
    }
}

async fn run(url: &str, password: &str) -> Vec<ews_conformance::suite::Outcome> {
    let target = TargetConfig::builder(url)
        .user("alice@example.com", ntlm("alice", password))
        .profile(Some("reference".into()))
        .build()
        .expect("target");
    let executor = Executor::new(Arc::new(target)).expect("executor");
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let loader = Loader::new(&ops, &checks);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cases");
    let mut out = Vec::new();
    for id in CASES {
        let case = loader
            .load_file(&root, &root.join(format!("{id}.toml")))
            .expect("loads");
        out.push(executor.run_case(&case).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_cases_pass_over_ntlm_and_a_wrong_password_is_refused() {
    let server = start(ServerConfig::default()).await.expect("server");
    for o in run(&server.url(), "alice-Secret-1").await {
        assert_eq!(
            o.verdict,
            Verdict::Pass,
            "{}",
            ews_conformance::report::explain(&o)
        );
    }
    for o in run(&server.url(), "not-alices-password").await {
        let text = format!("{o:?}");
        assert!(
            matches!(o.verdict, Verdict::Unreachable { .. }),
            "{}: {:?}",
            o.id,
            o.verdict
        );
        assert!(text.contains("authentication refused: HTTP 401"), "{text}");
        assert!(!text.contains("not-alices-password"), "{text}");
    }
}

#[test]
fn the_cli_runs_the_suite_with_auth_ntlm() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt.block_on(start(ServerConfig::default())).expect("server");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ews-conformance"))
        .args(["run", "--endpoint", &server.url(), "--auth", "ntlm"])
        .args(["--user", "alice@example.com", "--profile", "reference"])
        .args(["--filter", "unsubscribe/", "--quiet"])
        .env("EWS_PASSWORD", "alice-Secret-1")
        .env("EWS_NTLM_DOMAIN", "EXAMPLE")
        .output()
        .expect("the CLI runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("0 failed"), "{stdout}");
    assert!(!stdout.contains("alice-Secret-1"), "{stdout}");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_ews-conformance"))
        .args(["run", "--endpoint", &server.url(), "--auth", "kerberos"])
        .output()
        .expect("the CLI runs");
    assert_eq!(bad.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected `basic` or `ntlm`"));
}
