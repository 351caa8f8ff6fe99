//! The reference server: an embedded EWS endpoint that behaves like
//! Exchange 2013+/Online on the wire for the notification operations and
//! the item and folder operations that cause events. The harness talks to
//! it only over HTTP; real clients (exchangelib, ews-javascript-api) work
//! against it unchanged.

mod auth;
mod config;
pub mod destinations;
pub mod dialects;
pub mod faults;
mod front;
mod http;
mod ids;
mod items;
mod listen;
mod log;
mod pull;
mod push;
mod reply;
mod resolve;
pub mod rewrite;
mod state;
mod store;
mod streaming;
mod subscriptions;
mod sync;
#[cfg(test)]
mod testing;
mod transport;
pub mod validate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{ConnectionLimits, ServerConfig, UserConfig};
pub use destinations::PushDestinations;
pub use dialects::{DIALECTS, Dialect, DialectError, DialectInfo, DialectSet};
pub use faults::{CATALOGUE, Fault, FaultInfo, FaultSet, UnknownFault};
pub use validate::SchemaViolation;

use state::State;
use sync::lock;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("configuration {origin}: {problem}")]
    Config { origin: String, problem: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A server started by [`start`]. Dropping it signals shutdown too.
pub struct RunningServer {
    addr: SocketAddr,
    path: String,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    sweeper: Option<JoinHandle<()>>,
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/EWS/Exchange.asmx`
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.path)
    }

    /// Stops accepting requests, closes streams and push deliveries, and
    /// waits (bounded) for open connections to finish.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Some(s) = self.sweeper.take() {
            s.abort();
        }
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(s) = self.sweeper.take() {
            s.abort();
        }
    }
}

/// Binds the listener and starts serving. Must be called within a tokio runtime.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    config.check().map_err(|problem| ServerError::Config {
        origin: "(in memory)".into(),
        problem,
    })?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    let path = config.path.clone();
    let (shutdown, signal) = watch::channel(false);
    let state = Arc::new(State::new(config, signal.clone()));
    let app = http::router(state.clone());
    let serving = listen::Serving {
        limits: state.config.limits,
        close_after_response: state.dialects.has(Dialect::CloseAfterResponse),
        busy: http::busy_answer(&state),
    };
    let server = tokio::spawn(listen::serve(listener, app, signal.clone(), serving));
    let sweeper = tokio::spawn(sweep(state));
    tracing::info!(%addr, "reference server listening");
    Ok(RunningServer {
        addr,
        path,
        shutdown,
        server: Some(server),
        sweeper: Some(sweeper),
    })
}

/// The request handling of a server without its listener: parse, validate
/// and dispatch against in-memory state, exactly as a POST would be. For
/// fuzzing and property tests; must be used within a tokio runtime
/// (streaming and push answers start tasks).
pub struct OfflineServer {
    state: Arc<State>,
    shutdown: watch::Sender<bool>,
}

/// Ends the tasks its answers started (streams, push deliveries).
impl Drop for OfflineServer {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

impl OfflineServer {
    pub fn new(config: ServerConfig) -> Self {
        let (shutdown, signal) = watch::channel(false);
        OfflineServer {
            state: Arc::new(State::new(config, signal)),
            shutdown,
        }
    }

    /// The HTTP status and body the server answers `body` with, as the
    /// authenticated user at index `user` (of `ServerConfig::users`).
    pub fn handle(&self, user: usize, body: &[u8]) -> (u16, Option<String>) {
        http::answer(&self.state, user, body)
    }

    /// Removes expired subscriptions, as the running server does periodically.
    pub fn sweep(&self) -> usize {
        lock(&self.state.registry).sweep(self.state.minute())
    }
}

/// Removes expired subscriptions a few times per protocol minute.
async fn sweep(state: Arc<State>) {
    let period = (state.minute() / 4).clamp(Duration::from_millis(20), Duration::from_secs(15));
    loop {
        tokio::time::sleep(period).await;
        let gone = lock(&state.registry).sweep(state.minute());
        if gone > 0 {
            tracing::debug!(gone, "expired subscriptions removed");
        }
        if state.is_shutting_down() {
            return;
        }
    }
}
