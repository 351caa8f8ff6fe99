//! The EWS notification protocol vocabulary, shared by the harness (which
//! renders requests and reads responses) and the reference server (which
//! reads requests and renders responses).

mod codes;
pub mod envelope;
pub mod events;
pub mod grammar;
pub mod items;
pub mod messages;
pub mod time;

pub use codes::{ResponseClass, ResponseCode};
pub use envelope::{EnvelopeStyle, RequestHeader, ServerVersionInfo, SoapFault};
pub use events::{Event, EventKind, Id, Notification, ObjectId};
pub use messages::*;

/// The `RequestServerVersion` values the schema knows (digest 0.1), oldest first.
pub const SERVER_VERSIONS: &[&str] = &[
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2009",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2012",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2016",
    "V2015_10_05",
    "V2016_01_06",
    "V2016_04_13",
    "V2016_07_13",
    "V2016_10_10",
];

/// Whether `version` is at least Exchange2010_SP1 (streaming, FreeBusyChangedEvent).
pub fn at_least_2010_sp1(version: &str) -> bool {
    let rank = |v: &str| SERVER_VERSIONS.iter().position(|x| *x == v);
    match (rank(version), rank("Exchange2010_SP1")) {
        (Some(v), Some(min)) => v >= min,
        _ => false,
    }
}

/// Where a document departs from the shape a reader needs: a path such as
/// `/m:GetEventsResponse/m:ResponseMessages/m:GetEventsResponseMessage` and
/// what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ParseError {
    pub path: String,
    pub message: String,
}

impl ParseError {
    pub fn new(path: &str, message: impl Into<String>) -> Self {
        ParseError {
            path: path.to_string(),
            message: message.into(),
        }
    }
}
