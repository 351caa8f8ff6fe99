//! Building what the server answers: the request context every handler
//! gets, SOAP faults, and multi-message operation responses.

use std::sync::Arc;

use super::dialects::Dialect;
use super::faults::Fault;
use super::state::State;
use super::validate::SchemaViolation;
use ews_proto::ews::envelope::{EnvelopeStyle, FaultForm, FaultPosition, open_operation, response};
use ews_proto::ews::{ResponseCode, ResponseMessage, SoapFault};
use ews_proto::xml::XmlWriter;

/// One authenticated request being handled.
pub struct Call<'s> {
    pub state: &'s Arc<State>,
    /// Index of the authenticated user.
    pub user: usize,
    /// The RequestServerVersion in force (Exchange2007_SP1 when absent).
    pub version: String,
}

impl Call<'_> {
    /// A complete `s:Envelope` (with XML declaration) around `body`.
    pub fn envelope(&self, body: impl FnOnce(&mut XmlWriter)) -> String {
        envelope(self.state, body)
    }
}

/// A complete `s:Envelope` (with XML declaration) around `body`.
pub fn envelope(state: &State, body: impl FnOnce(&mut XmlWriter)) -> String {
    response(EnvelopeStyle::Prefixed, &state.config.server_version, body)
}

/// What a handler produced.
pub enum Reply {
    /// HTTP 200 with this SOAP document.
    Envelope(String),
    /// HTTP 500 with this fault.
    Fault(SoapFault),
    /// A request the schema rejects: HTTP 500 with the schema fault (or,
    /// with `schema-error-message`, HTTP 200 with an error response message
    /// when the operation is known).
    Schema(SchemaError),
    /// HTTP 200 with a chunked body of envelopes (GetStreamingEvents).
    Stream(axum::body::Body),
}

/// A schema violation and what is known of where it happened.
pub struct SchemaError {
    pub violation: SchemaViolation,
    /// The operation's local name, once the request got that far.
    pub operation: Option<String>,
    /// 1-based (line, column) in the request of the violation or of its operation.
    pub at: Option<(u32, u32)>,
}

impl SchemaError {
    pub fn new(violation: SchemaViolation) -> Self {
        SchemaError {
            violation,
            operation: None,
            at: None,
        }
    }

    pub fn in_operation(mut self, op: roxmltree::Node<'_, '_>) -> Self {
        let pos = op.document().text_pos_at(op.range().start);
        self.operation = Some(op.tag_name().name().to_string());
        self.at = Some((pos.row, pos.col));
        self
    }
}

/// What a schema error becomes on the wire: (HTTP status, document).
pub fn schema_answer(state: &State, e: &SchemaError, actor: &str) -> (u16, String) {
    if state.dialects.has(Dialect::SchemaErrorMessage)
        && let Some(op) = &e.operation
    {
        let text = xml_safe(&format!(
            "The request failed schema validation: {}",
            e.violation
        ));
        let msg = [MessageOut::error(ResponseCode::ErrorSchemaValidation, text)];
        return (200, envelope(state, |w| render_messages(w, op, &msg)));
    }
    let fault = schema_fault(&e.violation);
    (500, render_fault(state, &fault, Some(e), actor))
}

/// A fault in this server's fault form (dialects add `xml:lang`, a
/// `faultactor` naming `actor`, and the position detail of schema errors).
pub fn render_fault(
    state: &State,
    f: &SoapFault,
    schema: Option<&SchemaError>,
    actor: &str,
) -> String {
    let d = &state.dialects;
    let form = FaultForm {
        lang: d.has(Dialect::FaultLang).then(|| "en-US".to_string()),
        actor: d.has(Dialect::FaultActor).then(|| actor.to_string()),
        position: schema.filter(|_| d.has(Dialect::FaultMessageXml)).map(|e| {
            let (line, column) = e.at.unwrap_or((1, 1));
            FaultPosition {
                line,
                column,
                violation: xml_safe(&e.violation.to_string()),
            }
        }),
    };
    f.render_with(&form)
}

/// The fault Exchange sends for a request its schema rejects.
pub fn schema_fault(v: &SchemaViolation) -> SoapFault {
    exchange_fault(
        ResponseCode::ErrorSchemaValidation,
        format!("The request failed schema validation: {v}"),
    )
}

/// A fault with an Exchange `a:` fault code (the types namespace) and the
/// same code in the detail.
pub fn exchange_fault(code: ResponseCode, text: impl Into<String>) -> SoapFault {
    let text = xml_safe(&text.into());
    SoapFault {
        fault_code: format!("a:{}", code.as_str()),
        fault_string: text.clone(),
        response_code: Some(code),
        message: Some(text),
    }
}

/// One response message of an operation: the common part plus the
/// operation-specific children, already serialised.
pub struct MessageOut {
    pub common: ResponseMessage,
    pub inner: String,
}

impl MessageOut {
    pub fn success(inner: impl FnOnce(&mut XmlWriter)) -> Self {
        let mut w = XmlWriter::new();
        inner(&mut w);
        MessageOut {
            common: ResponseMessage::success(),
            inner: w.into_string(),
        }
    }

    pub fn error(code: ResponseCode, text: impl Into<String>) -> Self {
        MessageOut {
            common: ResponseMessage::error(code, text),
            inner: String::new(),
        }
    }
}

/// `m:<op>Response/m:ResponseMessages/m:<op>ResponseMessage*`.
pub fn render_messages(w: &mut XmlWriter, op: &str, messages: &[MessageOut]) {
    let response = format!("m:{op}Response");
    let message = format!("m:{op}ResponseMessage");
    open_operation(w, &response);
    w.start("m:ResponseMessages", &[]);
    for m in messages {
        m.common.render_open(w, &message);
        w.raw(&m.inner);
        w.end(&message);
    }
    w.end("m:ResponseMessages").end(&response);
}

/// Replaces characters XML 1.0 cannot carry (a parser's error message may
/// quote them from the request) so every answer stays well-formed.
pub fn xml_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t'
            | '\n'
            | '\r'
            | '\u{20}'..='\u{D7FF}'
            | '\u{E000}'..='\u{FFFD}'
            | '\u{10000}'.. => c,
            _ => '\u{FFFD}',
        })
        .collect()
}

// ------------------------------------------- refusing a subscription id

/// Why a request cannot use a subscription, as (code, text).
/// `unsubscribed`: Unsubscribe ended the id (digest U5).
pub fn not_found(state: &State, unsubscribed: bool) -> (ResponseCode, &'static str) {
    if state.faults.has(Fault::WrongNotFoundCode) {
        return not_pull();
    }
    if unsubscribed && state.dialects.has(Dialect::UnsubscribedCode) {
        return (
            ResponseCode::ErrorSubscriptionUnsubscribed,
            "The subscription has been unsubscribed.",
        );
    }
    (
        ResponseCode::ErrorSubscriptionNotFound,
        "The specified subscription was not found.",
    )
}

pub fn access_denied() -> (ResponseCode, &'static str) {
    (
        ResponseCode::ErrorSubscriptionAccessDenied,
        "Access is denied. Only the subscription owner may access the subscription.",
    )
}

pub(crate) fn not_pull() -> (ResponseCode, &'static str) {
    (
        ResponseCode::ErrorInvalidPullSubscriptionId,
        "Subscription is not a pull subscription.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_text_is_made_xml_safe() {
        assert_eq!(
            xml_safe("a\u{0}b\u{11}c\u{FFFE}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}"
        );
        let f = exchange_fault(ResponseCode::ErrorSchemaValidation, "bad \u{1} char");
        assert!(roxmltree::Document::parse(&f.render()).is_ok());
    }
}
