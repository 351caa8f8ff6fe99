//! The suite's mail cases against a target whose transport delivers late:
//! a small canned EWS responder on 127.0.0.1:0 that puts a sent message
//! (and its Created, NewMail and Inbox Modified events) into the Inbox a
//! set time after CreateItem has answered, and answers FindItem.
//!
//! The cases wait for their own delivery (AwaitDelivery) and their pull
//! steps poll until the expected events arrive, so they pass; a delivery
//! later than the deadline fails with what did arrive; and against a
//! target that delivers at once nothing is polled twice.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use ews_conformance::check::{CheckRegistry, Severity};
use ews_conformance::client::auth::Auth;
use ews_conformance::suite::operation::OpRegistry;
use ews_conformance::suite::{Executor, Loader, Outcome, TargetConfig, Verdict};
use ews_proto::ews::envelope::{EnvelopeStyle, ServerVersionInfo, open, response};
use ews_proto::ews::{
    Event, EventKind, GetEventsResponse, Id, Notification, ObjectId, ResponseMessage,
    SubscribeResponse, UnsubscribeResponse, render_response,
};
use ews_proto::xml::{ElementExt, XmlWriter, ns};

const USER: &str = "alice@example.test";
const INBOX: &str = "INBOX-ID";
const ROOT: &str = "ROOT-ID";

#[derive(Default)]
struct Mailbox {
    next: u64,
    /// A watermark `W<n>` is a cursor after the first n events.
    log: Vec<Event>,
    /// Inbox items: (id, subject).
    inbox: Vec<(String, String)>,
    /// Subscription id → the event types it asked for.
    subscriptions: HashMap<String, Vec<String>>,
    /// Requests per operation name.
    calls: HashMap<String, usize>,
}

#[derive(Clone)]
struct Canned {
    mailbox: Arc<Mutex<Mailbox>>,
    delay: Duration,
}

fn soap(body: impl FnOnce(&mut XmlWriter)) -> Response {
    let text = response(EnvelopeStyle::Prefixed, &ServerVersionInfo::default(), body);
    ([("content-type", "text/xml; charset=utf-8")], text).into_response()
}

fn event(kind: EventKind, wm: usize, object: ObjectId, parent: &str) -> Event {
    let mut ev = Event::status(Some(format!("W{wm}")));
    ev.kind = kind;
    ev.timestamp = Some("2026-01-01T00:00:00Z".into());
    ev.object = Some(object);
    ev.parent_folder_id = Some(Id::new(parent));
    ev
}

/// The message arrives: it is in the Inbox, and its events are in the log.
fn deliver(mb: &mut Mailbox, subject: String) {
    mb.next += 1;
    let item = format!("MAIL{}", mb.next);
    mb.inbox.push((item.clone(), subject));
    let n = mb.log.len();
    mb.log.push(event(
        EventKind::Created,
        n + 1,
        ObjectId::Item(Id::new(&item)),
        INBOX,
    ));
    mb.log.push(event(
        EventKind::NewMail,
        n + 2,
        ObjectId::Item(Id::new(&item)),
        INBOX,
    ));
    let mut modified = event(
        EventKind::Modified,
        n + 3,
        ObjectId::Folder(Id::new(INBOX)),
        ROOT,
    );
    modified.unread_count = Some(mb.inbox.len() as i64);
    mb.log.push(modified);
}

async fn ews(State(canned): State<Canned>, body: String) -> Response {
    let Ok(doc) = roxmltree::Document::parse(&body) else {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    };
    let Ok(opened) = open(&doc) else {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    };
    let op = opened.payload;
    let local = op.tag_name().name().to_string();
    let text = |local: &str| -> String {
        op.descendants()
            .find(|n| n.is(ns::MESSAGES, local))
            .map(|n| n.text_trimmed())
            .unwrap_or_default()
    };
    let mut mb = canned.mailbox.lock().expect("mailbox lock");
    *mb.calls.entry(local.clone()).or_default() += 1;
    mb.next += 1;
    let n = mb.next;
    let ok = ResponseMessage::success;
    match local.as_str() {
        "GetFolder" => soap(|w| {
            render_response(
                w,
                "GetFolderResponse",
                "GetFolderResponseMessage",
                &ok(),
                |w| {
                    w.start("m:Folders", &[]).start("t:Folder", &[]);
                    w.empty("t:FolderId", &[("Id", INBOX), ("ChangeKey", "ck")]);
                    w.leaf("t:DisplayName", "Inbox");
                    w.end("t:Folder").end("m:Folders");
                },
            )
        }),
        "Subscribe" => {
            let id = format!("S{n}");
            let kinds = op
                .descendants()
                .filter(|n| n.is(ns::TYPES, "EventType"))
                .map(|n| n.text_trimmed())
                .collect();
            mb.subscriptions.insert(id.clone(), kinds);
            let wm = format!("W{}", mb.log.len());
            soap(|w| {
                SubscribeResponse {
                    message: ok(),
                    subscription_id: Some(id),
                    watermark: Some(wm),
                }
                .render(w)
            })
        }
        "Unsubscribe" => {
            mb.subscriptions.remove(&text("SubscriptionId"));
            soap(|w| UnsubscribeResponse { message: ok() }.render(w))
        }
        "CreateItem" => {
            let subject = op
                .descendants()
                .find(|n| n.is(ns::TYPES, "Subject"))
                .map(|n| n.text_trimmed())
                .unwrap_or_default();
            let state = canned.mailbox.clone();
            let delay = canned.delay;
            if delay.is_zero() {
                deliver(&mut mb, subject);
            } else {
                // The transport delivers later.
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    deliver(&mut state.lock().expect("mailbox lock"), subject);
                });
            }
            soap(|w| {
                render_response(
                    w,
                    "CreateItemResponse",
                    "CreateItemResponseMessage",
                    &ok(),
                    |w| {
                        w.empty("m:Items", &[]);
                    },
                )
            })
        }
        "FindItem" => {
            let wanted = op
                .descendants()
                .find(|n| n.is(ns::TYPES, "Constant"))
                .and_then(|n| n.attribute("Value"))
                .unwrap_or_default()
                .to_string();
            let found: Vec<(String, String)> = mb
                .inbox
                .iter()
                .filter(|(_, s)| s.contains(&wanted))
                .cloned()
                .collect();
            soap(|w| {
                render_response(
                    w,
                    "FindItemResponse",
                    "FindItemResponseMessage",
                    &ok(),
                    |w| {
                        let total = found.len().to_string();
                        w.start(
                            "m:RootFolder",
                            &[
                                ("TotalItemsInView", total.as_str()),
                                ("IncludesLastItemInRange", "true"),
                            ],
                        );
                        w.start("t:Items", &[]);
                        for (id, subject) in &found {
                            w.start("t:Message", &[]);
                            w.empty("t:ItemId", &[("Id", id), ("ChangeKey", "ck")]);
                            w.leaf("t:Subject", subject);
                            w.end("t:Message");
                        }
                        w.end("t:Items").end("m:RootFolder");
                    },
                )
            })
        }
        "DeleteItem" => {
            let ids: Vec<String> = op
                .descendants()
                .filter(|n| n.is(ns::TYPES, "ItemId"))
                .filter_map(|n| n.attribute("Id").map(str::to_string))
                .collect();
            mb.inbox.retain(|(id, _)| !ids.contains(id));
            soap(|w| {
                render_response(
                    w,
                    "DeleteItemResponse",
                    "DeleteItemResponseMessage",
                    &ok(),
                    |_| {},
                )
            })
        }
        "GetEvents" => {
            let id = text("SubscriptionId");
            let wm = text("Watermark");
            let start = wm
                .strip_prefix('W')
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
            let kinds = mb.subscriptions.get(&id).cloned().unwrap_or_default();
            let mut events: Vec<Event> = mb
                .log
                .iter()
                .skip(start)
                .filter(|e| kinds.iter().any(|k| k == e.kind.element_name()))
                .cloned()
                .collect();
            if events.is_empty() {
                events.push(Event::status(Some(wm.clone())));
            }
            soap(|w| {
                GetEventsResponse {
                    message: ok(),
                    notification: Some(Notification {
                        subscription_id: id,
                        previous_watermark: Some(wm),
                        more_events: Some(false),
                        events,
                    }),
                }
                .render(w)
            })
        }
        other => panic!("the canned target has no {other}"),
    }
}

async fn start(delay: Duration) -> (String, Arc<Mutex<Mailbox>>) {
    let mailbox = Arc::new(Mutex::new(Mailbox::default()));
    let router = Router::new()
        .route("/EWS/Exchange.asmx", post(ews))
        .with_state(Canned {
            mailbox: mailbox.clone(),
            delay,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}/EWS/Exchange.asmx"), mailbox)
}

/// Runs the suite's case `id` against the canned target; the protocol minute is `minute`.
async fn run(endpoint: &str, id: &str, minute: Duration) -> Outcome {
    let target = TargetConfig::builder(endpoint)
        .user(
            USER,
            Auth::Basic {
                username: USER.into(),
                password: "pw".into(),
            },
        )
        .protocol_minute(minute)
        .request_timeout(Duration::from_secs(10))
        .build()
        .expect("valid target");
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    let case = Loader::new(&ops, &checks)
        .load_file(&root, &root.join(format!("{id}.toml")))
        .expect("the case loads");
    let executor = Executor::new(Arc::new(target)).expect("executor");
    executor.run_case(&case).await
}

fn failures(o: &Outcome) -> Vec<String> {
    o.failures().map(|f| f.message.clone()).collect()
}

fn calls(mb: &Arc<Mutex<Mailbox>>, op: &str) -> usize {
    mb.lock()
        .expect("mailbox lock")
        .calls
        .get(op)
        .copied()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_cases_pass_when_delivery_comes_a_second_after_create_item() {
    for id in ["getevents/new-mail-delivery", "seeds/002-getevents"] {
        let (endpoint, mb) = start(Duration::from_secs(1)).await;
        let o = run(&endpoint, id, Duration::from_secs(2)).await;
        assert_eq!(o.verdict, Verdict::Pass, "{id}: {:#?}", failures(&o));
        assert!(calls(&mb, "FindItem") > 1, "{id}: the delivery was awaited");
        // Everything the case sent was delivered and removed: nothing spills over.
        assert!(mb.lock().expect("lock").inbox.is_empty(), "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_step_polls_until_the_expected_events_arrive_and_judges_them_all() {
    // No AwaitDelivery here: the pull step itself must wait.
    let case = r#"title = "poll for late mail"
requirements = ["R30"]
isolate = false

[[step]]
name = "subscribe"
op = "Subscribe"
with = { folders = ["inbox"], event_types = ["NewMailEvent", "CreatedEvent", "ModifiedEvent"] }
capture = { sub = "//m:SubscriptionId", wm = "//m:SubscribeResponseMessage/m:Watermark" }

[[step]]
name = "send"
op = "CreateItem"
with = { disposition = "SendOnly", to = ["${user}"], subject = "late ${unique}" }

[[step]]
name = "poll"
op = "GetEvents"
with = { subscription = "${sub}", watermark = "${wm}" }
expect = { code = "NoError", events = "exact", event = [{ kind = "CreatedEvent" }, { kind = "NewMailEvent" }, { kind = "ModifiedEvent" }] }
capture = { mail = "//t:NewMailEvent/t:ItemId/@Id" }

[[step]]
name = "next poll continues after the events"
op = "GetEvents"
with = { subscription = "${sub}", watermark = "${poll.watermark}" }
expect = { events = "exact", event = [{ kind = "StatusEvent" }] }
capture = { idle = "//t:StatusEvent/t:Watermark" }

[[step]]
name = "send again"
op = "CreateItem"
with = { disposition = "SendOnly", to = ["${user}"], subject = "later ${unique}" }

[[step]]
name = "drain"
op = "DrainEvents"
with = { subscription = "${sub}", watermark = "${idle}" }
expect = { code = "NoError", events = "exact", event = [{ kind = "CreatedEvent" }, { kind = "NewMailEvent" }, { kind = "ModifiedEvent" }] }
"#;
    let dir = std::env::temp_dir().join(format!("ews-delivery-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("t")).expect("temp dir");
    std::fs::write(dir.join("t/late.toml"), case).expect("write case");
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let case = Loader::new(&ops, &checks)
        .load_file(&dir, &dir.join("t/late.toml"))
        .expect("the case loads");
    let _ = std::fs::remove_dir_all(&dir);

    let (endpoint, mb) = start(Duration::from_millis(700)).await;
    let target = TargetConfig::builder(&endpoint)
        .user(
            USER,
            Auth::Basic {
                username: USER.into(),
                password: "pw".into(),
            },
        )
        .protocol_minute(Duration::from_secs(2))
        .build()
        .expect("valid target");
    let o = Executor::new(Arc::new(target))
        .expect("executor")
        .run_case(&case)
        .await;
    assert_eq!(o.verdict, Verdict::Pass, "{:#?}", failures(&o));
    let polls = o.exchanges.iter().filter(|e| e.step == "poll").count();
    assert!(
        polls > 1,
        "the step polled until delivery ({polls} call(s))"
    );
    let drains = o.exchanges.iter().filter(|e| e.step == "drain").count();
    assert!(
        drains > 1,
        "the drain polled until delivery ({drains} call(s))"
    );
    // The earlier "nothing yet" answers were StatusEvents; exactness is
    // judged on the events that came, all in the last answer here.
    assert_eq!(calls(&mb, "GetEvents"), polls + 1 + drains);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_later_than_the_deadline_fails_with_what_arrived() {
    // Protocol minute 1 s: the wait is the minimum, 3 s; delivery takes 6 s.
    let (endpoint, mb) = start(Duration::from_secs(6)).await;
    let started = std::time::Instant::now();
    let o = run(
        &endpoint,
        "getevents/new-mail-delivery",
        Duration::from_secs(1),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(6), "bounded wait");
    assert_eq!(o.verdict, Verdict::Fail);
    let fails = failures(&o);
    assert!(
        fails.iter().any(|m| m
            .contains("0 of 1 message(s) with a subject containing \"delivered ")
            && m.contains("arrived in folder `inbox` within 3.00 s")),
        "{fails:#?}"
    );
    // Steps that need the delivered message's id are skipped with the reason;
    // the independent ones (unsubscribe) still run.
    let skipped: Vec<&str> = o
        .findings
        .iter()
        .filter(|f| f.check == "skipped-step" && f.severity == Severity::Note)
        .map(|f| f.step.as_str())
        .collect();
    assert_eq!(
        skipped,
        ["drain the Inbox events", "remove the delivered message"]
    );
    assert!(o.exchanges.iter().any(|e| e.step == "unsubscribe"));
    assert!(calls(&mb, "FindItem") > 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_delivery_sends_each_poll_once() {
    let (endpoint, mb) = start(Duration::ZERO).await;
    for id in ["getevents/new-mail-delivery", "seeds/002-getevents"] {
        let o = run(&endpoint, id, Duration::from_secs(2)).await;
        assert_eq!(o.verdict, Verdict::Pass, "{id}: {:#?}", failures(&o));
    }
    assert_eq!(
        calls(&mb, "FindItem"),
        3,
        "one FindItem per awaited delivery"
    );
    assert_eq!(calls(&mb, "GetEvents"), 2, "one GetEvents per polling step");
}
