//! `shape`: a step's response against a documented example
//! (`expect.shape = '''<the documented response>'''`), compared with
//! [`super::shape`]: same elements in the same order (namespace-aware),
//! same attribute names, values ignored, repeated siblings one-or-more.
//!
//! What the schema makes optional and servers legitimately vary in is
//! optional on both sides by default ([`DEFAULT_OPTIONAL`]); a case adds
//! more with `expect.shape_optional = ["t:PreviousWatermark", "@ChangeKey"]`.
//! A step passes when one of its response documents has the shape (a
//! stream's heartbeats do not count against the envelope that matches);
//! otherwise the closest document is shown with its differences. The
//! documented `m:`/`t:` conflicts (Notification inside Notifications,
//! SubscriptionId inside ErrorSubscriptionIds) compare as one name.

use super::finding::Finding;
use super::input::StepInput;
use super::kind::Check;
use super::shape::{Shape, compare_shapes, shape_of};
use super::wire::{documents, received};
use crate::client::excerpt::excerpt;
use ews_proto::xml::parse_document;

pub struct ExpectedShape;

const NAME: &str = "shape";

/// Optional on both sides unless a case says otherwise: the common items a
/// server may leave out, and the attributes of ServerVersionInfo and ids.
pub const DEFAULT_OPTIONAL: &[&str] = &[
    "m:MessageText",
    "m:DescriptiveLinkKey",
    "m:MessageXml",
    "@MajorVersion",
    "@MinorVersion",
    "@MajorBuildNumber",
    "@MinorBuildNumber",
    "@Version",
    "@ChangeKey",
    // Optional in every schema since Exchange 2010, absent in streaming
    // samples; the `watermark` and `events` checks judge them where the
    // protocol needs them.
    "t:PreviousWatermark",
    "t:MoreEvents",
    "t:Watermark",
    // Optional in the schema; `codes`, `events` (unread_count) and
    // `notify` judge them where a case expects them.
    "m:ResponseCode",
    "t:UnreadCount",
    "m:ErrorSubscriptionIds",
    "m:ConnectionStatus",
];

/// Differences quoted in one finding.
const MAX_DIFFS: usize = 12;

impl Check for ExpectedShape {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(&self, input: &StepInput<'_>) -> Vec<Finding> {
        let Some(expected_text) = &input.step.expect.shape else {
            return Vec::new();
        };
        let expected_doc = match parse_document(expected_text) {
            Ok(d) => d,
            Err(e) => {
                return vec![input.fail(
                    NAME,
                    format!(
                        "step \"{}\": the documented shape is not well-formed XML: {e}",
                        input.step.name
                    ),
                )];
            }
        };
        let expected = wire_forms(shape_of(expected_doc.root_element()));
        let mut optional: Vec<&str> = DEFAULT_OPTIONAL.to_vec();
        optional.extend(input.step.expect.shape_optional.iter().map(String::as_str));

        // (exchange, differences, the document's outline)
        let mut best: Option<(usize, Vec<String>, String)> = None;
        let mut judged = 0usize;
        for (i, ex) in input.exchanges.iter().enumerate() {
            if received(ex).is_none() {
                continue;
            }
            for text in documents(&ex.response_text) {
                judged += 1;
                let (diffs, outline) = match parse_document(&text) {
                    Ok(doc) => {
                        let actual = wire_forms(shape_of(doc.root_element()));
                        let diffs: Vec<String> = compare_shapes(&expected, &actual, &optional)
                            .iter()
                            .map(|d| d.to_string())
                            .collect();
                        (diffs, actual.to_string())
                    }
                    Err(e) => (
                        vec![format!("the response is not well-formed XML: {e}")],
                        excerpt(&text, 400),
                    ),
                };
                if diffs.is_empty() {
                    return Vec::new();
                }
                if best.as_ref().is_none_or(|(_, d, _)| diffs.len() < d.len()) {
                    best = Some((i, diffs, outline));
                }
            }
        }
        let Some((i, diffs, outline)) = best else {
            return if judged == 0 {
                vec![input.fail(
                    NAME,
                    format!(
                        "step \"{}\": no response to compare with the documented shape",
                        input.step.name
                    ),
                )]
            } else {
                Vec::new()
            };
        };
        let mut listed: Vec<String> = diffs.iter().take(MAX_DIFFS).cloned().collect();
        if diffs.len() > MAX_DIFFS {
            listed.push(format!("… and {} more", diffs.len() - MAX_DIFFS));
        }
        let f = input.fail(
            NAME,
            format!(
                "step \"{}\": the response does not have the documented shape ({} difference(s)): {}",
                input.step.name,
                diffs.len(),
                listed.join("; ")
            ),
        );
        vec![f.about(i).with_evidence(format!(
            "documented shape:\n{}\nresponse shape:\n{}",
            excerpt(&expected.to_string(), 3000),
            excerpt(&outline, 3000)
        ))]
    }
}

/// The documented namespace conflicts (digest 0.3) compare as one name:
/// `m:` or `t:Notification` inside `m:Notifications` (the schema says `t:`,
/// Exchange writes `m:`), and `m:` or `t:SubscriptionId` inside
/// `m:ErrorSubscriptionIds`. The `structure` check notes which form came.
fn wire_forms(mut shape: Shape) -> Shape {
    let either = |parent: &str, child: &str| match (parent, child) {
        ("m:Notifications", "t:Notification" | "m:Notification") => Some("m|t:Notification"),
        ("m:ErrorSubscriptionIds", "t:SubscriptionId" | "m:SubscriptionId") => {
            Some("m|t:SubscriptionId")
        }
        _ => None,
    };
    let parent = shape.name.clone();
    shape.children = shape
        .children
        .into_iter()
        // An empty m:Notifications says what its absence says (its
        // Notification children are minOccurs="0").
        .filter(|c| !(c.name == "m:Notifications" && c.children.is_empty()))
        .map(|mut c| {
            if let Some(name) = either(&parent, &c.name) {
                c.name = name.to_string();
            }
            wire_forms(c)
        })
        .collect();
    if parent.ends_with(":Notification") || parent == "m|t:Notification" {
        // The events of one operation come in any order (an unbounded
        // xs:choice): a shape compares which events, not their order.
        let (head, mut events): (Vec<Shape>, Vec<Shape>) = shape
            .children
            .into_iter()
            .partition(|c| !c.name.ends_with("Event"));
        events.sort_by(|a, b| a.name.cmp(&b.name));
        shape.children = head.into_iter().chain(events).collect();
    }
    shape
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Expect;
    use crate::case::template::Vars;
    use crate::check::testing::*;

    const DOCUMENTED: &str = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <GetEventsResponse xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"
        xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
      <ResponseMessages>
        <GetEventsResponseMessage ResponseClass="Success">
          <ResponseCode>NoError</ResponseCode>
          <Notification>
            <t:SubscriptionId>x</t:SubscriptionId>
            <t:PreviousWatermark>x</t:PreviousWatermark>
            <t:MoreEvents>false</t:MoreEvents>
            <t:CreatedEvent><t:Watermark>x</t:Watermark><t:TimeStamp>x</t:TimeStamp><t:ItemId Id="x"/><t:ParentFolderId Id="x"/></t:CreatedEvent>
            <t:ModifiedEvent><t:Watermark>x</t:Watermark><t:TimeStamp>x</t:TimeStamp><t:FolderId Id="x"/><t:ParentFolderId Id="x"/><t:UnreadCount>0</t:UnreadCount></t:ModifiedEvent>
            <t:MovedEvent><t:Watermark>x</t:Watermark><t:TimeStamp>x</t:TimeStamp><t:ItemId Id="x"/><t:ParentFolderId Id="x"/><t:OldItemId Id="x"/><t:OldParentFolderId Id="x"/></t:MovedEvent>
          </Notification>
        </GetEventsResponseMessage>
      </ResponseMessages>
    </GetEventsResponse>
  </soap:Body>
</soap:Envelope>"#;

    fn run(shape: &str, body: &str) -> Vec<Finding> {
        let c = case(None);
        let s = step(
            "poll",
            Expect {
                shape: Some(shape.to_string()),
                ..Expect::default()
            },
        );
        let ex = [exchange(200, body)];
        let vars = Vars::new();
        ExpectedShape.check(&StepInput::new(&c, &s, &ex, &vars))
    }

    #[test]
    fn same_shape_other_values_and_prefixes_pass() {
        assert!(run(DOCUMENTED, GET_EVENTS_OK).is_empty());
    }

    #[test]
    fn streaming_notification_in_either_namespace_matches() {
        let stream = |n: &str| {
            format!(
                r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetStreamingEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notifications><{n}><t:SubscriptionId>S</t:SubscriptionId><t:StatusEvent/></{n}></m:Notifications></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></s:Body></s:Envelope>"#
            )
        };
        assert!(run(&stream("m:Notification"), &stream("t:Notification")).is_empty());
        assert!(run(&stream("t:Notification"), &stream("m:Notification")).is_empty());
        assert_eq!(run(&stream("m:Notification"), &stream("m:Other")).len(), 1);
    }

    #[test]
    fn a_missing_element_fails_with_the_difference() {
        let without = GET_EVENTS_OK.replace(r#"<t:ParentFolderId Id="ROOT"/>"#, "");
        assert_ne!(without, GET_EVENTS_OK);
        let f = run(DOCUMENTED, &without);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].message
                .contains("does not have the documented shape (1 difference(s))")
                && f[0].message.contains("t:ParentFolderId is missing"),
            "{}",
            f[0].message
        );
    }

    /// What the schema leaves open never fails a shape: MoreEvents and
    /// PreviousWatermark present or absent, event watermarks, an empty
    /// m:Notifications in a heartbeat, the events of a notification in
    /// another order.
    #[test]
    fn legal_variations_keep_the_shape() {
        let without = GET_EVENTS_OK
            .replace("<t:MoreEvents>false</t:MoreEvents>", "")
            .replace("<t:PreviousWatermark>W0</t:PreviousWatermark>", "")
            .replace("<t:Watermark>W1</t:Watermark>", "");
        assert_ne!(without, GET_EVENTS_OK);
        assert!(
            run(DOCUMENTED, &without).is_empty(),
            "{:?}",
            run(DOCUMENTED, &without)
        );
        let reordered = GET_EVENTS_OK.replacen("<t:CreatedEvent>", "<t:Hold>", 1);
        let (before, rest) = reordered.split_once("<t:Hold>").expect("has an event");
        let (created, after) = rest.split_once("</t:CreatedEvent>").expect("closed");
        let (modified, tail) = after
            .split_once("</t:ModifiedEvent>")
            .expect("has a folder event");
        let swapped = format!(
            "{before}{modified}</t:ModifiedEvent><t:CreatedEvent>{created}</t:CreatedEvent>{tail}"
        );
        assert!(
            run(DOCUMENTED, &swapped).is_empty(),
            "{:?}",
            run(DOCUMENTED, &swapped)
        );

        let heartbeat = |notifications: &str| {
            format!(
                r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetStreamingEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>{notifications}<m:ConnectionStatus>OK</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></s:Body></s:Envelope>"#
            )
        };
        assert!(run(&heartbeat(""), &heartbeat("<m:Notifications/>")).is_empty());
        // A notification where the documented heartbeat has none is still a difference.
        assert_eq!(
            run(
                &heartbeat(""),
                &heartbeat("<m:Notifications><m:Notification/></m:Notifications>")
            )
            .len(),
            1
        );
    }
}
