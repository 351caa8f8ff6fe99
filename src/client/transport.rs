//! The HTTP side of one EWS exchange: POST a SOAP body, read the answer
//! within a deadline, and say *why* when there is no usable answer.
//!
//! The error kinds map to the CLI's exit codes: a target that cannot be
//! reached or refuses the credentials is not a conformance failure.

use std::fmt;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};

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
}

/// Secrets never appear in `{:?}` output.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("Auth::None"),
            Auth::Basic { username, .. } => write!(f, "Auth::Basic({username}, <hidden>)"),
            Auth::Bearer { .. } => f.write_str("Auth::Bearer(<hidden>)"),
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
            other => other,
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

/// Many zero bytes in alternate positions: ASCII text in UTF-16.
fn looks_like_utf16(bytes: &[u8]) -> bool {
    let sample = &bytes[..bytes.len().min(512)];
    let zeros = sample.iter().filter(|b| **b == 0).count();
    sample.len() >= 4 && zeros * 3 >= sample.len()
}

/// Transport settings.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub endpoint: String,
    pub deadline: Duration,
    pub insecure_tls: bool,
    /// Bodies above this size are cut off as a protocol error.
    pub max_body_bytes: usize,
}

impl TransportConfig {
    pub fn new(endpoint: impl Into<String>) -> Self {
        TransportConfig {
            endpoint: endpoint.into(),
            deadline: Duration::from_secs(30),
            insecure_tls: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// A reusable HTTP client bound to one endpoint.
#[derive(Debug, Clone)]
pub struct Transport {
    client: reqwest::Client,
    config: TransportConfig,
}

impl Transport {
    pub fn new(config: TransportConfig) -> Result<Self, TransportError> {
        if reqwest::Url::parse(&config.endpoint).is_err() {
            return Err(TransportError::Unreachable {
                detail: format!("`{}` is not a URL", config.endpoint),
            });
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.deadline)
            .danger_accept_invalid_certs(config.insecure_tls)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| TransportError::Unreachable {
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Transport { client, config })
    }

    pub fn config(&self) -> &TransportConfig {
        &self.config
    }

    /// POSTs `text/xml; charset=utf-8` and reads the whole answer before the deadline.
    pub async fn post(&self, req: &HttpRequest<'_>) -> Result<HttpResponse, TransportError> {
        let started = Instant::now();
        let deadline = self.config.deadline;
        let secrets = req.auth.secrets();
        match tokio::time::timeout(deadline, self.post_inner(req, started)).await {
            Ok(Ok(mut response)) => {
                if let std::borrow::Cow::Owned(clean) = redact(&response.body, &secrets) {
                    response.body = clean;
                }
                for (_, value) in &mut response.headers {
                    if let std::borrow::Cow::Owned(clean) = redact(value, &secrets) {
                        *value = clean;
                    }
                }
                Ok(response)
            }
            Ok(Err(e)) => Err(e.redacted(&secrets)),
            Err(_) => Err(TransportError::Timeout { after: deadline }),
        }
    }

    /// POSTs like [`post`](Self::post) but returns as soon as the status line
    /// and headers have arrived (within `deadline`), leaving the body to be
    /// read incrementally: the way a GetStreamingEvents response is consumed.
    pub async fn open(
        &self,
        req: &HttpRequest<'_>,
        deadline: Duration,
    ) -> Result<OpenResponse, TransportError> {
        let started = Instant::now();
        let send = async {
            let response = self
                .builder(req)?
                .send()
                .await
                .map_err(|e| classify(e, deadline))?;
            let status = response.status().as_u16();
            if (status == 401 || status == 403) && !req.accept_auth_failure {
                return Err(TransportError::AuthRefused { status });
            }
            Ok(OpenResponse {
                status,
                headers: header_list(&response),
                elapsed: started.elapsed(),
                response,
            })
        };
        match tokio::time::timeout(deadline, send).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout { after: deadline }),
        }
    }

    fn builder(&self, req: &HttpRequest<'_>) -> Result<reqwest::RequestBuilder, TransportError> {
        let mut builder = self
            .client
            .post(&self.config.endpoint)
            .header(CONTENT_TYPE, "text/xml; charset=utf-8");
        match req.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                builder = builder.basic_auth(username, Some(password));
            }
            Auth::Bearer { token } => {
                builder = builder.bearer_auth(token);
            }
        }
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
            builder = builder.header(name, value);
        }
        Ok(builder.body(req.body.to_string()))
    }

    async fn post_inner(
        &self,
        req: &HttpRequest<'_>,
        started: Instant,
    ) -> Result<HttpResponse, TransportError> {
        let mut response = self
            .builder(req)?
            .send()
            .await
            .map_err(|e| classify(e, self.config.deadline))?;
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
        let headers = header_list(&response);
        let cap = self.config.max_body_bytes;
        if let Some(declared) = response.content_length()
            && declared > cap as u64
        {
            return Err(TransportError::Protocol {
                detail: format!(
                    "the response declares a body of {declared} bytes, above the limit of {cap} bytes; it was not read"
                ),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| classify(e, self.config.deadline))?
        {
            if body.len() + chunk.len() > cap {
                return Err(TransportError::Protocol {
                    detail: format!(
                        "the response body exceeds the limit of {cap} bytes; reading stopped there"
                    ),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            encoding_problem: encoding_problem(&body),
            body: String::from_utf8_lossy(&body).into_owned(),
            elapsed: started.elapsed(),
        })
    }
}

/// A response whose headers have arrived and whose body is still to be read.
#[derive(Debug)]
pub struct OpenResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Time from sending to the headers.
    pub elapsed: Duration,
    /// The body, to be read incrementally.
    pub response: reqwest::Response,
}

/// The response headers, without cookies.
fn header_list(response: &reqwest::Response) -> Vec<(String, String)> {
    response
        .headers()
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
    let detail = error_chain(&e);
    if e.is_connect() || e.is_builder() {
        TransportError::Unreachable { detail }
    } else if e.is_timeout() {
        TransportError::Timeout { after: deadline }
    } else {
        TransportError::Protocol { detail }
    }
}

/// The error and its causes on one line (reqwest's top message alone is vague).
fn error_chain(e: &dyn std::error::Error) -> String {
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
