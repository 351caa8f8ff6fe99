//! The harness's own HTTP/1.1 connections for its POST exchanges.
//!
//! A library pool (reqwest's) hides two things the gate must know:
//! whether a request went out on a connection that had already carried an
//! answer (HTTP/1.1 lets a server close such an idle connection at any
//! time, RFC 9112 §9.6, so a request that meets one is sent again on a
//! fresh connection, as HTTP clients do), and whether bytes arrived on a
//! connection after its answer was complete (a second response to one
//! request, which a reused connection would hand to the next request as
//! its answer). So each connection here is a hyper HTTP/1.1 connection over
//! a socket wrapper that counts what it reads, and the pool is a short list.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::error::TransportError;

/// How much of the most recent bytes a connection keeps as evidence.
const TAIL: usize = 1024;
/// Idle connections kept for reuse (the harness runs a few cases at once).
const MAX_IDLE: usize = 8;
/// An idle connection older than this is closed rather than reused.
const MAX_IDLE_AGE: Duration = Duration::from_secs(60);
/// How long an idle connection may take to be ready for the next request.
const READY_WAIT: Duration = Duration::from_secs(1);

/// Where the connections go.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    https: bool,
    host: String,
    port: u16,
    /// The Host header.
    authority: String,
    /// The request target (origin form).
    target: String,
}

impl Endpoint {
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(url).map_err(|_| format!("`{url}` is not a URL"))?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(format!("`{other}` URLs are not supported (http or https)")),
        };
        let host = url
            .host_str()
            .ok_or_else(|| format!("`{url}` names no host"))?
            .to_string();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("`{url}` names no port"))?;
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let mut target = url.path().to_string();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        // An IPv6 literal is bracketed in the URL; the socket wants it bare.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Ok(Endpoint {
            https,
            host,
            port,
            authority,
            target,
        })
    }

    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    pub(crate) fn target(&self) -> &str {
        &self.target
    }
}

/// What one connection's socket saw, shared between the socket wrapper
/// (which hyper drives) and the exchange that uses the connection.
#[derive(Default)]
struct Wire {
    /// Bytes read since the connection opened.
    read: AtomicU64,
    /// Set once an answer was read completely; cleared when a request goes out.
    complete: AtomicBool,
    /// Bytes read while `complete` was set.
    after_complete: AtomicU64,
    /// The first of them (evidence).
    extra: Mutex<Vec<u8>>,
    /// The most recent bytes read (evidence).
    tail: Mutex<VecDeque<u8>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Wire {
    fn saw(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.read.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        if self.complete.load(Ordering::SeqCst) {
            self.after_complete
                .fetch_add(bytes.len() as u64, Ordering::SeqCst);
            let mut extra = lock(&self.extra);
            let room = TAIL.saturating_sub(extra.len());
            extra.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        let mut tail = lock(&self.tail);
        let keep = &bytes[bytes.len().saturating_sub(TAIL)..];
        tail.extend(keep.iter().copied());
        let excess = tail.len().saturating_sub(TAIL);
        tail.drain(..excess);
    }

    /// The last `max` bytes read, as text.
    fn tail_text(&self, max: usize) -> String {
        let tail = lock(&self.tail);
        let skip = tail.len().saturating_sub(max);
        let bytes: Vec<u8> = tail.iter().skip(skip).copied().collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A socket (plain or TLS) that reports every byte it reads to its [`Wire`].
struct Counted {
    inner: Box<dyn Io>,
    wire: Arc<Wire>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            self.wire.saw(&buf.filled()[before..]);
        }
        result
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How a connection's task ended: `Ok` when the server closed it cleanly
/// between messages, else hyper's reason.
type Ended = Option<Result<(), String>>;

/// One HTTP/1.1 connection.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    wire: Arc<Wire>,
    ended: watch::Receiver<Ended>,
    task: tokio::task::AbortHandle,
    /// Answers completely read on this connection.
    answered: u32,
    /// When the last answer was complete.
    idle_since: Instant,
    /// The operation of the last request (for a later note).
    last_op: String,
    /// A second handle on the socket, to look at what waits unread on an
    /// idle connection before it is reused (none for a TLS connection's
    /// ciphertext, which may be a legal close_notify).
    probe: Option<std::net::TcpStream>,
    /// The user (`DOMAIN\user`) an NTLM handshake authenticated this
    /// connection as: its later requests need no Authorization.
    ntlm_user: Option<String>,
}

/// What waits unread on an idle connection's socket.
enum Waiting {
    Nothing,
    /// The server closed it (legal at any time).
    Closed,
    Bytes(Vec<u8>),
}

impl Drop for Conn {
    fn drop(&mut self) {
        // A connection is dropped mid-answer on a deadline; its task must
        // not keep reading a stalled or endless body.
        self.task.abort();
    }
}

/// Why a request got no response head.
#[derive(Debug)]
pub(crate) struct SendFailure {
    pub detail: String,
    /// No byte arrived on the connection after the request went out.
    pub nothing_arrived: bool,
}

impl Conn {
    /// Whether this connection carried an answer before.
    pub(crate) fn is_reused(&self) -> bool {
        self.answered > 0
    }

    /// The user an NTLM handshake authenticated this connection as.
    pub(crate) fn ntlm_user(&self) -> Option<&str> {
        self.ntlm_user.as_deref()
    }

    pub(crate) fn set_ntlm_user(&mut self, who: String) {
        self.ntlm_user = Some(who);
    }

    /// Open, and not idle for too long (whether hyper is ready for the
    /// next request is awaited at checkout: right after an answer it may
    /// not have noticed yet).
    fn usable(&self) -> bool {
        self.ended.borrow().is_none()
            && !self.sender.is_closed()
            && self.wire.after_complete.load(Ordering::SeqCst) == 0
            && self.idle_since.elapsed() < MAX_IDLE_AGE
    }

    /// Peeks at the socket: a FIN or bytes that arrived while the
    /// connection was idle and hyper has not read yet.
    fn waiting(&self) -> Waiting {
        let Some(probe) = &self.probe else {
            return Waiting::Nothing;
        };
        let mut buf = [0u8; TAIL];
        match probe.peek(&mut buf) {
            Ok(0) => Waiting::Closed,
            Ok(n) => Waiting::Bytes(buf[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Waiting::Nothing,
            Err(_) => Waiting::Closed,
        }
    }

    /// Sends one request and waits for the response head.
    pub(crate) async fn send(
        &mut self,
        request: hyper::Request<Full<Bytes>>,
        op: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>, SendFailure> {
        self.last_op = op.to_string();
        // Right after an answer hyper may not have taken in its end yet (an
        // NTLM handshake's second leg follows its 401 at once).
        let _ = tokio::time::timeout(READY_WAIT, self.sender.ready()).await;
        self.wire.complete.store(false, Ordering::SeqCst);
        let before = self.wire.read.load(Ordering::SeqCst);
        let result = self.sender.send_request(request).await;
        result.map_err(|e| SendFailure {
            detail: super::error::error_chain(&e),
            nothing_arrived: self.wire.read.load(Ordering::SeqCst) == before,
        })
    }

    /// Marks the answer complete: bytes from now on are not part of it.
    pub(crate) fn answer_complete(&mut self) {
        self.answered += 1;
        self.idle_since = Instant::now();
        self.wire.after_complete.store(0, Ordering::SeqCst);
        lock(&self.wire.extra).clear();
        self.wire.complete.store(true, Ordering::SeqCst);
    }

    /// Watches the idle connection for up to `grace`: the evidence of a
    /// second response if bytes arrive (or already had, in the same read as
    /// the end of the answer, which hyper then rejects as unexpected).
    /// Returns early when the server closes the connection.
    pub(crate) async fn watch_for_more(&mut self, grace: Duration) -> Option<String> {
        let _ = tokio::time::timeout(grace, self.ended.wait_for(|e| e.is_some())).await;
        self.more_arrived()
    }

    /// Bytes that arrived after the answer was complete, if any (as evidence).
    pub(crate) fn more_arrived(&self) -> Option<String> {
        let after = self.wire.after_complete.load(Ordering::SeqCst);
        // hyper ends a client connection with this error when bytes are
        // already buffered (or arrive) while no request is outstanding;
        // it has no predicate for it, so its message is matched.
        let unexpected = matches!(
            &*self.ended.borrow(),
            Some(Err(e)) if e.contains("unexpected message")
        );
        if after == 0 && !unexpected {
            return None;
        }
        if after > 0 {
            let extra = lock(&self.wire.extra);
            Some(format!(
                "{after} more bytes arrived: {}",
                crate::client::excerpt::excerpt(&String::from_utf8_lossy(&extra), 600)
            ))
        } else {
            // They came in one read with the answer's end: show that end.
            Some(format!(
                "more bytes arrived right behind the answer; the last bytes the connection received: …{}",
                self.wire.tail_text(600)
            ))
        }
    }
}

/// Opens connections and keeps the idle ones.
pub(crate) struct Connector {
    endpoint: Endpoint,
    tls: Option<tokio_rustls::TlsConnector>,
    connect_timeout: Duration,
    idle: Mutex<Vec<Conn>>,
    /// Connections opened so far.
    opened: AtomicU64,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("endpoint", &self.endpoint)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Connector {
    pub(crate) fn new(
        endpoint: Endpoint,
        insecure_tls: bool,
        connect_timeout: Duration,
    ) -> Result<Self, String> {
        let tls = if endpoint.https {
            Some(tokio_rustls::TlsConnector::from(Arc::new(tls_config(
                insecure_tls,
            )?)))
        } else {
            None
        };
        Ok(Connector {
            endpoint,
            tls,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
            opened: AtomicU64::new(0),
        })
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Connections opened so far.
    pub(crate) fn opened(&self) -> u64 {
        self.opened.load(Ordering::SeqCst)
    }

    /// An idle connection, or a new one. Also returns what was noticed
    /// about idle connections that were found unusable (a second response
    /// that arrived on one while it waited).
    pub(crate) async fn checkout(&self) -> Result<(Conn, Vec<String>), TransportError> {
        let mut notes = Vec::new();
        loop {
            let candidate = lock(&self.idle).pop();
            let Some(mut conn) = candidate else { break };
            if conn.usable() {
                match conn.waiting() {
                    Waiting::Nothing => {
                        let ready = tokio::time::timeout(READY_WAIT, conn.sender.ready()).await;
                        if matches!(ready, Ok(Ok(()))) {
                            return Ok((conn, notes));
                        }
                    }
                    Waiting::Closed => {}
                    Waiting::Bytes(bytes) => {
                        notes.push(idle_note(
                            &conn.last_op,
                            &format!(
                                "{} bytes were waiting: {}",
                                bytes.len(),
                                crate::client::excerpt::excerpt(
                                    &String::from_utf8_lossy(&bytes),
                                    600
                                )
                            ),
                        ));
                        continue;
                    }
                }
            }
            if let Some(more) = conn.more_arrived() {
                notes.push(idle_note(&conn.last_op, &more));
            }
        }
        Ok((self.connect().await?, notes))
    }

    /// Keeps a connection whose answer was complete and clean for reuse.
    pub(crate) fn put_back(&self, conn: Conn) {
        if !conn.usable() {
            return;
        }
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// A new connection.
    pub(crate) async fn connect(&self) -> Result<Conn, TransportError> {
        let unreachable = |detail: String| TransportError::Unreachable { detail };
        let addr = (self.endpoint.host.as_str(), self.endpoint.port);
        let tcp = match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(unreachable(format!(
                    "cannot connect to {}: {e}",
                    self.endpoint.authority
                )));
            }
            Err(_) => {
                return Err(unreachable(format!(
                    "cannot connect to {} within {}s",
                    self.endpoint.authority,
                    self.connect_timeout.as_secs_f64()
                )));
            }
        };
        let _ = tcp.set_nodelay(true);
        let (tcp, probe) = match &self.tls {
            Some(_) => (tcp, None),
            None => probe(tcp).map_err(|e| {
                unreachable(format!(
                    "cannot set up the connection to {}: {e}",
                    self.endpoint.authority
                ))
            })?,
        };
        let io: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(self.endpoint.host.clone())
                    .map_err(|e| {
                        unreachable(format!("`{}` is not a TLS name: {e}", self.endpoint.host))
                    })?;
                let handshake = tls.connect(name, tcp);
                match tokio::time::timeout(self.connect_timeout, handshake).await {
                    Ok(Ok(s)) => Box::new(s),
                    Ok(Err(e)) => {
                        return Err(unreachable(super::error::with_tls_hint(format!(
                            "TLS handshake with {} failed: {e}",
                            self.endpoint.authority
                        ))));
                    }
                    Err(_) => {
                        return Err(unreachable(format!(
                            "no TLS handshake with {} within {}s",
                            self.endpoint.authority,
                            self.connect_timeout.as_secs_f64()
                        )));
                    }
                }
            }
        };
        let wire = Arc::new(Wire::default());
        let io = hyper_util::rt::TokioIo::new(Counted {
            inner: io,
            wire: wire.clone(),
        });
        let (sender, connection) =
            hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| TransportError::Protocol {
                    detail: super::error::error_chain(&e),
                })?;
        let (tx, ended) = watch::channel(None);
        let task = tokio::spawn(async move {
            let result = connection.await.map_err(|e| super::error::error_chain(&e));
            let _ = tx.send(Some(result));
        })
        .abort_handle();
        self.opened.fetch_add(1, Ordering::SeqCst);
        Ok(Conn {
            sender,
            wire,
            ended,
            task,
            answered: 0,
            idle_since: Instant::now(),
            last_op: String::new(),
            probe,
            ntlm_user: None,
        })
    }
}

/// The socket, and a second (non-blocking) handle on it for peeking.
fn probe(tcp: TcpStream) -> io::Result<(TcpStream, Option<std::net::TcpStream>)> {
    let std = tcp.into_std()?;
    let second = std.try_clone()?;
    Ok((TcpStream::from_std(std)?, Some(second)))
}

/// What a later exchange says about an idle connection that received
/// more after its (clean) answer: a note, as the step that caused it is over.
fn idle_note(op: &str, evidence: &str) -> String {
    format!(
        "the connection that carried the answer to an earlier {op} request received more while it was idle (a second response to one request?), so it was not used again: {evidence}"
    )
}

/// TLS as the reqwest client had it: the web PKI roots, HTTP/1.1 only.
fn tls_config(insecure: bool) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// `insecure_tls`: any certificate, though the handshake signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_split_for_the_socket_and_the_request() {
        let e = Endpoint::parse("https://mail.example.test/EWS/Exchange.asmx").expect("url");
        assert!(e.https);
        assert_eq!(
            (e.host.as_str(), e.port, e.authority(), e.target()),
            (
                "mail.example.test",
                443,
                "mail.example.test",
                "/EWS/Exchange.asmx"
            )
        );
        let e = Endpoint::parse("http://[::1]:8080/EWS/Exchange.asmx?x=1").expect("url");
        assert!(!e.https);
        assert_eq!(
            (e.host.as_str(), e.port, e.authority(), e.target()),
            ("::1", 8080, "[::1]:8080", "/EWS/Exchange.asmx?x=1")
        );
        assert!(Endpoint::parse("ftp://x/EWS").is_err());
        assert!(Endpoint::parse("not a url").is_err());
    }

    #[test]
    fn the_wire_counts_what_comes_after_an_answer() {
        let wire = Wire::default();
        wire.saw(b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(wire.after_complete.load(Ordering::SeqCst), 0);
        wire.complete.store(true, Ordering::SeqCst);
        wire.saw(b"HTTP/1.1 200 again");
        assert_eq!(wire.after_complete.load(Ordering::SeqCst), 18);
        assert_eq!(&lock(&wire.extra)[..], b"HTTP/1.1 200 again");
        assert_eq!(wire.read.load(Ordering::SeqCst), 19 + 18);
        // The evidence stays bounded whatever arrives.
        wire.saw(&vec![b'x'; 5 * TAIL]);
        assert_eq!(lock(&wire.extra).len(), TAIL);
        assert_eq!(lock(&wire.tail).len(), TAIL);
        assert_eq!(wire.tail_text(3), "xxx");
    }
}
