//! A hostile EWS target for the robustness tests (test code only, never part
//! of the product).
//!
//! It listens on 127.0.0.1:0 and speaks raw TCP, so it can break HTTP
//! itself, not only the XML inside it. Requests it does not sabotage are
//! forwarded to an upstream (the reference server), so a case can get
//! through its setup and meet the broken answer exactly at the step under
//! test. Every behaviour is bounded: stalls end after a minute at most, and
//! dropping the [`Hostile`] aborts every connection it still holds.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// How long a stalling behaviour holds a connection before giving up.
const STALL: Duration = Duration::from_secs(60);
/// Largest request head and body the server reads.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;

/// What the server does with a sabotaged request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Forward faithfully (the control).
    PassThrough,
    /// Random bytes where the HTTP response should be.
    GarbageBytes,
    /// An HTTP/0.9-style answer: a body with no status line at all.
    Http09,
    /// `HTTP/1.1 2x0 Fine`: a status line that is not one.
    GarbledStatusLine,
    /// `100 Continue` interim answers, one every 10 ms, and never a final one.
    EndlessContinue,
    /// A 1 MiB header value.
    EnormousHeader,
    /// Ten thousand header lines.
    ManyHeaders,
    /// Accept, then close without a byte.
    ImmediateClose,
    /// Headers and half the body, then a TCP reset.
    ResetMidBody,
    /// Content-Length promises more than is sent, then the connection closes.
    TruncatedBody,
    /// A complete HTTP answer whose body is half an envelope.
    TruncatedEnvelope,
    /// Headers, then nothing.
    StallAfterHeaders,
    /// Headers and half an envelope, then nothing.
    StallMidEnvelope,
    /// The real answer, one byte every 25 ms.
    SlowDrip,
    /// A chunked body that never ends.
    EndlessBody,
    /// A 512 MiB body announced by Content-Length, generated as it is sent.
    HugeBody,
    /// A chunked body whose chunk size line is not hexadecimal.
    ChunkedError,
    /// HTTP 200, text/xml, random bytes.
    GarbageBody,
    /// The answer re-encoded as UTF-16LE, declared and labelled UTF-16.
    Utf16Body,
    /// The real answer with an invalid UTF-8 byte in a text node.
    InvalidUtf8,
    /// A UTF-16 byte order mark in front of the UTF-8 answer.
    BomMismatch,
    /// A proxy's HTML login page, text/html.
    HtmlPage,
    /// The real answer labelled application/octet-stream (clients ignore the type).
    WrongContentType,
    /// HTTP 500 with an empty body.
    Status500Empty,
    /// HTTP 500 with an ErrorInternalServerError SOAP fault.
    Status500Fault,
    /// HTTP 401 with a Basic challenge.
    Status401,
    /// HTTP 403.
    Status403,
    /// HTTP 302 to the same URL.
    RedirectLoop,
    /// HTTP 307 to another listener (which counts who comes).
    RedirectElsewhere,
    /// A "billion laughs" entity expansion.
    EntityBomb,
    /// 100,000 nested elements in the Body.
    DeepNesting,
    /// The real answer with a 4 MiB attribute on its response element.
    HugeAttribute,
    /// Well-formed XML that is not SOAP.
    NotSoap,
    /// The real answer with terminal escapes (ESC, C1 CSI, BEL, CR) and NUL
    /// bytes in a text node: not XML, and dangerous on a console.
    ControlBytes,
    /// A SOAP envelope with two Bodies.
    TwoBodies,
    /// A fault whose detail is nonsense and whose code is not a code.
    FaultGarbageDetail,
    /// HTTP 200 with an empty body.
    EmptyBody,
    /// A SOAP fault that quotes the request's Authorization header.
    EchoCredentials,
    /// GetStreamingEvents: headers, one envelope, then silence.
    StreamOneThenStall,
    /// GetStreamingEvents: an envelope start tag and then endless content.
    StreamEndlessEnvelope,
    /// GetStreamingEvents: envelopes (heartbeats) without end, as fast as possible.
    StreamEndlessHeartbeats,
}

/// Which requests are sabotaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Only requests whose operation (the Body's first element) has this local name.
    Op(&'static str),
}

/// A running hostile server.
pub struct Hostile {
    pub url: String,
    pub addr: SocketAddr,
    stats: Arc<Stats>,
    other: Option<OtherHost>,
    accept: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
pub struct Stats {
    /// Requests read.
    pub requests: AtomicUsize,
    /// Requests answered with the behaviour.
    pub sabotaged: AtomicUsize,
    /// Bytes written by sabotaging behaviours.
    pub bytes_sent: AtomicU64,
}

/// The "other host" of a redirect: counts connections and keeps what it read.
struct OtherHost {
    url: String,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.accept.abort();
        if let Some(o) = &self.other {
            o.task.abort();
        }
    }
}

struct Config {
    behaviour: Behaviour,
    scope: Scope,
    upstream: Option<String>,
    self_url: String,
    other_url: Option<String>,
    client: reqwest::Client,
    stats: Arc<Stats>,
}

impl Hostile {
    /// Starts the server. Without an upstream every request is sabotaged.
    pub async fn start(behaviour: Behaviour, scope: Scope, upstream: Option<String>) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        let url = format!("http://{addr}/EWS/Exchange.asmx");
        let other = if behaviour == Behaviour::RedirectElsewhere {
            Some(other_host().await)
        } else {
            None
        };
        let stats = Arc::new(Stats::default());
        let config = Arc::new(Config {
            behaviour,
            scope,
            upstream,
            self_url: url.clone(),
            other_url: other.as_ref().map(|o| o.url.clone()),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("forwarding client"),
            stats: stats.clone(),
        });
        let accept = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let config = config.clone();
                        conns.spawn(async move {
                            let _ = connection(stream, &config).await;
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Hostile {
            url,
            addr,
            stats,
            other,
            accept,
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }

    pub fn sabotaged(&self) -> usize {
        self.stats.sabotaged.load(Ordering::SeqCst)
    }

    pub fn bytes_sent(&self) -> u64 {
        self.stats.bytes_sent.load(Ordering::SeqCst)
    }

    /// Connections the redirect target received (0 unless something followed a redirect).
    pub fn other_host_connections(&self) -> usize {
        self.other
            .as_ref()
            .map(|o| o.connections.load(Ordering::SeqCst))
            .unwrap_or(0)
    }
}

async fn other_host() -> OtherHost {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = s
                .write_all(
                    b"HTTP/1.1 500 Other Host\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
        }
    });
    OtherHost {
        url: format!("http://{addr}/EWS/Exchange.asmx"),
        connections,
        task,
    }
}

/// A request as read off the wire.
pub struct Request {
    pub head: String,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The local name of the Body's first element.
    pub fn operation(&self) -> Option<String> {
        operation_of(&String::from_utf8_lossy(&self.body))
    }
}

/// The local name of the first element after the SOAP Body start tag.
pub fn operation_of(text: &str) -> Option<String> {
    let body_at = text.find(":Body").or_else(|| text.find("<Body"))?;
    let rest = &text[body_at..];
    let open = rest.find('>')?;
    let after = &rest[open + 1..];
    let start = after.find('<')? + 1;
    let tag: String = after[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
        .collect();
    Some(tag.rsplit(':').next().unwrap_or(&tag).to_string())
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut req = Request {
        head,
        body: buf[head_end..].to_vec(),
    };
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        .min(MAX_BODY);
    while req.body.len() < len {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        req.body.extend_from_slice(&chunk[..n]);
    }
    Some(req)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn connection(mut stream: TcpStream, config: &Config) -> std::io::Result<()> {
    if config.behaviour == Behaviour::ImmediateClose && config.scope == Scope::All {
        config.stats.sabotaged.fetch_add(1, Ordering::SeqCst);
        return Ok(()); // dropped unread
    }
    let Some(req) = read_request(&mut stream).await else {
        return Ok(());
    };
    config.stats.requests.fetch_add(1, Ordering::SeqCst);
    let sabotage = match &config.scope {
        Scope::All => true,
        Scope::Op(name) => req.operation().as_deref() == Some(*name),
    };
    if !sabotage || config.behaviour == Behaviour::PassThrough {
        let (status, body) = forward(config, &req).await;
        return respond(&mut stream, status, "text/xml; charset=utf-8", &body).await;
    }
    config.stats.sabotaged.fetch_add(1, Ordering::SeqCst);
    let mut out = Counted {
        stream,
        stats: &config.stats,
    };
    sabotage_with(&mut out, config, &req).await
}

/// The upstream's answer, or a canned success when there is no upstream.
async fn forward(config: &Config, req: &Request) -> (u16, Vec<u8>) {
    let Some(upstream) = &config.upstream else {
        return (200, canned_envelope(&req.operation().unwrap_or_default()));
    };
    let mut builder = config
        .client
        .post(upstream)
        .header("content-type", "text/xml; charset=utf-8")
        .body(req.body.clone());
    if let Some(auth) = req.header("authorization") {
        builder = builder.header("authorization", auth);
    }
    match builder.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (
                status,
                r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
            )
        }
        Err(e) => (502, format!("upstream failed: {e}").into_bytes()),
    }
}

/// A plausible success envelope for an operation (used without an upstream).
pub fn canned_envelope(op: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>\
         <m:{op}Response xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\" xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\">\
         <m:ResponseMessages><m:{op}ResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode>\
         <m:Folders><t:Folder><t:FolderId Id=\"F1\" ChangeKey=\"ck\"/></t:Folder></m:Folders>\
         </m:{op}ResponseMessage></m:ResponseMessages></m:{op}Response></s:Body></s:Envelope>"
    )
    .into_bytes()
}

struct Counted<'a> {
    stream: TcpStream,
    stats: &'a Stats,
}

impl Counted<'_> {
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stats
            .bytes_sent
            .fetch_add(bytes.len() as u64, Ordering::SeqCst);
        Ok(())
    }

    async fn head(&mut self, status: &str, content_type: &str, extra: &str) -> std::io::Result<()> {
        self.send(
            format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{extra}\r\n").as_bytes(),
        )
        .await
    }

    async fn whole(
        &mut self,
        status: &str,
        content_type: &str,
        body: &[u8],
    ) -> std::io::Result<()> {
        self.head(
            status,
            content_type,
            &format!("Content-Length: {}\r\nConnection: close\r\n", body.len()),
        )
        .await?;
        self.send(body).await?;
        self.stream.flush().await
    }

    async fn stall(&mut self) {
        tokio::time::sleep(STALL).await;
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        if status == 200 { "OK" } else { "Status" },
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}

const XML: &str = "text/xml; charset=utf-8";
const SOAP_OPEN: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">";

fn noise(len: usize, seed: u64) -> Vec<u8> {
    // xorshift: deterministic bytes, no dependency on a random source.
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn stream_envelope(body: &str) -> String {
    format!(
        "<Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\"><Body>{body}</Body></Envelope>"
    )
}

/// A GetStreamingEvents heartbeat envelope.
pub fn heartbeat() -> String {
    stream_envelope(
        "<m:GetStreamingEventsResponse xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\">\
         <m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode>\
         <m:ConnectionStatus>OK</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse>",
    )
}

async fn sabotage_with(
    out: &mut Counted<'_>,
    config: &Config,
    req: &Request,
) -> std::io::Result<()> {
    use Behaviour as B;
    let real = || async { forward(config, req).await.1 };
    match config.behaviour {
        B::PassThrough => unreachable!("handled by the caller"),
        B::GarbageBytes => {
            out.send(&noise(4096, 7)).await?;
        }
        B::Http09 => {
            out.send(b"<html><body>It works!</body></html>\n").await?;
        }
        B::GarbledStatusLine => {
            out.send(b"HTTP/1.1 2x0 Fine\r\nContent-Length: 2\r\n\r\nok")
                .await?;
        }
        B::EndlessContinue => {
            let until = tokio::time::Instant::now() + STALL;
            while tokio::time::Instant::now() < until {
                out.send(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
                out.stream.flush().await?;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        B::EnormousHeader => {
            let value = "x".repeat(1024 * 1024);
            out.head(
                "200 OK",
                XML,
                &format!("X-Huge: {value}\r\nContent-Length: 0\r\n"),
            )
            .await?;
        }
        B::ManyHeaders => {
            let lines: String = (0..10_000).map(|i| format!("X-H{i}: v\r\n")).collect();
            out.head("200 OK", XML, &format!("{lines}Content-Length: 0\r\n"))
                .await?;
        }
        B::ImmediateClose => {
            // Read, then close without a byte.
        }
        B::ResetMidBody => {
            let body = real().await;
            out.head(
                "200 OK",
                XML,
                &format!("Content-Length: {}\r\n", body.len()),
            )
            .await?;
            out.send(&body[..body.len() / 2]).await?;
            out.stream.flush().await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
            #[allow(deprecated)] // zero linger: the close is a reset, and nothing blocks
            out.stream.set_linger(Some(Duration::ZERO))?;
        }
        B::TruncatedBody => {
            let body = real().await;
            out.head(
                "200 OK",
                XML,
                &format!(
                    "Content-Length: {}\r\nConnection: close\r\n",
                    body.len() + 500
                ),
            )
            .await?;
            out.send(&body).await?;
            out.stream.shutdown().await?;
        }
        B::TruncatedEnvelope => {
            let body = real().await;
            out.whole("200 OK", XML, &body[..body.len() / 2]).await?;
        }
        B::StallAfterHeaders => {
            out.head("200 OK", XML, "Transfer-Encoding: chunked\r\n")
                .await?;
            out.stream.flush().await?;
            out.stall().await;
        }
        B::StallMidEnvelope => {
            let body = real().await;
            out.head(
                "200 OK",
                XML,
                &format!("Content-Length: {}\r\n", body.len()),
            )
            .await?;
            out.send(&body[..body.len() / 2]).await?;
            out.stream.flush().await?;
            out.stall().await;
        }
        B::SlowDrip => {
            let body = real().await;
            out.head(
                "200 OK",
                XML,
                &format!("Content-Length: {}\r\nConnection: close\r\n", body.len()),
            )
            .await?;
            for b in body {
                out.send(&[b]).await?;
                out.stream.flush().await?;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        B::EndlessBody => {
            out.head("200 OK", XML, "Transfer-Encoding: chunked\r\n")
                .await?;
            let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
            chunk.extend(std::iter::repeat_n(b' ', 64 * 1024));
            chunk.extend_from_slice(b"\r\n");
            let mut prefix = format!("{:x}\r\n", SOAP_OPEN.len()).into_bytes();
            prefix.extend_from_slice(SOAP_OPEN.as_bytes());
            prefix.extend_from_slice(b"\r\n");
            out.send(&prefix).await?;
            // Until the client hangs up (bounded by the stall time in any case).
            let until = tokio::time::Instant::now() + STALL;
            while tokio::time::Instant::now() < until {
                out.send(&chunk).await?;
            }
        }
        B::HugeBody => {
            let total: u64 = 512 * 1024 * 1024;
            // The announced length alone is enough for a careful client; a
            // careless one would read all of it, so send it for real.
            out.head(
                "200 OK",
                XML,
                &format!("Content-Length: {total}\r\nConnection: close\r\n"),
            )
            .await?;
            let block = vec![b' '; 64 * 1024];
            let mut sent = 0u64;
            while sent < total {
                out.send(&block).await?;
                sent += block.len() as u64;
            }
        }
        B::ChunkedError => {
            out.head("200 OK", XML, "Transfer-Encoding: chunked\r\n")
                .await?;
            out.send(b"10\r\n<s:Envelope xmln\r\nzz\r\nnot hex\r\n0\r\n\r\n")
                .await?;
            out.stream.flush().await?;
        }
        B::GarbageBody => {
            out.whole("200 OK", XML, &noise(2048, 11)).await?;
        }
        B::Utf16Body => {
            let body = String::from_utf8_lossy(&real().await)
                .replace("encoding=\"utf-8\"", "encoding=\"utf-16\"");
            let mut bytes = vec![0xFF, 0xFE];
            for unit in body.encode_utf16() {
                bytes.extend_from_slice(&unit.to_le_bytes());
            }
            out.whole("200 OK", "text/xml; charset=utf-16", &bytes)
                .await?;
        }
        B::InvalidUtf8 => {
            let mut body = real().await;
            // Into the first text node: after the first `>` that is followed by a letter.
            let at = body
                .windows(2)
                .position(|w| w[0] == b'>' && w[1].is_ascii_alphanumeric())
                .map(|p| p + 1)
                .unwrap_or(body.len() / 2);
            body.splice(at..at, [0xC3, 0x28, 0xFF]);
            out.whole("200 OK", XML, &body).await?;
        }
        B::BomMismatch => {
            let mut body = vec![0xFF, 0xFE];
            body.extend(real().await);
            out.whole("200 OK", XML, &body).await?;
        }
        B::HtmlPage => {
            out.whole(
                "200 OK",
                "text/html; charset=utf-8",
                // Markup a report page must show as text, never run or render.
                b"<!DOCTYPE html><html><head><title>Sign in</title><script>window.hostile=1</script></head><body><img src=\"x\" onerror=\"window.hostile=2\"/><form action=\"/login\"><input name=\"user\"/></form></body></html>",
            )
            .await?;
        }
        B::WrongContentType => {
            let body = real().await;
            out.whole("200 OK", "application/octet-stream", &body)
                .await?;
        }
        B::Status500Empty => {
            out.whole("500 Internal Server Error", XML, b"").await?;
        }
        B::Status500Fault => {
            let fault = format!(
                "{SOAP_OPEN}<s:Body><s:Fault><faultcode xmlns:a=\"http://schemas.microsoft.com/exchange/services/2006/types\">a:ErrorInternalServerError</faultcode>\
                 <faultstring>An internal server error occurred. The operation failed.</faultstring><detail>\
                 <e:ResponseCode xmlns:e=\"http://schemas.microsoft.com/exchange/services/2006/errors\">ErrorInternalServerError</e:ResponseCode>\
                 </detail></s:Fault></s:Body></s:Envelope>"
            );
            out.whole("500 Internal Server Error", XML, fault.as_bytes())
                .await?;
        }
        B::Status401 => {
            out.head(
                "401 Unauthorized",
                "text/plain",
                "WWW-Authenticate: Basic realm=\"ews\"\r\nContent-Length: 0\r\nConnection: close\r\n",
            )
            .await?;
        }
        B::Status403 => {
            out.whole("403 Forbidden", "text/plain", b"Forbidden")
                .await?;
        }
        B::RedirectLoop => {
            out.head(
                "302 Found",
                "text/plain",
                &format!(
                    "Location: {}\r\nContent-Length: 0\r\nConnection: close\r\n",
                    config.self_url
                ),
            )
            .await?;
        }
        B::RedirectElsewhere => {
            let to = config.other_url.clone().unwrap_or_default();
            out.head(
                "307 Temporary Redirect",
                "text/plain",
                &format!("Location: {to}\r\nContent-Length: 0\r\nConnection: close\r\n"),
            )
            .await?;
        }
        B::EntityBomb => {
            let mut doc =
                String::from("<?xml version=\"1.0\"?><!DOCTYPE s:Envelope [<!ENTITY lol \"lol\">");
            let mut prev = "lol".to_string();
            for i in 1..12 {
                doc.push_str(&format!(
                    "<!ENTITY lol{i} \"{}\">",
                    format!("&{prev};").repeat(10)
                ));
                prev = format!("lol{i}");
            }
            doc.push_str(&format!(
                "]><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><x>&{prev};</x></s:Body></s:Envelope>"
            ));
            out.whole("200 OK", XML, doc.as_bytes()).await?;
        }
        B::DeepNesting => {
            let n = 100_000;
            let mut doc = String::from(SOAP_OPEN);
            doc.push_str("<s:Body>");
            doc.push_str(&"<a>".repeat(n));
            doc.push_str(&"</a>".repeat(n));
            doc.push_str("</s:Body></s:Envelope>");
            out.whole("200 OK", XML, doc.as_bytes()).await?;
        }
        B::HugeAttribute => {
            let body = String::from_utf8_lossy(&real().await).into_owned();
            let huge = format!(" Huge=\"{}\"", "A".repeat(4 * 1024 * 1024));
            let body = match body.find("Response ") {
                Some(p) => format!("{}{huge}{}", &body[..p + 8], &body[p + 8..]),
                None => body,
            };
            out.whole("200 OK", XML, body.as_bytes()).await?;
        }
        B::ControlBytes => {
            let body = String::from_utf8_lossy(&real().await).into_owned();
            let nasty = "\u{1b}[2J\u{1b}]0;pwned\u{7}\0\0\r\u{9b}31mred\u{1b}[0m\u{1}\u{ffff}";
            let body = match body.find("NoError") {
                Some(p) => format!("{}{nasty}{}", &body[..p], &body[p..]),
                None => format!("{nasty}{body}"),
            };
            out.whole("200 OK", XML, body.as_bytes()).await?;
        }
        B::NotSoap => {
            out.whole(
                "200 OK",
                XML,
                b"<?xml version=\"1.0\"?><status><ok>true</ok><items count=\"0\"/></status>",
            )
            .await?;
        }
        B::TwoBodies => {
            let body = String::from_utf8_lossy(&real().await).into_owned();
            let doubled = match (body.find("<s:Body"), body.rfind("</s:Envelope>")) {
                (Some(b), Some(e)) if b < e => {
                    let part = &body[b..e];
                    format!("{}{part}{part}</s:Envelope>", &body[..b])
                }
                _ => body,
            };
            out.whole("200 OK", XML, doubled.as_bytes()).await?;
        }
        B::FaultGarbageDetail => {
            let fault = format!(
                "{SOAP_OPEN}<s:Body><s:Fault><faultcode>???</faultcode><faultstring></faultstring>\
                 <detail>}}{{ <e:ResponseCode xmlns:e=\"http://schemas.microsoft.com/exchange/services/2006/errors\">Not A Code &amp; \u{1F4A5}</e:ResponseCode>\
                 <junk><junk><junk a=\"1\" b=\"2\"/></junk></junk>{}</detail></s:Fault></s:Body></s:Envelope>",
                "\u{FFFD}".repeat(100)
            );
            out.whole("500 Internal Server Error", XML, fault.as_bytes())
                .await?;
        }
        B::EmptyBody => {
            out.whole("200 OK", XML, b"").await?;
        }
        B::EchoCredentials => {
            let auth = req.header("authorization").unwrap_or("(none)");
            let fault = format!(
                "{SOAP_OPEN}<s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>Rejected credentials {auth}</faultstring>\
                 <detail><request>{}</request></detail></s:Fault></s:Body></s:Envelope>",
                req.head.replace('&', "&amp;").replace('<', "&lt;")
            );
            out.whole("500 Internal Server Error", XML, fault.as_bytes())
                .await?;
        }
        B::StreamOneThenStall => {
            out.head("200 OK", XML, "Transfer-Encoding: chunked\r\n")
                .await?;
            let env = heartbeat();
            out.send(format!("{:x}\r\n{env}\r\n", env.len()).as_bytes())
                .await?;
            out.stream.flush().await?;
            out.stall().await;
        }
        B::StreamEndlessEnvelope => {
            out.head("200 OK", XML, "Transfer-Encoding: chunked\r\n")
                .await?;
            let open = "<Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\"><Body><m:Notification>";
            out.send(format!("{:x}\r\n{open}\r\n", open.len()).as_bytes())
                .await?;
            let filler = "<t:X>filler</t:X>".repeat(4096);
            let chunk = format!("{:x}\r\n{filler}\r\n", filler.len());
            let until = tokio::time::Instant::now() + STALL;
            while tokio::time::Instant::now() < until {
                out.send(chunk.as_bytes()).await?;
            }
        }
        B::StreamEndlessHeartbeats => {
            out.head("200 OK", XML, "Transfer-Encoding: chunked\r\n")
                .await?;
            let env = heartbeat();
            let chunk = format!("{:x}\r\n{env}\r\n", env.len());
            let until = tokio::time::Instant::now() + STALL;
            while tokio::time::Instant::now() < until {
                out.send(chunk.as_bytes()).await?;
            }
        }
    }
    let _ = out.stream.flush().await;
    Ok(())
}
