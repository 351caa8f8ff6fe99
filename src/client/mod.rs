//! The harness's side of the wire: sending requests, reading streaming
//! responses, and receiving push notifications.

mod conn;
pub mod health;
pub mod push;
pub mod session;
pub mod stream;
pub mod transport;
