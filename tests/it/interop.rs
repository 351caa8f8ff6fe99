//! Real clients against the reference server (issue 7).
//!
//! Starts the embedded reference server on 127.0.0.1:0 and runs unchanged
//! client code written for real Exchange against it: the exchangelib
//! scenarios in `tests/interop/run.py` (Python) and the ews-javascript-api
//! scenarios in `tests/interop/js/scenarios.js` (Node). A test passes when
//! every scenario prints `PASS <name>:` and the script exits 0.
//!
//! When the interpreter or the pinned client is missing, the test says why
//! and returns, unless `EWS_INTEROP=1` (CI), where that is a failure.
//! Install the pinned clients with
//! `python3 -m pip install -r tests/interop/requirements.txt` and
//! `cd tests/interop/js && npm ci`.

use std::process::Stdio;
use std::time::Duration;

use ews_conformance::settings::Settings;
use ews_server::ServerConfig;

/// The protocol minute the server runs with: StatusFrequency, pull Timeout
/// and ConnectionTimeout are counted in these, so the push and streaming
/// scenarios take seconds.
const MINUTE_MS: u64 = 2000;
/// The scripts' exit code for "the client is not installed".
const NOT_INSTALLED: i32 = 3;

/// One real client's scenario script and how to run it.
struct Client {
    /// The interpreter.
    program: &'static str,
    /// The script, relative to the package root.
    script: &'static str,
    /// Extra environment for the interpreter.
    env: &'static [(&'static str, &'static str)],
    /// Every scenario the script has; each must report PASS.
    scenarios: &'static [&'static str],
    /// More arguments for the script (`--auth ntlm`, `--only pull`).
    args: &'static [&'static str],
    /// The whole run, interpreter start-up included.
    deadline: Duration,
    /// How to install the pinned client.
    install: &'static str,
}

fn unavailable(settings: &Settings, client: &Client, why: &str) {
    assert!(
        !settings.interop,
        "EWS_INTEROP is set but the {} scenarios cannot run: {why}\n\
         install the client with: {}",
        client.script, client.install
    );
    eprintln!(
        "interop skipped ({}): {why} (set EWS_INTEROP=1 to make this a failure)",
        client.script
    );
}

/// Runs `client`'s scenarios against a fresh reference server and asserts
/// that every one passed (or skips, see the module documentation).
async fn run_scenarios(client: &Client) {
    let settings = Settings::from_env().expect("the EWS_* environment is valid");
    let config = ServerConfig {
        protocol_minute: Duration::from_millis(MINUTE_MS),
        ..ServerConfig::default()
    };
    let user = config.users[0].clone();
    let server = ews_server::start(config)
        .await
        .expect("the reference server starts on 127.0.0.1:0");
    let script = format!("{}/{}", env!("CARGO_MANIFEST_DIR"), client.script);
    let script_deadline = (client.deadline - Duration::from_secs(5))
        .as_secs()
        .to_string();
    let mut command = tokio::process::Command::new(client.program);
    command
        .arg(&script)
        .args(["--endpoint", &server.url(), "--user", &user.smtp])
        .args(["--minute-ms", &MINUTE_MS.to_string()])
        .args(["--deadline", &script_deadline])
        .args(client.args)
        // The password travels in the environment, not on a command line.
        .env("EWS_INTEROP_PASSWORD", &user.password)
        .envs(client.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            server.shutdown().await;
            let why = format!("{} cannot be started: {e}", client.program);
            return unavailable(&settings, client, &why);
        }
    };
    let started = std::time::Instant::now();
    let output = tokio::time::timeout(client.deadline, child.wait_with_output()).await;
    server.shutdown().await;
    let output = match output {
        Ok(o) => o.expect("reading the script's output"),
        Err(_) => panic!(
            "{} did not finish within {} s (the child was killed)",
            client.script,
            client.deadline.as_secs()
        ),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code();
    if code == Some(NOT_INSTALLED) {
        let why = stdout
            .lines()
            .find(|l| l.starts_with("SKIP"))
            .unwrap_or("the client is not installed");
        return unavailable(&settings, client, why.trim_start_matches("SKIP ").trim());
    }
    let report = format!(
        "{} exited with {code:?} after {:.1} s\n--- stdout\n{stdout}--- stderr\n{stderr}",
        client.script,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(code, Some(0), "{report}");
    for name in client.scenarios {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("PASS {name}:"))),
            "scenario {name} did not report PASS\n{report}"
        );
    }
    assert!(!stdout.contains("FAIL "), "{report}");
    // The one-line results, visible with `cargo test --test it interop:: -- --nocapture`.
    print!("{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchangelib_scenarios_pass_against_the_reference_server() {
    run_scenarios(&Client {
        program: "python3",
        script: "tests/interop/run.py",
        env: &[("PYTHONDONTWRITEBYTECODE", "1"), ("PYTHONUNBUFFERED", "1")],
        scenarios: &["pull", "resume", "streaming", "push", "natural"],
        args: &[],
        // Python start-up alone takes about 10 s.
        deadline: Duration::from_secs(55),
        install: "python3 -m pip install -r tests/interop/requirements.txt",
    })
    .await;
}

/// exchangelib's default for on-premises Exchange: NTLM (requests_ntlm and
/// pyspnego, an implementation independent of ours), a handshake on each
/// connection, the streaming one included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchangelib_authenticates_with_ntlm_against_the_reference_server() {
    run_scenarios(&Client {
        program: "python3",
        script: "tests/interop/run.py",
        env: &[("PYTHONDONTWRITEBYTECODE", "1"), ("PYTHONUNBUFFERED", "1")],
        scenarios: &["pull", "streaming"],
        args: &["--auth", "ntlm", "--only", "pull", "--only", "streaming"],
        deadline: Duration::from_secs(55),
        install: "python3 -m pip install -r tests/interop/requirements.txt",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ews_javascript_api_scenarios_pass_against_the_reference_server() {
    run_scenarios(&Client {
        program: "node",
        script: "tests/interop/js/scenarios.js",
        env: &[],
        scenarios: &[
            "pull",
            "resume",
            "streaming",
            "stream-open",
            "takeover",
            "stale",
        ],
        args: &[],
        deadline: Duration::from_secs(25),
        install: "cd tests/interop/js && npm ci",
    })
    .await;
}

/// The server side of affinity, which exchangelib relies on: a Subscribe
/// that asks for it gets an `X-BackEndOverrideCookie`; other requests and
/// Subscribes that do not ask get none, and a replayed cookie is harmless.
#[tokio::test]
async fn subscribe_with_affinity_sets_the_backend_cookie() {
    let config = ServerConfig::default();
    let user = config.users[0].clone();
    let server = ews_server::start(config)
        .await
        .expect("the reference server starts on 127.0.0.1:0");
    let envelope = |body: &str| {
        format!(
            "<?xml version='1.0' encoding='utf-8'?>\
             <s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
             xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\" \
             xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\">\
             <s:Header><t:RequestServerVersion Version=\"Exchange2013\"/></s:Header>\
             <s:Body>{body}</s:Body></s:Envelope>"
        )
    };
    let subscribe = envelope(
        "<m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds>\
         <t:DistinguishedFolderId Id=\"inbox\"/></t:FolderIds><t:EventTypes>\
         <t:EventType>NewMailEvent</t:EventType></t:EventTypes>\
         </m:StreamingSubscriptionRequest></m:Subscribe>",
    );
    let unsubscribe = envelope(
        "<m:Unsubscribe><m:SubscriptionId>bm8tc3VjaC1zdWJzY3JpcHRpb24=</m:SubscriptionId></m:Unsubscribe>",
    );
    let http = reqwest::Client::new();
    let post = |body: String, affinity: bool| {
        let mut r = http
            .post(server.url())
            .basic_auth(&user.smtp, Some(&user.password))
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(body);
        if affinity {
            r = r
                .header("X-PreferServerAffinity", "True")
                .header("X-AnchorMailbox", &user.smtp)
                .header("X-BackEndOverrideCookie", "reference-server~1");
        }
        r.send()
    };
    let cookie = |r: &reqwest::Response| {
        r.headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("X-BackEndOverrideCookie="))
            .map(str::to_string)
    };
    let r = post(subscribe.clone(), true)
        .await
        .expect("Subscribe answers");
    assert_eq!(r.status(), 200);
    let set = cookie(&r).expect("a Subscribe asking for affinity gets the cookie");
    assert!(set.len() > "X-BackEndOverrideCookie=".len(), "{set}");
    let text = r.text().await.expect("body");
    assert!(text.contains("ResponseClass=\"Success\""), "{text}");
    let r = post(subscribe, false).await.expect("Subscribe answers");
    assert_eq!(cookie(&r), None, "no affinity asked, no cookie");
    let r = post(unsubscribe, true).await.expect("Unsubscribe answers");
    assert_eq!(cookie(&r), None, "only Subscribe sets the cookie");
    server.shutdown().await;
}
