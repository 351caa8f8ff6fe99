//! The grammar's own vocabulary: schema generations, namespaces, value
//! types, attributes, particles and elements, as compact `const` data.

use roxmltree::Node;

use crate::xml::ns;

/// Schema generations that differ for this protocol (digest section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Level {
    Ex2007,
    Ex2010,
    Ex2010Sp1,
    Ex2013,
}

impl Level {
    pub(super) fn of(version: &str) -> Level {
        match version {
            "Exchange2007" | "Exchange2007_SP1" => Level::Ex2007,
            "Exchange2009" | "Exchange2010" => Level::Ex2010,
            "Exchange2010_SP1" | "Exchange2010_SP2" => Level::Ex2010Sp1,
            // Exchange2012 (the 2013 pre-release name), later versions, and
            // unknown values are judged by the newest schema.
            _ => Level::Ex2013,
        }
    }

    pub(super) fn introduced_in(self) -> &'static str {
        match self {
            Level::Ex2007 => "Exchange2007",
            Level::Ex2010 => "Exchange2010",
            Level::Ex2010Sp1 => "Exchange2010_SP1",
            Level::Ex2013 => "Exchange2013",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ns {
    Soap,
    M,
    T,
    /// No namespace (the SOAP 1.1 fault children).
    Plain,
}

impl Ns {
    pub(super) fn uri(self) -> Option<&'static str> {
        match self {
            Ns::Soap => Some(ns::SOAP),
            Ns::M => Some(ns::MESSAGES),
            Ns::T => Some(ns::TYPES),
            Ns::Plain => None,
        }
    }

    /// The conventional prefix with its colon ("" for no namespace).
    pub(super) fn prefix(self) -> &'static str {
        match self {
            Ns::Soap => "soap:",
            Ns::M => "m:",
            Ns::T => "t:",
            Ns::Plain => "",
        }
    }

    pub(super) fn qualify(self, local: &str) -> String {
        format!("{}{local}", self.prefix())
    }

    pub(super) fn holds(self, node: Node<'_, '_>) -> bool {
        // `xmlns=""` undeclares a default namespace: the element is in no
        // namespace, whichever way the parser reports it.
        node.tag_name().namespace().filter(|u| !u.is_empty()) == self.uri()
    }
}

/// Where an element must live. `Either` covers the documented schema/wire
/// conflicts (digest 0.3): both forms pass, and which one was used is noted.
#[derive(Debug, Clone, Copy)]
pub(super) enum NsRule {
    Exact(Ns),
    Either { schema: Ns, wire: Ns },
}

impl NsRule {
    pub(super) fn schema(self) -> Ns {
        match self {
            NsRule::Exact(n) | NsRule::Either { schema: n, .. } => n,
        }
    }
}

/// Simple types.
#[derive(Debug, Clone, Copy)]
pub(super) enum Value {
    Text,
    /// `t:NonEmptyStringType` (ids, watermarks).
    NonEmpty,
    /// xs:int with inclusive bounds.
    Int(i64, i64),
    Bool,
    DateTime,
    Enum(&'static [&'static str]),
    /// `m:ResponseCodeType`: `NoError` or an `Error…` name (514 values; the
    /// shape is checked, not the list).
    ResponseCode,
    /// `t:NotificationEventTypeType`, version aware.
    EventType,
    /// `t:DistinguishedFolderIdNameType`.
    FolderName,
    /// `t:ExchangeVersionType`.
    Version,
}

pub(super) const INT: Value = Value::Int(i32::MIN as i64, i32::MAX as i64);

#[derive(Debug)]
pub(super) struct Attr {
    pub(super) name: &'static str,
    pub(super) value: Value,
    pub(super) required: bool,
    pub(super) since: Level,
}

pub(super) const fn attr(name: &'static str, value: Value, required: bool) -> Attr {
    Attr {
        name,
        value,
        required,
        since: Level::Ex2007,
    }
}

#[derive(Debug)]
pub(super) enum Content {
    /// Attributes only.
    Empty,
    Simple(Value),
    Seq(&'static [Particle]),
    /// `xs:any`: not looked into (MessageXml, fault detail).
    Any,
    /// soap:Header: lax, but the EWS version headers are checked.
    Header,
    /// soap:Body: exactly one operation of the checker's direction.
    Payload,
}

#[derive(Debug)]
pub(super) enum Term {
    One(&'static Elem),
    Choice(&'static [&'static Elem]),
    /// Any element outside the SOAP namespace (after soap:Body).
    OtherNs,
}

#[derive(Debug)]
pub(super) struct Particle {
    pub(super) term: Term,
    pub(super) min: u32,
    pub(super) max: u32,
    /// Optional from Exchange2010 on, required by the 2007 schema.
    pub(super) required_in_2007: bool,
}

pub(super) const MANY: u32 = u32::MAX;

pub(super) const fn one(e: &'static Elem) -> Particle {
    Particle {
        term: Term::One(e),
        min: 1,
        max: 1,
        required_in_2007: false,
    }
}

pub(super) const fn opt(e: &'static Elem) -> Particle {
    Particle {
        term: Term::One(e),
        min: 0,
        max: 1,
        required_in_2007: false,
    }
}

pub(super) const fn opt_since_2010(e: &'static Elem) -> Particle {
    Particle {
        term: Term::One(e),
        min: 0,
        max: 1,
        required_in_2007: true,
    }
}

pub(super) const fn many(e: &'static Elem, min: u32) -> Particle {
    Particle {
        term: Term::One(e),
        min,
        max: MANY,
        required_in_2007: false,
    }
}

pub(super) const fn choice(es: &'static [&'static Elem], min: u32, max: u32) -> Particle {
    Particle {
        term: Term::Choice(es),
        min,
        max,
        required_in_2007: false,
    }
}

#[derive(Debug)]
pub(super) struct Elem {
    pub(super) name: &'static str,
    pub(super) ns: NsRule,
    pub(super) attrs: &'static [Attr],
    pub(super) content: Content,
    pub(super) since: Level,
}

impl Elem {
    pub(super) const fn since(mut self, level: Level) -> Elem {
        self.since = level;
        self
    }

    pub(super) const fn attrs(mut self, attrs: &'static [Attr]) -> Elem {
        self.attrs = attrs;
        self
    }

    pub(super) fn qname(&self) -> String {
        self.ns.schema().qualify(self.name)
    }
}

pub(super) const fn el(ns: Ns, name: &'static str, content: Content) -> Elem {
    Elem {
        name,
        ns: NsRule::Exact(ns),
        attrs: &[],
        content,
        since: Level::Ex2007,
    }
}

pub(super) const fn leaf(ns: Ns, name: &'static str, value: Value) -> Elem {
    el(ns, name, Content::Simple(value))
}

pub(super) const fn seq(ns: Ns, name: &'static str, particles: &'static [Particle]) -> Elem {
    el(ns, name, Content::Seq(particles))
}
