//! Push subscriptions against the reference server: a tiny listener in the
//! test receives SendNotification POSTs and answers OK, Unsubscribe or
//! nothing useful.

use crate::support::server as server_support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use ews_proto::ews::envelope::{EnvelopeStyle, open, response};
use ews_proto::ews::{EventKind, ResponseCode, SendNotification, SubscriptionStatus};
use server_support::*;
use tokio::time::Instant;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reply {
    Ok,
    Unsubscribe,
    Fail,
}

#[derive(Default)]
struct Seen {
    posts: Vec<(Instant, String, Option<String>)>,
}

struct Listener {
    addr: SocketAddr,
    reply: Arc<Mutex<Reply>>,
    seen: Arc<Mutex<Seen>>,
}

type Shared = (Arc<Mutex<Reply>>, Arc<Mutex<Seen>>);

async fn receive(
    State((reply, seen)): State<Shared>,
    headers: axum::http::HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    seen.lock()
        .expect("test lock")
        .posts
        .push((Instant::now(), body, ct));
    let r = *reply.lock().expect("test lock");
    let status = match r {
        Reply::Ok => SubscriptionStatus::Ok,
        Reply::Unsubscribe => SubscriptionStatus::Unsubscribe,
        Reply::Fail => return (StatusCode::INTERNAL_SERVER_ERROR, "no".into()),
    };
    (
        StatusCode::OK,
        response(EnvelopeStyle::Prefixed, &Default::default(), |w| {
            status.render_result(w)
        }),
    )
}

async fn listener(initial: Reply) -> Listener {
    let reply = Arc::new(Mutex::new(initial));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = Router::new()
        .route("/push", post(receive))
        .with_state((reply.clone(), seen.clone()));
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener binds");
    let addr = tcp.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(tcp, app).await;
    });
    Listener { addr, reply, seen }
}

impl Listener {
    fn url(&self) -> String {
        format!("http://{}/push", self.addr)
    }

    fn count(&self) -> usize {
        self.seen.lock().expect("test lock").posts.len()
    }

    fn post(&self, i: usize) -> (Instant, String, Option<String>) {
        self.seen.lock().expect("test lock").posts[i].clone()
    }

    async fn wait_for(&self, n: usize, within: Duration) {
        let end = Instant::now() + within;
        while self.count() < n {
            assert!(
                Instant::now() < end,
                "expected {n} POSTs, got {}",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn parse(body: &str) -> SendNotification {
    let doc = roxmltree::Document::parse(body).expect("a POST body is XML");
    let opened = open(&doc).expect("a SOAP envelope");
    SendNotification::parse(opened.payload).expect("m:SendNotification")
}

fn push_xml(url: &str, frequency: Option<u32>, watermark: Option<&str>) -> String {
    let freq = frequency
        .map(|f| format!("<t:StatusFrequency>{f}</t:StatusFrequency>"))
        .unwrap_or_default();
    let wm = watermark
        .map(|w| format!("<t:Watermark>{w}</t:Watermark>"))
        .unwrap_or_default();
    format!(
        "<m:Subscribe><m:PushSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id=\"drafts\"/></t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes>{wm}{freq}<t:URL>{url}</t:URL></m:PushSubscriptionRequest></m:Subscribe>"
    )
}

#[tokio::test]
async fn push_delivers_status_then_events_and_stops_on_unsubscribe() {
    let minute = Duration::from_millis(800);
    let s = server_with_minute(minute).await;
    let c = Client::alice(&s);
    let l = listener(Reply::Ok).await;
    let sub = c.op(&push_xml(&l.url(), Some(1), None)).await;
    assert_eq!(sub.code(), "NoError", "{}", sub.body);
    let id = sub.one("//m:SubscriptionId");
    let start_wm = sub.one("//m:Watermark");

    // A StatusEvent right after Subscribe.
    l.wait_for(1, minute).await;
    let (_, body, ct) = l.post(0);
    assert_eq!(ct.as_deref(), Some("text/xml; charset=utf-8"));
    let first = parse(&body);
    assert!(first.message.is_success());
    let n = first.notification.expect("one Notification");
    assert_eq!(n.subscription_id, id);
    assert_eq!(n.events.len(), 1);
    assert_eq!(n.events[0].kind, EventKind::Status);
    assert_eq!(n.previous_watermark.as_deref(), Some(start_wm.as_str()));

    // Events go out at once, with watermarks, chained by PreviousWatermark.
    c.save_messages(&distinguished("drafts"), 2).await;
    l.wait_for(2, minute).await;
    let mut last_wm = start_wm.clone();
    let mut created = 0;
    let mut i = 1;
    while created < 2 {
        l.wait_for(i + 1, minute).await;
        let n = parse(&l.post(i).1).notification.expect("notification");
        if n.events[0].kind != EventKind::Status {
            assert_eq!(
                n.previous_watermark.as_deref(),
                Some(last_wm.as_str()),
                "continuity"
            );
            last_wm = n
                .last_watermark()
                .expect("watermarks on push events")
                .to_string();
            created += n
                .events
                .iter()
                .filter(|e| e.kind == EventKind::Created)
                .count();
        }
        i += 1;
    }

    // Pull operations refuse a push id.
    assert_eq!(
        c.get_events(&id, &start_wm).await.message.code,
        Some(ResponseCode::ErrorInvalidPullSubscriptionId)
    );
    assert_eq!(
        c.unsubscribe(&id).await.message.code,
        Some(ResponseCode::ErrorInvalidPullSubscriptionId)
    );

    // The listener says Unsubscribe on the next status ping; then silence.
    *l.reply.lock().expect("test lock") = Reply::Unsubscribe;
    let before = l.count();
    l.wait_for(before + 1, minute * 2).await;
    tokio::time::sleep(minute * 5 / 2).await;
    assert_eq!(l.count(), before + 1, "no POST after Unsubscribe");
    assert_eq!(
        c.get_events(&id, &start_wm).await.message.code,
        Some(ResponseCode::ErrorSubscriptionNotFound)
    );
}

#[tokio::test]
async fn unanswered_notifications_are_retried_then_dropped() {
    let minute = Duration::from_millis(1000);
    let s = server_with_minute(minute).await;
    let c = Client::alice(&s);
    let l = listener(Reply::Fail).await;
    let sub = c.op(&push_xml(&l.url(), Some(1), None)).await;
    let id = sub.one("//m:SubscriptionId");
    // Attempts at about 0, +30 and +60 protocol seconds; the next (+120) would pass StatusFrequency.
    l.wait_for(3, minute * 3).await;
    tokio::time::sleep(minute * 2).await;
    assert_eq!(l.count(), 3, "three attempts, then the server gives up");
    let t0 = l.post(0).0;
    let gaps: Vec<f32> = (1..3)
        .map(|i| (l.post(i).0 - t0).as_secs_f32() / minute.as_secs_f32())
        .collect();
    assert!(
        (0.3..0.9).contains(&gaps[0]),
        "first retry after ~0.5 minute: {gaps:?}"
    );
    assert!(
        (0.8..1.6).contains(&gaps[1]),
        "second retry after ~1 minute: {gaps:?}"
    );
    assert_eq!(
        c.get_events(&id, "x").await.message.code,
        Some(ResponseCode::ErrorSubscriptionNotFound)
    );
}

#[tokio::test]
async fn a_backlog_goes_out_in_batches_of_fifty() {
    let s = server().await;
    let c = Client::alice(&s);
    let (_, wm) = c.pull(inbox_scope(), &[EventKind::Created], 5).await;
    c.save_messages(&distinguished("drafts"), 120).await;
    let l = listener(Reply::Ok).await;
    // Resuming from an older watermark: the backlog is sent at once.
    let sub = c.op(&push_xml(&l.url(), None, Some(&wm))).await;
    assert_eq!(
        sub.code(),
        "NoError",
        "StatusFrequency may be left out (default 30): {}",
        sub.body
    );
    l.wait_for(3, Duration::from_secs(10)).await;
    let batches: Vec<(usize, Option<bool>)> = (0..3)
        .map(|i| {
            let n = parse(&l.post(i).1).notification.expect("n");
            (n.events.len(), n.more_events)
        })
        .collect();
    assert_eq!(
        batches,
        [(50, Some(true)), (50, Some(true)), (20, Some(false))]
    );
}

#[tokio::test]
async fn push_urls_are_checked() {
    let s = server().await;
    let c = Client::alice(&s);
    let long = format!("http://example.com/{}", "a".repeat(2083));
    for url in [
        "",
        "ftp://example.com/x",
        "http://",
        "not a url",
        long.as_str(),
    ] {
        let a = c.op(&push_xml(url, Some(1), None)).await;
        assert_eq!(a.code(), "ErrorInvalidPushSubscriptionUrl", "{url:?}");
    }
}
