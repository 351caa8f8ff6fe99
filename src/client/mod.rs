//! The harness's side of the wire: reading streaming responses and
//! receiving push notifications.

pub mod push;
pub mod stream;
