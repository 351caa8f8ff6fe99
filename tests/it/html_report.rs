//! The HTML reports in a real browser: Debian's Chromium, headless, driven
//! through chromedriver. A run against a faulty reference server gives a
//! page that loads with no console error (a script or style the page's
//! Content Security Policy refused would be one), whose filters work, and
//! whose failing cases show their findings, a golden diff and a timeline.
//! The comparison page filters to its differences, and a hostile target's
//! markup stays text. Skipped with a note when no browser is installed,
//! unless `EWS_BROWSER=1` (CI) requires one. `EWS_BROWSER_SHOTS=DIR` keeps
//! screenshots of the pages.

use crate::support::hostile_target as hostile;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Url;
use serde_json::{Value, json};

use ews_conformance::check::CheckRegistry;
use ews_conformance::check::golden::{Golden, GoldenMode};
use ews_conformance::client::auth::Auth;
use ews_conformance::report::compare::Comparison;
use ews_conformance::report::html::{Html, render_comparison};
use ews_conformance::report::json::Json;
use ews_conformance::report::{Fanout, Reporter};
use ews_conformance::settings::Settings;
use ews_conformance::suite::operation::OpRegistry;
use ews_conformance::suite::target::start_embedded_with;
use ews_conformance::suite::{Executor, Loader, RunOptions, Target, TargetConfig, run_suite};
use ews_server::{Fault, FaultSet, ServerConfig};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The cases the faulty run uses: each fault breaks some, others pass.
const CASES: &[&str] = &[
    "getevents/other-mailbox-inbox",
    "streaming/other-mailbox-inbox",
    "push/other-mailbox-inbox",
    "getevents/idle-status-event",
    "getevents/created-item-event",
    "subscribe/pull-inbox",
    "unsubscribe/twice",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The browser, or why the test cannot run.
fn browser() -> Option<()> {
    let required = std::env::var("EWS_BROWSER").is_ok_and(|v| v == "1");
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return Some(());
    }
    assert!(
        !required,
        "EWS_BROWSER=1 but {} missing (apt-get install chromium chromium-driver)",
        missing.join(" and ")
    );
    eprintln!(
        "note: skipped: {} not installed (apt-get install chromium chromium-driver; EWS_BROWSER=1 makes this a failure)",
        missing.join(" and ")
    );
    None
}

/// Runs `CASES` against the embedded server with `faults`, writing the
/// HTML and JSON reports into `dir`.
async fn run_into(dir: &Path, faults: &[Fault]) -> Vec<ews_conformance::suite::Outcome> {
    let settings = Settings::default();
    let target = Arc::new(
        start_embedded_with(&settings, FaultSet::of(faults.iter().copied()))
            .await
            .expect("the embedded server starts"),
    );
    let mut checks = CheckRegistry::builtin();
    checks.register(Arc::new(Golden::new(
        root().join("golden"),
        GoldenMode::Verify,
        Some("reference".into()),
    )));
    let executor = Executor::new(target as Arc<dyn Target>)
        .expect("executor")
        .with_checks(checks);
    let ops = OpRegistry::builtin();
    let registry = CheckRegistry::builtin();
    let loader = Loader::new(&ops, &registry);
    let cases_dir = root().join("cases");
    let cases = CASES
        .iter()
        .map(|id| {
            loader
                .load_file(&cases_dir, &cases_dir.join(format!("{id}.toml")))
                .expect("a suite case loads")
        })
        .collect();
    let label = if faults.is_empty() {
        "clean reference"
    } else {
        "faulty reference"
    };
    let mut reporters = Fanout::new()
        .with(Box::new(Html::new(dir.join("html"), label)))
        .with(Box::new(Json::new(dir.join("report.json"), label)));
    let result = run_suite(
        Arc::new(executor),
        cases,
        &[],
        &RunOptions::default(),
        &mut reporters as &mut dyn Reporter,
    )
    .await;
    assert!(result.report_error.is_none(), "{:?}", result.report_error);
    result.outcomes
}

/// A hostile target's HTML login page (with a script and an image whose
/// onerror sets a global) as the answer to GetEvents, reported as HTML.
async fn hostile_page(dir: &Path) {
    let server = ews_server::start(ServerConfig::default())
        .await
        .expect("the reference server starts");
    let proxy = hostile::Hostile::start(
        hostile::Behaviour::HtmlPage,
        hostile::Scope::Op("GetEvents"),
        Some(server.url()),
    )
    .await;
    let config = TargetConfig::builder(&proxy.url)
        .user(
            "alice@example.com",
            Auth::Basic {
                username: "alice@example.com".into(),
                password: "alice-Secret-1".into(),
            },
        )
        .build()
        .expect("target");
    let executor = Executor::new(Arc::new(config)).expect("executor");
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let loader = Loader::new(&ops, &checks);
    let cases_dir = root().join("cases");
    let case = loader
        .load_file(
            &cases_dir,
            &cases_dir.join("getevents/created-item-event.toml"),
        )
        .expect("loads");
    let mut html = Html::new(dir, "hostile");
    let result = run_suite(
        Arc::new(executor),
        vec![case],
        &[],
        &RunOptions::default(),
        &mut html as &mut dyn Reporter,
    )
    .await;
    assert!(result.report_error.is_none());
}

// ------------------------------------------------------------- the browser

struct Driver {
    process: Child,
    client: Client,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn start_driver() -> Driver {
    let port = free_port();
    let process = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().expect("a browser profile folder");
    let caps: Capabilities = serde_json::from_value(json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            // As root in a container, and with no network beyond loopback:
            // every background connection Chromium would try is switched off.
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        },
        "goog:loggingPrefs": { "browser": "ALL" }
    }))
    .expect("capabilities");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => break c,
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no WebDriver session in 30 s: {e}"),
        }
    };
    Driver {
        process,
        client,
        _profile: profile,
    }
}

/// ChromeDriver's browser log (console messages, CSP refusals, script errors).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &Url, session: Option<&str>) -> Result<Url, url_error::Error> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _url: &Url) -> (Method, Option<String>) {
        (Method::POST, Some(r#"{"type":"browser"}"#.to_string()))
    }
}

/// `url`'s error type, named through reqwest's re-export.
mod url_error {
    pub type Error = <reqwest::Url as std::str::FromStr>::Err;
}

/// The browser log entries of level SEVERE (errors) since the last call.
async fn console_errors(c: &Client) -> Vec<String> {
    let log = c.issue_cmd(BrowserLog).await.expect("the browser log");
    log.as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Clicks the element `css` selects (scrolling it into view).
async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no element {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
}

async fn eval(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.expect("the script runs")
}

async fn visible_rows(c: &Client, table: &str) -> Vec<String> {
    let v = eval(
        c,
        &format!(
            "return [...document.querySelectorAll('#{table} tbody tr')].filter(r => !r.hidden && r.offsetParent !== null).map(r => r.getAttribute('data-verdict'));"
        ),
    )
    .await;
    serde_json::from_value(v).expect("a list of verdicts")
}

async fn screenshot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("EWS_BROWSER_SHOTS") {
        let png = c.screenshot().await.expect("a screenshot");
        std::fs::create_dir_all(&dir).expect("shots folder");
        std::fs::write(Path::new(&dir).join(name), png).expect("write the screenshot");
    }
}

fn file_url(path: &Path) -> String {
    Url::from_file_path(path)
        .expect("an absolute path")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_work_in_a_real_browser() {
    if browser().is_none() {
        return;
    }
    let work = tempfile::tempdir().expect("temp");
    let faulty = work.path().join("faulty");
    let clean = work.path().join("clean");
    let outcomes = run_into(
        &faulty,
        &[Fault::CrossMailboxLeak, Fault::StatusEventTimestamp],
    )
    .await;
    run_into(&clean, &[]).await;
    let failing: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.verdict.label() == "fail")
        .map(|o| o.id.as_str())
        .collect();
    for id in [
        "getevents/other-mailbox-inbox",
        "streaming/other-mailbox-inbox",
        "getevents/idle-status-event",
    ] {
        assert!(failing.contains(&id), "{id} should fail: {failing:?}");
    }
    let comparison = Comparison::load(&[faulty.join("report.json"), clean.join("report.json")])
        .expect("the reports compare");
    let compare_page = work.path().join("compare.html");
    std::fs::write(&compare_page, render_comparison(&comparison)).expect("write");
    let hostile_dir = work.path().join("hostile");
    hostile_page(&hostile_dir).await;

    let driver = start_driver().await;
    let c = &driver.client;

    // ---- the run page
    c.goto(&file_url(&Html::page_path(&faulty.join("html"))))
        .await
        .expect("the page loads");
    let errors = console_errors(c).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    screenshot(c, "run-top.png").await;
    let all = visible_rows(c, "cases").await;
    assert_eq!(all.len(), CASES.len(), "every case has a row: {all:?}");
    let shown = eval(c, "return document.getElementById('shown').textContent;").await;
    assert_eq!(shown, format!("{} of {} shown", CASES.len(), CASES.len()));

    // "problems only" leaves exactly the failing cases.
    click(c, "#only-problems").await;
    let problems = visible_rows(c, "cases").await;
    assert_eq!(problems.len(), failing.len(), "{problems:?}");
    assert!(problems.iter().all(|v| v == "fail"), "{problems:?}");
    // Unticking `fail` leaves nothing.
    click(c, "input.verdict-filter[value=fail]").await;
    assert!(visible_rows(c, "cases").await.is_empty());
    // The text filter narrows to matching ids.
    click(c, "#show-all").await;
    c.find(Locator::Css("#search"))
        .await
        .expect("search")
        .send_keys("other-mailbox")
        .await
        .expect("type");
    assert_eq!(visible_rows(c, "cases").await.len(), 3);
    click(c, "#show-all").await;
    assert_eq!(visible_rows(c, "cases").await.len(), CASES.len());

    // A failing case shows its finding, the response lines it names, its timeline.
    let section = c
        .find(Locator::Css("#case-streaming-other-mailbox-inbox"))
        .await
        .expect("a detail section for the failing streaming case");
    section.click().await.expect("scrolls into view");
    let text = section.text().await.expect("text");
    assert!(
        text.contains("the events are not exactly the expected ones"),
        "{text}"
    );
    let timeline = eval(
        c,
        "const s = document.querySelector('#case-streaming-other-mailbox-inbox svg.timeline');
         return s ? [s.querySelectorAll('circle').length, s.querySelectorAll('circle.bad').length,
                     s.querySelectorAll('line.deadline').length, s.getBoundingClientRect().width] : null;",
    )
    .await;
    let [dots, bad, deadlines, width] = serde_json::from_value::<[f64; 4]>(timeline.clone())
        .unwrap_or_else(|_| panic!("a timeline: {timeline}"));
    assert!(
        dots >= 3.0 && bad >= 1.0 && deadlines >= 1.0 && width > 100.0,
        "{timeline}"
    );
    screenshot(c, "run-streaming-case.png").await;
    // The golden snapshot's diff is coloured, and the offending lines marked.
    let golden = eval(
        c,
        "const s = document.querySelector('#case-getevents-idle-status-event');
         return [s.querySelectorAll('pre.diff .add, pre.diff .del').length, s.querySelectorAll('pre.response .hl').length];",
    )
    .await;
    let [changed, marked] = serde_json::from_value::<[u64; 2]>(golden.clone()).expect("counts");
    assert!(changed >= 1 && marked >= 1, "{golden}");
    click(c, "#case-getevents-idle-status-event").await;
    screenshot(c, "run-golden-case.png").await;
    let errors = console_errors(c).await;
    assert!(errors.is_empty(), "console errors after use: {errors:?}");

    // ---- the comparison page
    c.goto(&file_url(&compare_page)).await.expect("loads");
    assert!(console_errors(c).await.is_empty());
    assert_eq!(visible_rows(c, "matrix").await.len(), comparison.rows.len());
    click(c, "#only-problems").await;
    let differing = visible_rows(c, "matrix").await;
    assert_eq!(differing.len(), comparison.differences());
    assert!(differing.len() >= 3 && differing.iter().all(|v| v == "differs"));
    screenshot(c, "compare.png").await;

    // ---- a hostile target's markup is text
    c.goto(&file_url(&Html::page_path(&hostile_dir)))
        .await
        .expect("loads");
    assert!(console_errors(c).await.is_empty());
    let ran = eval(
        c,
        "return [typeof window.hostile, document.querySelectorAll('img, form').length, document.body.textContent.includes('window.hostile=1')];",
    )
    .await;
    assert_eq!(
        ran,
        json!(["undefined", 0, true]),
        "the target's markup ran or vanished"
    );

    let _ = driver.client.clone().close().await;
}
