//! A built-in structural grammar of the notification protocol (digest
//! sections 0.2–0.4, 1.1–1.5, 2.1 and 4), kept as compact data.
//!
//! It is used twice: the reference server judges the requests it receives
//! the way Exchange's schema validation would, and the harness's `structure`
//! check judges what a target sends back. It is not a general XSD validator:
//! it knows only the notification operations, matches children by local name
//! first so that a wrong namespace is reported as a namespace problem (not as
//! a baffling "unexpected element"), and it follows the schema changes
//! between Exchange versions where the digest lists them.
//!
//! Everything is bounded: the grammar is finite, the walk stops at
//! [`MAX_DEPTH`], and at most [`MAX_VIOLATIONS`] findings are reported.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use roxmltree::{Document, Node};

use crate::ews::SERVER_VERSIONS;
use crate::ews::time::is_xs_datetime;
use crate::xml::{display_name, element_children, ns};

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

/// Validates an operation element received by a server (see [`Direction::Request`])
/// against the schema of `version` (a `RequestServerVersion` value; an
/// unknown value is judged by the newest schema).
pub fn validate_request(op: Node<'_, '_>, version: &str) -> Vec<Violation> {
    let mut c = Checker::new(version, Direction::Request);
    c.operation(op, &At::Ancestry(op), true);
    c.finish()
}

/// Validates an operation element sent by a server (see [`Direction::Response`]).
pub fn validate_response(op: Node<'_, '_>, version: &str) -> Vec<Violation> {
    let mut c = Checker::new(version, Direction::Response);
    c.operation(op, &At::Ancestry(op), true);
    c.finish()
}

/// Validates a whole SOAP 1.1 document: the frame, the version headers, and
/// the operation in the Body. For a request carrying a valid
/// `t:RequestServerVersion`, that header's version wins over `version`
/// (which is then the server's default). Operations in the messages
/// namespace that this grammar does not cover (CreateItem, …) are outside
/// its scope and pass.
pub fn validate_envelope(doc: &Document<'_>, kind: Direction, version: &str) -> Vec<Violation> {
    let mut c = Checker::new(version, kind);
    let root = doc.root_element();
    if root.tag_name().name() != "Envelope" {
        c.error(
            &At::Text("/"),
            Rule::Unexpected,
            format!(
                "the root element is {}, not soap:Envelope",
                display_name(root)
            ),
        );
    } else {
        c.matched(root, &ENVELOPE, &At::Text(""), 0, 0);
    }
    c.finish()
}

// ------------------------------------------------------------ the grammar

/// Schema generations that differ for this protocol (digest section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ex2007,
    Ex2010,
    Ex2010Sp1,
    Ex2013,
}

impl Level {
    fn of(version: &str) -> Level {
        match version {
            "Exchange2007" | "Exchange2007_SP1" => Level::Ex2007,
            "Exchange2009" | "Exchange2010" => Level::Ex2010,
            "Exchange2010_SP1" | "Exchange2010_SP2" => Level::Ex2010Sp1,
            // Exchange2012 (the 2013 pre-release name), later versions, and
            // unknown values are judged by the newest schema.
            _ => Level::Ex2013,
        }
    }

    fn introduced_in(self) -> &'static str {
        match self {
            Level::Ex2007 => "Exchange2007",
            Level::Ex2010 => "Exchange2010",
            Level::Ex2010Sp1 => "Exchange2010_SP1",
            Level::Ex2013 => "Exchange2013",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    Soap,
    M,
    T,
    /// No namespace (the SOAP 1.1 fault children).
    Plain,
}

impl Ns {
    fn uri(self) -> Option<&'static str> {
        match self {
            Ns::Soap => Some(ns::SOAP),
            Ns::M => Some(ns::MESSAGES),
            Ns::T => Some(ns::TYPES),
            Ns::Plain => None,
        }
    }

    /// The conventional prefix with its colon ("" for no namespace).
    fn prefix(self) -> &'static str {
        match self {
            Ns::Soap => "soap:",
            Ns::M => "m:",
            Ns::T => "t:",
            Ns::Plain => "",
        }
    }

    fn qualify(self, local: &str) -> String {
        format!("{}{local}", self.prefix())
    }

    fn holds(self, node: Node<'_, '_>) -> bool {
        // `xmlns=""` undeclares a default namespace: the element is in no
        // namespace, whichever way the parser reports it.
        node.tag_name().namespace().filter(|u| !u.is_empty()) == self.uri()
    }
}

/// Where an element must live. `Either` covers the documented schema/wire
/// conflicts (digest 0.3): both forms pass, and which one was used is noted.
#[derive(Debug, Clone, Copy)]
enum NsRule {
    Exact(Ns),
    Either { schema: Ns, wire: Ns },
}

impl NsRule {
    fn schema(self) -> Ns {
        match self {
            NsRule::Exact(n) | NsRule::Either { schema: n, .. } => n,
        }
    }
}

/// Simple types.
#[derive(Debug, Clone, Copy)]
enum Value {
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

const INT: Value = Value::Int(i32::MIN as i64, i32::MAX as i64);

#[derive(Debug)]
struct Attr {
    name: &'static str,
    value: Value,
    required: bool,
    since: Level,
}

const fn attr(name: &'static str, value: Value, required: bool) -> Attr {
    Attr {
        name,
        value,
        required,
        since: Level::Ex2007,
    }
}

#[derive(Debug)]
enum Content {
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
enum Term {
    One(&'static Elem),
    Choice(&'static [&'static Elem]),
    /// Any element outside the SOAP namespace (after soap:Body).
    OtherNs,
}

#[derive(Debug)]
struct Particle {
    term: Term,
    min: u32,
    max: u32,
    /// Optional from Exchange2010 on, required by the 2007 schema.
    required_in_2007: bool,
}

const MANY: u32 = u32::MAX;

const fn one(e: &'static Elem) -> Particle {
    Particle {
        term: Term::One(e),
        min: 1,
        max: 1,
        required_in_2007: false,
    }
}

const fn opt(e: &'static Elem) -> Particle {
    Particle {
        term: Term::One(e),
        min: 0,
        max: 1,
        required_in_2007: false,
    }
}

const fn opt_since_2010(e: &'static Elem) -> Particle {
    Particle {
        term: Term::One(e),
        min: 0,
        max: 1,
        required_in_2007: true,
    }
}

const fn many(e: &'static Elem, min: u32) -> Particle {
    Particle {
        term: Term::One(e),
        min,
        max: MANY,
        required_in_2007: false,
    }
}

const fn choice(es: &'static [&'static Elem], min: u32, max: u32) -> Particle {
    Particle {
        term: Term::Choice(es),
        min,
        max,
        required_in_2007: false,
    }
}

#[derive(Debug)]
struct Elem {
    name: &'static str,
    ns: NsRule,
    attrs: &'static [Attr],
    content: Content,
    since: Level,
}

impl Elem {
    const fn since(mut self, level: Level) -> Elem {
        self.since = level;
        self
    }

    const fn attrs(mut self, attrs: &'static [Attr]) -> Elem {
        self.attrs = attrs;
        self
    }

    fn qname(&self) -> String {
        self.ns.schema().qualify(self.name)
    }
}

const fn el(ns: Ns, name: &'static str, content: Content) -> Elem {
    Elem {
        name,
        ns: NsRule::Exact(ns),
        attrs: &[],
        content,
        since: Level::Ex2007,
    }
}

const fn leaf(ns: Ns, name: &'static str, value: Value) -> Elem {
    el(ns, name, Content::Simple(value))
}

const fn seq(ns: Ns, name: &'static str, particles: &'static [Particle]) -> Elem {
    el(ns, name, Content::Seq(particles))
}

use Ns::{M, Plain, Soap, T};

// ---- SOAP frame
static ENVELOPE: Elem = seq(
    Soap,
    "Envelope",
    &[
        opt(&el(Soap, "Header", Content::Header)),
        one(&el(Soap, "Body", Content::Payload)),
        Particle {
            term: Term::OtherNs,
            min: 0,
            max: MANY,
            required_in_2007: false,
        },
    ],
);

static REQUEST_SERVER_VERSION: Elem =
    el(T, "RequestServerVersion", Content::Empty).attrs(&[attr("Version", Value::Version, true)]);

static SERVER_VERSION_INFO: Elem = el(T, "ServerVersionInfo", Content::Empty).attrs(&[
    attr("MajorVersion", INT, false),
    attr("MinorVersion", INT, false),
    attr("MajorBuildNumber", INT, false),
    attr("MinorBuildNumber", INT, false),
    attr("Version", Value::Text, false),
]);

static FAULT: Elem = seq(
    Soap,
    "Fault",
    &[
        one(&leaf(Plain, "faultcode", Value::NonEmpty)),
        one(&leaf(Plain, "faultstring", Value::Text)),
        opt(&leaf(Plain, "faultactor", Value::Text)),
        opt(&el(Plain, "detail", Content::Any)),
    ],
);

// ---- ids and values shared by requests and responses
const ID_ATTRS: &[Attr] = &[
    attr("Id", Value::Text, true),
    attr("ChangeKey", Value::Text, false),
];

const fn id(name: &'static str) -> Elem {
    el(T, name, Content::Empty).attrs(ID_ATTRS)
}

static ITEM_ID: Elem = id("ItemId");
static FOLDER_ID: Elem = id("FolderId");
static PARENT_FOLDER_ID: Elem = id("ParentFolderId");
static OLD_ITEM_ID: Elem = id("OldItemId");
static OLD_FOLDER_ID: Elem = id("OldFolderId");
static OLD_PARENT_FOLDER_ID: Elem = id("OldParentFolderId");

static T_SUBSCRIPTION_ID: Elem = leaf(T, "SubscriptionId", Value::NonEmpty);
static T_WATERMARK: Elem = leaf(T, "Watermark", Value::NonEmpty);
static M_SUBSCRIPTION_ID: Elem = leaf(M, "SubscriptionId", Value::NonEmpty);
static M_WATERMARK: Elem = leaf(M, "Watermark", Value::NonEmpty);

// ---- Subscribe request (digest 1.1)
static MAILBOX: Elem = seq(
    T,
    "Mailbox",
    &[
        opt(&leaf(T, "Name", Value::Text)),
        opt(&leaf(T, "EmailAddress", Value::NonEmpty)),
        opt(&leaf(T, "RoutingType", Value::NonEmpty)),
        opt(&leaf(
            T,
            "MailboxType",
            Value::Enum(&[
                "Unknown",
                "OneOff",
                "Mailbox",
                "PublicDL",
                "PrivateDL",
                "Contact",
                "PublicFolder",
                "GroupMailbox",
                "ImplicitContact",
            ]),
        )),
        opt(&ITEM_ID),
        opt(&leaf(T, "OriginalDisplayName", Value::Text)),
    ],
);

static DISTINGUISHED_FOLDER_ID: Elem = seq(T, "DistinguishedFolderId", &[opt(&MAILBOX)]).attrs(&[
    attr("Id", Value::FolderName, true),
    attr("ChangeKey", Value::Text, false),
]);

static FOLDER_IDS: Elem = seq(
    T,
    "FolderIds",
    &[choice(&[&FOLDER_ID, &DISTINGUISHED_FOLDER_ID], 1, MANY)],
);

static EVENT_TYPES: Elem = seq(
    T,
    "EventTypes",
    &[many(&leaf(T, "EventType", Value::EventType), 1)],
);

const SUBSCRIBE_TO_ALL_FOLDERS: &[Attr] = &[Attr {
    name: "SubscribeToAllFolders",
    value: Value::Bool,
    required: false,
    since: Level::Ex2010,
}];

static PULL_REQUEST: Elem = seq(
    M,
    "PullSubscriptionRequest",
    &[
        opt_since_2010(&FOLDER_IDS),
        one(&EVENT_TYPES),
        opt(&T_WATERMARK),
        one(&leaf(T, "Timeout", Value::Int(1, 1440))),
    ],
)
.attrs(SUBSCRIBE_TO_ALL_FOLDERS);

static PUSH_REQUEST: Elem = seq(
    M,
    "PushSubscriptionRequest",
    &[
        opt_since_2010(&FOLDER_IDS),
        one(&EVENT_TYPES),
        opt(&T_WATERMARK),
        one(&leaf(T, "StatusFrequency", Value::Int(1, 1440))),
        one(&leaf(T, "URL", Value::Text)),
        opt(&leaf(T, "CallerData", Value::Text).since(Level::Ex2013)),
    ],
)
.attrs(SUBSCRIBE_TO_ALL_FOLDERS);

static STREAMING_REQUEST: Elem = seq(
    M,
    "StreamingSubscriptionRequest",
    &[opt(&FOLDER_IDS), one(&EVENT_TYPES)],
)
.attrs(SUBSCRIBE_TO_ALL_FOLDERS)
.since(Level::Ex2010Sp1);

static SUBSCRIBE: Elem = seq(
    M,
    "Subscribe",
    &[choice(
        &[&PULL_REQUEST, &PUSH_REQUEST, &STREAMING_REQUEST],
        1,
        1,
    )],
);

// ---- the other requests (digest 1.2-1.5)
static GET_EVENTS: Elem = seq(
    M,
    "GetEvents",
    &[one(&M_SUBSCRIPTION_ID), one(&M_WATERMARK)],
);

static GET_STREAMING_EVENTS: Elem = seq(
    M,
    "GetStreamingEvents",
    &[
        one(&seq(M, "SubscriptionIds", &[many(&T_SUBSCRIPTION_ID, 1)])),
        one(&leaf(M, "ConnectionTimeout", Value::Int(1, 30))),
    ],
)
.since(Level::Ex2010Sp1);

static UNSUBSCRIBE: Elem = seq(M, "Unsubscribe", &[one(&M_SUBSCRIPTION_ID)]);

static SEND_NOTIFICATION_RESULT: Elem = seq(
    M,
    "SendNotificationResult",
    &[one(&leaf(
        M,
        "SubscriptionStatus",
        Value::Enum(&["OK", "Unsubscribe"]),
    ))],
);

// ---- events and notifications (digest 2.1)
/// BaseObjectChangedEventType and its extensions, in schema order.
macro_rules! object_event {
    ($name:literal $(, $extra:expr)*) => {
        seq(
            T,
            $name,
            &[
                opt_since_2010(&T_WATERMARK),
                one(&leaf(T, "TimeStamp", Value::DateTime)),
                choice(&[&FOLDER_ID, &ITEM_ID], 1, 1),
                one(&PARENT_FOLDER_ID),
                $($extra,)*
            ],
        )
    };
}

macro_rules! moved_copied_event {
    ($name:literal) => {
        object_event!(
            $name,
            choice(&[&OLD_FOLDER_ID, &OLD_ITEM_ID], 1, 1),
            one(&OLD_PARENT_FOLDER_ID)
        )
    };
}

static EVENTS: [&Elem; 8] = [
    &moved_copied_event!("CopiedEvent"),
    &object_event!("CreatedEvent"),
    &object_event!("DeletedEvent"),
    &object_event!("ModifiedEvent", opt(&leaf(T, "UnreadCount", INT))),
    &moved_copied_event!("MovedEvent"),
    &object_event!("NewMailEvent"),
    &seq(T, "StatusEvent", &[opt_since_2010(&T_WATERMARK)]),
    &object_event!("FreeBusyChangedEvent").since(Level::Ex2010Sp1),
];

const NOTIFICATION_CONTENT: Content = Content::Seq(&[
    one(&T_SUBSCRIPTION_ID),
    opt_since_2010(&leaf(T, "PreviousWatermark", Value::NonEmpty)),
    opt_since_2010(&leaf(T, "MoreEvents", Value::Bool)),
    choice(&EVENTS, 1, MANY),
]);

static M_NOTIFICATION: Elem = el(M, "Notification", NOTIFICATION_CONTENT);

/// Inside m:Notifications the schema says t:Notification, Exchange sends m:.
static STREAM_NOTIFICATION: Elem = Elem {
    name: "Notification",
    ns: NsRule::Either { schema: T, wire: M },
    attrs: &[],
    content: NOTIFICATION_CONTENT,
    since: Level::Ex2010Sp1,
};

/// Inside m:ErrorSubscriptionIds the schema says t:, the Managed API reads m:.
static ERROR_SUBSCRIPTION_ID: Elem = Elem {
    name: "SubscriptionId",
    ns: NsRule::Either { schema: T, wire: M },
    attrs: &[],
    content: Content::Simple(Value::NonEmpty),
    since: Level::Ex2010Sp1,
};

// ---- responses (digest 0.2, 1.1-1.5)
const RESPONSE_CLASS: &[Attr] = &[attr(
    "ResponseClass",
    Value::Enum(&["Success", "Warning", "Error"]),
    true,
)];

/// ResponseMessageType: the common items in their fixed order, then the
/// operation's own elements.
macro_rules! response_message {
    ($name:literal $(, $extra:expr)*) => {
        seq(
            M,
            $name,
            &[
                opt(&leaf(M, "MessageText", Value::Text)),
                opt(&leaf(M, "ResponseCode", Value::ResponseCode)),
                opt(&leaf(M, "DescriptiveLinkKey", INT)),
                opt(&el(M, "MessageXml", Content::Any)),
                $($extra,)*
            ],
        )
        .attrs(RESPONSE_CLASS)
    };
}

/// `m:<Response>/m:ResponseMessages/m:<Message>+`.
macro_rules! response_op {
    ($name:literal, $message:expr) => {
        seq(
            M,
            $name,
            &[one(&seq(M, "ResponseMessages", &[many($message, 1)]))],
        )
    };
}

static SUBSCRIBE_RESPONSE: Elem = response_op!(
    "SubscribeResponse",
    &response_message!(
        "SubscribeResponseMessage",
        opt(&M_SUBSCRIPTION_ID),
        opt(&M_WATERMARK)
    )
);

static GET_EVENTS_RESPONSE: Elem = response_op!(
    "GetEventsResponse",
    &response_message!("GetEventsResponseMessage", opt(&M_NOTIFICATION))
);

static GET_STREAMING_EVENTS_RESPONSE: Elem = response_op!(
    "GetStreamingEventsResponse",
    &response_message!(
        "GetStreamingEventsResponseMessage",
        opt(&seq(M, "Notifications", &[many(&STREAM_NOTIFICATION, 0)])),
        opt(&seq(
            M,
            "ErrorSubscriptionIds",
            &[many(&ERROR_SUBSCRIPTION_ID, 1)]
        )),
        opt(&leaf(M, "ConnectionStatus", Value::Enum(&["OK", "Closed"])))
    )
)
.since(Level::Ex2010Sp1);

static UNSUBSCRIBE_RESPONSE: Elem = response_op!(
    "UnsubscribeResponse",
    &response_message!("UnsubscribeResponseMessage")
);

static SEND_NOTIFICATION: Elem = response_op!(
    "SendNotification",
    &response_message!("SendNotificationResponseMessage", one(&M_NOTIFICATION))
);

static REQUESTS: [&Elem; 5] = [
    &SUBSCRIBE,
    &GET_EVENTS,
    &GET_STREAMING_EVENTS,
    &UNSUBSCRIBE,
    &SEND_NOTIFICATION_RESULT,
];

static RESPONSES: [&Elem; 5] = [
    &SUBSCRIBE_RESPONSE,
    &GET_EVENTS_RESPONSE,
    &GET_STREAMING_EVENTS_RESPONSE,
    &UNSUBSCRIBE_RESPONSE,
    &SEND_NOTIFICATION,
];

const SUBSCRIBABLE_EVENTS: &[&str] = &[
    "CopiedEvent",
    "CreatedEvent",
    "DeletedEvent",
    "ModifiedEvent",
    "MovedEvent",
    "NewMailEvent",
    "FreeBusyChangedEvent",
];

/// The values of `t:DistinguishedFolderIdNameType`.
pub const DISTINGUISHED_FOLDERS: &[&str] = &[
    "calendar",
    "contacts",
    "deleteditems",
    "drafts",
    "inbox",
    "journal",
    "notes",
    "outbox",
    "sentitems",
    "tasks",
    "msgfolderroot",
    "publicfoldersroot",
    "root",
    "junkemail",
    "searchfolders",
    "voicemail",
    "recoverableitemsroot",
    "recoverableitemsdeletions",
    "recoverableitemsversions",
    "recoverableitemspurges",
    "recoverableitemsdiscoveryholds",
    "archiveroot",
    "archivemsgfolderroot",
    "archivedeleteditems",
    "archiveinbox",
    "archiverecoverableitemsroot",
    "archiverecoverableitemsdeletions",
    "archiverecoverableitemsversions",
    "archiverecoverableitemspurges",
    "archiverecoverableitemsdiscoveryholds",
    "syncissues",
    "conflicts",
    "localfailures",
    "serverfailures",
    "recipientcache",
    "quickcontacts",
    "conversationhistory",
    "adminauditlogs",
    "todosearch",
    "mycontacts",
    "directory",
    "imcontactlist",
    "peopleconnect",
    "favorites",
    "mecontact",
    "personmetadata",
    "teamspaceactivity",
    "teamspacemessaging",
    "teamspaceworkitems",
    "scheduled",
    "orionnotes",
    "tagitems",
    "alltaggeditems",
    "externalcontacts",
    "teamchat",
    "yammerroot",
    "yammerinbound",
    "yammeroutbound",
    "yammerfeeds",
    "onedriveroot",
    "onedriverecylebin",
    "onedrivesystem",
    "onedrivevolume",
];

// ------------------------------------------------------------ the checker

struct Checker<'v> {
    level: Level,
    /// The version judged by: the caller's, or a request's own
    /// `RequestServerVersion` (always one of [`SERVER_VERSIONS`]).
    version: &'v str,
    direction: Direction,
    /// A response whose messages say Error: it may answer a request that is
    /// outside its own version's schema, and can only do so with the
    /// operation's response element (or a fault). Version gating is then a note.
    error_answer: bool,
    out: Vec<Violation>,
    truncated: bool,
}

impl<'v> Checker<'v> {
    fn new(version: &'v str, direction: Direction) -> Self {
        Checker {
            level: Level::of(version),
            version,
            direction,
            error_answer: false,
            out: Vec::new(),
            truncated: false,
        }
    }

    fn finish(mut self) -> Vec<Violation> {
        if self.truncated {
            self.out.push(Violation {
                path: "/".into(),
                rule: Rule::Unexpected,
                message: format!("more than {MAX_VIOLATIONS} findings; the rest are omitted"),
                severity: ViolationLevel::Note,
            });
        }
        self.out
    }

    fn push(&mut self, path: &At<'_>, rule: Rule, severity: ViolationLevel, message: String) {
        if self.out.len() >= MAX_VIOLATIONS {
            self.truncated = true;
            return;
        }
        self.out.push(Violation {
            path: path.to_string(),
            rule,
            message,
            severity,
        });
    }

    fn error(&mut self, path: &At<'_>, rule: Rule, message: String) {
        self.push(path, rule, ViolationLevel::Error, message);
    }

    fn note(&mut self, path: &At<'_>, rule: Rule, message: String) {
        self.push(path, rule, ViolationLevel::Note, message);
    }

    /// Dispatches an operation element (the Body's child) to its grammar.
    /// `strict` makes an unknown messages-namespace operation a finding.
    fn operation(&mut self, op: Node<'_, '_>, parent: &At<'_>, strict: bool) {
        let local = op.tag_name().name();
        let (own, other, own_word, other_word) = match self.direction {
            Direction::Request => (&REQUESTS, &RESPONSES, "request", "response"),
            Direction::Response => (&RESPONSES, &REQUESTS, "response", "request"),
        };
        if self.direction == Direction::Response {
            self.error_answer = op
                .descendants()
                .any(|n| n.is_element() && n.attribute("ResponseClass") == Some("Error"));
        }
        if local == "Fault" && self.direction == Direction::Response {
            self.matched(op, &FAULT, parent, 0, 1);
        } else if let Some(def) = own.iter().find(|e| e.name == local) {
            self.matched(op, def, parent, 0, 1);
        } else if let Some(def) = other.iter().find(|e| e.name == local) {
            let path = At::element(parent, Seg::Schema(def.ns.schema(), def.name), 0);
            self.error(
                &path,
                Rule::Unexpected,
                format!("{} is a {other_word} body, not a {own_word}", def.qname()),
            );
        } else if strict || op.tag_name().namespace() != Some(ns::MESSAGES) {
            let known: Vec<String> = own.iter().map(|e| e.qname()).collect();
            self.error(
                &At::element(parent, node_seg(op), 0),
                Rule::Unexpected,
                format!(
                    "{} is not a notification {own_word} (expected one of {})",
                    spelled(op),
                    known.join(", ")
                ),
            );
        }
    }

    /// Checks `node`, already matched to `def` by local name: its namespace,
    /// its version, its attributes and its content. `index` is the node's
    /// 1-based position among same-named siblings, 0 when it has none.
    fn matched(
        &mut self,
        node: Node<'_, '_>,
        def: &'static Elem,
        parent: &At<'_>,
        index: usize,
        depth: usize,
    ) {
        let segment = match def.ns {
            NsRule::Exact(n) => n,
            NsRule::Either { schema, wire } => {
                if wire.holds(node) {
                    wire
                } else {
                    schema
                }
            }
        };
        let path = At::element(parent, Seg::Schema(segment, def.name), index);
        self.namespace(node, def, &path);
        if def.since > self.level {
            let message = format!(
                "{} is not in the {} schema (it was added in {})",
                def.qname(),
                self.version,
                def.since.introduced_in()
            );
            if self.error_answer {
                self.note(
                    &path,
                    Rule::Unexpected,
                    format!("{message}; legal in an Error answer to a request outside that schema"),
                );
            } else {
                self.error(&path, Rule::Unexpected, message);
            }
        }
        if depth > MAX_DEPTH {
            self.error(
                &path,
                Rule::Unexpected,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            );
            return;
        }
        self.attributes(node, def, &path);
        match &def.content {
            Content::Empty => {
                self.no_text(node, &path);
                for kid in element_children(node) {
                    self.error(
                        &At::element(&path, node_seg(kid), 0),
                        Rule::Unexpected,
                        format!("{} has no child elements", def.qname()),
                    );
                }
            }
            Content::Simple(value) => {
                for kid in element_children(node) {
                    self.error(
                        &At::element(&path, node_seg(kid), 0),
                        Rule::Unexpected,
                        format!("{} holds a value, not elements", def.qname()),
                    );
                }
                let text = simple_text(node);
                self.value(&path, &text, *value);
            }
            Content::Seq(particles) => self.sequence(node, particles, &path, depth),
            Content::Any => {}
            Content::Header => self.header(node, &path, depth),
            Content::Payload => self.payload(node, &path),
        }
    }

    fn namespace(&mut self, node: Node<'_, '_>, def: &Elem, path: &At<'_>) {
        match def.ns {
            NsRule::Exact(n) if n.holds(node) => {}
            NsRule::Exact(n) => {
                let expected = match n.uri() {
                    Some(uri) => format!("did you mean {uri}?"),
                    None => "it must be in no namespace".to_string(),
                };
                self.error(
                    path,
                    Rule::Namespace,
                    format!(
                        "element {} is in the wrong namespace ({expected})",
                        spelled(node)
                    ),
                );
            }
            NsRule::Either { schema, wire } => {
                let (s, w) = (schema.qualify(def.name), wire.qualify(def.name));
                if schema.holds(node) {
                    self.note(
                        path,
                        Rule::Namespace,
                        format!(
                            "{s} follows the schema; Exchange sends {w} here (both are accepted)"
                        ),
                    );
                } else if wire.holds(node) {
                    self.note(
                        path,
                        Rule::Namespace,
                        format!(
                            "{w} is what Exchange sends; the schema says {s} (both are accepted)"
                        ),
                    );
                } else {
                    self.error(
                        path,
                        Rule::Namespace,
                        format!(
                            "element {} is in the wrong namespace (expected {s} or {w})",
                            spelled(node)
                        ),
                    );
                }
            }
        }
    }

    fn attributes(&mut self, node: Node<'_, '_>, def: &Elem, path: &At<'_>) {
        for a in node.attributes() {
            match a.namespace() {
                // xsi:type/nil and soap:mustUnderstand/encodingStyle are
                // allowed by the frameworks, whatever the element.
                Some(ns::XSI) | Some(ns::SOAP) => continue,
                // Exchange writes `<faultstring xml:lang="en-US">` on every
                // fault, and `detail` takes any attribute: the XML
                // namespace's own attributes are legal on the fault's parts.
                Some(ns::XML) if def.ns.schema() == Ns::Plain => continue,
                Some(uri) => {
                    self.error(
                        &At::Attribute {
                            parent: path,
                            uri: Some(uri),
                            name: a.name(),
                        },
                        Rule::Attribute,
                        format!(
                            "attribute {{{uri}}}{} is not allowed on {}",
                            a.name(),
                            def.qname()
                        ),
                    );
                    continue;
                }
                None => {}
            }
            let at = At::Attribute {
                parent: path,
                uri: None,
                name: a.name(),
            };
            match def.attrs.iter().find(|d| d.name == a.name()) {
                None => self.error(
                    &at,
                    Rule::Attribute,
                    format!("attribute {} is not allowed on {}", a.name(), def.qname()),
                ),
                Some(d) => {
                    if d.since > self.level {
                        self.error(
                            &at,
                            Rule::Attribute,
                            format!(
                                "attribute {} is not in the {} schema (it was added in {})",
                                d.name,
                                self.version,
                                d.since.introduced_in()
                            ),
                        );
                    }
                    self.value(&at, a.value(), d.value);
                }
            }
        }
        for d in def.attrs.iter().filter(|d| d.required) {
            if node.attribute(d.name).is_none() {
                self.error(
                    path,
                    Rule::Attribute,
                    format!("required attribute {} is missing", d.name),
                );
            }
        }
    }

    fn no_text(&mut self, node: Node<'_, '_>, path: &At<'_>) {
        for t in node.children().filter(|n| n.is_text()) {
            let text = t.text().unwrap_or_default().trim();
            if !text.is_empty() {
                self.error(
                    path,
                    Rule::Unexpected,
                    format!("text `{}` is not allowed here", shorten(text)),
                );
            }
        }
    }

    /// Matches the element children against a sequence of particles. The
    /// schema's content models are deterministic and their local names are
    /// unique within a sequence, so matching by name is exact. An element
    /// out of order still counts as present: one defect, one finding.
    fn sequence(
        &mut self,
        node: Node<'_, '_>,
        particles: &'static [Particle],
        path: &At<'_>,
        depth: usize,
    ) {
        self.no_text(node, path);
        let mut few = [0u32; 8];
        let mut many = Vec::new();
        let counts: &mut [u32] = match few.get_mut(..particles.len()) {
            Some(counts) => counts,
            None => {
                many.resize(particles.len(), 0);
                &mut many
            }
        };
        let mut furthest = 0usize;
        let mut furthest_name = "";
        let mut indexes = SiblingIndex::new(node);
        for kid in element_children(node) {
            let index = indexes.next(kid);
            let local = kid.tag_name().name();
            let by_name = particles
                .iter()
                .enumerate()
                .find_map(|(i, p)| member(p, local).map(|e| (i, Some(e))));
            let found = by_name.or_else(|| {
                let other = particles
                    .iter()
                    .position(|p| matches!(p.term, Term::OtherNs));
                other.filter(|_| !Ns::Soap.holds(kid)).map(|i| (i, None))
            });
            let Some((k, def)) = found else {
                self.error(
                    &At::element(path, node_seg(kid), index),
                    Rule::Unexpected,
                    format!("element {} is not allowed here", spelled(kid)),
                );
                continue;
            };
            if k < furthest {
                self.error(
                    path,
                    Rule::Order,
                    format!("{local} must come before {furthest_name}"),
                );
            } else {
                furthest = k;
                furthest_name = local;
            }
            counts[k] += 1;
            let p = &particles[k];
            if counts[k] == p.max.saturating_add(1) {
                let message = match p.term {
                    Term::Choice(_) if p.max == 1 => {
                        format!("only one of {} is allowed", self.alternatives(p))
                    }
                    _ => format!(
                        "{} occurs more than {} time{}",
                        def.map(|d| d.qname()).unwrap_or_else(|| local.to_string()),
                        p.max,
                        if p.max == 1 { "" } else { "s" }
                    ),
                };
                self.error(path, Rule::Cardinality, message);
            }
            if let Some(def) = def {
                self.matched(kid, def, path, index, depth + 1);
            }
        }
        for (p, &count) in particles.iter().zip(counts.iter()) {
            self.close(p, count, path);
        }
    }

    /// The element names a particle accepts in this version.
    fn alternatives(&self, p: &Particle) -> String {
        match p.term {
            Term::One(e) => e.qname(),
            Term::Choice(es) => {
                let names: Vec<String> = es
                    .iter()
                    .filter(|e| e.since <= self.level)
                    .map(|e| e.qname())
                    .collect();
                names.join(", ")
            }
            Term::OtherNs => "any element".into(),
        }
    }

    /// Reports a particle that ended with fewer than its minimum occurrences.
    fn close(&mut self, p: &Particle, count: u32, path: &At<'_>) {
        let min = if p.required_in_2007 && self.level == Level::Ex2007 {
            p.min.max(1)
        } else {
            p.min
        };
        if count >= min {
            return;
        }
        let name = match p.term {
            Term::One(e) => e.qname(),
            Term::Choice(_) => format!("one of {}", self.alternatives(p)),
            Term::OtherNs => return,
        };
        if count == 0 {
            let why = if p.required_in_2007 && p.min == 0 {
                format!(" (required by the {} schema)", self.version)
            } else {
                String::new()
            };
            self.error(path, Rule::Missing, format!("{name} is missing{why}"));
        } else {
            self.error(
                path,
                Rule::Cardinality,
                format!("{name} occurs {count} times; at least {min} are required"),
            );
        }
    }

    /// soap:Header is lax: unknown blocks pass; the EWS version headers are
    /// checked, and a request's RequestServerVersion sets the schema version.
    fn header(&mut self, node: Node<'_, '_>, path: &At<'_>, depth: usize) {
        self.no_text(node, path);
        for kid in element_children(node) {
            match kid.tag_name().name() {
                "RequestServerVersion" => {
                    self.matched(kid, &REQUEST_SERVER_VERSION, path, 0, depth + 1);
                    let requested = kid.attribute("Version").unwrap_or_default();
                    if self.direction == Direction::Request
                        && Ns::T.holds(kid)
                        && let Some(&known) = SERVER_VERSIONS.iter().find(|v| **v == requested)
                    {
                        self.level = Level::of(known);
                        self.version = known;
                    }
                }
                "ServerVersionInfo" => self.matched(kid, &SERVER_VERSION_INFO, path, 0, depth + 1),
                _ => {}
            }
        }
    }

    /// soap:Body: exactly one element, an operation of this direction.
    fn payload(&mut self, node: Node<'_, '_>, path: &At<'_>) {
        self.no_text(node, path);
        match element_children(node).count() {
            0 => self.error(
                path,
                Rule::Missing,
                "soap:Body is empty; it must hold one operation element".into(),
            ),
            1 => {}
            n => self.error(
                path,
                Rule::Cardinality,
                format!("soap:Body holds {n} elements; exactly one is allowed"),
            ),
        }
        for kid in element_children(node) {
            self.operation(kid, path, false);
        }
    }

    fn value(&mut self, path: &At<'_>, raw: &str, value: Value) {
        let t = raw.trim();
        match value {
            Value::Text => {}
            Value::NonEmpty => {
                if raw.is_empty() {
                    self.error(path, Rule::ValueType, "the value must not be empty".into());
                }
            }
            Value::Int(min, max) => match parse_xs_int(t) {
                None => self.error(path, Rule::ValueType, format!("`{t}` is not an xs:int")),
                Some(n) if n < min || n > max => {
                    self.error(path, Rule::Range, format!("{n} is outside {min}..{max}"))
                }
                Some(_) => {}
            },
            Value::Bool => match t {
                "true" | "false" => {}
                "1" | "0" => self.note(
                    path,
                    Rule::ValueType,
                    format!("`{t}` is a valid xs:boolean, but exchangelib reads only true/false (it sees no value)"),
                ),
                _ => self.error(path, Rule::ValueType, format!("`{t}` is not an xs:boolean")),
            },
            Value::DateTime => {
                if !is_xs_datetime(t) {
                    self.error(path, Rule::ValueType, format!("`{t}` is not an xs:dateTime"));
                }
            }
            Value::Enum(values) => self.enumeration(path, raw, values, ""),
            Value::ResponseCode => {
                let named = raw == "NoError"
                    || raw.strip_prefix("Error").is_some_and(|rest| {
                        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric())
                    });
                if !named {
                    self.error(
                        path,
                        Rule::Enumeration,
                        format!("`{raw}` is not a ResponseCodeType value (NoError or Error…)"),
                    );
                }
            }
            Value::EventType => {
                if raw == "StatusEvent" {
                    self.error(
                        path,
                        Rule::Enumeration,
                        "StatusEvent cannot be subscribed to (it is not a NotificationEventTypeType value)"
                            .into(),
                    );
                } else if raw == "FreeBusyChangedEvent" && self.level < Level::Ex2010Sp1 {
                    let message = format!(
                        "FreeBusyChangedEvent is not in the {} schema (it was added in Exchange2010_SP1)",
                        self.version
                    );
                    self.error(path, Rule::Enumeration, message);
                } else {
                    self.enumeration(path, raw, SUBSCRIBABLE_EVENTS, "");
                }
            }
            Value::FolderName => {
                self.enumeration(path, raw, DISTINGUISHED_FOLDERS, " distinguished folder name")
            }
            Value::Version => self.enumeration(path, raw, SERVER_VERSIONS, "n ExchangeVersionType value"),
        }
    }

    /// `what` names the type for long lists (" distinguished folder name");
    /// short lists are spelled out.
    fn enumeration(&mut self, path: &At<'_>, raw: &str, values: &[&str], what: &str) {
        if values.contains(&raw) {
            return;
        }
        let hint = values
            .iter()
            .find(|v| v.eq_ignore_ascii_case(raw.trim()))
            .map(|v| format!(" (did you mean `{v}`?)"))
            .unwrap_or_default();
        let message = if what.is_empty() {
            format!("`{raw}` is not one of {}{hint}", values.join(", "))
        } else {
            format!("`{raw}` is not a{what}{hint}")
        };
        self.error(path, Rule::Enumeration, message);
    }
}

/// The element of a particle with this local name, if any.
fn member(p: &Particle, local: &str) -> Option<&'static Elem> {
    match p.term {
        Term::One(e) => (e.name == local).then_some(e),
        Term::Choice(es) => es.iter().copied().find(|e| e.name == local),
        Term::OtherNs => None,
    }
}

/// xs:int lexical form: optional sign, digits, 32-bit range.
fn parse_xs_int(t: &str) -> Option<i64> {
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = t.parse().ok()?;
    (i64::from(i32::MIN)..=i64::from(i32::MAX))
        .contains(&n)
        .then_some(n)
}

/// `{uri}Local`, or `Local (in no namespace)`: exact, for namespace messages.
fn spelled(node: Node<'_, '_>) -> String {
    let tag = node.tag_name();
    match tag.namespace() {
        Some(uri) => format!("{{{uri}}}{}", tag.name()),
        None => format!("{} (in no namespace)", tag.name()),
    }
}

// ------------------------------------------------------------ paths

/// One step of a path: a schema name in its conventional prefix, or a
/// document element's own name (spelled as [`display_name`] spells it).
#[derive(Clone, Copy)]
enum Seg<'p> {
    Schema(Ns, &'static str),
    Node(Option<&'p str>, &'p str),
}

impl fmt::Display for Seg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Seg::Schema(n, local) => write!(f, "{}{local}", n.prefix()),
            Seg::Node(None, local) => f.write_str(local),
            Seg::Node(Some(uri), local) => match ns::prefix_of(uri) {
                Some(p) => write!(f, "{p}:{local}"),
                None => write!(f, "{{{uri}}}{local}"),
            },
        }
    }
}

fn node_seg<'p>(node: Node<'p, '_>) -> Seg<'p> {
    let tag = node.tag_name();
    Seg::Node(tag.namespace(), tag.name())
}

/// Where a finding is, described by borrowing and rendered to the
/// [`Violation::path`] text only when there is a finding: the walk over a
/// correct document builds no strings.
#[derive(Clone, Copy)]
enum At<'p> {
    /// A path given as text (the frame's root, "/").
    Text(&'p str),
    /// The element ancestors of a node, for an operation validated alone.
    Ancestry(Node<'p, 'p>),
    /// `{parent}/{seg}`, with `[index]` when `index` is not 0.
    Element {
        parent: &'p At<'p>,
        seg: Seg<'p>,
        index: usize,
    },
    /// `{parent}/@name` or `{parent}/@{uri}name`.
    Attribute {
        parent: &'p At<'p>,
        uri: Option<&'p str>,
        name: &'p str,
    },
}

impl<'p> At<'p> {
    fn element(parent: &'p At<'p>, seg: Seg<'p>, index: usize) -> At<'p> {
        At::Element { parent, seg, index }
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            At::Text(text) => f.write_str(text),
            At::Ancestry(node) => {
                let names: Vec<Node<'_, '_>> = node
                    .ancestors()
                    .skip(1)
                    .filter(|n| n.is_element())
                    .collect();
                for n in names.into_iter().rev() {
                    write!(f, "/{}", node_seg(n))?;
                }
                Ok(())
            }
            At::Element { parent, seg, index } => {
                write!(f, "{parent}/{seg}")?;
                if index != 0 {
                    write!(f, "[{index}]")?;
                }
                Ok(())
            }
            At::Attribute {
                parent,
                uri: Some(uri),
                name,
            } => write!(f, "{parent}/@{{{uri}}}{name}"),
            At::Attribute {
                parent,
                uri: None,
                name,
            } => write!(f, "{parent}/@{name}"),
        }
    }
}

/// Distinct sibling names kept in a plain array before switching to a map.
const FEW_NAMES: usize = 16;

type Key<'a> = (Option<&'a str>, &'a str);

fn key<'a>(node: Node<'a, '_>) -> Key<'a> {
    let tag = node.tag_name();
    (tag.namespace(), tag.name())
}

/// `a == b`, by the local names first (they usually differ) and by the
/// namespaces' addresses before their text (a document's elements usually
/// share one copy of each namespace name).
fn same_key(a: Key<'_>, b: Key<'_>) -> bool {
    a.1 == b.1
        && match (a.0, b.0) {
            (Some(x), Some(y)) => std::ptr::eq(x, y) || x == y,
            (x, y) => x == y,
        }
}

/// Each element child's 1-based position among its same-named siblings, or
/// 0 when its name is unique there. [`SiblingIndex::new`] counts the names
/// in one pass; [`SiblingIndex::next`] is then called with each element
/// child in document order. A handful of distinct names (the usual case)
/// are compared in place, without hashing; many switch to a map, so wide
/// documents stay linear.
struct SiblingIndex<'a> {
    /// (name, total, seen so far), the first `len` entries in use.
    few: [(Key<'a>, usize, usize); FEW_NAMES],
    len: usize,
    many: Option<HashMap<Key<'a>, (usize, usize)>>,
}

impl<'a> SiblingIndex<'a> {
    fn new(parent: Node<'a, '_>) -> Self {
        let mut this = SiblingIndex {
            few: [((None, ""), 0, 0); FEW_NAMES],
            len: 0,
            many: None,
        };
        for kid in element_children(parent) {
            let k = key(kid);
            if let Some(map) = &mut this.many {
                map.entry(k).or_default().0 += 1;
            } else if let Some(entry) = this.few[..this.len].iter_mut().find(|e| same_key(e.0, k)) {
                entry.1 += 1;
            } else if this.len < FEW_NAMES {
                this.few[this.len] = (k, 1, 0);
                this.len += 1;
            } else {
                let mut map: HashMap<Key<'a>, (usize, usize)> = this
                    .few
                    .iter()
                    .map(|&(k, total, seen)| (k, (total, seen)))
                    .collect();
                map.insert(k, (1, 0));
                this.many = Some(map);
            }
        }
        this
    }

    fn next(&mut self, kid: Node<'a, '_>) -> usize {
        let k = key(kid);
        let entry = match &mut self.many {
            Some(map) => map.get_mut(&k).map(|(total, seen)| (total, seen)),
            None => self.few[..self.len]
                .iter_mut()
                .find(|e| same_key(e.0, k))
                .map(|(_, total, seen)| (total, seen)),
        };
        match entry {
            Some((total, seen)) => {
                *seen += 1;
                if *total > 1 { *seen } else { 0 }
            }
            None => 0,
        }
    }
}

/// The text content of a simple-valued element (every text child, in
/// order), borrowed when there is a single text child.
fn simple_text<'a>(node: Node<'a, '_>) -> Cow<'a, str> {
    let mut texts = node.children().filter(|n| n.is_text());
    let Some(first) = texts.next() else {
        return Cow::Borrowed("");
    };
    let first = first.text().unwrap_or_default();
    match texts.next() {
        None => Cow::Borrowed(first),
        Some(second) => {
            let mut all = String::from(first);
            all.push_str(second.text().unwrap_or_default());
            for t in texts {
                all.push_str(t.text().unwrap_or_default());
            }
            Cow::Owned(all)
        }
    }
}

fn shorten(text: &str) -> String {
    const LIMIT: usize = 40;
    match text.char_indices().nth(LIMIT) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: position among same-named siblings, 0 when unique.
    fn naive(parent: Node<'_, '_>) -> Vec<usize> {
        let kids: Vec<Node<'_, '_>> = element_children(parent).collect();
        kids.iter()
            .enumerate()
            .map(|(i, k)| {
                let same = |o: &&Node<'_, '_>| key(**o) == key(*k);
                if kids.iter().filter(same).count() > 1 {
                    kids[..=i].iter().filter(same).count()
                } else {
                    0
                }
            })
            .collect()
    }

    #[test]
    fn sibling_indexes_match_their_definition_below_and_above_the_map_threshold() {
        for distinct in [1, 2, 5, FEW_NAMES, FEW_NAMES + 1, 40] {
            for width in [0, 1, 3, FEW_NAMES, FEW_NAMES + 1, 100] {
                let mut xml = String::from("<r xmlns:a='urn:a' xmlns:b='urn:b'>");
                for i in 0..width {
                    let prefix = if i % 3 == 0 { "a" } else { "b" };
                    xml.push_str(&format!("<{prefix}:n{}/>text", (i * 7) % distinct));
                }
                xml.push_str("</r>");
                let doc = Document::parse(&xml).expect("generated document parses");
                let root = doc.root_element();
                let mut index = SiblingIndex::new(root);
                let fast: Vec<usize> = element_children(root).map(|k| index.next(k)).collect();
                assert_eq!(fast, naive(root), "{distinct} names, {width} children");
            }
        }
    }

    #[test]
    fn paths_render_like_the_documented_spelling() {
        let doc = Document::parse("<x:a xmlns:x='urn:x'><b/></x:a>").expect("parses");
        let root = doc.root_element();
        let top = At::Text("");
        let env = At::element(&top, Seg::Schema(Ns::Soap, "Envelope"), 0);
        let op = At::element(&env, node_seg(root), 3);
        let attr = At::Attribute {
            parent: &op,
            uri: Some("urn:q"),
            name: "f",
        };
        assert_eq!(attr.to_string(), "/soap:Envelope/{urn:x}a[3]/@{urn:q}f");
        let kid = element_children(root).next().expect("a child");
        assert_eq!(At::Ancestry(kid).to_string(), "/{urn:x}a");
        assert_eq!(simple_text(root), "");
    }
}
