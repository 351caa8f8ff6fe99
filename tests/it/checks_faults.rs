//! The judging checks against real runs: the embedded reference server
//! behind a small rewriting proxy on 127.0.0.1:0. A proxy that breaks one
//! protocol rule in the answers makes a real case fail for that reason,
//! through the check that owns the rule (`watermark`, `batching`,
//! `structure`); a proxy that only renames namespace prefixes changes no
//! verdict at all, goldens included (judge meaning, not bytes). The proxy
//! answers whole bodies and offers no push listener, so the streaming and
//! push cases are left out of the whole-suite run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use regex::Regex;

use ews_conformance::case::Capability;
use ews_conformance::check::golden::{Golden, GoldenMode};
use ews_conformance::check::{CheckRegistry, Severity};
use ews_conformance::settings::Settings;
use ews_conformance::suite::operation::OpRegistry;
use ews_conformance::suite::target::start_embedded;
use ews_conformance::suite::{Executor, Loader, Outcome, Target, Verdict};

type Rewrite = Arc<dyn Fn(&str) -> String + Send + Sync>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A proxy in front of `upstream` that passes requests through and rewrites answers.
async fn proxy(upstream: String, rewrite: Rewrite) -> String {
    let client = reqwest::Client::new();
    let app = Router::new().fallback(move |headers: HeaderMap, body: String| {
        let client = client.clone();
        let upstream = upstream.clone();
        let rewrite = rewrite.clone();
        async move {
            let mut req = client.post(&upstream).body(body);
            for name in ["authorization", "content-type", "x-anchormailbox"] {
                if let Some(v) = headers.get(name) {
                    req = req.header(name, v.clone());
                }
            }
            let Ok(resp) = req.send().await else {
                return StatusCode::BAD_GATEWAY.into_response();
            };
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let out: Response = (
                status,
                [("content-type", "text/xml; charset=utf-8")],
                rewrite(&text),
            )
                .into_response();
            out
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the proxy binds");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/EWS/Exchange.asmx")
}

/// A copy of the reference goldens in a fresh folder (a failing golden
/// writes `.snap.new` files; they must not land in the repository).
fn golden_copy(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ews-conformance-goldens-{tag}-{}-{:x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let to = dir.join("reference");
    std::fs::create_dir_all(&to).expect("temp golden folder");
    for entry in std::fs::read_dir(root().join("golden/reference")).expect("goldens exist") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "snap") {
            std::fs::copy(&p, to.join(p.file_name().expect("a name"))).expect("copy");
        }
    }
    dir
}

/// Runs the named cases (ids under cases/, or every case when empty)
/// through a proxy applying `rewrite`.
async fn run(ids: &[&str], rewrite: Rewrite, tag: &str) -> Vec<Outcome> {
    let target = start_embedded(&Settings::default())
        .await
        .expect("embedded target");
    let mut config = target.config().clone();
    config.endpoint = proxy(config.endpoint.clone(), rewrite).await;
    let goldens = golden_copy(tag);
    let mut checks = CheckRegistry::builtin();
    checks.register(Arc::new(Golden::new(
        goldens.clone(),
        GoldenMode::Compare,
        Some("reference".into()),
    )));
    let executor = Executor::new(Arc::new(config))
        .expect("an executor")
        .with_checks(checks);
    let ops = OpRegistry::builtin();
    let loader = Loader::new(&ops, executor.checks());
    let cases_dir = root().join("cases");
    let cases: Vec<ews_conformance::case::Case> = if ids.is_empty() {
        // The proxy answers whole bodies and has no push listener: every case
        // but the streaming and push ones.
        let suite = loader.load_dir(&cases_dir);
        assert!(suite.errors.is_empty(), "{:?}", suite.errors);
        suite
            .cases
            .into_iter()
            .filter(|c| {
                !c.needs
                    .iter()
                    .any(|n| matches!(n, Capability::Streaming | Capability::Push))
            })
            .collect()
    } else {
        ids.iter()
            .map(|id| {
                loader
                    .load_file(&cases_dir, &cases_dir.join(format!("{id}.toml")))
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect()
    };
    let mut out = Vec::new();
    for case in &cases {
        out.push(executor.run_case(case).await);
    }
    let _ = std::fs::remove_dir_all(&goldens);
    target.shutdown().await;
    out
}

fn failing<'a>(o: &'a Outcome, check: &str) -> Vec<&'a str> {
    o.all_findings()
        .filter(|f| f.severity == Severity::Fail && f.check == check)
        .map(|f| f.message.as_str())
        .collect()
}

fn assert_caught(o: &Outcome, check: &str, words: &str) {
    assert_eq!(
        o.verdict,
        Verdict::Fail,
        "{} should fail: {}",
        o.id,
        ews_conformance::report::explain(o)
    );
    let found = failing(o, check);
    assert!(
        found.iter().any(|m| m.contains(words)),
        "{}: no `{check}` failure saying {words:?}; failures: {:#?}",
        o.id,
        o.failures()
            .map(|f| (&f.check, &f.message))
            .collect::<Vec<_>>()
    );
}

/// Applies `f` only to GetEvents answers.
fn on_get_events(f: impl Fn(&str) -> String + Send + Sync + 'static) -> Rewrite {
    Arc::new(move |body: &str| {
        if body.contains("GetEventsResponse") {
            f(body)
        } else {
            body.to_string()
        }
    })
}

fn created_events() -> Regex {
    Regex::new(r"(?s)<t:CreatedEvent>.*?</t:CreatedEvent>").expect("regex")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_event_is_caught_as_lost() {
    let done = Arc::new(AtomicUsize::new(0));
    let rewrite = on_get_events(move |body| {
        let events: Vec<_> = created_events().find_iter(body).collect();
        if events.len() >= 2 && done.fetch_add(1, Ordering::SeqCst) == 0 {
            let m = events[1];
            format!("{}{}", &body[..m.start()], &body[m.end()..])
        } else {
            body.to_string()
        }
    });
    let out = run(&["getevents/batching-120"], rewrite, "drop").await;
    assert_caught(&out[0], "watermark", "never arrived as CreatedEvent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_event_is_caught() {
    let last: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let rewrite = on_get_events(move |body| {
        let events: Vec<_> = created_events().find_iter(body).collect();
        let Some(final_event) = events.last() else {
            return body.to_string();
        };
        let mut last = last.lock().expect("lock");
        let out = match last.take() {
            // Repeat the previous answer's last event at the start of this one.
            Some(previous) => {
                let first = events[0];
                format!(
                    "{}{previous}{}",
                    &body[..first.start()],
                    &body[first.start()..]
                )
            }
            None => body.to_string(),
        };
        *last = Some(final_event.as_str().to_string());
        out
    });
    let out = run(&["getevents/batching-120"], rewrite, "repeat").await;
    assert_caught(&out[0], "watermark", "were delivered again on the chain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_previous_watermark_is_caught() {
    let re = Regex::new(r"<t:PreviousWatermark>[^<]*</t:PreviousWatermark>").expect("regex");
    let rewrite = on_get_events(move |body| {
        re.replace_all(
            body,
            "<t:PreviousWatermark>AAAAbogusAAAA</t:PreviousWatermark>",
        )
        .into_owned()
    });
    let out = run(&["getevents/created-item-event"], rewrite, "prev").await;
    assert_caught(
        &out[0],
        "watermark",
        "PreviousWatermark AAAAbogusAAAA is not the watermark this GetEvents sent",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_events_true_with_nothing_left_is_caught() {
    let rewrite = on_get_events(|body| {
        let has_events = ["CreatedEvent", "DeletedEvent", "ModifiedEvent"]
            .iter()
            .any(|k| body.contains(&format!("<t:{k}>")));
        if has_events {
            body.replace(
                "<t:MoreEvents>false</t:MoreEvents>",
                "<t:MoreEvents>true</t:MoreEvents>",
            )
        } else {
            body.to_string()
        }
    });
    let out = run(&["events/hard-delete"], rewrite, "more").await;
    assert_caught(&out[0], "batching", "said MoreEvents=true for subscription");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structural_faults_are_caught_with_the_grammar_words() {
    let swap = Regex::new(
        r"(<m:ResponseCode>[^<]*</m:ResponseCode>)(\s*)(<m:DescriptiveLinkKey>[^<]*</m:DescriptiveLinkKey>)",
    )
    .expect("regex");
    let rewrite: Rewrite =
        Arc::new(move |body: &str| swap.replace_all(body, "$3$2$1").into_owned());
    let out = run(&["unsubscribe/twice"], rewrite, "order").await;
    assert_caught(
        &out[0],
        "structure",
        "m:UnsubscribeResponseMessage: ResponseCode must come before DescriptiveLinkKey",
    );

    let header = Regex::new(r"<(\w+:)?ServerVersionInfo[^>]*/>").expect("regex");
    let rewrite: Rewrite = Arc::new(move |body: &str| header.replace_all(body, "").into_owned());
    let out = run(&["subscribe/pull-inbox"], rewrite, "header").await;
    assert_caught(
        &out[0],
        "structure",
        "m:SubscribeResponse without t:ServerVersionInfo in the soap:Header (R1)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_prefixes_change_no_verdict_goldens_included() {
    let rules: Vec<(Regex, &str)> = [
        (r"<m:", "<msg:"),
        (r"</m:", "</msg:"),
        (r"xmlns:m=", "xmlns:msg="),
        (r"<t:", "<typ:"),
        (r"</t:", "</typ:"),
        (r"xmlns:t=", "xmlns:typ="),
        (r"<s:", "<env:"),
        (r"</s:", "</env:"),
        (r"xmlns:s=", "xmlns:env="),
    ]
    .into_iter()
    .map(|(p, r)| (Regex::new(p).expect("regex"), r))
    .collect();
    let rewrite: Rewrite = Arc::new(move |body: &str| {
        let mut text = body.to_string();
        for (re, to) in &rules {
            text = re.replace_all(&text, *to).into_owned();
        }
        text
    });
    let out = run(&[], rewrite, "prefix").await;
    let bad: Vec<String> = out
        .iter()
        .filter(|o| !o.verdict.is_ok())
        .map(ews_conformance::report::explain)
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    let golden_steps = out
        .iter()
        .flat_map(|o| o.all_findings())
        .filter(|f| f.check == "golden")
        .count();
    assert_eq!(golden_steps, 0, "goldens compared equal, without notes");
    assert!(out.iter().any(|o| o.verdict == Verdict::Pass));
}
