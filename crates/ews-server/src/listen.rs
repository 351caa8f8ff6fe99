//! The accept loop: every connection is served by hyper within the
//! server's limits (a deadline for each request head, which also bounds
//! the idle keep-alive wait; a cap on open connections), and optionally
//! closed after its first response (the close-after-response dialect).
//! The request-body deadline and size limit are layers on the router.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Request, Response};
use hyper::body::Frame;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tower::ServiceExt;

use super::config::ConnectionLimits;

/// How the loop serves its connections.
pub struct Serving {
    pub limits: ConnectionLimits,
    /// Close every connection once its first response has been written,
    /// without a `Connection: close` header (RFC 9112 section 9.6).
    pub close_after_response: bool,
    /// The whole answer (status 503) a connection over the cap gets.
    pub busy: Response<Bytes>,
}

/// Refusals of connections over the cap in flight at once; beyond this a
/// new connection is closed without an answer.
const BUSY_ANSWERS: usize = 64;

/// Serves `app` on `listener` until `stop` turns true, then waits (bounded)
/// for open connections: streams close themselves on shutdown.
pub async fn serve(listener: TcpListener, app: Router, stop: watch::Receiver<bool>, how: Serving) {
    let how = Arc::new(how);
    let permits = Arc::new(Semaphore::new(how.limits.max_connections));
    let busy_slots = Arc::new(Semaphore::new(BUSY_ANSWERS));
    let mut connections = tokio::task::JoinSet::new();
    let mut stopping = stop.clone();
    loop {
        let mut backoff = false;
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        connections.spawn(serve_one(stream, app.clone(), stop.clone(), how.clone(), permit));
                    }
                    Err(_) => match busy_slots.clone().try_acquire_owned() {
                        Ok(slot) => {
                            tracing::debug!("connection refused: the connection cap is reached");
                            connections.spawn(refuse_busy(stream, how.clone(), slot));
                        }
                        Err(_) => drop(stream),
                    },
                },
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    backoff = true;
                }
            },
            _ = stopping.wait_for(|v| *v) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
        if backoff {
            // Out of descriptors, say: do not spin on the error.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

fn http1(limits: &ConnectionLimits) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
}

async fn serve_one(
    stream: TcpStream,
    app: Router,
    mut stop: watch::Receiver<bool>,
    how: Arc<Serving>,
    _permit: OwnedSemaphorePermit,
) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<()>();
    let closing = how.close_after_response;
    // NTLM authenticates a connection, not a request: its state lives here.
    let ntlm = super::auth::ConnectionAuth::default();
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let app = app.clone();
        let done = done_tx.clone();
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ntlm.clone());
        async move {
            let response = match app.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            if !closing {
                return Ok::<_, Infallible>(response);
            }
            let (parts, body) = response.into_parts();
            let body = Body::new(Announcing {
                inner: body,
                done: Some(done),
            });
            Ok::<_, Infallible>(Response::from_parts(parts, body))
        }
    });
    let conn = http1(&how.limits).serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        // Only the closing dialect ever sends on this.
        _ = done_rx.recv() => {}
        _ = stop.wait_for(|v| *v) => {}
    }
    // Stop keep-alive: an idle connection closes at once, a busy one after
    // the message in flight. For the dialect the body is handed over whole
    // and no delay is added, so the FIN follows the response closely.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
}

/// Answers one request on a connection over the cap with the busy answer
/// and closes it; bounded in time whatever the client does.
async fn refuse_busy(stream: TcpStream, how: Arc<Serving>, _slot: OwnedSemaphorePermit) {
    let busy = how.busy.clone();
    let service = hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
        let (parts, body) = busy.clone().into_parts();
        async move { Ok::<_, Infallible>(Response::from_parts(parts, Body::from(body))) }
    });
    let mut builder = http1(&how.limits);
    builder
        .keep_alive(false)
        .header_read_timeout(Duration::from_secs(2));
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(Duration::from_secs(3), conn).await;
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
