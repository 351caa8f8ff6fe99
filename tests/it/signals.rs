//! SIGINT and SIGTERM during a run: the reports are finished with every
//! case done so far and the run marked interrupted, the exit code is 130 or
//! 143; a second signal ends the process at once.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Starts a run; returns it and its stdout lines as they come (read on a
/// thread, so the pipe never fills).
fn start(dir: &std::path::Path) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ews-conformance"))
        .args(["run", "--json"])
        .arg(dir.join("report.json"))
        .arg("--junit")
        .arg(dir.join("report.xml"))
        .env_remove("EWS_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the harness starts");
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
    }
    (child, rx)
}

/// Waits until `n` cases have finished (their verdict lines printed).
fn cases_done(lines: &mpsc::Receiver<String>, n: usize) {
    let mut done = 0;
    let end = Instant::now() + Duration::from_secs(60);
    while done < n {
        let left = end.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).expect("the run prints its cases");
        if line.starts_with("ok ") {
            done += 1;
        }
    }
}

fn send(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits for the process to end, at most `limit`.
fn wait(child: &mut Child, limit: Duration) -> Option<i32> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

fn interrupted_run(signal: &str, expected_code: i32, name: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut child, lines) = start(dir.path());
    // Some cases are done; the long ones are still running.
    cases_done(&lines, 10);
    send(&child, signal);
    let code = wait(&mut child, Duration::from_secs(30));
    assert_eq!(code, Some(expected_code), "exit code after {signal}");

    let json = std::fs::read_to_string(dir.path().join("report.json")).expect("JSON written");
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON parses");
    assert_eq!(doc["exit_code"], expected_code);
    assert_eq!(
        doc["summary"]["interrupted"],
        if expected_code == 130 {
            "Interrupt"
        } else {
            "Terminate"
        }
    );
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() > 50, "every case is listed: {}", cases.len());
    let finished = cases
        .iter()
        .filter(|c| !c.to_string().contains(&format!("stopped by {name}")))
        .count();
    let stopped = cases
        .iter()
        .filter(|c| c.to_string().contains(&format!("stopped by {name}")))
        .count();
    assert!(
        finished > 0,
        "finished cases keep their verdicts: {json:.2000}"
    );
    assert!(stopped > 0, "unfinished cases say why");

    let xml = std::fs::read_to_string(dir.path().join("report.xml")).expect("JUnit written");
    let junit = roxmltree::Document::parse(&xml).expect("JUnit parses");
    let property = junit
        .descendants()
        .find(|n| n.attribute("name") == Some("interrupted"))
        .and_then(|n| n.attribute("value"));
    assert_eq!(property, Some(name));
}

#[test]
fn sigterm_finishes_the_reports_and_exits_143() {
    interrupted_run("-TERM", 143, "SIGTERM");
}

#[test]
fn sigint_finishes_the_reports_and_exits_130() {
    interrupted_run("-INT", 130, "SIGINT");
}

#[test]
fn a_second_signal_exits_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut child, lines) = start(dir.path());
    cases_done(&lines, 3);
    send(&child, "-INT");
    send(&child, "-INT");
    let started = Instant::now();
    let code = wait(&mut child, Duration::from_secs(10));
    assert_eq!(code, Some(130));
    assert!(started.elapsed() < Duration::from_secs(5));
}
