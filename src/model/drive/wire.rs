//! Reading the answers the driver needs from a response body: whether the
//! operation succeeded (and if not, why, in words a report can show), and
//! the ids and counts it reports.

use roxmltree::{Document, Node};

use crate::client::excerpt::excerpt;
use ews_proto::ews::envelope::open;
use ews_proto::ews::{GetEventsResponse, Notification, SubscribeResponse};
use ews_proto::xml::{ElementExt, child, ns, parse_document};

/// How much of a response a failure quotes.
pub(super) const EVIDENCE_CHARS: usize = 1_500;

/// Why a response is not a success, with its ResponseCode when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub code: Option<String>,
    pub detail: String,
}

impl Refusal {
    fn new(detail: impl Into<String>) -> Self {
        Refusal {
            code: None,
            detail: detail.into(),
        }
    }
}

/// What an item or folder operation's response reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ItemReply {
    pub item_id: Option<String>,
    /// Every ItemId of every Success message, in order (a CreateItem of many).
    pub item_ids: Vec<String>,
    pub folder_id: Option<String>,
    pub unread_count: Option<i64>,
    /// A folder's TotalCount (GetFolder with the Default shape).
    pub total_count: Option<i64>,
}

fn parse(status: u16, body: &str) -> Result<Document<'_>, Refusal> {
    let doc = parse_document(body).map_err(|e| {
        Refusal::new(format!(
            "HTTP {status}, and the body is not XML ({e}): {}",
            excerpt(body, 200)
        ))
    })?;
    Ok(doc)
}

/// Opens the envelope down to its payload, turning a SOAP fault or a
/// non-200 status into a refusal.
fn payload<'a, 'i>(status: u16, doc: &'a Document<'i>) -> Result<Node<'a, 'i>, Refusal> {
    let opened = open(doc).map_err(|e| Refusal::new(format!("HTTP {status}: {e}")))?;
    if let Some(fault) = opened.fault() {
        return Err(Refusal {
            code: fault.response_code.as_ref().map(|c| c.as_str().to_string()),
            detail: format!(
                "HTTP {status}: SOAP fault {}: {}",
                fault.fault_code, fault.fault_string
            ),
        });
    }
    if status != 200 {
        return Err(Refusal::new(format!("HTTP {status} with a SOAP body")));
    }
    Ok(opened.payload)
}

/// The first `*ResponseMessage` under the payload: it must say Success.
fn message_of<'a, 'i>(payload: Node<'a, 'i>) -> Result<Node<'a, 'i>, Refusal> {
    let Some(msg) = payload
        .descendants()
        .find(|n| n.is_element() && n.attribute("ResponseClass").is_some())
    else {
        return Err(Refusal::new("no response message with a ResponseClass"));
    };
    let class = msg.attribute("ResponseClass").unwrap_or_default();
    if class == "Success" {
        return Ok(msg);
    }
    let text = |local: &str| child(msg, ns::MESSAGES, local).map(|n| n.text_trimmed());
    let code = text("ResponseCode");
    Err(Refusal {
        detail: format!(
            "ResponseClass {class}, ResponseCode {}: {}",
            code.as_deref().unwrap_or("(none)"),
            text("MessageText").unwrap_or_default()
        ),
        code,
    })
}

/// An item or folder operation's answer: Success, and the first ItemId,
/// FolderId and UnreadCount it names.
pub(super) fn item_reply(status: u16, body: &str) -> Result<ItemReply, Refusal> {
    let doc = parse(status, body)?;
    let msg = message_of(payload(status, &doc)?)?;
    let first = |local: &str| {
        msg.descendants()
            .find(|n| n.is(ns::TYPES, local))
            .and_then(|n| n.attribute("Id"))
            .filter(|id| !id.is_empty())
            .map(str::to_string)
    };
    let count = |local: &str| {
        msg.descendants()
            .find(|n| n.is(ns::TYPES, local))
            .and_then(|n| n.text_trimmed().parse::<i64>().ok())
    };
    let unread_count = count("UnreadCount");
    let total_count = count("TotalCount");
    let p = payload(status, &doc)?;
    let item_ids = p
        .descendants()
        .filter(|n| n.is_element() && n.attribute("ResponseClass") == Some("Success"))
        .flat_map(|m| {
            m.descendants()
                .filter(|n| n.is(ns::TYPES, "ItemId"))
                .filter_map(|n| n.attribute("Id"))
                .filter(|id| !id.is_empty())
                .map(str::to_string)
        })
        .collect();
    Ok(ItemReply {
        item_id: first("ItemId"),
        item_ids,
        folder_id: first("FolderId"),
        unread_count,
        total_count,
    })
}

/// A Subscribe answer: the SubscriptionId and Watermark.
pub(super) fn subscribe_reply(status: u16, body: &str) -> Result<(String, String), Refusal> {
    let doc = parse(status, body)?;
    let p = payload(status, &doc)?;
    let r = SubscribeResponse::parse(p).map_err(|e| Refusal::new(e.to_string()))?;
    if !r.message.is_success() {
        return Err(Refusal {
            code: r.message.code.as_ref().map(|c| c.as_str().to_string()),
            detail: format!(
                "ResponseClass {}, ResponseCode {}: {}",
                r.message.class,
                r.message.code.as_ref().map_or("(none)", |c| c.as_str()),
                r.message.message_text.unwrap_or_default()
            ),
        });
    }
    match (r.subscription_id, r.watermark) {
        (Some(id), Some(wm)) if !id.is_empty() => Ok((id, wm)),
        (Some(id), None) if !id.is_empty() => Ok((id, String::new())),
        _ => Err(Refusal::new("the answer has no SubscriptionId")),
    }
}

/// A GetEvents answer: its notification.
pub(super) fn get_events_reply(status: u16, body: &str) -> Result<Notification, Refusal> {
    let doc = parse(status, body)?;
    let p = payload(status, &doc)?;
    let r = GetEventsResponse::parse(p).map_err(|e| Refusal::new(e.to_string()))?;
    if !r.message.is_success() {
        return Err(Refusal {
            code: r.message.code.as_ref().map(|c| c.as_str().to_string()),
            detail: format!(
                "ResponseClass {}, ResponseCode {}: {}",
                r.message.class,
                r.message.code.as_ref().map_or("(none)", |c| c.as_str()),
                r.message.message_text.unwrap_or_default()
            ),
        });
    }
    r.notification
        .ok_or_else(|| Refusal::new("a successful GetEvents answer without m:Notification"))
}

/// Any answer that must only say Success (Unsubscribe, UpdateItem, …).
pub(super) fn plain_reply(status: u16, body: &str) -> Result<(), Refusal> {
    item_reply(status, body).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK_CREATE: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:CreateItemResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:CreateItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Message><t:ItemId Id="I1" ChangeKey="C"/><t:ParentFolderId Id="F0"/></t:Message></m:Items></m:CreateItemResponseMessage></m:ResponseMessages></m:CreateItemResponse></s:Body></s:Envelope>"#;

    #[test]
    fn ids_and_refusals_are_read() {
        let r = item_reply(200, OK_CREATE).expect("a success");
        assert_eq!(r.item_id.as_deref(), Some("I1"));
        assert_eq!(
            r.folder_id, None,
            "a ParentFolderId is not the answer's folder"
        );
        let folder = OK_CREATE.replace(
            r#"<t:ItemId Id="I1" ChangeKey="C"/><t:ParentFolderId Id="F0"/>"#,
            r#"<t:FolderId Id="F9"/><t:UnreadCount>4</t:UnreadCount>"#,
        );
        let r = item_reply(200, &folder).expect("a success");
        assert_eq!(r.folder_id.as_deref(), Some("F9"));
        assert_eq!(r.unread_count, Some(4));
        assert_eq!(r.total_count, None);
        let refused = OK_CREATE
            .replace("Success", "Error")
            .replace("NoError", "ErrorItemNotFound");
        let e = item_reply(200, &refused).expect_err("an error class");
        assert_eq!(e.code.as_deref(), Some("ErrorItemNotFound"));
        assert!(e.detail.contains("ResponseClass Error"), "{}", e.detail);
        let e = item_reply(500, "<html>oops</html>").expect_err("not SOAP");
        assert!(e.detail.contains("HTTP 500"), "{}", e.detail);
        let e = item_reply(200, "garbage").expect_err("not XML");
        assert!(e.detail.contains("not XML"), "{}", e.detail);
    }
}
