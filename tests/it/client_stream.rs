//! The streaming reader against a local chunked HTTP server that the test
//! drives chunk by chunk.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use bytes::Bytes;
use ews_conformance::client::stream::{StreamError, StreamReader, parse_envelope};
use ews_proto::ews::envelope::{self, EnvelopeStyle};
use ews_proto::ews::{
    ConnectionStatus, Event, GetStreamingEventsResponse, Notification, ResponseMessage,
    ServerVersionInfo,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// One stream envelope as Exchange writes it (unprefixed, no declaration).
fn stream_envelope(subscription: &str, status: ConnectionStatus, events: usize) -> String {
    let response = GetStreamingEventsResponse {
        message: ResponseMessage::success(),
        notifications: if events == 0 {
            vec![]
        } else {
            vec![Notification {
                subscription_id: subscription.into(),
                previous_watermark: None,
                more_events: None,
                events: (0..events).map(|_| Event::status(None)).collect(),
            }]
        },
        error_subscription_ids: vec![],
        connection_status: Some(status),
    };
    envelope::response(
        EnvelopeStyle::Unprefixed,
        &ServerVersionInfo::default(),
        |w| response.render(w, "m:Notification"),
    )
}

/// A server whose single response body is whatever the test sends on the
/// channel; dropping the sender ends the body.
async fn chunk_server() -> (String, mpsc::Sender<Bytes>) {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(Some(rx)));
    let app = Router::new().route(
        "/ews",
        post(move || {
            let rx = rx.clone();
            async move {
                let Some(rx) = rx.lock().await.take() else {
                    return Body::empty();
                };
                let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv()
                        .await
                        .map(|b| (Ok::<Bytes, std::io::Error>(b), rx))
                });
                Body::from_stream(chunks)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/ews"), tx)
}

async fn open(url: &str) -> StreamReader {
    let response = reqwest::Client::new()
        .post(url)
        .body("<request/>")
        .send()
        .await
        .expect("the local server answers");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("transfer-encoding")
            .map(|v| v.as_bytes()),
        Some(&b"chunked"[..]),
        "the body must be chunked"
    );
    StreamReader::from_response(response)
}

fn soon(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

#[tokio::test]
async fn reads_slowly_streamed_envelopes_split_across_chunks() {
    let (url, tx) = chunk_server().await;
    let first = stream_envelope("sub-1", ConnectionStatus::Ok, 0);
    let second = stream_envelope("sub-1", ConnectionStatus::Ok, 2);
    let last = stream_envelope("sub-1", ConnectionStatus::Closed, 0);
    let mut wire = format!("{first}\r\n<?xml version=\"1.0\" encoding=\"utf-8\"?>{second}{last}");
    // Cut the bytes into uneven chunks (never at an envelope boundary on purpose).
    let mut chunks = Vec::new();
    let mut size = 7;
    while !wire.is_empty() {
        let at = size.min(wire.len());
        let at = (at..=wire.len())
            .find(|i| wire.is_char_boundary(*i))
            .unwrap_or(wire.len());
        chunks.push(wire[..at].to_string());
        wire = wire[at..].to_string();
        size = size * 3 % 101 + 13;
    }
    let sender = tokio::spawn(async move {
        for c in chunks {
            tx.send(Bytes::from(c)).await.expect("the body is open");
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    });
    let mut reader = open(&url).await;
    let mut got = Vec::new();
    while let Some(env) = reader.next_envelope(soon(10_000)).await.expect("no error") {
        got.push(env);
    }
    sender.await.expect("sender finished");

    assert_eq!(got.len(), 3);
    assert_eq!(got[0].text, first);
    assert_eq!(got[1].text, second);
    assert_eq!(got[2].text, last);
    assert_eq!(
        got.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(got.iter().all(|e| e.prefix.is_none() && e.notes.is_empty()));
    assert_eq!(got[0].declaration, None);
    assert!(got[1].declaration.is_some());
    assert!(got[0].elapsed_since_open <= got[1].elapsed_since_open);
    assert!(got[1].arrived <= got[2].arrived);

    let parsed: Vec<_> = got
        .iter()
        .map(|e| parse_envelope(&e.text).expect("a GetStreamingEvents response"))
        .collect();
    assert!(parsed[0].notifications.is_empty());
    assert_eq!(parsed[1].notifications[0].events.len(), 2);
    assert_eq!(parsed[1].notifications[0].subscription_id, "sub-1");
    assert_eq!(parsed[2].connection_status, Some(ConnectionStatus::Closed));

    assert_eq!(reader.envelopes_read(), 3);
    assert_eq!(reader.history().len(), 3);
    assert!(reader.is_ended());
    assert!(reader.tail_notes().is_empty());
    // Asking again after the end stays at the end.
    assert_eq!(reader.next_envelope(soon(100)).await, Ok(None));
}

#[tokio::test]
async fn a_stalled_stream_hits_the_deadline_with_evidence() {
    let (url, tx) = chunk_server().await;
    let first = stream_envelope("sub-2", ConnectionStatus::Ok, 0);
    let second = stream_envelope("sub-2", ConnectionStatus::Ok, 1);
    let half = &second[..second.len() / 2];
    tx.send(Bytes::from(format!("{first}{half}")))
        .await
        .expect("send");
    let mut reader = open(&url).await;
    let env = reader
        .next_envelope(soon(10_000))
        .await
        .expect("first envelope")
        .expect("not the end");
    assert_eq!(env.text, first);

    let asked = std::time::Instant::now();
    let err = reader
        .next_envelope(soon(300))
        .await
        .expect_err("the stream stalls");
    assert!(asked.elapsed() >= Duration::from_millis(250));
    match &err {
        StreamError::Deadline {
            waited,
            envelopes_so_far,
            partial,
        } => {
            assert!(*waited >= Duration::from_millis(250), "{waited:?}");
            assert_eq!(*envelopes_so_far, 1);
            let partial = partial.as_ref().expect("the half envelope is evidence");
            assert_eq!(partial.offset, first.len() as u64);
            assert_eq!(partial.evidence, half);
        }
        other => panic!("expected a deadline, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("no complete envelope within"), "{message}");
    assert!(message.contains("<Envelope"), "{message}");

    // The reader is still usable: the rest arrives and completes the envelope.
    tx.send(Bytes::from(second[second.len() / 2..].to_string()))
        .await
        .expect("send");
    let env = reader
        .next_envelope(soon(10_000))
        .await
        .expect("second envelope")
        .expect("not the end");
    assert_eq!(env.text, second);
    assert_eq!(env.index, 1);
}

#[tokio::test]
async fn a_body_ending_inside_an_envelope_is_an_error() {
    let (url, tx) = chunk_server().await;
    let first = stream_envelope("sub-3", ConnectionStatus::Ok, 0);
    let cut = &first[..40];
    tx.send(Bytes::from(format!("{first}  {cut}")))
        .await
        .expect("send");
    drop(tx);
    let mut reader = open(&url).await;
    let env = reader.next_envelope(soon(10_000)).await;
    assert_eq!(env.map(|e| e.map(|e| e.text)), Ok(Some(first.clone())));
    match reader.next_envelope(soon(10_000)).await {
        Err(StreamError::Truncated { partial }) => {
            assert_eq!(partial.offset, first.len() as u64 + 2);
            assert_eq!(partial.len, 40);
            assert_eq!(partial.evidence, cut);
        }
        other => panic!("expected a truncation error, got {other:?}"),
    }
    assert_eq!(reader.next_envelope(soon(100)).await, Ok(None));
}

#[tokio::test]
async fn prefixed_envelopes_and_junk_are_reported_per_envelope() {
    let (url, tx) = chunk_server().await;
    let prefixed = envelope::response(
        EnvelopeStyle::Prefixed,
        &ServerVersionInfo::default(),
        |w| {
            GetStreamingEventsResponse {
                message: ResponseMessage::success(),
                notifications: vec![],
                error_subscription_ids: vec![],
                connection_status: Some(ConnectionStatus::Ok),
            }
            .render(w, "t:Notification")
        },
    );
    tx.send(Bytes::from(format!("{prefixed}0\r\n\r\n")))
        .await
        .expect("send");
    drop(tx);
    let mut reader = open(&url).await;
    let env = reader
        .next_envelope(soon(10_000))
        .await
        .expect("ok")
        .expect("an envelope");
    assert_eq!(env.prefix.as_deref(), Some("s"));
    assert!(
        env.declaration.is_some(),
        "the Prefixed style has a declaration"
    );
    assert!(env.text.starts_with("<s:Envelope"));
    assert!(parse_envelope(&env.text).is_ok());
    assert_eq!(reader.next_envelope(soon(10_000)).await, Ok(None));
    let tail: Vec<String> = reader.tail_notes().iter().map(|n| n.to_string()).collect();
    assert_eq!(tail.len(), 1, "{tail:?}");
    assert!(tail[0].contains("\"0\""), "{tail:?}");
}

#[tokio::test]
async fn a_transport_error_mid_body_is_reported_with_the_partial_envelope() {
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"<Envelope><Body>")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset",
        )),
    ];
    let mut reader = StreamReader::new(futures_util::stream::iter(chunks));
    match reader.next_envelope(soon(1_000)).await {
        Err(StreamError::Body { message, partial }) => {
            assert!(message.contains("connection reset"), "{message}");
            assert_eq!(
                partial.map(|p| p.evidence),
                Some("<Envelope><Body>".to_string())
            );
        }
        other => panic!("expected a body error, got {other:?}"),
    }
    assert!(reader.is_ended());
}

#[tokio::test]
async fn an_oversized_envelope_is_an_error_and_reading_goes_on() {
    let big = format!("<Envelope><Body>{}</Body></Envelope>", "x".repeat(5_000));
    let small = stream_envelope("sub-4", ConnectionStatus::Closed, 0);
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        vec![Ok(Bytes::from(big)), Ok(Bytes::from(small.clone()))];
    let mut reader = StreamReader::new(futures_util::stream::iter(chunks)).with_max_envelope(4_096);
    let err = reader
        .next_envelope(soon(1_000))
        .await
        .expect_err("too large");
    assert!(
        err.to_string().contains("exceeds the limit of 4096 bytes"),
        "{err}"
    );
    let env = reader
        .next_envelope(soon(1_000))
        .await
        .expect("ok")
        .expect("the small one");
    assert_eq!(env.text, small);
    assert_eq!(env.index, 0, "only delivered envelopes are numbered");
}
