//! The EWS notification protocol vocabulary, shared by the harness (which
//! renders requests and reads responses) and the reference server (which
//! reads requests and renders responses).

mod codes;
pub mod envelope;
mod error;
pub mod events;
pub mod grammar;
pub mod items;
pub mod messages;
pub mod time;
mod version;

pub use codes::{ResponseClass, ResponseCode};
pub use envelope::{EnvelopeStyle, RequestHeader, ServerVersionInfo, SoapFault};
pub use error::ParseError;
pub use events::{Event, EventKind, Id, Notification, ObjectId};
pub use messages::*;
pub use version::{SERVER_VERSIONS, at_least_2010_sp1};
