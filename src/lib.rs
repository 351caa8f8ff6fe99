//! ews-conformance: a conformance harness for the Exchange Web Services
//! notification protocol, and a reference server to run it against.

pub mod case;
pub mod check;
pub mod client;
pub mod fuzzing;
pub mod model;
pub mod report;
pub mod selftest;
pub mod settings;
pub mod stress;
pub mod suite;
