//! The streaming, push and response-structure faults change what the
//! server puts on the wire, and the same exchange against the clean server
//! shows the correct behaviour. (The self-test proves that the suite's
//! cases notice them; these tests pin the faults themselves down.)

use crate::support::server as server_support;

use std::time::Duration;

use ews_conformance::client::push::{PushAnswer, PushListener};
use ews_server::{Fault, FaultSet, RunningServer, ServerConfig, start};
use server_support::*;
use tokio::time::Instant;

async fn server_with(minute: Duration, faults: &[Fault]) -> RunningServer {
    start(ServerConfig {
        protocol_minute: minute,
        faults: FaultSet::of(faults.iter().copied()),
        ..ServerConfig::default()
    })
    .await
    .expect("the server starts")
}

const UNKNOWN_ID: &str = "39ea5d0f-f062-455e-a1e9-89c0304390f4";

#[tokio::test]
async fn response_code_after_link_key_swaps_the_two_elements() {
    for (faults, code_first) in [
        (vec![], true),
        (vec![Fault::ResponseCodeAfterLinkKey], false),
    ] {
        let s = server_with(Duration::from_secs(60), &faults).await;
        let c = Client::alice(&s);
        let a = c
            .op(&format!(
                "<m:Unsubscribe><m:SubscriptionId>{UNKNOWN_ID}</m:SubscriptionId></m:Unsubscribe>"
            ))
            .await;
        assert_eq!(a.code(), "ErrorSubscriptionNotFound", "{}", a.body);
        let code = a.body.find("<m:ResponseCode>").expect("a ResponseCode");
        let key = a.body.find("<m:DescriptiveLinkKey>").expect("a link key");
        assert_eq!(code < key, code_first, "{faults:?}: {}", a.body);
    }
}

#[tokio::test]
async fn a_held_first_envelope_comes_only_after_two_protocol_minutes() {
    let minute = Duration::from_millis(500);
    for (faults, prompt) in [
        (vec![], true),
        (vec![Fault::StreamFirstEnvelopeHeld], false),
    ] {
        let s = server_with(minute, &faults).await;
        let c = Client::alice(&s);
        let id = c.streaming("").await;
        let opened = Instant::now();
        let mut st = Stream::open(&c, &[&id], 5).await;
        // Clean: at once. Held: nothing for the first protocol minute and a half.
        let early = st.next(minute * 3 / 2).await;
        assert_eq!(early.is_some(), prompt, "{faults:?}");
        if !prompt {
            let late = st.next(minute * 2).await.expect("the held envelope");
            assert_eq!(late.one("//m:ConnectionStatus"), "OK");
            assert!(opened.elapsed() >= minute * 3 / 2, "{:?}", opened.elapsed());
        }
    }
}

#[tokio::test]
async fn a_stream_that_never_closes_outlives_its_connection_timeout() {
    let minute = Duration::from_millis(200);
    for (faults, closes) in [(vec![], true), (vec![Fault::StreamNeverCloses], false)] {
        let s = server_with(minute, &faults).await;
        let c = Client::alice(&s);
        let id = c.streaming("").await;
        let mut st = Stream::open(&c, &[&id], 1).await;
        let end = Instant::now() + minute * 5;
        let mut closed = false;
        let mut envelopes = 0;
        while let Some(e) = st.next(end.saturating_duration_since(Instant::now())).await {
            envelopes += 1;
            closed |= e.one("//m:ConnectionStatus") == "Closed";
        }
        assert_eq!(closed, closes, "{faults:?}");
        assert!(envelopes >= 2, "heartbeats keep coming: {envelopes}");
    }
}

#[tokio::test]
async fn a_refused_stream_says_ok_under_the_fault() {
    for (faults, status) in [
        (vec![], "Closed"),
        (vec![Fault::ConnectionStatusOkOnError], "OK"),
    ] {
        let s = server_with(Duration::from_secs(60), &faults).await;
        let c = Client::alice(&s);
        let mut st = Stream::open(&c, &[UNKNOWN_ID], 1).await;
        let e = st.next(Duration::from_secs(5)).await.expect("one envelope");
        assert_eq!(e.code(), "ErrorInvalidSubscription", "{}", e.body);
        assert_eq!(e.one("//m:ConnectionStatus"), status, "{faults:?}");
    }
}

#[tokio::test]
async fn duplicate_declarations_precede_every_streamed_envelope() {
    for (faults, declarations) in [(vec![], 0), (vec![Fault::StreamDuplicateDeclaration], 2)] {
        let s = server_with(Duration::from_millis(400), &faults).await;
        let c = Client::alice(&s);
        let id = c.streaming("").await;
        let mut st = Stream::open(&c, &[&id], 1).await;
        for _ in 0..2 {
            let e = st.next(Duration::from_secs(5)).await.expect("an envelope");
            assert_eq!(e.body.matches("<?xml").count(), declarations, "{}", e.body);
        }
    }
}

fn push_subscribe(url: &str) -> String {
    format!(
        "<m:Subscribe><m:PushSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id=\"drafts\"/></t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes><t:StatusFrequency>1</t:StatusFrequency><t:URL>{url}</t:URL></m:PushSubscriptionRequest></m:Subscribe>"
    )
}

/// A push subscription of alice to a fresh listener answering `answer`.
async fn pushed(s: &RunningServer, answer: PushAnswer) -> (PushListener, String) {
    let listener = PushListener::start("127.0.0.1:0".parse().expect("address"), None)
        .await
        .expect("the listener starts");
    listener.set_default_answer(answer);
    let a = Client::alice(s).op(&push_subscribe(listener.url())).await;
    assert_eq!(a.code(), "NoError", "{}", a.body);
    (listener, a.one("//m:SubscriptionId"))
}

#[tokio::test]
async fn a_silent_push_subscription_sends_no_status_event_but_still_events() {
    let minute = Duration::from_millis(300);
    for (faults, status_pings) in [(vec![], true), (vec![Fault::PushNoStatusEvent], false)] {
        let s = server_with(minute, &faults).await;
        let (l, _) = pushed(&s, PushAnswer::Ok).await;
        let window = l
            .expect_none("any POST while idle", |_| true, minute * 4)
            .await;
        assert_eq!(window.is_err(), status_pings, "{faults:?}");
        let mark = l.mark();
        Client::alice(&s)
            .save_messages(&distinguished("drafts"), 1)
            .await;
        let push = l
            .wait_for(
                "the CreatedEvent",
                |p| p.seq > mark && p.body_text().contains("CreatedEvent"),
                Instant::now() + minute * 4,
            )
            .await;
        assert!(push.is_ok(), "{faults:?}: {push:?}");
        l.shutdown().await;
    }
}

/// Answers the first push of a new push subscription with `answer`, then
/// watches for `quiet` protocol minutes: whether a second POST came.
async fn posts_again_after(
    minute: Duration,
    faults: &[Fault],
    answer: PushAnswer,
    what: &str,
    quiet: u32,
) -> bool {
    let s = server_with(minute, faults).await;
    let (l, _) = pushed(&s, answer).await;
    l.wait_for(
        "the first StatusEvent",
        |_| true,
        Instant::now() + minute * 3,
    )
    .await
    .expect("a first POST");
    let again = l.expect_none(what, |p| p.seq > 1, minute * quiet).await;
    l.shutdown().await;
    again.is_err()
}

#[tokio::test]
async fn an_unsubscribe_answer_is_ignored_under_the_fault() {
    let minute = Duration::from_millis(300);
    for (faults, stops) in [(vec![], true), (vec![Fault::PushIgnoresUnsubscribe], false)] {
        let more = posts_again_after(
            minute,
            &faults,
            PushAnswer::Unsubscribe,
            "a POST after Unsubscribe",
            4,
        )
        .await;
        assert_eq!(!more, stops, "{faults:?}");
    }
}

#[tokio::test]
async fn an_unanswered_push_is_retried_only_by_the_clean_server() {
    let minute = Duration::from_millis(600);
    for (faults, retried) in [(vec![], true), (vec![Fault::PushNeverRetries], false)] {
        let retry =
            posts_again_after(minute, &faults, PushAnswer::HttpError(500), "a retry", 2).await;
        assert_eq!(retry, retried, "{faults:?}");
    }
}
