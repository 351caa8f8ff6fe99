//! Reading a response body: the first response message or SOAP fault
//! (`Answer`), and the notifications it carries.

use ews_proto::ews::envelope::{Opened, open};
use ews_proto::ews::{Notification, ResponseClass, SoapFault};
use ews_proto::xml::{ElementExt, child, element_children, ns};

// ------------------------------------------------- reading a response body

/// The code a server gives when it cannot deliver events it lost (GS6).
pub const MISSED_EVENTS: &str = "ErrorMissedNotificationEvents";

/// Whether the step accepts a report of lost events and `answer` is one.
pub fn reports_missed_events(expect: &crate::case::Expect, answer: &Answer) -> bool {
    expect.missed_events_ok
        && matches!(answer, Answer::Message { code: Some(c), .. } if c == MISSED_EVENTS)
}

/// What the first response message (or fault) of a body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `soap:Fault`.
    Fault(SoapFault),
    /// The first `*ResponseMessage` under `m:ResponseMessages`.
    Message {
        class: Option<ResponseClass>,
        /// The raw ResponseClass text, when it is not a valid class.
        class_text: Option<String>,
        code: Option<String>,
        message_text: Option<String>,
    },
    /// A SOAP envelope without either.
    NoMessage { payload: String },
    /// Not a SOAP envelope at all.
    NotSoap { problem: String },
}

impl Answer {
    pub fn read(body: &str) -> Answer {
        if body.trim().is_empty() {
            return Answer::NotSoap {
                problem: "the body is empty".into(),
            };
        }
        Answer::read_parsed(body, ews_proto::xml::parse_document(body).as_ref())
    }

    /// [`Answer::read`] on a body already parsed.
    pub fn read_parsed(
        body: &str,
        parsed: Result<&roxmltree::Document<'_>, &ews_proto::xml::XmlError>,
    ) -> Answer {
        if body.trim().is_empty() {
            return Answer::NotSoap {
                problem: "the body is empty".into(),
            };
        }
        let doc = match parsed {
            Ok(d) => d,
            Err(e) => {
                return Answer::NotSoap {
                    problem: format!("the body is not well-formed XML: {e}"),
                };
            }
        };
        let opened = match open(doc) {
            Ok(o) => o,
            Err(e) => {
                return Answer::NotSoap {
                    problem: e.to_string(),
                };
            }
        };
        if let Some(fault) = opened.fault() {
            return Answer::Fault(fault);
        }
        match first_response_message(&opened) {
            Some(msg) => {
                let class_text = msg.attribute("ResponseClass").map(str::to_string);
                Answer::Message {
                    class: class_text.as_deref().and_then(ResponseClass::parse),
                    class_text,
                    code: child(msg, ns::MESSAGES, "ResponseCode").map(|c| c.text_trimmed()),
                    message_text: child(msg, ns::MESSAGES, "MessageText").map(|c| c.text_trimmed()),
                }
            }
            None => Answer::NoMessage {
                payload: ews_proto::xml::display_name(opened.payload),
            },
        }
    }

    /// The ResponseCode this answer carries: the message's, or the fault's `e:ResponseCode`.
    pub fn code(&self) -> Option<&str> {
        match self {
            Answer::Fault(f) => f.response_code.as_ref().map(|c| c.as_str()),
            Answer::Message { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The server's own words: MessageText or faultstring.
    pub fn server_text(&self) -> Option<&str> {
        match self {
            Answer::Fault(f) => Some(f.fault_string.as_str()).filter(|s| !s.is_empty()),
            Answer::Message { message_text, .. } => message_text.as_deref(),
            _ => None,
        }
    }

    /// A short description for messages: `a SOAP fault (ErrorSchemaValidation)`.
    pub fn describe(&self) -> String {
        match self {
            Answer::Fault(f) => match &f.response_code {
                Some(c) => format!("a SOAP fault ({c})"),
                None => format!("a SOAP fault ({})", f.fault_code),
            },
            Answer::Message {
                class_text, code, ..
            } => format!(
                "ResponseClass {} with ResponseCode {}",
                class_text.as_deref().unwrap_or("(none)"),
                code.as_deref().unwrap_or("(none)")
            ),
            Answer::NoMessage { payload } => format!("{payload} without a response message"),
            Answer::NotSoap { problem } => format!("no SOAP envelope ({problem})"),
        }
    }
}

fn first_response_message<'a, 'i>(opened: &Opened<'a, 'i>) -> Option<roxmltree::Node<'a, 'i>> {
    child(opened.payload, ns::MESSAGES, "ResponseMessages")
        .and_then(|msgs| element_children(msgs).next())
}

/// Every notification in a body (GetEvents, push and streaming forms; `m:` or `t:`).
pub fn notifications(body: &str) -> Result<Vec<Notification>, String> {
    notifications_parsed(ews_proto::xml::parse_document(body).as_ref())
}

/// [`notifications`] on a body already parsed.
pub fn notifications_parsed(
    parsed: Result<&roxmltree::Document<'_>, &ews_proto::xml::XmlError>,
) -> Result<Vec<Notification>, String> {
    let doc = parsed.map_err(|e| format!("the body is not well-formed XML: {e}"))?;
    let opened = open(doc).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for node in opened
        .payload
        .descendants()
        .filter(|n| n.is(ns::MESSAGES, "Notification") || n.is(ns::TYPES, "Notification"))
    {
        out.push(Notification::parse(node, "").map_err(|e| e.to_string())?);
    }
    Ok(out)
}
