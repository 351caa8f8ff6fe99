//! The reference server under abuse: a client that sends half a header,
//! a body that never comes, too many connections, an oversized body, an
//! element with 100,000 attributes, and push URLs aimed at metadata
//! services. Each is bounded and answered as Exchange answers a bad
//! request (a SOAP fault), and the server keeps serving.

use crate::support::server as server_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ews_server::{ConnectionLimits, PushDestinations, ServerConfig, start};
use server_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Limits short enough for a test; the deadlines below are generous
/// multiples of them (a loaded machine is slow, never early).
fn limits(max_connections: usize) -> ConnectionLimits {
    ConnectionLimits {
        header_timeout: Duration::from_millis(500),
        body_timeout: Duration::from_millis(800),
        max_connections,
    }
}

async fn limited_server(max_connections: usize) -> ews_server::RunningServer {
    start(ServerConfig {
        limits: limits(max_connections),
        ..ServerConfig::default()
    })
    .await
    .expect("the server starts")
}

const AUTH: &str = "Authorization: Basic YWxpY2VAZXhhbXBsZS5jb206YWxpY2UtU2VjcmV0LTE=\r\n";

/// Reads until the server closes the connection (or `limit` passes);
/// what arrived and whether the close came in time.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn status_of(raw: &str) -> Option<u16> {
    raw.split_whitespace().nth(1)?.parse().ok()
}

fn body_of(raw: &str) -> &str {
    raw.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn fault_code(xml: &str) -> String {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    doc.descendants()
        .find(|n| n.tag_name().name() == "ResponseCode")
        .and_then(|n| n.text())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn half_a_header_is_cut_off_at_the_header_deadline() {
    let s = limited_server(64).await;
    let mut c = TcpStream::connect(s.addr()).await.expect("connects");
    c.write_all(b"POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: x\r\nContent-")
        .await
        .expect("writes");
    let (_, closed) = read_until_closed(&mut c, Duration::from_secs(10)).await;
    assert!(closed, "a half header held the connection for 10 s");
    // And a connection that says nothing at all.
    let mut silent = TcpStream::connect(s.addr()).await.expect("connects");
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(10)).await;
    assert!(closed, "a silent connection was held for 10 s");
    // The server still answers.
    let a = Client::alice(&s)
        .op("<m:Unsubscribe><m:SubscriptionId>x</m:SubscriptionId></m:Unsubscribe>")
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let s = limited_server(64).await;
    let body = Client::alice(&s).envelope(|w| {
        w.raw("<m:Unsubscribe><m:SubscriptionId>x</m:SubscriptionId></m:Unsubscribe>");
    });
    let mut c = TcpStream::connect(s.addr()).await.expect("connects");
    let head = format!(
        "POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).await.expect("writes");
    c.write_all(body.as_bytes()).await.expect("writes");
    let (raw, closed) = read_until_closed(&mut c, Duration::from_secs(10)).await;
    assert_eq!(status_of(&raw), Some(200), "{raw}");
    assert!(closed, "an idle keep-alive connection stayed open for 10 s");
}

#[tokio::test]
async fn a_body_that_never_comes_gets_a_408_fault() {
    let s = limited_server(64).await;
    let mut c = TcpStream::connect(s.addr()).await.expect("connects");
    let head = format!(
        "POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: 5000\r\n\r\n<s:Env"
    );
    c.write_all(head.as_bytes()).await.expect("writes");
    let (raw, closed) = read_until_closed(&mut c, Duration::from_secs(10)).await;
    assert!(closed, "a stalled body held the connection for 10 s: {raw}");
    assert_eq!(status_of(&raw), Some(408), "{raw}");
    assert_eq!(fault_code(body_of(&raw)), "ErrorTimeoutExpired", "{raw}");
}

#[tokio::test]
async fn ten_gigabytes_announced_get_a_413_fault_without_waiting() {
    let s = limited_server(64).await;
    let mut c = TcpStream::connect(s.addr()).await.expect("connects");
    let head = format!(
        "POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: 10737418240\r\n\r\n"
    );
    c.write_all(head.as_bytes()).await.expect("writes");
    let (raw, closed) = read_until_closed(&mut c, Duration::from_secs(10)).await;
    assert!(closed, "{raw}");
    assert_eq!(status_of(&raw), Some(413), "{raw}");
    assert_eq!(fault_code(body_of(&raw)), "ErrorInvalidRequest", "{raw}");
}

#[tokio::test]
async fn an_oversized_body_gets_a_413_soap_fault() {
    let s = limited_server(64).await;
    let big = "x".repeat(17 * 1024 * 1024);
    let a = Client::alice(&s).raw(big).await;
    assert_eq!(a.status, 413);
    assert_eq!(a.fault_code(), "ErrorInvalidRequest", "{}", a.body);
}

#[tokio::test]
async fn connections_over_the_cap_get_a_busy_fault_and_the_server_recovers() {
    // Header deadline long enough that the holders keep their places.
    let s = start(ServerConfig {
        limits: ConnectionLimits {
            header_timeout: Duration::from_secs(20),
            ..limits(3)
        },
        ..ServerConfig::default()
    })
    .await
    .expect("starts");
    let mut holders = Vec::new();
    for _ in 0..3 {
        holders.push(TcpStream::connect(s.addr()).await.expect("connects"));
    }
    // Give the accept loop time to take all three.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = Client::alice(&s).envelope(|w| {
        w.raw("<m:Unsubscribe><m:SubscriptionId>x</m:SubscriptionId></m:Unsubscribe>");
    });
    let request = format!(
        "POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut extra = TcpStream::connect(s.addr()).await.expect("connects");
    extra.write_all(request.as_bytes()).await.expect("writes");
    let (raw, closed) = read_until_closed(&mut extra, Duration::from_secs(10)).await;
    assert!(closed, "{raw}");
    assert_eq!(status_of(&raw), Some(503), "{raw}");
    assert_eq!(fault_code(body_of(&raw)), "ErrorServerBusy", "{raw}");
    // One place freed: a request goes through again.
    drop(holders.pop());
    let client = Client::alice(&s);
    let mut answered = None;
    for _ in 0..50 {
        let a = client
            .op("<m:Unsubscribe><m:SubscriptionId>x</m:SubscriptionId></m:Unsubscribe>")
            .await;
        if a.status == 200 {
            answered = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = answered.expect("a freed place serves a request");
    assert!(a.body.contains("UnsubscribeResponse"), "{}", a.body);
}

#[tokio::test]
async fn an_element_with_100000_attributes_is_refused_before_parsing() {
    let s = limited_server(64).await;
    let mut attrs = String::with_capacity(1_600_000);
    for i in 0..100_000 {
        attrs.push_str(&format!(" a{i}=\"v\""));
    }
    let a = Client::alice(&s)
        .op(&format!(
            "<m:Unsubscribe{attrs}><m:SubscriptionId>x</m:SubscriptionId></m:Unsubscribe>"
        ))
        .await;
    assert_eq!(a.status, 500, "{}", &a.body[..a.body.len().min(400)]);
    assert_eq!(a.fault_code(), "ErrorSchemaValidation");
    assert!(
        a.body.contains("more than 256 attributes"),
        "the attribute bound, not the parser, refused it: {}",
        &a.body[..a.body.len().min(600)]
    );
}

#[tokio::test]
async fn delete_folder_with_no_folder_ids_is_a_schema_fault() {
    let s = limited_server(64).await;
    let a = Client::alice(&s)
        .op("<m:DeleteFolder DeleteType=\"HardDelete\"><m:FolderIds/></m:DeleteFolder>")
        .await;
    assert_eq!(a.status, 500, "{}", a.body);
    assert_eq!(a.fault_code(), "ErrorSchemaValidation", "{}", a.body);
    for op in [
        "<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds/></m:GetFolder>",
        "<m:DeleteItem DeleteType=\"HardDelete\"><m:ItemIds/></m:DeleteItem>",
        "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ItemIds/></m:GetItem>",
    ] {
        let a = Client::alice(&s).op(op).await;
        assert_eq!(a.status, 500, "{op}: {}", a.body);
        assert_eq!(a.fault_code(), "ErrorSchemaValidation", "{op}: {}", a.body);
    }
}

fn push_subscribe(url: &str) -> String {
    format!(
        "<m:Subscribe><m:PushSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id=\"inbox\"/></t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes><t:StatusFrequency>1</t:StatusFrequency><t:URL>{url}</t:URL></m:PushSubscriptionRequest></m:Subscribe>"
    )
}

#[tokio::test]
async fn push_urls_at_metadata_addresses_are_refused_by_default() {
    let s = limited_server(64).await;
    let c = Client::alice(&s);
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/push",
        "http://100.100.100.200/x",
    ] {
        let a = c.op(&push_subscribe(url)).await;
        assert_eq!(
            a.code(),
            "ErrorInvalidPushSubscriptionUrl",
            "{url}: {}",
            a.body
        );
    }
}

/// A listener that counts the POSTs it gets (and answers OK to each).
async fn counting_listener() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                if matches!(c.read(&mut buf).await, Ok(n) if n > 0) {
                    let _ = tx.send(());
                }
                let ok = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><m:SendNotificationResult xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"><m:SubscriptionStatus>OK</m:SubscriptionStatus></m:SendNotificationResult></s:Body></s:Envelope>";
                let _ = c
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{ok}",
                            ok.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn an_allow_list_states_exactly_where_notifications_go() {
    // The default policy lets a loopback listener have its StatusEvent,
    // so the silence below is the policy's doing.
    let (addr, mut posts) = counting_listener().await;
    let open = limited_server(64).await;
    let a = Client::alice(&open)
        .op(&push_subscribe(&format!(
            "http://localhost:{}/push",
            addr.port()
        )))
        .await;
    assert_eq!(a.code(), "NoError", "{}", a.body);
    tokio::time::timeout(Duration::from_secs(20), posts.recv())
        .await
        .expect("the default policy delivers to loopback")
        .expect("the listener runs");

    let (addr, mut posts) = counting_listener().await;
    let closed = start(ServerConfig {
        limits: limits(64),
        push_destinations: PushDestinations::allow_only(&["192.0.2.0/24"]).expect("valid"),
        ..ServerConfig::default()
    })
    .await
    .expect("starts");
    let c = Client::alice(&closed);
    // A literal address outside the list is refused at Subscribe.
    let a = c
        .op(&push_subscribe(&format!(
            "http://127.0.0.1:{}/push",
            addr.port()
        )))
        .await;
    assert_eq!(a.code(), "ErrorInvalidPushSubscriptionUrl", "{}", a.body);
    // A name is taken, but it resolves to a refused address: nothing is sent.
    let a = c
        .op(&push_subscribe(&format!(
            "http://localhost:{}/push",
            addr.port()
        )))
        .await;
    assert_eq!(a.code(), "NoError", "{}", a.body);
    assert!(
        tokio::time::timeout(Duration::from_secs(3), posts.recv())
            .await
            .is_err(),
        "a refused destination got a POST"
    );
}

/// `serve` prints where it listens; the config's `listen` is used unless
/// `--listen` is given.
fn serve_banner(args: &[&str]) -> String {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ews-conformance"))
        .arg("serve")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve starts");
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let _ = child.kill();
    let _ = child.wait();
    line
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn serve_honours_the_config_files_listen_and_the_flag_overrides_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("server.toml");
    let from_file = free_port();
    std::fs::write(&file, format!("listen = \"127.0.0.1:{from_file}\"\n")).expect("writes");
    let config = file.to_str().expect("utf-8 path");
    let banner = serve_banner(&["--config", config]);
    assert!(
        banner.contains(&format!("127.0.0.1:{from_file}/")),
        "{banner}"
    );
    let from_flag = free_port();
    let listen = format!("127.0.0.1:{from_flag}");
    let banner = serve_banner(&["--config", config, "--listen", &listen]);
    assert!(banner.contains(&format!("{listen}/")), "{banner}");
}
