//! The server's two shared primitives: a lock that survives a panicked
//! request, and the shutdown signal every long-lived task waits on.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, recovering from poisoning: a panicked request must not
/// take the whole server down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Resolves once the server is shutting down.
pub async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
