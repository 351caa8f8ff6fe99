//! GetStreamingEvents against the reference server over real HTTP.

use crate::support::server as server_support;

use std::time::Duration;

use ews_proto::ews::ResponseCode;
use ews_server::{ServerConfig, start};
use server_support::*;

fn is_notification(a: &Answer) -> bool {
    !a.all("//t:Notification").is_empty()
}

fn status(a: &Answer) -> String {
    a.one("//m:ConnectionStatus")
}

#[tokio::test]
async fn stream_opens_at_once_delivers_heartbeats_and_closes() {
    let minute = Duration::from_millis(1200);
    let s = server_with_minute(minute).await;
    let c = Client::alice(&s);
    let id = c
        .streaming("<t:FolderIds><t:DistinguishedFolderId Id=\"inbox\"/></t:FolderIds>")
        .await;
    let opened = tokio::time::Instant::now();
    let mut st = Stream::open(&c, &[&id], 1).await;
    let first = st
        .next(Duration::from_secs(5))
        .await
        .expect("a first envelope before any event");
    assert!(
        first
            .body
            .starts_with("<Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\">"),
        "{}",
        first.body
    );
    assert!(
        !first.body.contains('\n'),
        "no newline anywhere, in particular not in a start tag"
    );
    assert_eq!(
        first.one("//m:GetStreamingEventsResponseMessage/@ResponseClass"),
        "Success"
    );
    assert_eq!(status(&first), "OK");
    assert!(!is_notification(&first));

    Client::bob(&s).send(&["alice@example.com"], "hello").await;
    let n = st.until(Duration::from_secs(5), is_notification).await;
    assert_eq!(
        n.all("//t:Notification/t:SubscriptionId"),
        std::slice::from_ref(&id)
    );
    let kinds: Vec<String> = {
        let doc = n.doc();
        let note = doc
            .descendants()
            .find(|d| d.has_tag_name("Notification"))
            .expect("notification");
        note.children()
            .filter(|e| e.is_element())
            .skip(1)
            .map(|e| e.tag_name().name().to_string())
            .collect()
    };
    assert_eq!(kinds, ["CreatedEvent", "NewMailEvent", "ModifiedEvent"]);
    assert!(
        n.all("//t:Watermark").is_empty(),
        "streaming events carry no Watermark"
    );
    assert!(n.all("//t:PreviousWatermark").is_empty() && n.all("//t:MoreEvents").is_empty());

    // Idle: heartbeats (OK, no notifications) about every quarter minute, then Closed.
    let hb = st
        .next(minute)
        .await
        .expect("a heartbeat within a protocol minute");
    assert_eq!(
        (status(&hb), is_notification(&hb)),
        ("OK".to_string(), false)
    );
    let last = st.until(minute * 2, |a| status(a) == "Closed").await;
    assert_eq!(
        last.one("//m:GetStreamingEventsResponseMessage/@ResponseClass"),
        "Success"
    );
    let lived = opened.elapsed();
    assert!(
        lived >= minute.mul_f32(0.9) && lived < minute * 2,
        "closed after {lived:?}"
    );
    assert!(
        st.next(Duration::from_secs(2)).await.is_none(),
        "the body ends after Closed"
    );
    assert!(st.chunks >= 4, "each envelope is its own chunk");
}

#[tokio::test]
async fn bad_ids_are_reported_while_good_ones_deliver() {
    let s = server().await;
    let alice = Client::alice(&s);
    let bob = Client::bob(&s);
    let good = alice.streaming("").await;
    let bobs = bob.streaming("").await;
    let (pull_id, _) = alice.pull(inbox_scope(), ALL_KINDS, 5).await;
    let mut st = Stream::open(&alice, &[&good, "bm9wZQ==", &bobs, &pull_id], 1).await;
    let first = st.next(Duration::from_secs(5)).await.expect("first");
    assert_eq!(
        first.one("//m:GetStreamingEventsResponseMessage/@ResponseClass"),
        "Success"
    );
    let mut reported = Vec::new();
    for _ in 0..3 {
        let e = st
            .next(Duration::from_secs(5))
            .await
            .expect("an error envelope");
        assert_eq!(
            e.one("//m:GetStreamingEventsResponseMessage/@ResponseClass"),
            "Error"
        );
        assert_eq!(
            status(&e),
            "OK",
            "the good subscription keeps the connection open"
        );
        reported.push((e.code(), e.all("//m:ErrorSubscriptionIds/t:SubscriptionId")));
    }
    reported.sort();
    assert_eq!(
        reported,
        [
            (
                "ErrorInvalidSubscription".to_string(),
                vec![pull_id.clone()]
            ),
            (
                "ErrorSubscriptionAccessDenied".to_string(),
                vec![bobs.clone()]
            ),
            (
                "ErrorSubscriptionNotFound".to_string(),
                vec!["bm9wZQ==".to_string()]
            ),
        ]
    );
    alice.save_messages(&distinguished("drafts"), 1).await;
    let n = st.until(Duration::from_secs(5), is_notification).await;
    assert_eq!(n.all("//t:Notification/t:SubscriptionId"), [good]);
}

#[tokio::test]
async fn no_valid_id_closes_at_once() {
    let s = server().await;
    let c = Client::alice(&s);
    let mut st = Stream::open(&c, &["bm9wZQ=="], 1).await;
    let e = st.next(Duration::from_secs(5)).await.expect("one envelope");
    assert_eq!(e.code(), "ErrorInvalidSubscription");
    assert_eq!(status(&e), "Closed");
    assert!(st.next(Duration::from_secs(2)).await.is_none());
}

#[tokio::test]
async fn a_second_connection_takes_the_subscription_over() {
    let s = server().await;
    let c = Client::alice(&s);
    let id = c.streaming("").await;
    let mut first = Stream::open(&c, &[&id], 5).await;
    first
        .next(Duration::from_secs(5))
        .await
        .expect("first opens");
    let mut second = Stream::open(&c, &[&id], 5).await;
    second
        .next(Duration::from_secs(5))
        .await
        .expect("second opens");
    let e = first
        .until(Duration::from_secs(5), |a| {
            a.all("//m:ResponseCode") != ["NoError"]
        })
        .await;
    assert_eq!(e.code(), "ErrorNewEventStreamConnectionOpened");
    assert_eq!(
        e.all("//m:ErrorSubscriptionIds/t:SubscriptionId"),
        std::slice::from_ref(&id)
    );
    assert_eq!(
        status(&e),
        "Closed",
        "nothing left to deliver on the first connection"
    );
    c.save_messages(&distinguished("drafts"), 1).await;
    let n = second.until(Duration::from_secs(5), is_notification).await;
    assert_eq!(n.all("//t:Notification/t:SubscriptionId"), [id]);
}

#[tokio::test]
async fn connections_are_limited_and_freed_when_clients_leave() {
    let config = ServerConfig {
        max_streaming_connections_per_user: 2,
        protocol_minute: Duration::from_millis(400),
        ..ServerConfig::default()
    };
    let s = start(config).await.expect("starts");
    let c = Client::alice(&s);
    let a = c.streaming("").await;
    let b = c.streaming("").await;
    let mut one = Stream::open(&c, &[&a], 30).await;
    let mut two = Stream::open(&c, &[&b], 30).await;
    one.next(Duration::from_secs(5)).await.expect("open");
    two.next(Duration::from_secs(5)).await.expect("open");
    let mut third = Stream::open(&c, &[&a], 30).await;
    let e = third.next(Duration::from_secs(5)).await.expect("refusal");
    assert_eq!(e.code(), "ErrorExceededConnectionCount");
    assert_eq!(status(&e), "Closed");
    // Bob has his own budget.
    let bob = Client::bob(&s);
    let bs = bob.streaming("").await;
    let mut bobs = Stream::open(&bob, &[&bs], 1).await;
    assert_eq!(
        status(&bobs.next(Duration::from_secs(5)).await.expect("bob")),
        "OK"
    );
    drop(one);
    drop(two);
    // The server notices the departed clients within a heartbeat or two.
    let mut reopened = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut st = Stream::open(&c, &[&a], 1).await;
        let e = st.next(Duration::from_secs(5)).await.expect("answer");
        if e.all("//m:ResponseCode") == ["NoError"] {
            reopened = Some(st);
            break;
        }
    }
    assert!(
        reopened.is_some(),
        "connections of departed clients are released"
    );
}

#[tokio::test]
async fn many_events_arrive_complete_in_notifications_of_at_most_fifty() {
    let s = server().await;
    let c = Client::alice(&s);
    let f = c.create_folder(&distinguished("inbox"), "Stream").await;
    let id = c
        .streaming(&format!("<t:FolderIds>{}</t:FolderIds>", folder_id(&f)))
        .await;
    let mut st = Stream::open(&c, &[&id], 5).await;
    st.next(Duration::from_secs(5)).await.expect("first");
    let created = c.save_messages(&folder_id(&f), 120).await;
    let mut seen = Vec::new();
    while seen.len() < created.len() {
        let n = st.until(Duration::from_secs(10), is_notification).await;
        let doc = n.doc();
        for note in doc
            .descendants()
            .filter(|d| d.has_tag_name((ews_proto::xml::ns::TYPES, "Notification")))
        {
            let events: Vec<_> = note.children().filter(|e| e.is_element()).skip(1).collect();
            assert!(
                events.len() <= 50,
                "{} events in one Notification",
                events.len()
            );
            for e in events
                .iter()
                .filter(|e| e.tag_name().name() == "CreatedEvent")
            {
                let item = e
                    .children()
                    .find(|c| c.has_tag_name("ItemId"))
                    .and_then(|i| i.attribute("Id"));
                seen.push(item.unwrap_or_default().to_string());
            }
        }
    }
    assert_eq!(seen, created);
}

#[tokio::test]
async fn streaming_ids_with_pull_operations_and_unsubscribe() {
    let s = server().await;
    let c = Client::alice(&s);
    let id = c.streaming("").await;
    let (_, wm) = c.pull(inbox_scope(), ALL_KINDS, 5).await;
    assert_eq!(
        c.get_events(&id, &wm).await.message.code,
        Some(ResponseCode::ErrorInvalidPullSubscriptionId)
    );
    let mut st = Stream::open(&c, &[&id], 5).await;
    st.next(Duration::from_secs(5)).await.expect("first");
    assert_eq!(
        c.unsubscribe(&id).await.message.code,
        Some(ResponseCode::NoError)
    );
    let last = st
        .until(Duration::from_secs(5), |a| status(a) == "Closed")
        .await;
    assert_eq!(
        last.one("//m:GetStreamingEventsResponseMessage/@ResponseClass"),
        "Success"
    );
    assert_eq!(
        c.unsubscribe(&id).await.message.code,
        Some(ResponseCode::ErrorSubscriptionNotFound)
    );
}

#[tokio::test]
async fn streaming_subscriptions_expire_without_a_connection() {
    let minute = Duration::from_millis(20);
    let s = server_with_minute(minute).await;
    let c = Client::alice(&s);
    let id = c.streaming("").await;
    tokio::time::sleep(minute * 45).await;
    let mut st = Stream::open(&c, &[&id], 1).await;
    let e = st.next(Duration::from_secs(5)).await.expect("answer");
    assert_eq!(e.code(), "ErrorInvalidSubscription");
    assert_eq!(status(&e), "Closed");
}

#[tokio::test]
async fn shutdown_closes_open_streams() {
    let s = server().await;
    let c = Client::alice(&s);
    let id = c.streaming("").await;
    let mut st = Stream::open(&c, &[&id], 30).await;
    st.next(Duration::from_secs(5)).await.expect("first");
    let started = tokio::time::Instant::now();
    s.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "shutdown is bounded"
    );
    let last = st
        .until(Duration::from_secs(5), |a| status(a) == "Closed")
        .await;
    assert_eq!(
        last.one("//m:GetStreamingEventsResponseMessage/@ResponseClass"),
        "Success"
    );
    assert!(
        st.next(Duration::from_secs(2)).await.is_none(),
        "the body ends"
    );
}
