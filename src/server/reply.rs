//! Building what the server answers: the request context every handler
//! gets, SOAP faults, and multi-message operation responses.

use std::sync::Arc;

use super::state::State;
use super::validate::SchemaViolation;
use crate::ews::envelope::{EnvelopeStyle, open_operation, response};
use crate::ews::{ResponseCode, ResponseMessage, SoapFault};
use crate::xml::XmlWriter;

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
        response(
            EnvelopeStyle::Prefixed,
            &self.state.config.server_version,
            body,
        )
    }
}

/// What a handler produced.
pub enum Reply {
    /// HTTP 200 with this SOAP document.
    Envelope(String),
    /// HTTP 500 with this fault.
    Fault(SoapFault),
    /// HTTP 200 with a chunked body of envelopes (GetStreamingEvents).
    Stream(axum::body::Body),
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
