//! Why a document cannot be read as the protocol element it should be.

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
