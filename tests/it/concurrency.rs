//! Many clients at once against one reference server: pull clients creating
//! items and polling, streaming clients reading their streams, push
//! subscriptions delivering to the harness's listener, and one all-folders
//! subscription per user watching everything. Every subscription must see
//! each of its items' CreatedEvents exactly once (ids are counted), and
//! everything is bounded by deadlines, so a deadlock fails instead of hanging.

use crate::support::server as server_support;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ews_conformance::client::push::PushListener;
use ews_conformance::client::stream::{StreamReader, parse_envelope};
use ews_proto::ews::{Event, EventKind, Notification, ObjectId};
use ews_server::RunningServer;

use server_support::{Client, Stream, folder_id, listed, server};

const PULL_CLIENTS: usize = 12;
const STREAM_CLIENTS: usize = 6;
const PUSH_CLIENTS: usize = 4;
const BATCHES: usize = 8;
const PER_BATCH: usize = 4;
/// Everything must be over well before this.
const DEADLINE: Duration = Duration::from_secs(60);

/// Item ids of the CreatedEvents in some notifications, with repetitions.
fn created_items<'a>(notifications: impl IntoIterator<Item = &'a Notification>) -> Vec<String> {
    notifications
        .into_iter()
        .flat_map(|n| n.events.iter())
        .filter(|e: &&Event| e.kind == EventKind::Created)
        .filter_map(|e| match &e.object {
            Some(ObjectId::Item(id)) => Some(id.id.clone()),
            _ => None,
        })
        .collect()
}

/// Each id exactly once, and exactly the expected ones.
fn assert_exactly_once(what: &str, seen: &[String], expected: &BTreeSet<String>) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in seen {
        *counts.entry(id).or_default() += 1;
    }
    let dup: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dup.is_empty(), "{what}: duplicated events {dup:?}");
    let got: BTreeSet<String> = seen.iter().cloned().collect();
    let lost: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(expected).collect();
    assert!(lost.is_empty(), "{what}: lost events for {lost:?}");
    assert!(
        extra.is_empty(),
        "{what}: events for items it never made {extra:?}"
    );
}

fn user(server: &RunningServer, i: usize) -> Client {
    if i.is_multiple_of(2) {
        Client::alice(server)
    } else {
        Client::bob(server)
    }
}

/// One GetEvents: the created items it delivers go to `seen`, and `wm`
/// moves to its last watermark. Whether the server said MoreEvents.
async fn poll(c: &Client, sub: &str, wm: &mut String, seen: &mut Vec<String>) -> bool {
    let r = c.get_events(sub, wm).await;
    assert!(r.message.is_success(), "{r:?}");
    let n = r.notification.expect("a notification");
    seen.extend(created_items([&n]));
    if let Some(last) = n.events.last().and_then(|e| e.watermark.clone()) {
        *wm = last;
    }
    n.more_events == Some(true)
}

/// Polls until MoreEvents is false; a queue that never empties fails.
async fn drain(c: &Client, sub: &str, wm: &mut String, seen: &mut Vec<String>) {
    for _ in 0..100 {
        if !poll(c, sub, wm, seen).await {
            return;
        }
    }
    panic!("subscription {sub} still had MoreEvents after 100 polls");
}

/// Items created, per user (0 alice, 1 bob).
type Made = Arc<Mutex<[BTreeSet<String>; 2]>>;

async fn pull_client(c: Client, who: usize, n: usize, made: Made) {
    let folder = c
        .create_folder(
            &server_support::distinguished("msgfolderroot"),
            &format!("pull {n}"),
        )
        .await;
    let (sub, mut wm) = c.pull(listed(&[&folder]), &[EventKind::Created], 10).await;
    let mut mine = BTreeSet::new();
    let mut seen = Vec::new();
    for _ in 0..BATCHES {
        let ids = c.save_messages(&folder_id(&folder), PER_BATCH).await;
        mine.extend(ids.iter().cloned());
        made.lock().expect("lock")[who].extend(ids);
        // Poll once between batches: the queue is read while it grows.
        poll(&c, &sub, &mut wm, &mut seen).await;
    }
    drain(&c, &sub, &mut wm, &mut seen).await;
    assert_exactly_once(&format!("pull client {n}"), &seen, &mine);
    assert!(c.unsubscribe(&sub).await.message.is_success());
}

async fn stream_client(c: Client, who: usize, n: usize, made: Made) {
    let folder = c
        .create_folder(
            &server_support::distinguished("msgfolderroot"),
            &format!("stream {n}"),
        )
        .await;
    let sub = c
        .streaming(&format!(
            "<t:FolderIds>{}</t:FolderIds>",
            folder_id(&folder)
        ))
        .await;
    let body = Stream::open(&c, &[&sub], 2).await.into_body();
    let mut reader = StreamReader::from_body(body);
    let mut mine = BTreeSet::new();
    for _ in 0..BATCHES {
        let ids = c.save_messages(&folder_id(&folder), PER_BATCH).await;
        mine.extend(ids.iter().cloned());
        made.lock().expect("lock")[who].extend(ids);
    }
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while seen.len() < mine.len() {
        let env = reader
            .next_envelope(end)
            .await
            .unwrap_or_else(|e| panic!("stream client {n}: {e} after {seen:?}"))
            .unwrap_or_else(|| panic!("stream client {n}: the stream ended early"));
        let parsed = parse_envelope(&env.text).expect("a stream envelope");
        seen.extend(created_items(&parsed.notifications));
    }
    // Anything duplicated right behind the last event shows up here.
    let linger = tokio::time::Instant::now() + Duration::from_millis(200);
    while let Ok(Some(env)) = reader.next_envelope(linger).await {
        if let Ok(parsed) = parse_envelope(&env.text) {
            seen.extend(created_items(&parsed.notifications));
        }
    }
    assert_exactly_once(&format!("stream client {n}"), &seen, &mine);
}

async fn push_client(c: Client, who: usize, n: usize, made: Made, listener: Arc<PushListener>) {
    let folder = c
        .create_folder(
            &server_support::distinguished("msgfolderroot"),
            &format!("push {n}"),
        )
        .await;
    let a = c
        .op(&format!(
            "<m:Subscribe><m:PushSubscriptionRequest><t:FolderIds>{}</t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes>\
             <t:StatusFrequency>1</t:StatusFrequency><t:URL>{}</t:URL></m:PushSubscriptionRequest></m:Subscribe>",
            folder_id(&folder),
            listener.url()
        ))
        .await;
    assert_eq!(a.code(), "NoError", "{}", a.body);
    let sub = a.one("//m:SubscriptionId");
    let mut mine = BTreeSet::new();
    for _ in 0..BATCHES {
        let ids = c.save_messages(&folder_id(&folder), PER_BATCH).await;
        mine.extend(ids.iter().cloned());
        made.lock().expect("lock")[who].extend(ids);
    }
    let mine_of = |listener: &PushListener| -> Vec<String> {
        let received = listener.received();
        created_items(
            received
                .iter()
                .filter(|p| p.subscription_id.as_deref() == Some(sub.as_str()))
                .filter_map(|p| p.parsed.as_ref().ok())
                .filter_map(|s| s.notification.as_ref()),
        )
    };
    let end = Instant::now() + Duration::from_secs(30);
    while mine_of(&listener).len() < mine.len() && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_exactly_once(&format!("push client {n}"), &mine_of(&listener), &mine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_clients_at_once_lose_and_duplicate_nothing() {
    let started = Instant::now();
    let server = server().await;
    let listener = Arc::new(
        PushListener::start("127.0.0.1:0".parse().expect("address"), None)
            .await
            .expect("the push listener starts"),
    );
    // One all-folders watcher per user, subscribed before anything happens.
    let mut watchers = Vec::new();
    for who in 0..2 {
        let c = user(&server, who);
        let a = c
            .op("<m:Subscribe><m:PullSubscriptionRequest SubscribeToAllFolders=\"true\"><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes><t:Timeout>10</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>")
            .await;
        assert_eq!(a.code(), "NoError", "{}", a.body);
        watchers.push((c, a.one("//m:SubscriptionId"), a.one("//m:Watermark")));
    }

    let made: Made = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..PULL_CLIENTS {
        tasks.spawn(pull_client(user(&server, n), n % 2, n, made.clone()));
    }
    for n in 0..STREAM_CLIENTS {
        tasks.spawn(stream_client(user(&server, n), n % 2, n, made.clone()));
    }
    for n in 0..PUSH_CLIENTS {
        tasks.spawn(push_client(
            user(&server, n),
            n % 2,
            n,
            made.clone(),
            listener.clone(),
        ));
    }
    let all = async {
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    };
    tokio::time::timeout(DEADLINE, all)
        .await
        .expect("every client finished before the deadline (no deadlock)");

    // The all-folders watchers saw every item of their user exactly once.
    let made = made.lock().expect("lock").clone();
    let total = (PULL_CLIENTS + STREAM_CLIENTS + PUSH_CLIENTS) * BATCHES * PER_BATCH;
    assert_eq!(made[0].len() + made[1].len(), total);
    for (who, (c, sub, mut wm)) in watchers.into_iter().enumerate() {
        let mut seen = Vec::new();
        drain(&c, &sub, &mut wm, &mut seen).await;
        assert_exactly_once(
            &format!("all-folders watcher of user {who}"),
            &seen,
            &made[who],
        );
    }
    assert!(started.elapsed() < DEADLINE, "took {:?}", started.elapsed());
    if let Ok(l) = Arc::try_unwrap(listener) {
        l.shutdown().await;
    }
    server.shutdown().await;
}
