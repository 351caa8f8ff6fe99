//! What the grammar reports: a violation, its rule and level, and the
//! bounds of a walk.

use std::fmt;

/// Nesting depth at which the walk gives up (the grammar itself is ~12 deep).
pub const MAX_DEPTH: usize = 32;
/// Findings reported per document; a hostile document cannot flood a report.
pub const MAX_VIOLATIONS: usize = 200;

/// The kind of rule a document breaks. The names are stable: case files and
/// reports refer to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Children in an order the schema's sequence forbids.
    Order,
    /// A required element is absent.
    Missing,
    /// An element or text that has no place here (or not in this version).
    Unexpected,
    /// An element occurs more (or fewer) times than allowed.
    Cardinality,
    /// The right local name in the wrong namespace.
    Namespace,
    /// A value outside an enumeration.
    Enumeration,
    /// A value that is not of the simple type (int, boolean, dateTime, ...).
    ValueType,
    /// A number outside its allowed range.
    Range,
    /// A missing required attribute or an attribute that is not allowed.
    Attribute,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Order => "order",
            Rule::Missing => "missing",
            Rule::Unexpected => "unexpected",
            Rule::Cardinality => "cardinality",
            Rule::Namespace => "namespace",
            Rule::Enumeration => "enumeration",
            Rule::ValueType => "value-type",
            Rule::Range => "range",
            Rule::Attribute => "attribute",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a finding breaks the protocol or is only worth recording
/// (documented conflicts, forms that are legal but trip real clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViolationLevel {
    Error,
    Note,
}

/// One finding: where (a path of conventional qualified names), which rule,
/// and what exactly is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub rule: Rule,
    pub message: String,
    pub severity: ViolationLevel,
}

impl Violation {
    pub fn is_error(&self) -> bool {
        self.severity == ViolationLevel::Error
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Which side of the EWS server a document is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// What the server receives: Subscribe, GetEvents, GetStreamingEvents,
    /// Unsubscribe, and the push listener's SendNotificationResult.
    Request,
    /// What the server sends: the four responses, the push body
    /// SendNotification, and SOAP faults.
    Response,
}
