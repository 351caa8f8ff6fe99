//! The HTTP dialects: the extra headers Exchange's front end adds, gzip
//! bodies when the client allows them (IIS dynamic compression), and
//! connections the server closes after every response without saying so
//! in a `Connection: close` header (RFC 9112 section 9.6).

use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderMap, HeaderValue, Request, Response, header};
use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::StreamExt;
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use super::dialects::Dialect;
use super::lock;
use super::state::State;

/// The affinity cookie `extra-headers` sets on every answer (Exchange's
/// front end routes by it; clients replay it).
pub const EXTRA_COOKIE: &str =
    "X-BackEndOverrideCookie=reference-server~1941962753~0~0; path=/EWS; secure; HttpOnly";

/// Adds the HTTP dialects to an EWS answer: extra headers, then gzip.
pub fn dress(state: &State, request: &HeaderMap, mut response: Response<Body>) -> Response<Body> {
    if state.dialects.has(Dialect::ExtraHeaders) {
        let id = request_id();
        let status = response.status().as_u16().to_string();
        let h = response.headers_mut();
        let mut add = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.append(name, v);
            }
        };
        add("request-id", id.clone());
        add("X-CalculatedBETarget", "mbx01.reference.example".into());
        add("X-BackEndHttpStatus", status);
        add("X-DiagInfo", "MBX01".into());
        add("X-BEServer", "MBX01".into());
        add("X-FEServer", "CAS01".into());
        add("X-AspNet-Version", "4.0.30319".into());
        add("X-Powered-By", "ASP.NET".into());
        add("Set-Cookie", EXTRA_COOKIE.into());
        if let Some(client) = request
            .get("client-request-id")
            .filter(|_| {
                request
                    .get("return-client-request-id")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            })
            .cloned()
        {
            response.headers_mut().insert("client-request-id", client);
        }
    }
    if state.dialects.has(Dialect::Gzip) && accepts_gzip(request) {
        response = gzip(response);
    }
    response
}

/// A GUID-shaped id, as Exchange's request-id header carries.
fn request_id() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]),
        u16::from_be_bytes([b[8], b[9]]),
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

/// Whether Accept-Encoding allows gzip (RFC 9110 section 12.5.3: a coding
/// with q=0 is refused).
pub fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// The same response with a gzip body. Each piece of a streamed body is
/// flushed on its own, so a client can decode every envelope as it comes.
fn gzip(response: Response<Body>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let encoder = Arc::new(Mutex::new(Some(GzEncoder::new(
        Vec::new(),
        Compression::fast(),
    ))));
    let tail = encoder.clone();
    let pieces = body.into_data_stream().map(move |chunk| {
        let chunk = chunk?;
        let mut guard = lock(&encoder);
        let Some(enc) = guard.as_mut() else {
            return Ok(Bytes::new());
        };
        enc.write_all(&chunk).map_err(axum::Error::new)?;
        enc.flush().map_err(axum::Error::new)?;
        Ok::<Bytes, axum::Error>(Bytes::from(std::mem::take(enc.get_mut())))
    });
    let end = futures_util::stream::once(async move {
        let finished = lock(&tail).take().map(|enc| enc.finish());
        match finished {
            Some(Ok(rest)) => Ok(Bytes::from(rest)),
            Some(Err(e)) => Err(axum::Error::new(e)),
            None => Ok(Bytes::new()),
        }
    });
    let stream = pieces
        .chain(end)
        .filter(|r| futures_util::future::ready(!matches!(r, Ok(b) if b.is_empty())));
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Serves `app` closing each connection once its response (or stream) has
/// been written, with no `Connection: close` header: keep-alive is only
/// switched off after the head went out, so hyper never adds the header.
pub async fn serve_closing(listener: TcpListener, app: Router, mut stop: watch::Receiver<bool>) {
    let mut connections = tokio::task::JoinSet::new();
    let signal = stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(serve_one(stream, app.clone(), signal.clone()));
                    }
                    Err(e) => tracing::debug!(error = %e, "accept failed"),
                }
            }
            _ = stop.wait_for(|v| *v) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Open streams close themselves on shutdown; wait for them, bounded.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

async fn serve_one(stream: tokio::net::TcpStream, app: Router, mut stop: watch::Receiver<bool>) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<()>();
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let app = app.clone();
        let done = done_tx.clone();
        async move {
            let response = match app.oneshot(req.map(Body::new)).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let (parts, body) = response.into_parts();
            let body = Body::new(Announcing {
                inner: body,
                done: Some(done),
            });
            Ok::<_, Infallible>(Response::from_parts(parts, body))
        }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = done_rx.recv() => {}
        _ = stop.wait_for(|v| *v) => {}
    }
    // The body is handed over whole; stop keep-alive: an idle connection
    // closes at once, a busy one after the message in flight. No delay, so
    // the FIN follows the response as closely as it can.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
}

/// A response body that says when hyper is done with it (dropped after
/// its last byte, or on a broken connection).
struct Announcing {
    inner: Body,
    done: Option<mpsc::UnboundedSender<()>>,
}

impl Drop for Announcing {
    fn drop(&mut self) {
        if let Some(d) = self.done.take() {
            let _ = d.send(());
        }
    }
}

impl HttpBody for Announcing {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(accept).expect("ascii"),
        );
        h
    }

    #[test]
    fn gzip_is_used_only_when_accepted() {
        assert!(accepts_gzip(&headers("gzip, deflate")));
        assert!(accepts_gzip(&headers("deflate, GZIP;q=0.5")));
        assert!(accepts_gzip(&headers("*")));
        assert!(!accepts_gzip(&headers("gzip;q=0")));
        assert!(!accepts_gzip(&headers("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn a_gzip_body_decodes_to_the_original() {
        use std::io::Read;
        let text = "<s:Envelope>".repeat(200);
        let r = gzip(Response::new(Body::from(text.clone())));
        assert_eq!(
            r.headers().get(header::CONTENT_ENCODING),
            Some(&HeaderValue::from_static("gzip"))
        );
        let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .expect("body");
        let mut out = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut out)
            .expect("valid gzip");
        assert_eq!(out, text);
        assert!(bytes.len() < text.len());
    }

    #[test]
    fn request_ids_look_like_guids() {
        let id = request_id();
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
        assert_ne!(request_id(), id);
    }
}
