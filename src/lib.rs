//! ews-conformance: a conformance harness for the Exchange Web Services
//! notification protocol, and a reference server to run it against.

pub mod client;
pub mod ews;
pub mod model;
pub mod xml;
