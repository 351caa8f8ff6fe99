//! The harness's side of the wire: sending requests, reading streaming
//! responses, and receiving push notifications.

pub mod auth;
pub mod body;
mod conn;
pub mod error;
pub mod excerpt;
pub mod health;
pub mod push;
pub mod reply;
pub mod session;
pub mod stream;
pub mod transport;
