//! `structure`: every response document of every step against the
//! protocol's structural grammar ([`ews_proto::ews::grammar`]), whatever
//! operation produced it — named operations, raw `send` steps (a fault
//! answering a deliberately broken request must itself be well-formed SOAP),
//! streamed envelopes and push bodies alike.
//!
//! On top of the grammar (R1 namespaces and frame, R2 ResponseClass and the
//! order of the common items):
//! - R1: a response of Subscribe, GetEvents, GetStreamingEvents or
//!   Unsubscribe carries `t:ServerVersionInfo` in its `soap:Header`;
//! - R3: a Success message has ResponseCode `NoError` when it has one, and an
//!   Error message never has `NoError`.
//!
//! Grammar notes (documented conflicts such as `t:` vs `m:Notification`
//! inside `m:Notifications`) are reported as notes, never as failures.
//! Only bodies of HTTP 200 and 500 answers are judged: other statuses (401,
//! 413, …) are not SOAP answers, and the `codes` check judges the status.

use roxmltree::Document;

use super::finding::Finding;
use super::input::StepInput;
use super::kind::Check;
use super::wire::{each_document_parsed, received};
use crate::client::excerpt::excerpt;
use ews_proto::ews::SERVER_VERSIONS;
use ews_proto::ews::envelope::open;
use ews_proto::ews::grammar::{Direction, ViolationLevel, validate_envelope};
use ews_proto::xml::{ElementExt, element_children, ns, parse_document};

pub struct Structure;

const NAME: &str = "structure";

/// The schema version a response is judged by when its request named none
/// (or an invalid one): the newest, which makes the version-dependent
/// elements optional rather than forbidden.
pub const DEFAULT_VERSION: &str = "Exchange2013";

/// Findings kept per document; a last one counts the rest.
const MAX_PER_DOCUMENT: usize = 12;

/// The operation responses R1 requires a ServerVersionInfo header on.
const VERSIONED_RESPONSES: &[&str] = &[
    "SubscribeResponse",
    "GetEventsResponse",
    "GetStreamingEventsResponse",
    "UnsubscribeResponse",
];

impl Check for Structure {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(&self, input: &StepInput<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let total = input.exchanges.len();
        for (i, ex, whole) in input.responses() {
            let Some(status) = received(ex) else {
                continue; // no response: the transport finding says so
            };
            if !matches!(status, 200 | 500) {
                continue;
            }
            let version = input
                .requested_version(i)
                .filter(|v| SERVER_VERSIONS.contains(&v.as_str()))
                .unwrap_or_else(|| DEFAULT_VERSION.to_string());
            let visit =
                |d, count, text: &str, parsed: Result<&Document<'_>, &ews_proto::xml::XmlError>| {
                    let place = Place {
                        step: &input.step.name,
                        call: i,
                        calls: total,
                        doc: d,
                        docs: count,
                    };
                    out.extend(
                        judge_parsed(input, &place, status, text, parsed, &version)
                            .into_iter()
                            .map(|f| f.about(i)),
                    );
                };
            each_document_parsed(&ex.response_text, whole, visit);
        }
        out
    }
}

/// Where a document came from: `step "poll" (call 2 of 3, envelope 1 of
/// 4)`, spelled out only when a finding names it.
struct Place<'a> {
    step: &'a str,
    call: usize,
    calls: usize,
    doc: usize,
    docs: usize,
}

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "step \"{}\"", self.step)?;
        match (self.calls > 1, self.docs > 1) {
            (false, false) => Ok(()),
            (true, false) => write!(f, " (call {} of {})", self.call + 1, self.calls),
            (false, true) => write!(f, " (envelope {} of {})", self.doc + 1, self.docs),
            (true, true) => write!(
                f,
                " (call {} of {}, envelope {} of {})",
                self.call + 1,
                self.calls,
                self.doc + 1,
                self.docs
            ),
        }
    }
}

/// Judges one response document; `place` says where it came from.
pub fn judge(
    input: &StepInput<'_>,
    place: &str,
    status: u16,
    text: &str,
    version: &str,
) -> Vec<Finding> {
    judge_parsed(
        input,
        &place,
        status,
        text,
        parse_document(text).as_ref(),
        version,
    )
}

/// [`judge`] on a document already parsed.
fn judge_parsed(
    input: &StepInput<'_>,
    place: &dyn std::fmt::Display,
    status: u16,
    text: &str,
    parsed: Result<&Document<'_>, &ews_proto::xml::XmlError>,
    version: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if text.trim().is_empty() {
        out.push(input.fail(
            NAME,
            format!("{place}: HTTP {status} with an empty body; a SOAP envelope was expected (R1)"),
        ));
        return out;
    }
    let doc = match parsed {
        Ok(d) => d,
        Err(e) => {
            let mut f = input.fail(
                NAME,
                format!("{place}: the response is not well-formed XML: {e} (R1)"),
            );
            f.evidence = Some(excerpt(text, 400));
            out.push(f);
            return out;
        }
    };
    let violations = validate_envelope(doc, Direction::Response, version);
    let (errors, notes): (Vec<_>, Vec<_>) = violations
        .iter()
        .partition(|v| v.severity == ViolationLevel::Error);
    for v in errors.iter().take(MAX_PER_DOCUMENT) {
        out.push(input.fail(NAME, format!("{place}: {v} ({})", v.rule)));
    }
    if errors.len() > MAX_PER_DOCUMENT {
        out.push(input.fail(
            NAME,
            format!(
                "{place}: … and {} more structural errors",
                errors.len() - MAX_PER_DOCUMENT
            ),
        ));
    }
    for v in notes.iter().take(MAX_PER_DOCUMENT) {
        out.push(input.note(NAME, format!("{place}: {v}")));
    }
    out.extend(header_and_codes(input, place, doc));
    out
}

/// R1's ServerVersionInfo and R3's class/code agreement.
fn header_and_codes(
    input: &StepInput<'_>,
    place: &dyn std::fmt::Display,
    doc: &Document<'_>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let Ok(opened) = open(doc) else {
        return out; // the grammar already said why
    };
    let payload = opened.payload;
    let op = payload.tag_name().name();
    if payload.tag_name().namespace() == Some(ns::MESSAGES)
        && VERSIONED_RESPONSES.contains(&op)
        && opened.server_version().is_none()
    {
        out.push(input.fail(
            NAME,
            format!("{place}: m:{op} without t:ServerVersionInfo in the soap:Header (R1)"),
        ));
    }
    let Some(messages) = payload.child_ns(ns::MESSAGES, "ResponseMessages") else {
        return out;
    };
    for (k, msg) in element_children(messages).enumerate() {
        let code = msg
            .child_ns(ns::MESSAGES, "ResponseCode")
            .map(|c| c.text_trimmed());
        let which = || format!("{place}: {} #{}", msg.tag_name().name(), k + 1);
        match (msg.attribute("ResponseClass"), code.as_deref()) {
            (Some("Success"), Some(c)) if c != "NoError" => out.push(input.fail(
                NAME,
                format!("{} has ResponseClass Success but ResponseCode {c}; a success carries NoError (R3)", which()),
            )),
            (Some("Error"), Some("NoError")) => out.push(input.fail(
                NAME,
                format!("{} has ResponseClass Error with ResponseCode NoError; an error names its cause (R3)", which()),
            )),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Expect;
    use crate::case::template::Vars;
    use crate::check::finding::Severity;
    use crate::check::testing::*;

    fn run(body: &str) -> Vec<Finding> {
        let c = case(None);
        let s = step("poll", Expect::default());
        let ex = [exchange(200, body)];
        let vars = Vars::new();
        Structure.check(&StepInput::new(&c, &s, &ex, &vars))
    }

    const HEADER: &str = r#"<s:Header><t:ServerVersionInfo xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" MajorVersion="15"/></s:Header>"#;

    #[test]
    fn a_correct_response_passes() {
        let good = GET_EVENTS_OK.replace("<s:Body>", &format!("{HEADER}<s:Body>"));
        assert!(fails(&run(&good)).is_empty(), "{:?}", run(&good));
        assert!(fails(&run(FAULT)).is_empty(), "a fault needs no header");
    }

    #[test]
    fn each_rule_fails_with_its_message() {
        // R1: no ServerVersionInfo.
        let f = run(GET_EVENTS_OK);
        assert_eq!(
            fails(&f),
            [
                "step \"poll\": m:GetEventsResponse without t:ServerVersionInfo in the soap:Header (R1)"
            ]
        );
        // R2: ResponseCode after DescriptiveLinkKey (the grammar's words).
        let swapped = NOT_FOUND
            .replace("<s:Body>", &format!("{HEADER}<s:Body>"))
            .replace(
                "<m:ResponseCode>ErrorSubscriptionNotFound</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>",
                "<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:ResponseCode>ErrorSubscriptionNotFound</m:ResponseCode>",
            );
        let f = run(&swapped);
        assert_eq!(fails(&f).len(), 1, "{f:?}");
        assert!(
            fails(&f)[0].contains(
                "m:GetEventsResponseMessage: ResponseCode must come before DescriptiveLinkKey"
            ),
            "{f:?}"
        );
        // R3: Success with an error code.
        let wrong = GET_EVENTS_OK
            .replace("<s:Body>", &format!("{HEADER}<s:Body>"))
            .replace(">NoError<", ">ErrorInternalServerError<");
        assert_eq!(
            fails(&run(&wrong)),
            [
                "step \"poll\": GetEventsResponseMessage #1 has ResponseClass Success but ResponseCode ErrorInternalServerError; a success carries NoError (R3)"
            ]
        );
        // R1: not XML at all.
        let f = run("<oops");
        assert!(fails(&f)[0].contains("not well-formed XML"), "{f:?}");
    }

    #[test]
    fn notes_stay_notes_and_other_statuses_are_not_judged() {
        let t_notification = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><t:ServerVersionInfo xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"/></s:Header><s:Body><m:GetStreamingEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notifications><t:Notification><t:SubscriptionId>S</t:SubscriptionId><t:StatusEvent/></t:Notification></m:Notifications><m:ConnectionStatus>OK</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></s:Body></s:Envelope>"#;
        let f = run(t_notification);
        assert!(fails(&f).is_empty(), "{f:?}");
        assert!(
            f.iter()
                .any(|n| n.severity == Severity::Note && n.message.contains("t:Notification")),
            "{f:?}"
        );
        let c = case(None);
        let s = step("auth", Expect::default());
        let ex = [exchange(401, "")];
        let vars = Vars::new();
        let input = StepInput::new(&c, &s, &ex, &vars);
        assert!(Structure.check(&input).is_empty());
    }
}
