//! What schema validation reports: libxml2's findings, the errors of
//! preparing a validator, the repairs made to the schema text, and the
//! credentials for fetching it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use libxml::error::{StructuredError, XmlErrorLevel};

/// Larger documents are not handed to libxml2 at all (a finding says so).
pub const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;
/// The published `types.xsd` is about 0.5 MB; anything far larger is not a schema we expect.
pub const MAX_SCHEMA_BYTES: usize = 8 * 1024 * 1024;
/// At most this many findings are reported for one document; a last one counts the rest.
pub const MAX_FINDINGS: usize = 100;

/// The deadline [`XsdValidator::fetch`] callers usually want.
pub const DEFAULT_FETCH_DEADLINE: Duration = Duration::from_secs(30);

/// One complaint of libxml2 about a document: where, and its own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XsdFinding {
    /// 1-based line in the validated text, when libxml2 knows it.
    pub line: Option<u32>,
    /// 1-based column, when libxml2 knows it (parse errors only, in practice).
    pub column: Option<u32>,
    pub message: String,
}

impl XsdFinding {
    pub(super) fn general(message: impl Into<String>) -> Self {
        XsdFinding {
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub(super) fn from_libxml(e: &StructuredError) -> Self {
        let text = e
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .unwrap_or("libxml2 reported an error without a message");
        let message = match e.level {
            XmlErrorLevel::Warning => format!("warning: {text}"),
            _ => text.to_string(),
        };
        XsdFinding {
            line: e
                .line
                .and_then(|l| u32::try_from(l).ok())
                .filter(|l| *l > 0),
            column: e.col.and_then(|c| u32::try_from(c).ok()).filter(|c| *c > 0),
            message,
        }
    }
}

impl fmt::Display for XsdFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.message),
            (Some(l), None) => write!(f, "line {l}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Why a validator could not be built.
#[derive(Debug, thiserror::Error)]
pub enum XsdError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} is larger than {limit} bytes")]
    TooLarge { what: String, limit: usize },
    #[error("{what} is not UTF-8 text")]
    NotUtf8 { what: String },
    #[error("{what} is refused: {reason}")]
    Refused { what: String, reason: String },
    #[error("`{url}` is not a usable endpoint URL: {reason}")]
    Endpoint { url: String, reason: String },
    #[error("GET {url} failed: {reason}")]
    Fetch { url: String, reason: String },
    #[error("cannot prepare a working folder for the schema: {0}")]
    WorkFolder(std::io::Error),
    #[error("libxml2 cannot compile the schema: {}", messages.join("; "))]
    Compile { messages: Vec<String> },
    #[error("the validator thread failed: {0}")]
    Worker(String),
}

/// A change made to the target's schema text so that libxml2 compiles it.
/// Neither changes anything the notification operations use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// `types.xsd` imports the `xml` namespace without a location; the import
    /// now points at a small local schema declaring `xml:lang`.
    XmlNamespaceLocated,
    /// `ArrayOfTransitionsType` lists `t:Transition` beside three members of
    /// its own substitution group, which breaks the unique-particle rule; the
    /// sequence becomes one repeatable `t:Transition`, which admits the same
    /// elements (in any order).
    TransitionsMadeDeterministic,
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Repair::XmlNamespaceLocated => "xml namespace import given a local location",
            Repair::TransitionsMadeDeterministic => {
                "ArrayOfTransitionsType reduced to one t:Transition particle"
            }
        })
    }
}

/// Credentials for fetching the schema files. `Debug` never shows secrets.
#[derive(Clone, Default)]
pub enum FetchAuth {
    #[default]
    Anonymous,
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
}

impl fmt::Debug for FetchAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchAuth::Anonymous => f.write_str("Anonymous"),
            FetchAuth::Basic { user, .. } => write!(f, "Basic({user}, <hidden>)"),
            FetchAuth::Bearer(_) => f.write_str("Bearer(<hidden>)"),
        }
    }
}
