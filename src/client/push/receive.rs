//! The HTTP side of the listener: reading a push within its limits and
//! answering it with a SendNotificationResult.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::*;
use super::received::*;
use super::shared::*;
use ews_proto::ews::{SendNotification, SubscriptionStatus, envelope};
use ews_proto::xml::{XmlWriter, ns, parse_document};

/// `<soap:Envelope><soap:Body><m:SendNotificationResult>…`: the listener's
/// reply, with no SOAP header (none is defined for it).
pub fn result_envelope(status: SubscriptionStatus) -> String {
    let mut w = XmlWriter::new();
    w.declaration();
    w.start("soap:Envelope", &[("xmlns:soap", ns::SOAP)]);
    w.start("soap:Body", &[]);
    status.render_result(&mut w);
    w.end("soap:Body").end("soap:Envelope");
    w.into_string()
}

/// Reads a push body as `m:SendNotification`, and finds its subscription id.
pub(super) fn read_notification(body: &[u8]) -> (Result<SendNotification, String>, Option<String>) {
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) => {
            return (
                Err(format!("not UTF-8 (invalid byte at {})", e.valid_up_to())),
                None,
            );
        }
    };
    let doc = match parse_document(text) {
        Ok(d) => d,
        Err(e) => return (Err(format!("not well-formed XML: {e}")), None),
    };
    // Any SubscriptionId will do to pick an answer when the body is malformed.
    let any_id = || {
        doc.descendants()
            .find(|n| n.is_element() && n.tag_name().name() == "SubscriptionId")
            .map(|n| ews_proto::xml::text_of(n).trim().to_string())
    };
    let parsed = envelope::open(&doc)
        .map_err(|e| e.to_string())
        .and_then(|opened| match opened.fault() {
            Some(f) => Err(format!("a SOAP fault {}: {}", f.fault_code, f.fault_string)),
            None => SendNotification::parse(opened.payload).map_err(|e| e.to_string()),
        });
    let id = match &parsed {
        Ok(n) => n.notification.as_ref().map(|n| n.subscription_id.clone()),
        Err(_) => any_id(),
    };
    (parsed, id)
}

/// Why a body was not read in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cut {
    TooLarge,
    /// The sender stalled past the body timeout or the connection broke.
    Incomplete,
}

/// Reads at most `limit` bytes of a body within `timeout`.
pub(super) async fn read_bounded(
    body: Body,
    limit: usize,
    timeout: Duration,
) -> (Bytes, Option<Cut>) {
    let mut body = body;
    let mut buf = BytesMut::new();
    let read = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Some(Cut::Incomplete);
            };
            if let Ok(data) = frame.into_data() {
                let room = limit - buf.len();
                if data.len() > room {
                    buf.extend_from_slice(&data[..room]);
                    return Some(Cut::TooLarge);
                }
                buf.extend_from_slice(&data);
            }
        }
        None
    };
    let cut = tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Some(Cut::Incomplete));
    (buf.freeze(), cut)
}

pub(super) async fn receive(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if !shared.path_has_token(request.uri().path()) {
        shared.counters.wrong_path.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    if request.method() != Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            "push notifications are POSTed\n",
        )
            .into_response();
    }
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let headers = parts
        .headers
        .iter()
        .filter(|(k, _)| *k != header::AUTHORIZATION && *k != header::PROXY_AUTHORIZATION)
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let limit = shared.config.body_limit;
    // A declared length over the cap is refused before reading anything.
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (body, cut) = if declared.is_some_and(|n| n > limit as u64) {
        (Bytes::new(), Some(Cut::TooLarge))
    } else {
        read_bounded(body, limit, shared.config.body_timeout).await
    };
    if cut == Some(Cut::TooLarge) {
        shared.counters.too_large.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(limit, "push refused: body too large");
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("push bodies are limited to {limit} bytes\n"),
        )
            .into_response();
    }
    let ((parsed, subscription_id), answered) = match cut {
        None => {
            let read = read_notification(&body);
            let answer = shared.answer_for(read.1.as_deref());
            (read, answer)
        }
        // Too large was answered above.
        Some(_) => (
            (
                Err("the body was not delivered in full (stalled or broken)".into()),
                None,
            ),
            PushAnswer::HttpError(StatusCode::BAD_REQUEST.as_u16()),
        ),
    };
    let recorded = shared.record(ReceivedPush {
        seq: 0,
        arrived,
        path,
        headers,
        body,
        body_truncated: cut.is_some(),
        parsed,
        subscription_id,
        answered,
    });
    let seq = match recorded {
        Ok(seq) => seq,
        Err(refusal) => {
            let counter = match refusal {
                Refusal::Subscription => &shared.counters.subscription_full,
                Refusal::Listener => &shared.counters.listener_full,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("push refused: queue full");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "push listener queue is full\n",
            )
                .into_response();
        }
    };
    tracing::debug!(seq, %answered, "push received");
    respond(&shared, answered).await
}

/// The TCP listener with a cap on open connections: one over the cap is
/// closed as soon as it is accepted (and counted).
pub(super) struct Limited {
    pub(super) inner: tokio::net::TcpListener,
    pub(super) connections: Arc<Semaphore>,
    pub(super) shared: Arc<Shared>,
}

/// A connection holding its place under the cap until it closes.
pub(super) struct LimitedIo {
    pub(super) stream: tokio::net::TcpStream,
    pub(super) _permit: OwnedSemaphorePermit,
}

impl axum::serve::Listener for Limited {
    type Io = LimitedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            match Arc::clone(&self.connections).try_acquire_owned() {
                Ok(permit) => {
                    return (
                        LimitedIo {
                            stream,
                            _permit: permit,
                        },
                        addr,
                    );
                }
                Err(_) => {
                    self.shared
                        .counters
                        .connections_refused
                        .fetch_add(1, Ordering::Relaxed);
                    drop(stream);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for LimitedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

pub(super) async fn respond(shared: &Shared, answer: PushAnswer) -> Response {
    let soap = |status: SubscriptionStatus| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            result_envelope(status),
        )
            .into_response()
    };
    match answer {
        PushAnswer::Ok => soap(SubscriptionStatus::Ok),
        PushAnswer::Unsubscribe => soap(SubscriptionStatus::Unsubscribe),
        PushAnswer::HttpError(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, format!("push listener answers {status}\n")).into_response()
        }
        PushAnswer::Hang => {
            let mut closing = shared.closing.subscribe();
            let _ = tokio::time::timeout(shared.config.hang_limit, closing.wait_for(|c| *c)).await;
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "push listener stopped waiting\n",
            )
                .into_response()
        }
    }
}
