//! The push listener, driven by a plain HTTP client standing in for the
//! server under test.

use std::net::SocketAddr;
use std::time::Duration;

use ews_conformance::client::push::{PushAnswer, PushConfig, PushListener, PushWaitError};
use ews_proto::ews::envelope::{self, EnvelopeStyle};
use ews_proto::ews::{
    Event, Notification, ResponseMessage, SendNotification, ServerVersionInfo, SubscriptionStatus,
};
use ews_proto::xml::parse_document;
use tokio::time::Instant;

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn soon(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

/// A SendNotification body for `subscription` carrying one StatusEvent.
fn notification(subscription: &str) -> String {
    let body = SendNotification {
        message: ResponseMessage::success(),
        notification: Some(Notification {
            subscription_id: subscription.into(),
            previous_watermark: Some("wm-0".into()),
            more_events: Some(false),
            events: vec![Event::status(Some("wm-1".into()))],
        }),
    };
    envelope::response(
        EnvelopeStyle::Prefixed,
        &ServerVersionInfo::default(),
        |w| body.render(w),
    )
}

/// POSTs `body` like a server delivering a notification; returns the status and the reply.
async fn post(url: &str, body: String) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("Authorization", "Basic c2VjcmV0OnNlY3JldA==")
        .body(body)
        .send()
        .await
        .expect("the listener answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a reply body"))
}

/// The SubscriptionStatus of a listener reply.
fn status_of(reply: &str) -> SubscriptionStatus {
    let doc = parse_document(reply).expect("the reply is XML");
    let opened = envelope::open(&doc).expect("the reply is a SOAP envelope");
    SubscriptionStatus::parse_result(opened.payload).expect("a SendNotificationResult")
}

#[tokio::test]
async fn records_a_push_and_answers_ok() {
    let listener = PushListener::start(local(), None).await.expect("start");
    let url = listener.url().to_string();
    let token = listener.token().to_string();
    assert_eq!(token.len(), 32, "128 bits in hex");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    assert_eq!(
        url,
        format!("http://{}/ews-push/{token}", listener.local_addr())
    );

    let (status, reply) = post(&url, notification("sub-A")).await;
    assert_eq!(status, 200);
    assert_eq!(status_of(&reply), SubscriptionStatus::Ok);

    let all = listener.received();
    assert_eq!(all.len(), 1);
    let push = &all[0];
    assert_eq!(push.seq, 1);
    assert_eq!(push.path, format!("/ews-push/{token}"));
    assert_eq!(push.subscription_id.as_deref(), Some("sub-A"));
    assert_eq!(push.answered, PushAnswer::Ok);
    assert!(!push.body_truncated);
    assert_eq!(push.body_text(), notification("sub-A"));
    let parsed = push.parsed.as_ref().expect("a valid SendNotification");
    let n = parsed.notification.as_ref().expect("a notification");
    assert_eq!(n.previous_watermark.as_deref(), Some("wm-0"));
    assert_eq!(n.events.len(), 1);
    assert_eq!(push.header("content-type"), Some("text/xml; charset=utf-8"));
    assert_eq!(
        push.header("authorization"),
        None,
        "credentials are never kept"
    );
    assert!(!format!("{push:?}").contains("c2VjcmV0"));
    listener.shutdown().await;
}

#[tokio::test]
async fn answers_follow_the_policy_per_subscription() {
    let listener = PushListener::start(local(), None).await.expect("start");
    let url = listener.url().to_string();
    listener.set_answer("sub-U", PushAnswer::Unsubscribe);

    let (status, reply) = post(&url, notification("sub-U")).await;
    assert_eq!(status, 200);
    assert_eq!(status_of(&reply), SubscriptionStatus::Unsubscribe);
    assert!(!reply.contains("Header"), "the reply has no SOAP header");

    let (_, reply) = post(&url, notification("sub-other")).await;
    assert_eq!(status_of(&reply), SubscriptionStatus::Ok);

    listener.set_default_answer(PushAnswer::HttpError(500));
    let (status, _) = post(&url, notification("sub-other")).await;
    assert_eq!(status, 500);
    // The per-subscription answer still wins over the default.
    let (_, reply) = post(&url, notification("sub-U")).await;
    assert_eq!(status_of(&reply), SubscriptionStatus::Unsubscribe);
    listener.clear_answer("sub-U");
    let (status, _) = post(&url, notification("sub-U")).await;
    assert_eq!(status, 500);

    let answers: Vec<PushAnswer> = listener.received().iter().map(|p| p.answered).collect();
    assert_eq!(
        answers,
        vec![
            PushAnswer::Unsubscribe,
            PushAnswer::Ok,
            PushAnswer::HttpError(500),
            PushAnswer::Unsubscribe,
            PushAnswer::HttpError(500),
        ]
    );
    listener.shutdown().await;
}

#[tokio::test]
async fn a_hanging_answer_makes_the_sender_time_out_and_ends_at_shutdown() {
    let listener = PushListener::start(local(), None).await.expect("start");
    let url = listener.url().to_string();
    listener.set_default_answer(PushAnswer::Hang);

    let timed_out = reqwest::Client::new()
        .post(&url)
        .timeout(Duration::from_millis(300))
        .body(notification("sub-H"))
        .send()
        .await
        .expect_err("no answer comes");
    assert!(timed_out.is_timeout(), "{timed_out}");
    assert_eq!(listener.received()[0].answered, PushAnswer::Hang);

    // A request still hanging is released (503) when the listener shuts down.
    let pending = tokio::spawn({
        let url = url.clone();
        async move { post(&url, notification("sub-H")).await.0 }
    });
    listener
        .wait_for("the second push", |p| p.seq == 2, soon(5_000))
        .await
        .expect("it arrives");
    let stopped = std::time::Instant::now();
    listener.shutdown().await;
    let status = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("released in time")
        .expect("the sender task");
    assert_eq!(status, 503);
    assert!(stopped.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn wait_for_returns_a_later_push() {
    let listener = PushListener::start(local(), None).await.expect("start");
    let url = listener.url().to_string();
    post(&url, notification("sub-early")).await;
    let mark = listener.mark();
    assert_eq!(mark, 1);
    tokio::spawn({
        let url = url.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            post(&url, notification("sub-late")).await;
        }
    });
    let push = listener
        .wait_for(
            "a push for sub-late",
            |p| p.seq > mark && p.subscription_id.as_deref() == Some("sub-late"),
            soon(10_000),
        )
        .await
        .expect("it arrives");
    assert_eq!(push.seq, 2);
    // Pushes that arrived before the wait count too.
    let early = listener
        .wait_for(
            "sub-early",
            |p| p.subscription_id.as_deref() == Some("sub-early"),
            soon(10),
        )
        .await
        .expect("already there");
    assert_eq!(early.seq, 1);
    listener.shutdown().await;
}

#[tokio::test]
async fn wait_for_times_out_with_a_clear_message() {
    let listener = PushListener::start(local(), None).await.expect("start");
    post(listener.url(), notification("sub-X")).await;
    let started = std::time::Instant::now();
    let err = listener
        .wait_for(
            "a notification for sub-Y",
            |p| p.subscription_id.as_deref() == Some("sub-Y"),
            soon(300),
        )
        .await
        .expect_err("nothing for sub-Y");
    assert!(started.elapsed() >= Duration::from_millis(250));
    let message = err.to_string();
    assert!(
        message.starts_with("no push matching a notification for sub-Y arrived within"),
        "{message}"
    );
    assert!(message.contains("1 push(es) arrived"), "{message}");
    assert!(
        message.contains(&format!(
            "#1 /ews-push/{} subscription sub-X events [StatusEvent]",
            listener.token()
        )),
        "{message}"
    );
    assert!(message.contains("answered OK"), "{message}");
    match err {
        PushWaitError::Timeout { total, arrived, .. } => {
            assert_eq!(total, 1);
            assert_eq!(arrived.len(), 1);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    listener.shutdown().await;
}

#[tokio::test]
async fn expect_none_passes_quietly_and_fails_with_the_unexpected_push() {
    let listener = PushListener::start(local(), None).await.expect("start");
    let url = listener.url().to_string();
    post(&url, notification("sub-1")).await;
    let mark = listener.mark();

    listener
        .expect_none(
            "another push for sub-1",
            |p| p.seq > mark && p.subscription_id.as_deref() == Some("sub-1"),
            Duration::from_millis(200),
        )
        .await
        .expect("nothing new arrives");

    tokio::spawn({
        let url = url.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            post(&url, notification("sub-1")).await;
        }
    });
    let err = listener
        .expect_none(
            "another push for sub-1",
            |p| p.seq > mark && p.subscription_id.as_deref() == Some("sub-1"),
            Duration::from_secs(10),
        )
        .await
        .expect_err("the second push is unexpected");
    let message = err.to_string();
    assert!(
        message.starts_with("a push matching another push for sub-1 arrived"),
        "{message}"
    );
    assert!(
        message.contains("SendNotification"),
        "the body is shown: {message}"
    );
    match err {
        PushWaitError::Unexpected { push, .. } => assert_eq!(push.seq, 2),
        other => panic!("expected an unexpected push, got {other:?}"),
    }
    listener.shutdown().await;
}

#[tokio::test]
async fn malformed_bodies_are_recorded_with_the_reason() {
    let listener = PushListener::start(local(), None).await.expect("start");
    let url = listener.url().to_string();
    listener.set_answer("sub-M", PushAnswer::Unsubscribe);

    let (status, _) = post(&url, "this is not XML".into()).await;
    assert_eq!(status, 200);
    // Valid XML with a SubscriptionId but not a SendNotification: the id still picks the answer.
    let odd = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>\
               <Other><SubscriptionId> sub-M </SubscriptionId></Other></s:Body></s:Envelope>";
    let (_, reply) = post(&url, odd.into()).await;
    assert_eq!(status_of(&reply), SubscriptionStatus::Unsubscribe);

    let all = listener.received();
    let first = all[0].parsed.as_ref().expect_err("not XML");
    assert!(first.contains("not well-formed XML"), "{first}");
    assert_eq!(all[0].subscription_id, None);
    let second = all[1].parsed.as_ref().expect_err("not a notification");
    assert!(second.contains("SendNotification"), "{second}");
    assert_eq!(all[1].subscription_id.as_deref(), Some("sub-M"));
    assert_eq!(all[1].answered, PushAnswer::Unsubscribe);
    listener.shutdown().await;
}

#[tokio::test]
async fn limits_bound_bodies_and_queues() {
    let listener = PushListener::start_with(PushConfig {
        public_url: Some("http://harness.example:8080/cb/".into()),
        body_limit: 4_000,
        history_limit: 3,
        per_subscription_limit: 2,
        token: Some("t0k".into()),
        ..PushConfig::default()
    })
    .await
    .expect("start");
    assert_eq!(
        listener.url(),
        "http://harness.example:8080/cb/ews-push/t0k"
    );
    // A proxy in front may keep its own prefix and a query.
    let url = format!("http://{}/cb/ews-push/t0k?x=1", listener.local_addr());

    let (status, _) = post(&url, "x".repeat(5_000)).await;
    assert_eq!(status, 413);
    assert!(notification("sub-A").len() < 4_000);
    assert!(
        listener.received().is_empty(),
        "an oversized body is not kept"
    );

    for _ in 0..3 {
        post(&url, notification("sub-A")).await;
    }
    let (status, _) = post(&url, notification("sub-B")).await;
    assert_eq!(status, 200);
    let (status, _) = post(&url, notification("sub-C")).await;
    assert_eq!(status, 503, "the listener's queue is full");
    let ids: Vec<String> = listener
        .received()
        .iter()
        .filter_map(|p| p.subscription_id.clone())
        .collect();
    assert_eq!(ids, ["sub-A", "sub-A", "sub-B"]);
    assert_eq!(listener.mark(), 3);

    let get = reqwest::get(&url).await.expect("the listener answers");
    assert_eq!(get.status(), 405);
    assert_eq!(listener.mark(), 3, "only POSTs are recorded");
    let stats = listener.stats();
    assert_eq!(stats.accepted, 3);
    assert_eq!(stats.too_large, 1);
    assert_eq!(stats.subscription_full, 1);
    assert_eq!(stats.listener_full, 1);
    assert_eq!(stats.retained_pushes, 3);
    let kept: usize = listener.received().iter().map(|p| p.body.len()).sum();
    assert_eq!(stats.retained_bytes, kept as u64);
    listener.shutdown().await;
}

#[tokio::test]
async fn requests_without_the_token_get_404_and_are_never_recorded() {
    let listener = PushListener::start(local(), None).await.expect("start");
    let base = format!("http://{}", listener.local_addr());
    let token = listener.token().to_string();
    let wrong = [
        format!("{base}/push"),
        format!("{base}/"),
        format!("{base}/ews-push/"),
        format!("{base}/ews-push/{}", "0".repeat(32)),
        format!("{base}/ews-push/{token}x"),
        format!("{base}/{token}"),
    ];
    for url in &wrong {
        let (status, _) = post(url, notification("forged")).await;
        assert_eq!(status, 404, "{url}");
    }
    assert!(listener.received().is_empty());
    assert_eq!(listener.mark(), 0);
    assert_eq!(listener.stats().wrong_path, wrong.len() as u64);
    let (status, _) = post(listener.url(), notification("real")).await;
    assert_eq!(status, 200);
    assert_eq!(listener.received().len(), 1);

    let other = PushListener::start(local(), None).await.expect("start");
    assert_ne!(
        other.token(),
        listener.token(),
        "a fresh token per listener"
    );
    other.shutdown().await;
    listener.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_closed() {
    use tokio::io::AsyncReadExt;
    let listener = PushListener::start_with(PushConfig {
        max_connections: 2,
        ..PushConfig::default()
    })
    .await
    .expect("start");
    // Two idle connections take every place.
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(
            tokio::net::TcpStream::connect(listener.local_addr())
                .await
                .expect("connect"),
        );
    }
    let mut third = tokio::net::TcpStream::connect(listener.local_addr())
        .await
        .expect("connect");
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(10), third.read(&mut buf))
        .await
        .expect("the listener closes the third connection");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    assert_eq!(listener.stats().connections_refused, 1);
    drop(held);
    // Places free up once connections close.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ok = reqwest::Client::new()
            .post(listener.url())
            .body(notification("sub-A"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ok {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no place freed");
        tokio::task::yield_now().await;
    }
    listener.shutdown().await;
}

/// Many senders POSTing large bodies at once: the listener keeps at most
/// its retained-byte cap, refuses and counts the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_keeps_memory_bounded_and_is_counted() {
    let listener = PushListener::start(local(), None).await.expect("start");
    let config = PushConfig::default();
    let url = listener.url().to_string();
    let body = bytes::Bytes::from(vec![b'x'; 900 * 1024]);
    let senders = 8;
    let per_sender = 250;
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..per_sender {
                let status = match client.post(&url).body(body.clone()).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                statuses.push(status);
            }
            statuses
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.extend(t.await.expect("a sender"));
    }
    let stats = listener.stats();
    let ok = statuses.iter().filter(|s| **s == 200).count() as u64;
    let refused = statuses.iter().filter(|s| **s == 503).count() as u64;
    // Peak RSS is shown, not asserted: other tests share the process.
    let peak_rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_default();
    eprintln!(
        "flood: {} POSTs, {ok} kept, {refused} refused, {} bytes retained (bound {}), \
         peak RSS {peak_rss_kib} KiB; {stats}",
        statuses.len(),
        stats.retained_bytes,
        config.memory_bound()
    );
    assert_eq!(statuses.len(), senders * per_sender);
    assert!(stats.retained_bytes <= config.retained_bytes_limit as u64);
    assert_eq!(stats.accepted, ok);
    assert_eq!(stats.listener_full, refused);
    assert!(refused > 0, "the flood reaches the cap");
    assert!(ok + refused + stats.connections_refused >= statuses.len() as u64);
    assert!(config.memory_bound() <= 128 * 1024 * 1024);
    listener.shutdown().await;
}

#[tokio::test]
async fn a_sender_stalling_mid_body_is_recorded_and_answered_400() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = PushListener::start_with(PushConfig {
        body_timeout: Duration::from_millis(200),
        ..PushConfig::default()
    })
    .await
    .expect("start");
    let mut socket = tokio::net::TcpStream::connect(listener.local_addr())
        .await
        .expect("connect");
    socket
        .write_all(
            format!(
                "POST /ews-push/{} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n<s:Envelope",
                listener.token()
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 512];
        while !reply.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the listener answers within its body timeout");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    let push = &listener.received()[0];
    assert!(push.body_truncated);
    assert_eq!(push.body_text(), "<s:Envelope");
    assert_eq!(push.answered, PushAnswer::HttpError(400));
    let why = push.parsed.as_ref().expect_err("incomplete");
    assert!(why.contains("not delivered in full"), "{why}");
    listener.shutdown().await;
}
