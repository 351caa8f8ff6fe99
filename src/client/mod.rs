//! The harness's HTTP side.

pub mod transport;
