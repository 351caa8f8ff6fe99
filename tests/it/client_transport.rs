//! The harness's transport against servers that handle connections in
//! ways HTTP/1.1 allows (closing a kept connection at any time) and ways it
//! does not (a second response to one request, another request's answer,
//! a gzip label on plain bytes). The server here speaks raw TCP with
//! keep-alive, so what happens on each connection is under the test's control.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use ews_conformance::client::auth::Auth;
use ews_conformance::client::error::TransportError;
use ews_conformance::client::transport::{HttpRequest, HttpResponse, Transport, TransportConfig};

/// What the server does with the `n`th request (from 0) on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Answers, then closes the connection without `Connection: close`.
    CloseAfterEach,
    /// Answers the first request of a connection; closes on reading the
    /// second, without a byte (a server's idle timeout meeting a request).
    CloseOnSecond,
    /// Sends the head and half the body, then closes.
    CloseMidBody,
    /// Answers a `Bad` request with a fault, then a second response
    /// (`delay_ms` later); every other request is answered normally.
    SecondAfterFault { delay_ms: u64 },
    /// Answers every request with a CreateFolderResponse.
    WrongOperation,
    /// Answers a `Late` request, then sends a CreateFolderResponse after it
    /// (`delay_ms` later) and says so on [`Server::extra_sent`].
    ExtraAfterAnswer { delay_ms: u64 },
    /// Labels a plain body `Content-Encoding: gzip`.
    GzipLie,
    /// Sends the answer gzip-compressed when the request accepts gzip.
    Gzip,
}

struct Server {
    url: String,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    accept_encoding: Arc<std::sync::Mutex<Vec<String>>>,
    extra_sent: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start(mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let accept_encoding = Arc::new(std::sync::Mutex::new(Vec::new()));
        let extra_sent = Arc::new(tokio::sync::Notify::new());
        let (c, r, a, x) = (
            connections.clone(),
            requests.clone(),
            accept_encoding.clone(),
            extra_sent.clone(),
        );
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        c.fetch_add(1, Ordering::SeqCst);
                        let (r, a, x) = (r.clone(), a.clone(), x.clone());
                        conns.spawn(async move { let _ = serve(stream, mode, &r, &a, &x).await; });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Server {
            url: format!("http://{addr}/EWS/Exchange.asmx"),
            connections,
            requests,
            accept_encoding,
            extra_sent,
            task,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// One request: its head and body text.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, String)> {
    read_request_from(stream, buf).await
}

async fn read_request_from<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Option<(String, String)> {
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    buf.drain(..head_end + len);
    Some((head, body))
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The operation a test request names (`<m:Op/>` in the Body).
fn op_of(body: &str) -> String {
    ews_conformance::client::reply::body_operation(body).unwrap_or_default()
}

fn answer(op: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>\
         <m:{op}Response xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"><m:ResponseMessages/></m:{op}Response></s:Body></s:Envelope>"
    )
}

const FAULT: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>\
    <s:Fault><faultcode>s:Client</faultcode><faultstring>bad request</faultstring></s:Fault></s:Body></s:Envelope>";

fn response(status: &str, body: &[u8], extra: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

async fn serve(
    mut stream: TcpStream,
    mode: Mode,
    requests: &AtomicUsize,
    accept_encoding: &std::sync::Mutex<Vec<String>>,
    extra_sent: &tokio::sync::Notify,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut n = 0;
    while let Some((head, body)) = read_request(&mut stream, &mut buf).await {
        requests.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut seen) = accept_encoding.lock() {
            seen.push(header(&head, "accept-encoding").unwrap_or("").to_string());
        }
        let op = op_of(&body);
        match mode {
            Mode::CloseAfterEach => {
                stream
                    .write_all(&response("200 OK", answer(&op).as_bytes(), ""))
                    .await?;
                return Ok(()); // closed, with no `Connection: close` said
            }
            Mode::CloseOnSecond => {
                if n == 1 {
                    return Ok(());
                }
                stream
                    .write_all(&response("200 OK", answer(&op).as_bytes(), ""))
                    .await?;
            }
            Mode::CloseMidBody => {
                let whole = response("200 OK", answer(&op).as_bytes(), "");
                stream.write_all(&whole[..whole.len() - 40]).await?;
                stream.flush().await?;
                return Ok(());
            }
            Mode::SecondAfterFault { delay_ms } => {
                if op == "Bad" {
                    stream
                        .write_all(&response("500 Internal Server Error", FAULT.as_bytes(), ""))
                        .await?;
                    stream.flush().await?;
                    if delay_ms > 0 {
                        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    }
                    stream
                        .write_all(&response("200 OK", answer("CreateFolder").as_bytes(), ""))
                        .await?;
                } else {
                    stream
                        .write_all(&response("200 OK", answer(&op).as_bytes(), ""))
                        .await?;
                }
            }
            Mode::WrongOperation => {
                stream
                    .write_all(&response("200 OK", answer("CreateFolder").as_bytes(), ""))
                    .await?;
            }
            Mode::ExtraAfterAnswer { delay_ms } => {
                stream
                    .write_all(&response("200 OK", answer(&op).as_bytes(), ""))
                    .await?;
                if op == "Late" {
                    stream.flush().await?;
                    if delay_ms > 0 {
                        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    }
                    stream
                        .write_all(&response("200 OK", answer("CreateFolder").as_bytes(), ""))
                        .await?;
                    stream.flush().await?;
                    extra_sent.notify_one();
                }
            }
            Mode::GzipLie => {
                stream
                    .write_all(&response(
                        "200 OK",
                        answer(&op).as_bytes(),
                        "Content-Encoding: gzip\r\n",
                    ))
                    .await?;
            }
            Mode::Gzip => {
                use std::io::Write;
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(answer(&op).as_bytes())?;
                let packed = gz.finish()?;
                stream
                    .write_all(&response("200 OK", &packed, "Content-Encoding: gzip\r\n"))
                    .await?;
            }
        }
        stream.flush().await?;
        n += 1;
    }
    Ok(())
}

fn request_body(op: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"><soap:Body><m:{op}/></soap:Body></soap:Envelope>"
    )
}

fn transport(url: &str) -> Transport {
    let mut cfg = TransportConfig::new(url);
    cfg.deadline = Duration::from_secs(10);
    Transport::new(cfg).expect("transport")
}

async fn post(t: &Transport, op: &str) -> Result<HttpResponse, TransportError> {
    let body = request_body(op);
    t.post(&HttpRequest {
        body: &body,
        auth: &Auth::None,
        headers: &[],
        accept_auth_failure: false,
    })
    .await
}

fn answers(resp: &HttpResponse, op: &str) -> bool {
    resp.status == 200 && resp.body.contains(&format!("<m:{op}Response"))
}

#[tokio::test]
async fn kept_connections_are_reused() {
    // The control: a server that keeps connections open gets one.
    let server = Server::start(Mode::SecondAfterFault { delay_ms: 0 }).await;
    let t = transport(&server.url);
    for i in 0..20 {
        let resp = post(&t, "GetEvents").await.expect("answer");
        assert!(answers(&resp, "GetEvents"), "request {i}: {resp:?}");
        assert!(resp.notes.is_empty(), "{:?}", resp.notes);
    }
    assert_eq!(server.connections(), 1);
    assert_eq!(t.connections_opened(), 1);
}

#[tokio::test]
async fn a_server_that_closes_after_every_answer_is_no_failure() {
    let server = Server::start(Mode::CloseAfterEach).await;
    let t = transport(&server.url);
    let mut retried = 0;
    for i in 0..50 {
        let op = if i % 2 == 0 { "Subscribe" } else { "GetEvents" };
        let resp = post(&t, op)
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert!(answers(&resp, op), "request {i}: {resp:?}");
        for note in &resp.notes {
            assert!(
                note.contains("sent once more, on a new connection"),
                "{note}"
            );
            retried += 1;
        }
    }
    // Whether a request meets the closing connection is a race; every
    // request that did was sent once more, and no other was.
    assert_eq!(server.requests(), 50 + retried);
}

#[tokio::test]
async fn a_kept_connection_closed_as_the_request_arrives_is_retried_once_with_a_note() {
    let server = Server::start(Mode::CloseOnSecond).await;
    let t = transport(&server.url);
    let first = post(&t, "Subscribe").await.expect("first answer");
    assert!(answers(&first, "Subscribe"));
    assert!(first.notes.is_empty());
    let mut retried = 0;
    for i in 0..10 {
        let resp = post(&t, "GetEvents")
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert!(answers(&resp, "GetEvents"), "{resp:?}");
        // Every kept connection closes on its second request, so every
        // request after the first meets one and is sent again.
        assert_eq!(resp.notes.len(), 1, "request {i}: {:?}", resp.notes);
        assert!(
            resp.notes[0].contains("closed by the target before any byte of an answer arrived")
                && resp.notes[0].contains("RFC 9112"),
            "{}",
            resp.notes[0]
        );
        retried += 1;
    }
    assert_eq!(retried, 10);
    // Each request after the first: once on the kept connection, once on a new one.
    assert_eq!(server.requests(), 1 + 2 * 10);
}

#[tokio::test]
async fn a_fresh_connection_closed_without_an_answer_is_a_failure_not_retried() {
    // A listener that reads the request and closes without a byte.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let mut buf = Vec::new();
            let _ = read_request(&mut s, &mut buf).await;
        }
    });
    let t = transport(&format!("http://{addr}/EWS/Exchange.asmx"));
    let err = post(&t, "GetEvents").await.expect_err("no answer");
    assert!(
        matches!(&err, TransportError::Protocol { detail } if detail.contains("connection closed before message completed")),
        "{err:?}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "not retried");
    task.abort();
}

#[tokio::test]
async fn a_connection_closed_mid_body_is_a_failure_with_evidence() {
    let server = Server::start(Mode::CloseMidBody).await;
    let t = transport(&server.url);
    let err = post(&t, "GetEvents").await.expect_err("truncated");
    let TransportError::Protocol { detail } = &err else {
        panic!("{err:?}")
    };
    assert!(
        detail.contains("the connection broke after")
            && detail.contains("bytes of the body")
            && detail.contains("GetEventsResponse"),
        "{detail}"
    );
    assert_eq!(server.requests(), 1, "never retried");
}

#[tokio::test]
async fn a_second_response_after_a_fault_is_said_once_and_the_next_answer_is_its_own() {
    for delay_ms in [0, 40] {
        let server = Server::start(Mode::SecondAfterFault { delay_ms }).await;
        let t = transport(&server.url);
        let before = post(&t, "Subscribe").await.expect("answer");
        assert!(answers(&before, "Subscribe"));
        assert_eq!(before.second_response, None);

        let bad = post(&t, "Bad").await.expect("the fault arrives");
        assert_eq!(bad.status, 500);
        assert!(bad.body.contains("<s:Fault>"), "{}", bad.body);
        let more = bad
            .second_response
            .as_deref()
            .unwrap_or_else(|| panic!("delay {delay_ms}: no second response seen"));
        assert!(more.contains("CreateFolderResponse"), "{more}");

        // The next requests get their own answers, with nothing more said.
        for op in ["Subscribe", "GetEvents", "Unsubscribe"] {
            let resp = post(&t, op).await.unwrap_or_else(|e| panic!("{op}: {e}"));
            assert!(answers(&resp, op), "delay {delay_ms}: {op} got {resp:?}");
            assert_eq!(resp.second_response, None);
            assert!(resp.notes.is_empty(), "{:?}", resp.notes);
        }
        // The connection that answered twice was not used again.
        assert_eq!(server.connections(), 2, "delay {delay_ms}");
    }
}

#[tokio::test]
async fn more_bytes_on_a_kept_connection_are_said_once_and_it_is_not_reused() {
    for delay_ms in [0, 50] {
        let server = Server::start(Mode::ExtraAfterAnswer { delay_ms }).await;
        let t = transport(&server.url);
        let late = post(&t, "Late").await.expect("answer");
        assert!(answers(&late, "Late"));
        server.extra_sent.notified().await;
        let next = post(&t, "GetEvents").await.expect("answer");
        assert!(answers(&next, "GetEvents"), "{next:?}");
        // Said exactly once: on the Late exchange when the extra bytes came
        // right behind its answer (in one read, say), else as a note on the
        // next exchange, which found them on the kept connection (always
        // so when they came after the connection went back to the pool).
        match (&late.second_response, next.notes.as_slice()) {
            (Some(more), []) if delay_ms == 0 => {
                assert!(more.contains("CreateFolderResponse"), "{more}")
            }
            (None, [note]) => assert!(
                note.contains("earlier Late request received more while it was idle")
                    && note.contains("CreateFolderResponse"),
                "{note}"
            ),
            other => panic!("delay {delay_ms}: said {other:?}"),
        }
        assert_eq!(server.connections(), 2);
    }
}

#[tokio::test]
async fn a_stream_connection_is_never_used_again() {
    let server = Server::start(Mode::SecondAfterFault { delay_ms: 0 }).await;
    let t = transport(&server.url);
    let body = request_body("GetStreamingEvents");
    let req = HttpRequest {
        body: &body,
        auth: &Auth::None,
        headers: &[],
        accept_auth_failure: false,
    };
    for round in 1..=2 {
        let opened = t
            .open(&req, Duration::from_secs(10))
            .await
            .expect("headers");
        assert_eq!(opened.status, 200);
        let mut text = String::new();
        let mut body = opened.body;
        while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
            text.push_str(&String::from_utf8_lossy(&chunk.expect("a chunk")));
        }
        assert!(text.contains("GetStreamingEventsResponse"), "{text}");
        // Each stream had a connection of its own, kept by nobody.
        assert_eq!(server.connections(), round);
    }
    let resp = post(&t, "GetEvents").await.expect("answer");
    assert!(answers(&resp, "GetEvents"));
    assert_eq!(
        server.connections(),
        3,
        "the POST did not get a stream's connection"
    );
}

#[tokio::test]
async fn an_answer_to_another_operation_is_named() {
    let server = Server::start(Mode::WrongOperation).await;
    let t = transport(&server.url);
    let err = post(&t, "Subscribe").await.expect_err("mis-answered");
    assert_eq!(
        err.to_string(),
        "this answers another operation: sent Subscribe, got CreateFolderResponse"
    );
    let evidence = err.evidence().expect("the answer is kept as evidence");
    assert!(
        evidence.starts_with("HTTP 200") && evidence.contains("CreateFolderResponse"),
        "{evidence}"
    );
    assert!(!err.is_fatal());
    // The out-of-step connection is never used again.
    let _ = post(&t, "GetEvents").await;
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn gzip_is_accepted_and_decoded() {
    let server = Server::start(Mode::Gzip).await;
    let t = transport(&server.url);
    let resp = post(&t, "GetEvents").await.expect("answer");
    assert!(answers(&resp, "GetEvents"), "{resp:?}");
    assert_eq!(resp.encoding_problem, None);
    let seen = server.accept_encoding.lock().expect("lock").clone();
    assert_eq!(seen, ["gzip"]);
}

#[tokio::test]
async fn a_gzip_label_on_plain_bytes_is_named() {
    let server = Server::start(Mode::GzipLie).await;
    let t = transport(&server.url);
    let err = post(&t, "GetEvents").await.expect_err("not gzip");
    let TransportError::Protocol { detail } = &err else {
        panic!("{err:?}")
    };
    assert!(
        detail.contains("says `Content-Encoding: gzip` but its")
            && detail.contains("are not gzip data"),
        "{detail}"
    );
}

// ------------------------------------------- whole cases through a relay

/// What the relay in front of the reference server does beyond forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relay {
    /// Closes each connection after its answer, without `Connection: close`.
    CloseAfterEach,
    /// Closes a kept connection when its second request arrives, unanswered.
    CloseOnSecond,
    /// Answers an Unsubscribe with the connection's previous answer.
    MisanswerUnsubscribe,
    /// After an HTTP 500 answer, sends the connection's previous answer
    /// again (a server answering one request twice, as seen in the wild).
    RepeatAfterFault,
}

const USER: &str = "alice@example.com";
const PASSWORD: &str = "alice-Secret-1";

/// A keep-alive relay to `upstream`; returns its URL and the task.
async fn relay(upstream: String, mode: Relay) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client = reqwest::Client::new();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let (client, upstream) = (client.clone(), upstream.clone());
                    conns.spawn(async move { let _ = relay_connection(stream, &client, &upstream, mode).await; });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    });
    (format!("http://{addr}/EWS/Exchange.asmx"), task)
}

async fn relay_connection(
    mut stream: TcpStream,
    client: &reqwest::Client,
    upstream: &str,
    mode: Relay,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut previous: Option<Vec<u8>> = None;
    while let Some((head, body)) = read_request(&mut stream, &mut buf).await {
        if mode == Relay::CloseOnSecond && previous.is_some() {
            return Ok(());
        }
        if mode == Relay::MisanswerUnsubscribe
            && op_of(&body) == "Unsubscribe"
            && let Some(earlier) = &previous
        {
            stream.write_all(earlier).await?;
            continue;
        }
        let mut forward = client
            .post(upstream)
            .header("content-type", "text/xml; charset=utf-8")
            .body(body);
        if let Some(auth) = header(&head, "authorization") {
            forward = forward.header("authorization", auth);
        }
        let (status, answer) = match forward.send().await {
            Ok(r) => (
                r.status().as_u16(),
                r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
            ),
            Err(e) => (502, e.to_string().into_bytes()),
        };
        let whole = response(&format!("{status} Relayed"), &answer, "");
        stream.write_all(&whole).await?;
        if mode == Relay::RepeatAfterFault
            && status == 500
            && let Some(earlier) = &previous
        {
            stream.write_all(earlier).await?;
        }
        stream.flush().await?;
        if mode == Relay::CloseAfterEach {
            return Ok(());
        }
        previous = Some(whole);
    }
    Ok(())
}

fn case_target(endpoint: &str) -> ews_conformance::suite::TargetConfig {
    ews_conformance::suite::TargetConfig::builder(endpoint)
        .user(
            USER,
            Auth::Basic {
                username: USER.into(),
                password: PASSWORD.into(),
            },
        )
        .request_timeout(Duration::from_secs(10))
        .build()
        .expect("valid target")
}

/// Subscribe, then a request the target refuses with a fault.
const FAULT_AFTER_SUBSCRIBE: &str = r#"
title = "a fault between two good answers"
requirements = ["R5"]

[[step]]
name = "subscribe"
op = "Subscribe"
with = { mode = "pull", folders = ["inbox"], event_types = ["NewMailEvent"], timeout = 10 }
expect = { class = "Success", code = "NoError" }
capture = { sub = "//m:SubscribeResponseMessage/m:SubscriptionId" }

[[step]]
name = "bad version"
send = '''
<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"
    xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
  <soap:Header><t:RequestServerVersion Version="ExchangeFoo"/></soap:Header>
  <soap:Body><m:GetEvents><m:SubscriptionId>${sub}</m:SubscriptionId><m:Watermark>x</m:Watermark></m:GetEvents></soap:Body>
</soap:Envelope>
'''
expect = { rejected = true }
"#;

/// Subscribe and Unsubscribe, all well.
const SUBSCRIBE_UNSUBSCRIBE: &str = r#"
title = "subscribe and unsubscribe"
requirements = ["R7"]

[[step]]
name = "subscribe"
op = "Subscribe"
with = { mode = "pull", folders = ["inbox"], event_types = ["NewMailEvent"], timeout = 10 }
expect = { class = "Success", code = "NoError" }
capture = { sub = "//m:SubscribeResponseMessage/m:SubscriptionId" }

[[step]]
name = "unsubscribe"
op = "Unsubscribe"
with = { subscription = "${sub}" }
expect = { class = "Success", code = "NoError" }
"#;

/// Runs the cases one after another through one executor (one transport).
async fn run_cases_through(mode: Relay, texts: &[&str]) -> Vec<ews_conformance::suite::Outcome> {
    use ews_conformance::check::CheckRegistry;
    use ews_conformance::suite::operation::OpRegistry;
    use ews_conformance::suite::{Executor, Loader};
    let server = ews_server::start(ews_server::ServerConfig::default())
        .await
        .expect("the reference server starts");
    let (url, task) = relay(server.url(), mode).await;
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let executor = Executor::new(Arc::new(case_target(&url))).expect("executor");
    let mut outcomes = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let case = Loader::new(&ops, &checks)
            .parse(
                text,
                std::path::Path::new("relay.toml"),
                &format!("relay/{i}"),
            )
            .expect("the case parses");
        outcomes.push(executor.run_case(&case).await);
    }
    task.abort();
    server.shutdown().await;
    outcomes
}

use ews_conformance::suite::Verdict;

fn failures(outcome: &ews_conformance::suite::Outcome) -> Vec<String> {
    outcome
        .failures()
        .map(|f| format!("[{}] {}: {}", f.check, f.step, f.message))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_against_a_server_that_closes_every_connection_pass() {
    let outcomes = run_cases_through(
        Relay::CloseAfterEach,
        &[
            SUBSCRIBE_UNSUBSCRIBE,
            FAULT_AFTER_SUBSCRIBE,
            SUBSCRIBE_UNSUBSCRIBE,
        ],
    )
    .await;
    for o in &outcomes {
        assert_eq!(o.verdict, Verdict::Pass, "{}: {:?}", o.id, failures(o));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_meeting_connections_closed_as_requests_arrive_pass_with_notes() {
    let outcomes = run_cases_through(
        Relay::CloseOnSecond,
        &[
            SUBSCRIBE_UNSUBSCRIBE,
            FAULT_AFTER_SUBSCRIBE,
            SUBSCRIBE_UNSUBSCRIBE,
        ],
    )
    .await;
    let mut notes = 0;
    for o in &outcomes {
        assert_eq!(o.verdict, Verdict::Pass, "{}: {:?}", o.id, failures(o));
        notes += o
            .all_findings()
            .filter(|f| {
                f.check == "transport"
                    && f.severity == ews_conformance::check::Severity::Note
                    && f.message.contains("sent once more, on a new connection")
            })
            .count();
    }
    // Every request after a kept answer met a closed connection: at least
    // the Unsubscribe of each good case and the faulted request (the
    // runner's own setup and cleanup requests add more).
    assert!(notes >= 3, "{notes} notes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_requests_answer_is_one_finding_with_evidence() {
    let outcomes = run_cases_through(Relay::MisanswerUnsubscribe, &[SUBSCRIBE_UNSUBSCRIBE]).await;
    let fails = failures(&outcomes[0]);
    assert_eq!(
        fails,
        [
            "[transport] unsubscribe: step \"unsubscribe\": this answers another operation: sent Unsubscribe, got SubscribeResponse"
        ],
        "{fails:#?}"
    );
    let finding = outcomes[0].failures().next().expect("the finding");
    let evidence = finding.evidence.as_deref().unwrap_or("");
    assert!(
        evidence.starts_with("HTTP 200") && evidence.contains("SubscribeResponse"),
        "{evidence}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_response_fails_only_the_step_that_got_it() {
    let outcomes = run_cases_through(
        Relay::RepeatAfterFault,
        &[
            FAULT_AFTER_SUBSCRIBE,
            SUBSCRIBE_UNSUBSCRIBE,
            SUBSCRIBE_UNSUBSCRIBE,
        ],
    )
    .await;
    let fails = failures(&outcomes[0]);
    assert_eq!(fails.len(), 1, "{fails:#?}");
    assert!(
        fails[0].starts_with("[transport] bad version:")
            && fails[0].contains("the target sent two responses to one request"),
        "{}",
        fails[0]
    );
    // The evidence is the repeated answer.
    let two = outcomes[0]
        .failures()
        .find(|f| f.message.contains("two responses"))
        .expect("the finding");
    assert!(
        two.evidence
            .as_deref()
            .unwrap_or("")
            .contains("SubscribeResponse"),
        "{:?}",
        two.evidence
    );
    // The cases after it get their own answers.
    for o in &outcomes[1..] {
        assert_eq!(o.verdict, Verdict::Pass, "{}: {:?}", o.id, failures(o));
    }
}

// ------------------------------------------------------------------ TLS

/// A self-signed certificate for 127.0.0.1 and localhost (P-256, made for
/// these tests with `openssl req -x509`), and its PKCS#8 key, base64 DER.
const TEST_CERT: &str = "\
     MIIBmzCCAUGgAwIBAgIUbtRf+eFuNBbNpKhwFpTUjAebwKowCgYIKoZIzj0EAwIwFDESMBAGA1UE\
     AwwJbG9jYWxob3N0MCAXDTI2MTIwMzA5MDI1MVoYDzIxMjYxMTA5MDkwMjUxWjAUMRIwEAYDVQQD\
     DAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATvwyva5CO+k0hWswMtv3cCbIo8\
     3s4+2fIr5A7ONoxuJQE0b52aw1c65qFI6FBnuQZ7/p6rJNIyOzVWQGCN5MC4o28wbTAdBgNVHQ4E\
     FgQUsGIEhqjhjHE/uDHagXFtrtNywbIwHwYDVR0jBBgwFoAUsGIEhqjhjHE/uDHagXFtrtNywbIw\
     DwYDVR0TAQH/BAUwAwEB/zAaBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwCgYIKoZIzj0EAwID\
     SAAwRQIhAL6odH4mXU5QbYXlkQSXcEpoecwC0KKhg6oBQ9Ug33BNAiBODOLuxED9GK6kW0TqkTew\
     F/S2HJuoEWr+Vqcjd3ecPQ==";
const TEST_KEY: &str = "\
     MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg7xHIDsIDHPnB3vxgj9LUVBQtYslH\
     5ikn+BvZ1kQ7G+ehRANCAATvwyva5CO+k0hWswMtv3cCbIo83s4+2fIr5A7ONoxuJQE0b52aw1c6\
     5qFI6FBnuQZ7/p6rJNIyOzVWQGCN5MC4";

/// A TLS server that answers every request on a kept connection.
async fn tls_server() -> (String, tokio::task::JoinHandle<()>) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let cert = rustls::pki_types::CertificateDer::from(b64.decode(TEST_CERT).expect("cert"));
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(b64.decode(TEST_KEY).expect("key").into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                while let Some((_, body)) = read_request_from(&mut tls, &mut buf).await {
                    let whole = response("200 OK", answer(&op_of(&body)).as_bytes(), "");
                    if tls.write_all(&whole).await.is_err() || tls.flush().await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (
        format!("https://127.0.0.1:{}/EWS/Exchange.asmx", addr.port()),
        task,
    )
}

#[tokio::test]
async fn tls_targets_are_reached_and_their_certificates_checked() {
    let (url, task) = tls_server().await;
    let mut cfg = TransportConfig::new(url.as_str());
    cfg.deadline = Duration::from_secs(10);
    cfg.insecure_tls = true;
    let t = Transport::new(cfg.clone()).expect("transport");
    for op in ["Subscribe", "GetEvents", "Unsubscribe"] {
        let resp = post(&t, op).await.unwrap_or_else(|e| panic!("{op}: {e}"));
        assert!(answers(&resp, op), "{resp:?}");
    }
    assert_eq!(t.connections_opened(), 1, "kept over TLS too");

    // Without insecure_tls, a self-signed certificate is refused.
    cfg.insecure_tls = false;
    let strict = Transport::new(cfg).expect("transport");
    let err = post(&strict, "GetEvents")
        .await
        .expect_err("unknown issuer");
    assert!(
        matches!(&err, TransportError::Unreachable { detail } if detail.contains("TLS handshake")),
        "{err:?}"
    );
    assert!(err.is_fatal());
    task.abort();
}
