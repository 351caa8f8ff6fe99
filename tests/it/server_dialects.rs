//! The reference server's dialects over real HTTP: each legal variation
//! is on the wire when switched on, and absent from the faithful server.

use crate::support::server as server_support;

use std::io::Read;
use std::time::Duration;

use ews_proto::ews::EventKind;
use ews_server::{Dialect, DialectSet, RunningServer, ServerConfig, start};
use server_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn server_with(dialects: &[Dialect], minute: Duration) -> RunningServer {
    let config = ServerConfig {
        protocol_minute: minute,
        dialects: DialectSet::of(dialects.iter().copied()),
        ..ServerConfig::default()
    };
    start(config).await.expect("the server starts")
}

const MINUTE: Duration = Duration::from_secs(60);

/// A pull Subscribe without its mandatory Timeout (a schema error).
const NO_TIMEOUT: &str = "<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id=\"inbox\"/></t:FolderIds><t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes></m:PullSubscriptionRequest></m:Subscribe>";

#[tokio::test]
async fn fault_dialects_add_lang_actor_and_position() {
    let plain = server().await;
    let a = Client::alice(&plain).op(NO_TIMEOUT).await;
    assert_eq!(a.status, 500);
    assert!(!a.body.contains("xml:lang") && !a.body.contains("faultactor"));
    assert!(!a.body.contains("MessageXml"), "{}", a.body);

    let s = server_with(
        &[
            Dialect::FaultLang,
            Dialect::FaultActor,
            Dialect::FaultMessageXml,
        ],
        MINUTE,
    )
    .await;
    let a = Client::alice(&s).op(NO_TIMEOUT).await;
    assert_eq!(a.status, 500);
    assert_eq!(a.fault_code(), "ErrorSchemaValidation");
    let doc = a.doc();
    let find = |local: &str| {
        doc.descendants()
            .find(|n| n.is_element() && n.tag_name().name() == local)
            .unwrap_or_else(|| panic!("no {local} in {}", a.body))
    };
    assert_eq!(
        find("faultstring").attribute(("http://www.w3.org/XML/1998/namespace", "lang")),
        Some("en-US")
    );
    assert!(
        find("faultactor")
            .text()
            .is_some_and(|t| t.ends_with("/EWS/Exchange.asmx")),
        "{}",
        a.body
    );
    let line: u32 = find("LineNumber")
        .text()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    assert!(line >= 1, "{}", a.body);
    assert!(find("Violation").text().is_some_and(|t| !t.is_empty()));
    // The detail keeps Exchange's order: ResponseCode, Message, MessageXml.
    let detail: Vec<&str> = find("detail")
        .children()
        .filter(|n| n.is_element())
        .map(|n| n.tag_name().name())
        .collect();
    assert_eq!(detail, ["ResponseCode", "Message", "MessageXml"]);
}

#[tokio::test]
async fn schema_errors_can_be_response_messages() {
    let s = server_with(&[Dialect::SchemaErrorMessage], MINUTE).await;
    let a = Client::alice(&s).op(NO_TIMEOUT).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.code(), "ErrorSchemaValidation");
    assert_eq!(
        a.one("//m:SubscribeResponseMessage/@ResponseClass"),
        "Error"
    );
    // Garbage with no operation is still a fault.
    let g = Client::alice(&s).raw("<not-soap/>").await;
    assert_eq!(g.status, 500);
}

#[tokio::test]
async fn every_wire_form_at_once_still_serves_the_protocol() {
    let s = server_with(
        &DialectSet::all_compatible().iter().collect::<Vec<_>>(),
        MINUTE,
    )
    .await;
    // close-after-response is on: the session's transport sends again on a
    // new connection when a kept one was closed before any byte came back.
    let c = Client::alice(&s);
    let (id, mark) = c.pull(inbox_scope(), &[EventKind::NewMail], 5).await;
    let raw = c
        .op(&format!(
            "<m:GetEvents><m:SubscriptionId>{id}</m:SubscriptionId><m:Watermark>{mark}</m:Watermark></m:GetEvents>"
        ))
        .await;
    assert!(!raw.body.starts_with("<?xml"), "{}", raw.body);
    assert!(raw.body.contains("<soap:Envelope"), "{}", raw.body);
    assert!(raw.body.contains("<h:ServerVersionInfo"), "{}", raw.body);
    assert!(raw.body.contains("<msg:GetEventsResponse"), "{}", raw.body);
    assert!(raw.body.contains("<msg:MessageText>"), "{}", raw.body);
    assert_eq!(
        raw.one("//t:ServerVersionInfo/@Version"),
        "Exchange2010_SP1"
    );
    // status-watermark-refreshed: another string, the same resume point.
    let status_mark = raw.one("//t:StatusEvent/t:Watermark");
    assert_ne!(status_mark, mark);
    assert_eq!(raw.one("//t:PreviousWatermark"), mark);
    let again = c.notification(&id, &status_mark).await;
    assert_eq!(kinds(&again), [EventKind::Status]);
    // subscription-id-padded-base64 (first of its exclusive pair).
    assert!(id.starts_with("+/+/") && id.ends_with('='), "{id}");
}

#[tokio::test]
async fn guid_subscription_ids() {
    let s = server_with(&[Dialect::SubscriptionIdGuid], MINUTE).await;
    let (id, _) = Client::alice(&s)
        .pull(inbox_scope(), &[EventKind::NewMail], 5)
        .await;
    let groups: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
}

#[tokio::test]
async fn after_unsubscribe_the_code_is_unsubscribed() {
    for (dialects, expected) in [
        (vec![], "ErrorSubscriptionNotFound"),
        (
            vec![Dialect::UnsubscribedCode],
            "ErrorSubscriptionUnsubscribed",
        ),
    ] {
        let s = server_with(&dialects, MINUTE).await;
        let c = Client::alice(&s);
        let (id, mark) = c.pull(inbox_scope(), &[EventKind::NewMail], 5).await;
        assert!(c.unsubscribe(&id).await.message.is_success());
        let r = c.get_events(&id, &mark).await;
        assert_eq!(
            r.message.code.as_ref().map(|c| c.as_str()),
            Some(expected),
            "{dialects:?}"
        );
        // An id never issued stays "not found".
        let r = c.get_events("bm90LWlzc3VlZA==", &mark).await;
        assert_eq!(
            r.message.code.as_ref().map(|c| c.as_str()),
            Some("ErrorSubscriptionNotFound")
        );
    }
}

#[tokio::test]
async fn late_delivery_arrives_after_the_send_returns() {
    // A real protocol minute: delivery is 1-5 s after the send.
    let s = server_with(&[Dialect::LateDelivery], MINUTE).await;
    let bob = Client::bob(&s);
    let (id, mark) = bob.pull(inbox_scope(), &[EventKind::NewMail], 5).await;
    let sent = tokio::time::Instant::now();
    let a = Client::alice(&s).send(&["bob@example.com"], "later").await;
    assert_eq!(a.code(), "NoError", "{}", a.body);
    let first = bob.notification(&id, &mark).await;
    assert_eq!(kinds(&first), [EventKind::Status], "delivered at once");
    let mut mark = mark;
    loop {
        assert!(sent.elapsed() < Duration::from_secs(15), "never delivered");
        let n = bob.notification(&id, &mark).await;
        if kinds(&n).contains(&EventKind::NewMail) {
            break;
        }
        mark = n
            .events
            .last()
            .and_then(|e| e.watermark.clone())
            .unwrap_or(mark);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        sent.elapsed() >= Duration::from_millis(900),
        "{:?}",
        sent.elapsed()
    );
}

/// One raw HTTP/1.1 exchange on a fresh connection; returns the response
/// head and whether the server closed the connection afterwards.
async fn raw_exchange(s: &RunningServer, body: &str) -> (String, bool) {
    let mut tcp = tokio::net::TcpStream::connect(s.addr())
        .await
        .expect("connects");
    let request = format!(
        "POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic YWxpY2U6YWxpY2UtU2VjcmV0LTE=\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        s.addr(),
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.expect("writes");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout(Duration::from_millis(800), tcp.read(&mut buf)).await {
            Ok(Ok(0)) => break true,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => break true,
            Err(_) => break false,
        }
    };
    let text = String::from_utf8_lossy(&got).into_owned();
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string();
    (head, closed)
}

#[tokio::test]
async fn close_after_response_closes_without_saying_so() {
    let body = Client::alice(&server().await).envelope(|w| {
        w.raw("<m:Unsubscribe><m:SubscriptionId>x</m:SubscriptionId></m:Unsubscribe>");
    });
    let kept = server().await;
    let (head, closed) = raw_exchange(&kept, &body).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!closed, "the faithful server keeps the connection");

    let s = server_with(&[Dialect::CloseAfterResponse], MINUTE).await;
    let (head, closed) = raw_exchange(&s, &body).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(closed, "the connection stays open");
    assert!(
        !head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("content-length"),
        "{head}"
    );
    // The server keeps serving new connections.
    let a = Client::alice(&s)
        .op("<m:Unsubscribe><m:SubscriptionId>x</m:SubscriptionId></m:Unsubscribe>")
        .await;
    assert_eq!(a.code(), "ErrorSubscriptionNotFound");
}

#[tokio::test]
async fn gzip_only_when_the_client_accepts_it() {
    let s = server_with(&[Dialect::Gzip, Dialect::ExtraHeaders], MINUTE).await;
    let c = Client::alice(&s);
    let body = c.envelope(|w| {
        w.raw("<m:Unsubscribe><m:SubscriptionId>x</m:SubscriptionId></m:Unsubscribe>");
    });
    let send = |accept: Option<&'static str>| {
        let mut r = c
            .http
            .post(&c.url)
            .basic_auth(&c.user, Some(&c.password))
            .body(body.clone());
        if let Some(a) = accept {
            r = r.header("Accept-Encoding", a);
        }
        r.send()
    };
    let zipped = send(Some("gzip, deflate")).await.expect("answered");
    assert_eq!(
        zipped
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    let request_id = zipped
        .headers()
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(request_id.len(), 36, "{request_id}");
    assert!(zipped.headers().get("x-feserver").is_some());
    assert!(zipped.headers().get_all("set-cookie").iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.starts_with("X-BackEndOverrideCookie="))
    }),);
    let bytes = zipped.bytes().await.expect("body");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .expect("a gzip body");
    assert!(text.contains("ErrorSubscriptionNotFound"), "{text}");
    let plain = send(None).await.expect("answered");
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(
        plain
            .text()
            .await
            .expect("text")
            .contains("ErrorSubscriptionNotFound")
    );
}

#[tokio::test]
async fn streaming_dialects_change_the_envelopes_not_the_events() {
    let s = server_with(
        &[
            Dialect::StreamingMNotification,
            Dialect::StreamingEventWatermarks,
            Dialect::StreamChunksSplit,
            Dialect::SoapPrefix,
        ],
        MINUTE,
    )
    .await;
    let c = Client::alice(&s);
    let id = c
        .streaming(&format!(
            "<t:FolderIds>{}</t:FolderIds>",
            distinguished("inbox")
        ))
        .await;
    let mut stream = Stream::open(&c, &[&id], 1).await;
    let first = stream
        .next(Duration::from_secs(5))
        .await
        .expect("a first envelope");
    // Streams stay unprefixed whatever the other documents do.
    assert!(first.body.starts_with("<Envelope"), "{}", first.body);
    assert!(
        stream.chunks >= 2,
        "one envelope came in {} chunk(s)",
        stream.chunks
    );
    c.save_messages(&distinguished("inbox"), 1).await;
    let env = stream
        .until(Duration::from_secs(10), |e| e.body.contains("CreatedEvent"))
        .await;
    let doc = env.doc();
    let notification = doc
        .descendants()
        .find(|n| n.tag_name().name() == "Notification")
        .expect("a notification");
    assert_eq!(
        notification.tag_name().namespace(),
        Some(ews_proto::xml::ns::MESSAGES)
    );
    assert!(
        !env.all("//t:CreatedEvent/t:Watermark").is_empty(),
        "{}",
        env.body
    );
}

#[tokio::test]
async fn joined_chunks_carry_the_envelopes_that_are_ready_together() {
    let s = server_with(&[Dialect::StreamChunksJoined], MINUTE).await;
    let c = Client::alice(&s);
    let id = c
        .streaming(&format!(
            "<t:FolderIds>{}</t:FolderIds>",
            distinguished("inbox")
        ))
        .await;
    // A good id and an unknown one: the first status envelope and the
    // error envelope for the unknown id are ready at once.
    let mut stream = Stream::open(&c, &[&id, "bm8tc3VjaC1pZA=="], 1).await;
    let first = stream.next(Duration::from_secs(5)).await.expect("first");
    let second = stream.next(Duration::from_secs(5)).await.expect("second");
    assert_eq!(first.code(), "NoError", "{}", first.body);
    assert_eq!(
        second.code(),
        "ErrorSubscriptionNotFound",
        "{}",
        second.body
    );
    assert_eq!(stream.chunks, 1, "two envelopes, one chunk");
}

#[tokio::test]
async fn a_reconnecting_stream_reports_events_it_dropped_only_with_the_dialect() {
    let minute = Duration::from_millis(300);
    for (dialects, reports) in [
        (vec![], false),
        (vec![Dialect::ReconnectReportsMissed], true),
    ] {
        let s = server_with(&dialects, minute).await;
        let c = Client::alice(&s);
        let folder = c
            .create_folder(&distinguished("msgfolderroot"), "gap")
            .await;
        let id = c
            .streaming(&format!(
                "<t:FolderIds>{}</t:FolderIds>",
                folder_id(&folder)
            ))
            .await;
        // A first connection that ends at its ConnectionTimeout (1 minute).
        let mut first = Stream::open(&c, &[&id], 1).await;
        while first.next(minute * 4).await.is_some() {}
        // Raised while no connection is open.
        let made = c.save_messages(&folder_id(&folder), 1).await;
        let mut second = Stream::open(&c, &[&id], 1).await;
        let env = second
            .until(Duration::from_secs(10), |e| {
                e.body.contains("CreatedEvent") || e.body.contains("ErrorMissedNotificationEvents")
            })
            .await;
        if reports {
            assert!(
                env.body.contains("ErrorMissedNotificationEvents") && env.body.contains(&id),
                "{}",
                env.body
            );
            // Events raised after the report are delivered on the same connection.
            let later = c.save_messages(&folder_id(&folder), 1).await;
            let env = second
                .until(Duration::from_secs(10), |e| e.body.contains("CreatedEvent"))
                .await;
            assert!(env.body.contains(&later[0]), "{}", env.body);
        } else {
            assert!(env.body.contains(&made[0]), "{}", env.body);
        }
    }
}
