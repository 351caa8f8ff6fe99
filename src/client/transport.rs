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
    ACCEPT_ENCODING, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderMap, HeaderName,
    HeaderValue,
};

use super::auth::Auth;
use super::auth::redact;
use super::body::{DEFAULT_MAX_BODY_BYTES, decode};
use super::body::{declared_encoding_problem, encoding_problem};
use super::conn::{Conn, Connector, Endpoint};
use super::error::{TransportError, classify, error_chain};
use super::health::TargetHealth;
use super::reply::{Reply, operation_label, reply};

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
                        crate::client::excerpt::excerpt(&to, 200)
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
                    crate::client::excerpt::excerpt(&String::from_utf8_lossy(&body), 300)
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

#[cfg(test)]
mod tests;
