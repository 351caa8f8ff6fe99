//! The HTTP side of one EWS exchange: POST a SOAP body, read the answer
//! within a deadline, and say *why* when there is no usable answer.
//!
//! The error kinds map to the CLI's exit codes: a target that cannot be
//! reached or refuses the credentials is not a conformance failure.
//!
//! Connections (the `conn` module): a POST goes over a kept HTTP/1.1
//! connection when one is idle. A kept connection the server closed before
//! any byte of the answer (legal at any time) gets the request once more on
//! a new connection, with a note. Every answer must be its request's
//! (`<Op>Response` or a fault); only a clean one leaves its connection open
//! for the next request. Any other is watched briefly for a second response
//! and the connection closed, so a server that answers twice is named
//! once, in the step that got both, and never misread as the next answer.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use reqwest::header::{
    ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HOST,
    HeaderMap, HeaderName, HeaderValue,
};

use super::conn::{Conn, Connector, Endpoint};
use super::health::TargetHealth;

/// How a request authenticates.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// No Authorization header.
    #[default]
    None,
    Basic {
        username: String,
        password: String,
    },
    Bearer {
        token: String,
    },
    /// NTLM (NTLMv2), as on-premises Exchange offers it: a handshake on
    /// each connection, which then carries this user's requests.
    Ntlm {
        /// The login as NTLM sends it (`alice`, or the UPN).
        username: String,
        /// The NetBIOS domain (may be empty).
        domain: String,
        password: String,
    },
}

/// Secrets never appear in `{:?}` output.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("Auth::None"),
            Auth::Basic { username, .. } => write!(f, "Auth::Basic({username}, <hidden>)"),
            Auth::Bearer { .. } => f.write_str("Auth::Bearer(<hidden>)"),
            Auth::Ntlm {
                username, domain, ..
            } => write!(f, "Auth::Ntlm({domain}\\{username}, <hidden>)"),
        }
    }
}

impl Auth {
    /// What must never appear in any output: the bearer token, the base64
    /// credential of a Basic Authorization header, and the password itself
    /// when it has at least [`MIN_REDACTED_PASSWORD`] characters (a shorter
    /// one, `test` say, would blank out ordinary words of every response
    /// and turn captures and asserts into false failures).
    pub fn secrets(&self) -> Vec<String> {
        use base64::Engine;
        let all = match self {
            Auth::None => Vec::new(),
            Auth::Basic { username, password } => {
                let mut v = vec![
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}")),
                ];
                if password.chars().count() >= MIN_REDACTED_PASSWORD {
                    v.push(password.clone());
                }
                v
            }
            Auth::Bearer { token } => vec![token.clone()],
            // The NTLM messages carry no password, only proofs of it.
            Auth::Ntlm { password, .. } if password.chars().count() >= MIN_REDACTED_PASSWORD => {
                vec![password.clone()]
            }
            Auth::Ntlm { .. } => Vec::new(),
        };
        all.into_iter().filter(|s| !s.is_empty()).collect()
    }
}

/// Passwords shorter than this are not searched for in responses (see [`Auth::secrets`]).
pub const MIN_REDACTED_PASSWORD: usize = 6;

/// `text` with every secret replaced by `<redacted>`. A target that echoes
/// the request's Authorization header (some error pages do) must not put
/// the credentials into a report.
pub fn redact<'t>(text: &'t str, secrets: &[String]) -> std::borrow::Cow<'t, str> {
    let mut out = std::borrow::Cow::Borrowed(text);
    for s in secrets {
        if out.contains(s.as_str()) {
            out = std::borrow::Cow::Owned(out.replace(s.as_str(), "<redacted>"));
        }
    }
    out
}

/// Why an exchange produced no usable HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Connection refused, DNS failure, TLS handshake failure, bad URL.
    #[error("target unreachable: {detail}")]
    Unreachable { detail: String },
    /// HTTP 401 or 403 where the step did not expect it.
    #[error("authentication refused: HTTP {status}")]
    AuthRefused { status: u16 },
    /// No complete response within the deadline.
    #[error("no complete response within {}s", after.as_secs_f64())]
    Timeout { after: Duration },
    /// The connection broke or the body could not be read.
    #[error("protocol error: {detail}")]
    Protocol { detail: String },
    /// The answer is another request's: its SOAP Body holds the response
    /// element of another operation (the connection was out of step).
    #[error("this answers another operation: sent {sent}, got {got}")]
    MisAnswered {
        sent: String,
        got: String,
        status: u16,
        /// The answer as received (redacted).
        body: String,
    },
}

impl TransportError {
    fn redacted(self, secrets: &[String]) -> Self {
        let clean = |d: String| redact(&d, secrets).into_owned();
        match self {
            TransportError::Unreachable { detail } => TransportError::Unreachable {
                detail: clean(detail),
            },
            TransportError::Protocol { detail } => TransportError::Protocol {
                detail: clean(detail),
            },
            TransportError::MisAnswered {
                sent,
                got,
                status,
                body,
            } => TransportError::MisAnswered {
                sent,
                got,
                status,
                body: clean(body),
            },
            other => other,
        }
    }

    /// What a report shows as the evidence of this error, when there is more than its message.
    pub fn evidence(&self) -> Option<String> {
        match self {
            TransportError::MisAnswered { status, body, .. } => Some(format!(
                "HTTP {status}: {}",
                crate::check::excerpt(body, 600)
            )),
            _ => None,
        }
    }

    /// Whether the whole run is pointless (exit code 2) rather than this exchange failing.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            TransportError::Unreachable { .. } | TransportError::AuthRefused { .. }
        )
    }
}

/// One outgoing request.
#[derive(Debug, Clone)]
pub struct HttpRequest<'a> {
    pub body: &'a str,
    pub auth: &'a Auth,
    /// Extra headers, in order (never Authorization: use `auth`).
    pub headers: &'a [(String, String)],
    /// Return 401/403 as a response instead of [`TransportError::AuthRefused`].
    pub accept_auth_failure: bool,
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as text (invalid UTF-8 is replaced, never fatal).
    pub body: String,
    pub elapsed: Duration,
    /// Why the body's bytes are not plain UTF-8, when they are not (see
    /// [`encoding_problem`]); the caller decides whether that is a failure.
    pub encoding_problem: Option<String>,
    /// Legal things the transport did or saw that a reader should know
    /// (a request sent again on a new connection); never failures.
    pub notes: Vec<String>,
    /// Bytes arrived on the connection after this answer was complete: the
    /// target sent a second response to one request. The evidence.
    pub second_response: Option<String>,
}

/// The default bound on one response body: far above any answer the
/// notification operations produce (a GetEvents batch is at most 50
/// events), far below what would strain the harness. A larger body is a
/// [`TransportError::Protocol`] and its remaining bytes are never read.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Why a body is not plain UTF-8 text: EWS speaks UTF-8 only, so a UTF-16
/// body, a byte order mark that contradicts it, or a stray invalid byte is
/// named here instead of surfacing later as "not well-formed XML".
/// A UTF-8 byte order mark alone is legal and not a problem.
pub fn encoding_problem(bytes: &[u8]) -> Option<String> {
    let utf16_bom = match bytes {
        [0xFF, 0xFE, ..] => Some("UTF-16LE"),
        [0xFE, 0xFF, ..] => Some("UTF-16BE"),
        _ => None,
    };
    let valid = std::str::from_utf8(bytes);
    if let Some(bom) = utf16_bom {
        let rest = if valid.is_err() && looks_like_utf16(&bytes[2..]) {
            "UTF-16 text follows"
        } else {
            "but the text after it is not UTF-16"
        };
        return Some(format!(
            "the body starts with a {bom} byte order mark ({rest}); EWS responses are UTF-8"
        ));
    }
    match valid {
        Ok(_) if looks_like_utf16(bytes) => Some(
            "the body looks like UTF-16 without a byte order mark (NUL bytes between the characters); EWS responses are UTF-8"
                .into(),
        ),
        Ok(text) => {
            if text.contains('\0') {
                Some(
                    "the body contains NUL characters (is it UTF-16 served as UTF-8?); EWS responses are UTF-8"
                        .into(),
                )
            } else {
                None
            }
        }
        Err(e) if looks_like_utf16(bytes) => Some(format!(
            "the body looks like UTF-16 without a byte order mark (invalid UTF-8 at byte {}); EWS responses are UTF-8",
            e.valid_up_to()
        )),
        Err(e) => Some(format!(
            "the body is not valid UTF-8: byte 0x{:02X} at offset {} cannot start or continue a character",
            bytes[e.valid_up_to()],
            e.valid_up_to()
        )),
    }
}

/// What a response says of its own encoding that is not UTF-8: a
/// `charset` in Content-Type, or an `encoding` in the XML declaration.
/// EWS answers are UTF-8, and the harness reads them as such, so another
/// declared encoding is named (with the byte-level problem, if any).
pub fn declared_encoding_problem(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    let is_utf8 = |name: &str| {
        let n = name
            .trim()
            .trim_matches(|c| c == '"' || c == '\'')
            .to_ascii_lowercase();
        n == "utf-8" || n == "utf8"
    };
    let charset = content_type.and_then(|ct| {
        ct.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| v.trim().trim_matches('"').to_string())
        })
    });
    let declared = xml_declared_encoding(body);
    let mut said = Vec::new();
    if let Some(c) = charset.as_deref().filter(|c| !is_utf8(c)) {
        said.push(format!("Content-Type says charset={c}"));
    }
    if let Some(d) = declared.as_deref().filter(|d| !is_utf8(d)) {
        said.push(format!("the XML declaration says encoding=\"{d}\""));
    }
    if said.is_empty() {
        return None;
    }
    Some(format!(
        "{}; EWS responses are UTF-8, and the body was read as UTF-8",
        said.join(" and ")
    ))
}

/// The `encoding` pseudo-attribute of a leading `<?xml …?>` declaration.
fn xml_declared_encoding(body: &[u8]) -> Option<String> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let head = &body[..body.len().min(200)];
    let text = std::str::from_utf8(head).ok().or_else(|| {
        // Cut inside a character: the declaration itself is ASCII.
        let end = head
            .iter()
            .position(|b| !b.is_ascii())
            .unwrap_or(head.len());
        std::str::from_utf8(&head[..end]).ok()
    })?;
    let decl = text.strip_prefix("<?xml")?.split("?>").next()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = rest[1..].split(quote).next()?;
    Some(value.to_string())
}

/// Many zero bytes in alternate positions: ASCII text in UTF-16.
fn looks_like_utf16(bytes: &[u8]) -> bool {
    let sample = &bytes[..bytes.len().min(512)];
    let zeros = sample.iter().filter(|b| **b == 0).count();
    sample.len() >= 4 && zeros * 3 >= sample.len()
}

/// How long a connection is watched after an answer that is not a clean
/// `<Op>Response` (an HTTP error, a fault, an empty Body): a server that
/// sends a second response does it right behind the first.
pub const DEFAULT_SECOND_RESPONSE_GRACE: Duration = Duration::from_millis(250);

/// Transport settings.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub endpoint: String,
    pub deadline: Duration,
    pub insecure_tls: bool,
    /// Bodies above this size are cut off as a protocol error.
    pub max_body_bytes: usize,
    /// See [`DEFAULT_SECOND_RESPONSE_GRACE`].
    pub second_response_grace: Duration,
}

impl TransportConfig {
    pub fn new(endpoint: impl Into<String>) -> Self {
        TransportConfig {
            endpoint: endpoint.into(),
            deadline: Duration::from_secs(30),
            insecure_tls: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            second_response_grace: DEFAULT_SECOND_RESPONSE_GRACE,
        }
    }
}

/// What an answer's SOAP Body holds, against what the request asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `<Op>Response` for the request's `<Op>`.
    Answers,
    /// A SOAP fault.
    Fault,
    /// Another operation's response element (a local name ending in
    /// `Response`).
    Other(String),
    /// No Body element to compare (not SOAP, an empty Body) or the
    /// request's operation is unknown: other checks judge such answers.
    Unknown,
}

/// Compares the answer's operation element with the request's.
pub fn reply(request: &str, response: &str) -> Reply {
    let Some(got) = body_operation(response) else {
        return Reply::Unknown;
    };
    if got == "Fault" {
        return Reply::Fault;
    }
    match body_operation(request) {
        Some(op) if got == format!("{op}Response") => Reply::Answers,
        // Only another operation's response element says "out of step";
        // anything else in the Body is the structure checks' to judge.
        Some(_) if got.ends_with("Response") => Reply::Other(got),
        _ => Reply::Unknown,
    }
}

/// The request's operation as a report names it.
fn operation_label(request: &str) -> String {
    body_operation(request).unwrap_or_else(|| "a request without a readable operation".into())
}

/// The local name of the SOAP Body's first element, when `text` is an
/// Envelope whose Body has one. A streaming scan that stops there: it never
/// expands entities and costs nothing on a large answer.
pub fn body_operation(text: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut in_body = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                let name = e.local_name();
                match depth {
                    1 if name.as_ref() != b"Envelope" => return None,
                    2 if name.as_ref() == b"Body" => in_body = true,
                    3 if in_body => return Some(String::from_utf8_lossy(name.as_ref()).into()),
                    _ => {}
                }
            }
            Ok(Event::Empty(e)) => {
                let name = e.local_name();
                match depth + 1 {
                    1 => return None,
                    3 if in_body => return Some(String::from_utf8_lossy(name.as_ref()).into()),
                    _ => {}
                }
            }
            Ok(Event::End(_)) => {
                if depth == 2 && in_body {
                    return None;
                }
                depth = depth.saturating_sub(1);
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// A reusable HTTP client bound to one endpoint.
///
/// POST exchanges go over the harness's own keep-alive connections (the
/// `conn` module); a GetStreamingEvents response ([`Transport::open`])
/// goes over a reqwest client that keeps no idle connections, so a
/// connection that carried a stream is never used for anything else.
#[derive(Debug, Clone)]
pub struct Transport {
    conns: Arc<Connector>,
    streams: reqwest::Client,
    config: TransportConfig,
    health: Arc<TargetHealth>,
}

/// Where a connection goes once its answer is read.
enum Fate {
    /// A clean `<Op>Response`: kept for the next request.
    Reuse,
    /// Any other answer: watched for a second response, then closed. A
    /// server that answers twice does it after an error answer (seen: an
    /// empty Body, a fault); never reusing such a connection means a late
    /// second response can never be read as the next request's answer.
    Watch,
    /// Another operation's response: the connection is out of step.
    Drop(String),
}

/// An answer read whole, with the connection that carried it.
struct Answered {
    response: HttpResponse,
    conn: Conn,
    fate: Fate,
}

impl Transport {
    pub fn new(config: TransportConfig) -> Result<Self, TransportError> {
        let unreachable = |detail: String| TransportError::Unreachable { detail };
        let endpoint = Endpoint::parse(&config.endpoint).map_err(unreachable)?;
        let conns =
            Connector::new(endpoint, config.insecure_tls, config.deadline).map_err(unreachable)?;
        let streams = reqwest::Client::builder()
            .connect_timeout(config.deadline)
            .danger_accept_invalid_certs(config.insecure_tls)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            // The POSTs connect directly (src/client/conn.rs); the streams
            // must reach the same server the same way.
            .no_proxy()
            .build()
            .map_err(|e| unreachable(format!("cannot build the HTTP client: {e}")))?;
        Ok(Transport {
            conns: Arc::new(conns),
            streams,
            config,
            health: Arc::default(),
        })
    }

    pub fn config(&self) -> &TransportConfig {
        &self.config
    }

    /// Connections opened for POST exchanges so far.
    pub fn connections_opened(&self) -> u64 {
        self.conns.opened()
    }

    /// POSTs `text/xml; charset=utf-8` and reads the whole answer before
    /// the deadline. An answer that is not a clean `<Op>Response` is
    /// followed by a short watch of its connection (see
    /// [`TransportConfig::second_response_grace`]), outside the deadline.
    pub async fn post(&self, req: &HttpRequest<'_>) -> Result<HttpResponse, TransportError> {
        if let Some(detail) = self.health.dead() {
            return Err(TransportError::Unreachable { detail });
        }
        let result = self.post_watched(req).await;
        match &result {
            Ok(_) => self.health.answered(),
            Err(e) => self.health.failed(e),
        }
        result
    }

    /// Whether the target is still taken for alive (see [`TargetHealth`]).
    pub fn health(&self) -> &TargetHealth {
        &self.health
    }

    async fn post_watched(&self, req: &HttpRequest<'_>) -> Result<HttpResponse, TransportError> {
        let started = Instant::now();
        let deadline = self.config.deadline;
        let secrets = req.auth.secrets();
        let answered = match tokio::time::timeout(deadline, self.post_inner(req, started)).await {
            Ok(Ok(answered)) => answered,
            Ok(Err(e)) => return Err(e.redacted(&secrets)),
            Err(_) => return Err(TransportError::Timeout { after: deadline }),
        };
        let Answered {
            mut response,
            mut conn,
            fate,
        } = answered;
        match fate {
            // A second response right behind a clean answer (in one
            // read with it, say) belongs to this step too.
            Fate::Reuse => match conn.more_arrived() {
                Some(more) => response.second_response = Some(more),
                None => self.conns.put_back(conn),
            },
            Fate::Watch => {
                response.second_response =
                    conn.watch_for_more(self.config.second_response_grace).await;
            }
            Fate::Drop(got) => {
                return Err(TransportError::MisAnswered {
                    sent: operation_label(req.body),
                    got,
                    status: response.status,
                    body: response.body,
                }
                .redacted(&secrets));
            }
        }
        let clean = |text: &mut String| {
            if let std::borrow::Cow::Owned(c) = redact(text, &secrets) {
                *text = c;
            }
        };
        clean(&mut response.body);
        for (_, value) in &mut response.headers {
            clean(value);
        }
        for note in &mut response.notes {
            clean(note);
        }
        if let Some(more) = &mut response.second_response {
            clean(more);
        }
        Ok(response)
    }

    /// POSTs like [`post`](Self::post) but returns as soon as the status line
    /// and headers have arrived (within `deadline`), leaving the body to be
    /// read incrementally: the way a GetStreamingEvents response is consumed.
    /// The connection is never reused (the client keeps no idle ones), and
    /// the body is not compressed (no `Accept-Encoding`), so what the
    /// reader times is when the target sent each envelope.
    pub async fn open(
        &self,
        req: &HttpRequest<'_>,
        deadline: Duration,
    ) -> Result<OpenResponse, TransportError> {
        if let Some(detail) = self.health.dead() {
            return Err(TransportError::Unreachable { detail });
        }
        let result = self.open_unwatched(req, deadline).await;
        match &result {
            Ok(_) => self.health.answered(),
            Err(e) => self.health.failed(e),
        }
        result
    }

    async fn open_unwatched(
        &self,
        req: &HttpRequest<'_>,
        deadline: Duration,
    ) -> Result<OpenResponse, TransportError> {
        let started = Instant::now();
        if matches!(req.auth, Auth::Ntlm { .. }) {
            return match tokio::time::timeout(deadline, self.open_ntlm(req, started)).await {
                Ok(result) => result,
                Err(_) => Err(TransportError::Timeout { after: deadline }),
            };
        }
        let send = async {
            let response = self
                .stream_builder(req)?
                .send()
                .await
                .map_err(|e| classify(e, deadline))?;
            let status = response.status().as_u16();
            if (status == 401 || status == 403) && !req.accept_auth_failure {
                return Err(TransportError::AuthRefused { status });
            }
            Ok(OpenResponse {
                status,
                headers: header_list(response.headers()),
                elapsed: started.elapsed(),
                body: Box::pin(futures_util::StreamExt::map(response.bytes_stream(), |r| {
                    r.map_err(|e| e.to_string())
                })),
            })
        };
        match tokio::time::timeout(deadline, send).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout { after: deadline }),
        }
    }

    /// A stream under NTLM: the handshake needs a connection the harness
    /// holds, so the stream goes on one of its own (fresh, never pooled),
    /// without `Accept-Encoding` like every stream.
    async fn open_ntlm(
        &self,
        req: &HttpRequest<'_>,
        started: Instant,
    ) -> Result<OpenResponse, TransportError> {
        let op = operation_label(req.body);
        let mut conn = self.conns.connect().await?;
        let ntlm = self.ntlm_leg(&mut conn, req, &op).await?;
        let mut request = self.ntlm_request(req, ntlm)?;
        request.headers_mut().remove(ACCEPT_ENCODING);
        let response = conn
            .send(request, &op)
            .await
            .map_err(|f| TransportError::Protocol { detail: f.detail })?;
        let status = response.status().as_u16();
        if (status == 401 || status == 403) && !req.accept_auth_failure {
            return Err(TransportError::AuthRefused { status });
        }
        let headers = header_list(response.headers());
        let frames = http_body_util::BodyStream::new(response.into_body());
        // The connection lives as long as its body is read.
        let body = futures_util::StreamExt::filter_map(frames, move |frame| {
            let _held = &conn;
            let item = match frame {
                Ok(f) => f.into_data().ok().map(Ok),
                Err(e) => Some(Err(error_chain(&e))),
            };
            std::future::ready(item)
        });
        Ok(OpenResponse {
            status,
            headers,
            elapsed: started.elapsed(),
            body: Box::pin(body),
        })
    }

    fn stream_builder(
        &self,
        req: &HttpRequest<'_>,
    ) -> Result<reqwest::RequestBuilder, TransportError> {
        let mut builder = self
            .streams
            .post(&self.config.endpoint)
            .header(CONTENT_TYPE, "text/xml; charset=utf-8");
        if let Some(auth) = authorization(req.auth) {
            builder = builder.header(AUTHORIZATION, auth);
        }
        for (name, value) in extra_headers(req)? {
            builder = builder.header(name, value);
        }
        Ok(builder.body(req.body.to_string()))
    }

    /// The request for the harness's own connections: what reqwest sent,
    /// plus `Accept-Encoding: gzip` as the common EWS clients send it.
    fn request(
        &self,
        req: &HttpRequest<'_>,
    ) -> Result<hyper::Request<Full<Bytes>>, TransportError> {
        let endpoint = self.conns.endpoint();
        let mut request = hyper::Request::post(endpoint.target())
            .body(Full::new(Bytes::from(req.body.to_string())))
            .map_err(|e| TransportError::Unreachable {
                detail: format!("cannot build the request: {e}"),
            })?;
        let headers = request.headers_mut();
        if let Ok(host) = HeaderValue::from_str(endpoint.authority()) {
            headers.insert(HOST, host);
        }
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/xml; charset=utf-8"),
        );
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        if let Some(auth) = authorization(req.auth) {
            headers.insert(AUTHORIZATION, auth);
        }
        for (name, value) in extra_headers(req)? {
            headers.append(name, value);
        }
        Ok(request)
    }

    /// The request, with the NTLM AUTHENTICATE message when the handshake
    /// left one for it to carry.
    fn ntlm_request(
        &self,
        req: &HttpRequest<'_>,
        authenticate: Option<HeaderValue>,
    ) -> Result<hyper::Request<Full<Bytes>>, TransportError> {
        let mut request = self.request(req)?;
        if let Some(value) = authenticate {
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        Ok(request)
    }

    /// For NTLM, authenticates `conn` as the request's user: the NEGOTIATE
    /// leg (answered 401 with a CHALLENGE) on a connection of its own, and
    /// the AUTHENTICATE message returned for the request itself to carry,
    /// as NTLM over HTTP does. `None`: not NTLM, or `conn` already carries
    /// this user's requests.
    async fn ntlm_leg(
        &self,
        conn: &mut Conn,
        req: &HttpRequest<'_>,
        op: &str,
    ) -> Result<Option<HeaderValue>, TransportError> {
        let Auth::Ntlm {
            username,
            domain,
            password,
        } = req.auth
        else {
            return Ok(None);
        };
        let who = format!("{domain}\\{username}");
        if conn.ntlm_user() == Some(who.as_str()) {
            return Ok(None);
        }
        if conn.is_reused() {
            // A pooled connection may be another user's: start afresh.
            *conn = self.conns.connect().await?;
        }
        let mut first = self.request(req)?;
        let mut negotiate =
            HeaderValue::from_str(&ews_proto::ntlm::to_header(&ews_proto::ntlm::negotiate()))
                .map_err(|e| TransportError::Protocol {
                    detail: format!("cannot build the NTLM NEGOTIATE header: {e}"),
                })?;
        negotiate.set_sensitive(true);
        first.headers_mut().insert(AUTHORIZATION, negotiate);
        let mut response = conn
            .send(first, op)
            .await
            .map_err(|f| TransportError::Protocol {
                detail: format!("NTLM negotiation: {}", f.detail),
            })?;
        let status = response.status().as_u16();
        let token = response
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(ews_proto::ntlm::from_header);
        // The 401's body is read (bounded) so the connection can go on.
        let mut read = 0usize;
        while let Some(frame) = response.body_mut().frame().await {
            let frame = frame.map_err(|e| TransportError::Protocol {
                detail: format!("NTLM negotiation: {}", error_chain(&e)),
            })?;
            read += frame.data_ref().map_or(0, |d| d.len());
            if read > 64 * 1024 {
                return Err(TransportError::Protocol {
                    detail: "NTLM negotiation: the 401 answer's body exceeds 64 KiB".into(),
                });
            }
        }
        conn.answer_complete();
        let Some(token) = token.filter(|_| status == 401) else {
            return Err(TransportError::AuthRefused { status });
        };
        let challenge =
            ews_proto::ntlm::read_challenge(&token).map_err(|e| TransportError::Protocol {
                detail: format!("the target's NTLM CHALLENGE is unreadable: {e}"),
            })?;
        let message = ews_proto::ntlm::authenticate(
            &challenge,
            username,
            domain,
            password,
            &rand::random(),
            ews_proto::ntlm::filetime_now(),
        );
        let mut value =
            HeaderValue::from_str(&ews_proto::ntlm::to_header(&message)).map_err(|e| {
                TransportError::Protocol {
                    detail: format!("cannot build the NTLM AUTHENTICATE header: {e}"),
                }
            })?;
        value.set_sensitive(true);
        // Taken for authenticated; a 401 to the request ends this
        // connection (it is not put back).
        conn.set_ntlm_user(who);
        Ok(Some(value))
    }

    async fn post_inner(
        &self,
        req: &HttpRequest<'_>,
        started: Instant,
    ) -> Result<Answered, TransportError> {
        let op = operation_label(req.body);
        let (mut conn, mut notes) = self.conns.checkout().await?;
        let ntlm = self.ntlm_leg(&mut conn, req, &op).await?;
        let mut response = match conn.send(self.ntlm_request(req, ntlm)?, &op).await {
            Ok(r) => r,
            Err(failure) if conn.is_reused() && failure.nothing_arrived => {
                // The server closed the idle connection as the request went
                // out (legal at any time, RFC 9112 §9.6): it never answered,
                // so the request goes once more on a new connection.
                notes.push(format!(
                    "the connection kept from an earlier answer was closed by the target before any byte of an answer arrived ({}); \
                     HTTP/1.1 lets a server close an idle connection at any time (RFC 9112 section 9.6), so the request was sent once more, on a new connection",
                    failure.detail
                ));
                conn = self.conns.connect().await?;
                let ntlm = self.ntlm_leg(&mut conn, req, &op).await?;
                conn.send(self.ntlm_request(req, ntlm)?, &op)
                    .await
                    .map_err(|f| TransportError::Protocol {
                        detail: format!(
                            "{}{} (on a new connection, after the target had closed the kept one without answering)",
                            f.detail,
                            if f.nothing_arrived { "" } else { " after part of the response head arrived" }
                        ),
                    })?
            }
            Err(failure) => {
                return Err(TransportError::Protocol {
                    detail: format!(
                        "{}{}",
                        failure.detail,
                        if failure.nothing_arrived {
                            ""
                        } else {
                            " after part of the response head arrived"
                        }
                    ),
                });
            }
        };
        let status = response.status().as_u16();
        if (status == 401 || status == 403) && !req.accept_auth_failure {
            return Err(TransportError::AuthRefused { status });
        }
        if (300..400).contains(&status) {
            // Never followed: a redirected POST would carry the credentials
            // to wherever the target points, and an EWS endpoint that
            // redirects is misconfigured for every request alike.
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            return Err(TransportError::Unreachable {
                detail: match location {
                    Some(to) => format!(
                        "the endpoint redirects (HTTP {status}) to `{}`; redirects are never followed: set the endpoint to the final EWS URL",
                        crate::check::excerpt(&to, 200)
                    ),
                    None => format!(
                        "the endpoint answered HTTP {status} (a redirect without a Location); redirects are never followed"
                    ),
                },
            });
        }
        let headers = header_list(response.headers());
        let cap = self.config.max_body_bytes;
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(declared) = declared
            && declared > cap as u64
        {
            return Err(TransportError::Protocol {
                detail: format!(
                    "the response declares a body of {declared} bytes, above the limit of {cap} bytes; it was not read"
                ),
            });
        }
        let mut body = Vec::new();
        while let Some(frame) = response.body_mut().frame().await {
            let frame = frame.map_err(|e| TransportError::Protocol {
                // Part of the answer arrived: a failure, never retried.
                detail: format!(
                    "the connection broke after {} bytes of the body ({}); what arrived: {}",
                    body.len(),
                    error_chain(&e),
                    crate::check::excerpt(&String::from_utf8_lossy(&body), 300)
                ),
            })?;
            let Ok(chunk) = frame.into_data() else {
                continue; // trailers
            };
            if body.len() + chunk.len() > cap {
                return Err(TransportError::Protocol {
                    detail: format!(
                        "the response body exceeds the limit of {cap} bytes; reading stopped there"
                    ),
                });
            }
            body.extend_from_slice(&chunk);
        }
        conn.answer_complete();
        let body = decode(response.headers(), body, cap)?;
        let text = String::from_utf8_lossy(&body).into_owned();
        let encoding = encoding_problem(&body).or_else(|| {
            let ct = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.as_str());
            declared_encoding_problem(ct, &body)
        });
        let fate = match reply(req.body, &text) {
            Reply::Other(got) => Fate::Drop(got),
            Reply::Answers if (200..300).contains(&status) => Fate::Reuse,
            _ => Fate::Watch,
        };
        Ok(Answered {
            response: HttpResponse {
                status,
                headers,
                encoding_problem: encoding,
                body: text,
                elapsed: started.elapsed(),
                notes,
                second_response: None,
            },
            conn,
            fate,
        })
    }
}

/// The Authorization header for `auth`, marked sensitive.
fn authorization(auth: &Auth) -> Option<HeaderValue> {
    use base64::Engine;
    let text = match auth {
        // NTLM's headers belong to its handshake (see `ntlm_leg`).
        Auth::None | Auth::Ntlm { .. } => return None,
        Auth::Basic { username, password } => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
        ),
        Auth::Bearer { token } => format!("Bearer {token}"),
    };
    let mut value = HeaderValue::from_str(&text).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The request's extra headers (an Authorization among them is ignored: use `auth`).
fn extra_headers(req: &HttpRequest<'_>) -> Result<Vec<(HeaderName, HeaderValue)>, TransportError> {
    let mut out = Vec::new();
    for (name, value) in req.headers {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| TransportError::Protocol {
                detail: format!("`{name}` is not a valid HTTP header name"),
            })?;
        if name == AUTHORIZATION {
            continue;
        }
        let value = HeaderValue::from_str(value).map_err(|_| TransportError::Protocol {
            detail: format!("the value of header `{name}` is not valid"),
        })?;
        out.push((name, value));
    }
    Ok(out)
}

/// The body without its content coding. The request accepts gzip only;
/// a body that says gzip and is not, or another coding, is unreadable.
fn decode(headers: &HeaderMap, body: Vec<u8>, cap: usize) -> Result<Vec<u8>, TransportError> {
    use std::io::Read;
    let Some(coding) = headers.get(CONTENT_ENCODING) else {
        return Ok(body);
    };
    let coding = String::from_utf8_lossy(coding.as_bytes())
        .trim()
        .to_ascii_lowercase();
    match coding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(cap as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| TransportError::Protocol {
                    detail: format!(
                        "the response says `Content-Encoding: {coding}` but its {} bytes are not gzip data ({e}); they begin: {}",
                        body.len(),
                        crate::check::excerpt(&String::from_utf8_lossy(&body), 200)
                    ),
                })?;
            if out.len() > cap {
                return Err(TransportError::Protocol {
                    detail: format!(
                        "the gzip response body decodes to more than the limit of {cap} bytes; decoding stopped there"
                    ),
                });
            }
            Ok(out)
        }
        other => Err(TransportError::Protocol {
            detail: format!(
                "the response is encoded with `Content-Encoding: {}`, which the request did not accept (it accepts gzip only)",
                crate::check::excerpt(other, 60)
            ),
        }),
    }
}

/// A body read piece by piece as it arrives.
pub type BodyStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, String>> + Send>>;

/// A response whose headers have arrived and whose body is still to be read.
pub struct OpenResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Time from sending to the headers.
    pub elapsed: Duration,
    /// The body, to be read incrementally.
    pub body: BodyStream,
}

impl fmt::Debug for OpenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("elapsed", &self.elapsed)
            .finish_non_exhaustive()
    }
}

/// The response headers, without cookies.
fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| *name != reqwest::header::SET_COOKIE)
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn classify(e: reqwest::Error, deadline: Duration) -> TransportError {
    let detail = with_tls_hint(error_chain(&e));
    if e.is_connect() || e.is_builder() {
        TransportError::Unreachable { detail }
    } else if e.is_timeout() {
        TransportError::Timeout { after: deadline }
    } else {
        TransportError::Protocol { detail }
    }
}

/// What to do about a certificate the harness does not trust, added to an
/// error that is about one.
pub(crate) fn with_tls_hint(detail: String) -> String {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        format!(
            "{detail} (the target's TLS certificate is not trusted: for a test server with a \
             self-signed certificate, use --insecure-tls or EWS_INSECURE_TLS=1)"
        )
    } else {
        detail
    }
}

/// The error and its causes on one line (reqwest's top message alone is vague).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        format!("http://{addr}/EWS/Exchange.asmx")
    }

    fn transport(endpoint: String, deadline: Duration) -> Transport {
        let mut cfg = TransportConfig::new(endpoint);
        cfg.deadline = deadline;
        Transport::new(cfg).expect("transport builds")
    }

    #[tokio::test]
    async fn posts_xml_with_auth_and_headers() {
        let router = Router::new().route(
            "/EWS/Exchange.asmx",
            post(|headers: HeaderMap, body: String| async move {
                let get = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_string()
                };
                format!(
                    "{}|{}|{}|{}",
                    get("content-type"),
                    get("authorization"),
                    get("x-anchormailbox"),
                    body
                )
            }),
        );
        let t = transport(serve(router).await, Duration::from_secs(10));
        let auth = Auth::Basic {
            username: "u@example.test".into(),
            password: "pw".into(),
        };
        let headers = vec![("X-AnchorMailbox".to_string(), "u@example.test".to_string())];
        let resp = t
            .post(&HttpRequest {
                body: "<x/>",
                auth: &auth,
                headers: &headers,
                accept_auth_failure: false,
            })
            .await
            .expect("answer");
        assert_eq!(resp.status, 200);
        // The echoed credential (exactly `dUBleGFtcGxlLnRlc3Q6cHc=`, so it
        // was sent) comes back redacted.
        assert_eq!(
            resp.body,
            "text/xml; charset=utf-8|Basic <redacted>|u@example.test|<x/>"
        );
        assert_eq!(resp.encoding_problem, None);
    }

    #[test]
    fn a_declared_encoding_other_than_utf8_is_named() {
        let xml = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>";
        let p = declared_encoding_problem(Some("text/xml; charset=utf-8"), xml).expect("named");
        assert!(
            p.contains("encoding=\"ISO-8859-1\"") && p.contains("UTF-8"),
            "{p}"
        );
        let p = declared_encoding_problem(Some("text/xml; Charset=\"windows-1252\""), b"<a/>")
            .expect("named");
        assert!(p.contains("charset=windows-1252"), "{p}");
        assert_eq!(
            declared_encoding_problem(
                Some("text/xml; charset=UTF-8"),
                b"\xEF\xBB\xBF<?xml version='1.0' encoding='utf-8'?><a/>"
            ),
            None
        );
        assert_eq!(declared_encoding_problem(None, b"<a/>"), None);
    }

    #[test]
    fn certificate_errors_carry_the_insecure_tls_hint() {
        let hinted = with_tls_hint("invalid peer certificate: UnknownIssuer".into());
        assert!(hinted.contains("--insecure-tls") && hinted.contains("EWS_INSECURE_TLS=1"));
        assert_eq!(
            with_tls_hint("connection refused".into()),
            "connection refused"
        );
    }

    #[test]
    fn encoding_problems_are_named() {
        assert_eq!(encoding_problem(b"<a>caf\xC3\xA9</a>"), None);
        assert_eq!(
            encoding_problem(b"\xEF\xBB\xBF<a/>"),
            None,
            "a UTF-8 BOM is fine"
        );
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("<a>x</a>".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let p = encoding_problem(&utf16).expect("UTF-16");
        assert!(
            p.contains("UTF-16LE byte order mark (UTF-16 text follows)"),
            "{p}"
        );
        let p = encoding_problem(b"\xFF\xFE<a/>").expect("a lying BOM");
        assert!(p.contains("not UTF-16"), "{p}");
        let bare: Vec<u8> = "<a>x</a>"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        let p = encoding_problem(&bare).expect("UTF-16 without BOM");
        assert!(p.contains("looks like UTF-16"), "{p}");
        let p = encoding_problem(b"<a>\xC3\x28</a>").expect("invalid");
        assert!(p.contains("byte 0xC3 at offset 3"), "{p}");
    }

    #[test]
    fn secrets_are_redacted() {
        let auth = Auth::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        let secrets = auth.secrets();
        assert_eq!(secrets, ["dTpodW50ZXIy", "hunter2"]);
        assert_eq!(
            redact("Basic dTpodW50ZXIy or hunter2", &secrets),
            "Basic <redacted> or <redacted>"
        );
        assert!(matches!(
            redact("clean", &secrets),
            std::borrow::Cow::Borrowed(_)
        ));
        assert!(Auth::None.secrets().is_empty());
        let short = Auth::Basic {
            username: "u".into(),
            password: "test".into(),
        };
        assert_eq!(
            short.secrets(),
            ["dTp0ZXN0"],
            "a short password is not searched for"
        );
    }

    #[tokio::test]
    async fn classifies_failures() {
        let router = Router::new()
            .route(
                "/EWS/Exchange.asmx",
                post(|| async { StatusCode::UNAUTHORIZED }),
            )
            .route(
                "/slow",
                post(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            );
        let endpoint = serve(router).await;
        let req = HttpRequest {
            body: "<x/>",
            auth: &Auth::None,
            headers: &[],
            accept_auth_failure: false,
        };
        let t = transport(endpoint.clone(), Duration::from_secs(10));
        assert_eq!(
            t.post(&req).await,
            Err(TransportError::AuthRefused { status: 401 })
        );
        let accepting = HttpRequest {
            accept_auth_failure: true,
            ..req.clone()
        };
        assert_eq!(t.post(&accepting).await.map(|r| r.status), Ok(401));

        let slow = transport(
            endpoint.replace("/EWS/Exchange.asmx", "/slow"),
            Duration::from_millis(200),
        );
        let err = slow.post(&req).await.expect_err("deadline passes");
        assert!(matches!(err, TransportError::Timeout { .. }), "{err:?}");
        assert!(!err.is_fatal());

        // A port nothing listens on: bind one, then drop the listener.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let gone = transport(format!("http://{dead}/EWS"), Duration::from_secs(5));
        let err = gone.post(&req).await.expect_err("refused");
        assert!(matches!(err, TransportError::Unreachable { .. }), "{err:?}");
        assert!(err.is_fatal());
        assert!(Transport::new(TransportConfig::new("not a url")).is_err());
    }

    #[test]
    fn the_body_operation_is_found() {
        let env = |body: &str| {
            format!(
                "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Header><t:X xmlns:t=\"t\"/></s:Header><s:Body>{body}</s:Body></s:Envelope>"
            )
        };
        let m = "xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"";
        assert_eq!(
            body_operation(&env(&format!(
                "<m:Subscribe {m}><m:PullSubscriptionRequest/></m:Subscribe>"
            )))
            .as_deref(),
            Some("Subscribe")
        );
        assert_eq!(
            body_operation(&env(&format!("<m:GetEvents {m}/>"))).as_deref(),
            Some("GetEvents")
        );
        assert_eq!(body_operation(&env("")), None, "an empty Body");
        assert_eq!(
            body_operation("<s:Envelope xmlns:s=\"e\"><s:Body/></s:Envelope>"),
            None
        );
        assert_eq!(body_operation("<html><body><p/></body></html>"), None);
        assert_eq!(body_operation("not xml"), None);

        let sub = env(&format!("<m:Subscribe {m}/>"));
        let ok = env(&format!("<m:SubscribeResponse {m}/>"));
        let other = env(&format!("<m:CreateFolderResponse {m}/>"));
        let fault = env("<s:Fault><faultcode>s:Client</faultcode></s:Fault>");
        assert_eq!(reply(&sub, &ok), Reply::Answers);
        assert_eq!(reply(&sub, &fault), Reply::Fault);
        assert_eq!(
            reply(&sub, &other),
            Reply::Other("CreateFolderResponse".into())
        );
        assert_eq!(reply(&sub, &env("")), Reply::Unknown);
        assert_eq!(
            reply(&sub, &env("<a><a/></a>")),
            Reply::Unknown,
            "not a response element"
        );
        assert_eq!(
            reply("<broken", &ok),
            Reply::Unknown,
            "the request's operation is unknown"
        );
    }

    #[test]
    fn content_codings() {
        use std::io::Write;
        let mut headers = HeaderMap::new();
        assert_eq!(
            decode(&headers, b"plain".to_vec(), 100),
            Ok(b"plain".to_vec())
        );
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"<a>packed</a>").expect("compress");
        let packed = gz.finish().expect("compress");
        assert_eq!(
            decode(&headers, packed.clone(), 100),
            Ok(b"<a>packed</a>".to_vec())
        );
        let err = decode(&headers, packed, 5).expect_err("above the cap");
        assert!(
            err.to_string()
                .contains("decodes to more than the limit of 5 bytes"),
            "{err}"
        );
        let err = decode(&headers, b"<a>plain</a>".to_vec(), 100).expect_err("a lie");
        assert!(err.to_string().contains("are not gzip data"), "{err}");
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
        let err = decode(&headers, b"x".to_vec(), 100).expect_err("not accepted");
        assert!(
            err.to_string()
                .contains("`Content-Encoding: br`, which the request did not accept"),
            "{err}"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let shown = format!(
            "{:?} {:?}",
            Auth::Basic {
                username: "u".into(),
                password: "hunter2".into()
            },
            Auth::Bearer {
                token: "tok123".into()
            }
        );
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok123"),
            "{shown}"
        );
    }
}
