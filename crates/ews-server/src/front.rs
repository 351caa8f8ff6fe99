//! The HTTP dialects of an answer: the extra headers Exchange's front end
//! adds, and gzip bodies when the client allows them (IIS dynamic
//! compression). Connections closed after every response live with the
//! accept loop (`listen`).

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Response, header};
use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::StreamExt;

use super::dialects::Dialect;
use super::state::State;
use super::sync::lock;

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
