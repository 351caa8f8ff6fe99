//! A dead target ends the run fast with exit code 2 and a complete report:
//! one that accepts connections and never answers, and one that dies in
//! the middle of the run. A slow target that does answer is never taken
//! for dead.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ews_server::{ServerConfig, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn harness(endpoint: &str, json: &std::path::Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ews-conformance"));
    cmd.args(["run", "--quiet", "--endpoint", endpoint])
        .args([
            "--user",
            "alice@example.com",
            "--password",
            "alice-Secret-1",
        ])
        .arg("--json")
        .arg(json)
        .args(extra)
        .env("EWS_REQUEST_TIMEOUT_SECS", "3")
        .env_remove("EWS_ENDPOINT");
    cmd
}

fn verdicts(json: &std::path::Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(json).expect("the JSON report is written");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("the JSON report parses");
    doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_string(),
                c["verdict"].to_string(),
            )
        })
        .collect()
}

fn summary(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_never_answers_ends_the_run_fast_with_exit_2() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    // Accepts, reads, never answers.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut c, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf).await;
            held.push(c);
        }
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let endpoint = format!("http://{addr}/EWS/Exchange.asmx");
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        harness(&endpoint, &json, &[]).output().map(|o| (o, json))
    })
    .await
    .expect("joins")
    .expect("the harness runs");
    let (out, json) = out;
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(2), "{}", summary(&out));
    // One request deadline (3 s) for the first cases, then every other
    // case fails at once; generous against a loaded machine.
    assert!(took < Duration::from_secs(40), "took {took:?}");
    let all = verdicts(&json);
    assert!(all.len() > 50, "every case is reported: {}", all.len());
    let unreachable = all
        .iter()
        .filter(|(_, v)| v.contains("unreachable"))
        .count();
    assert!(
        unreachable * 2 > all.len(),
        "most cases are unreachable: {unreachable} of {}",
        all.len()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("never answered"), "{}", summary(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_dies_mid_run_ends_it_with_exit_2() {
    let server = start(ServerConfig::default()).await.expect("starts");
    let endpoint = server.url();
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let run = tokio::task::spawn_blocking(move || {
        harness(&endpoint, &json, &["--concurrency", "2"])
            .output()
            .map(|o| (o, json))
    });
    // Let some cases finish, then take the server away.
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.shutdown().await;
    let started = Instant::now();
    let (out, json) = run.await.expect("joins").expect("the harness runs");
    assert_eq!(out.status.code(), Some(2), "{}", summary(&out));
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "the rest of the run took {:?}",
        started.elapsed()
    );
    let all = verdicts(&json);
    let passed = all.iter().filter(|(_, v)| v.contains("pass")).count();
    let unreachable = all
        .iter()
        .filter(|(_, v)| v.contains("unreachable"))
        .count();
    assert!(passed > 0, "cases before the death keep their verdicts");
    assert!(unreachable > 0, "cases after it are unreachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_target_that_answers_is_not_taken_for_dead() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    // Every answer comes after a second: a SOAP fault, so cases fail.
    tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    match c.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let body = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault><faultcode>s:Server</faultcode><faultstring>no</faultstring></s:Fault></s:Body></s:Envelope>";
                    let reply = format!(
                        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if c.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let endpoint = format!("http://{addr}/EWS/Exchange.asmx");
    let (out, json) = tokio::task::spawn_blocking(move || {
        harness(&endpoint, &json, &["--filter", "unsubscribe/"])
            .output()
            .map(|o| (o, json))
    })
    .await
    .expect("joins")
    .expect("the harness runs");
    assert_eq!(out.status.code(), Some(1), "{}", summary(&out));
    let all = verdicts(&json);
    assert!(!all.is_empty());
    assert!(
        all.iter().all(|(_, v)| !v.contains("unreachable")),
        "{all:?}"
    );
}
