//! The notification operations' messages: requests (rendered by the harness,
//! read by the reference server) and responses (rendered by the server, read
//! by the harness). Request *validation* lives with the server; the parsers
//! here are the harness's typed view of a response and say where a response
//! departs from the shape they need.

use roxmltree::Node;

use super::codes::{ResponseClass, ResponseCode};
use super::error::ParseError;
use super::events::{Id, Notification, parse_bool};
use crate::ews::EventKind;
use crate::xml::{ElementExt, XmlWriter, child, display_name, element_children, ns};

// ---------------------------------------------------------------- requests

/// A folder named in `t:FolderIds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderRef {
    /// `t:DistinguishedFolderId Id="inbox"`, optionally with a `t:Mailbox`.
    Distinguished { id: String, mailbox: Option<String> },
    /// `t:FolderId Id ChangeKey`.
    Id(Id),
}

impl FolderRef {
    pub fn distinguished(id: &str) -> Self {
        FolderRef::Distinguished {
            id: id.to_string(),
            mailbox: None,
        }
    }

    pub fn render(&self, w: &mut XmlWriter) {
        match self {
            FolderRef::Distinguished { id, mailbox: None } => {
                w.empty("t:DistinguishedFolderId", &[("Id", id)]);
            }
            FolderRef::Distinguished {
                id,
                mailbox: Some(smtp),
            } => {
                w.start("t:DistinguishedFolderId", &[("Id", id)])
                    .start("t:Mailbox", &[]);
                w.leaf("t:EmailAddress", smtp);
                w.end("t:Mailbox").end("t:DistinguishedFolderId");
            }
            FolderRef::Id(id) => id.render(w, "t:FolderId"),
        }
    }
}

/// Which folders a subscription watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderScope {
    Listed(Vec<FolderRef>),
    /// `SubscribeToAllFolders="true"` and no FolderIds.
    AllFolders,
    /// Neither (R19: allowed by the 2010+ schema, meaning undocumented).
    Unspecified,
}

/// The three delivery modes and their mode-specific settings. Numbers are
/// `i64` so a case can send out-of-range values on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionKind {
    Pull {
        timeout: i64,
    },
    Push {
        status_frequency: Option<i64>,
        url: String,
        caller_data: Option<String>,
    },
    Streaming,
}

impl SubscriptionKind {
    pub fn request_element(&self) -> &'static str {
        match self {
            SubscriptionKind::Pull { .. } => "PullSubscriptionRequest",
            SubscriptionKind::Push { .. } => "PushSubscriptionRequest",
            SubscriptionKind::Streaming => "StreamingSubscriptionRequest",
        }
    }
}

/// `m:Subscribe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRequest {
    pub kind: SubscriptionKind,
    pub scope: FolderScope,
    pub event_types: Vec<EventKind>,
    pub watermark: Option<String>,
}

impl SubscribeRequest {
    pub fn render(&self, w: &mut XmlWriter) {
        w.start("m:Subscribe", &[]);
        let el = format!("m:{}", self.kind.request_element());
        if self.scope == FolderScope::AllFolders {
            w.start(&el, &[("SubscribeToAllFolders", "true")]);
        } else {
            w.start(&el, &[]);
        }
        if let FolderScope::Listed(folders) = &self.scope {
            w.start("t:FolderIds", &[]);
            for f in folders {
                f.render(w);
            }
            w.end("t:FolderIds");
        }
        w.start("t:EventTypes", &[]);
        for k in &self.event_types {
            w.leaf("t:EventType", k.element_name());
        }
        w.end("t:EventTypes");
        w.leaf_opt("t:Watermark", self.watermark.as_deref());
        match &self.kind {
            SubscriptionKind::Pull { timeout } => {
                w.leaf("t:Timeout", &timeout.to_string());
            }
            SubscriptionKind::Push {
                status_frequency,
                url,
                caller_data,
            } => {
                if let Some(f) = status_frequency {
                    w.leaf("t:StatusFrequency", &f.to_string());
                }
                w.leaf("t:URL", url);
                w.leaf_opt("t:CallerData", caller_data.as_deref());
            }
            SubscriptionKind::Streaming => {}
        }
        w.end(&el).end("m:Subscribe");
    }
}

/// `m:GetEvents`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetEventsRequest {
    pub subscription_id: String,
    pub watermark: String,
}

impl GetEventsRequest {
    pub fn render(&self, w: &mut XmlWriter) {
        w.start("m:GetEvents", &[]);
        w.leaf("m:SubscriptionId", &self.subscription_id);
        w.leaf("m:Watermark", &self.watermark);
        w.end("m:GetEvents");
    }
}

/// `m:GetStreamingEvents`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetStreamingEventsRequest {
    pub subscription_ids: Vec<String>,
    /// Minutes, 1..30.
    pub connection_timeout: i64,
}

impl GetStreamingEventsRequest {
    pub fn render(&self, w: &mut XmlWriter) {
        w.start("m:GetStreamingEvents", &[])
            .start("m:SubscriptionIds", &[]);
        for id in &self.subscription_ids {
            w.leaf("t:SubscriptionId", id);
        }
        w.end("m:SubscriptionIds");
        w.leaf("m:ConnectionTimeout", &self.connection_timeout.to_string());
        w.end("m:GetStreamingEvents");
    }
}

/// `m:Unsubscribe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeRequest {
    pub subscription_id: String,
}

impl UnsubscribeRequest {
    pub fn render(&self, w: &mut XmlWriter) {
        w.start("m:Unsubscribe", &[]);
        w.leaf("m:SubscriptionId", &self.subscription_id);
        w.end("m:Unsubscribe");
    }
}

// --------------------------------------------------------------- responses

/// The common part of every `*ResponseMessage` (ResponseMessageType).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseMessage {
    pub class: ResponseClass,
    pub message_text: Option<String>,
    pub code: Option<ResponseCode>,
    pub descriptive_link_key: Option<i64>,
    /// Serialised children of `m:MessageXml`, written verbatim.
    pub message_xml: Option<String>,
}

impl ResponseMessage {
    pub fn success() -> Self {
        ResponseMessage {
            class: ResponseClass::Success,
            message_text: None,
            code: Some(ResponseCode::NoError),
            descriptive_link_key: None,
            message_xml: None,
        }
    }

    pub fn error(code: ResponseCode, text: impl Into<String>) -> Self {
        ResponseMessage {
            class: ResponseClass::Error,
            message_text: Some(text.into()),
            code: Some(code),
            descriptive_link_key: Some(0),
            message_xml: None,
        }
    }

    pub fn is_success(&self) -> bool {
        self.class == ResponseClass::Success
    }

    /// Opens `element` with ResponseClass and writes the common children in schema order.
    pub fn render_open(&self, w: &mut XmlWriter, element: &str) {
        w.start(element, &[("ResponseClass", self.class.as_str())]);
        w.leaf_opt("m:MessageText", self.message_text.as_deref());
        if let Some(code) = &self.code {
            w.leaf("m:ResponseCode", code.as_str());
        }
        if let Some(k) = self.descriptive_link_key {
            w.leaf("m:DescriptiveLinkKey", &k.to_string());
        }
        if let Some(xml) = &self.message_xml {
            w.start("m:MessageXml", &[]).raw(xml).end("m:MessageXml");
        }
    }

    /// Reads the common part. Order is the structure check's business; this
    /// only needs ResponseClass to exist and be valid.
    pub fn parse(node: Node<'_, '_>, at: &str) -> Result<Self, ParseError> {
        let Some(class) = node.attribute("ResponseClass") else {
            return Err(ParseError::new(
                at,
                "the ResponseClass attribute is missing",
            ));
        };
        let Some(class) = ResponseClass::parse(class) else {
            return Err(ParseError::new(
                at,
                format!("ResponseClass `{class}` is not Success, Warning or Error"),
            ));
        };
        let text = |local: &str| child(node, ns::MESSAGES, local).map(|n| n.text_trimmed());
        let descriptive_link_key = match text("DescriptiveLinkKey") {
            None => None,
            Some(t) => Some(t.parse::<i64>().map_err(|_| {
                ParseError::new(
                    &format!("{at}/m:DescriptiveLinkKey"),
                    format!("`{t}` is not an xs:int"),
                )
            })?),
        };
        Ok(ResponseMessage {
            class,
            message_text: text("MessageText"),
            code: text("ResponseCode").map(|c| ResponseCode::parse(&c)),
            descriptive_link_key,
            message_xml: None,
        })
    }
}

/// Finds `Operation/m:ResponseMessages/m:<message>` under a response element,
/// the path every notification response shares.
pub fn response_messages<'a, 'i>(
    op: Node<'a, 'i>,
    message: &str,
) -> Result<Vec<Node<'a, 'i>>, ParseError> {
    let at = format!("/{}", display_name(op));
    let Some(msgs) = child(op, ns::MESSAGES, "ResponseMessages") else {
        return Err(ParseError::new(&at, "m:ResponseMessages is missing"));
    };
    let found: Vec<_> = element_children(msgs)
        .filter(|n| n.is(ns::MESSAGES, message))
        .collect();
    if found.is_empty() {
        return Err(ParseError::new(
            &format!("{at}/m:ResponseMessages"),
            format!("no m:{message}"),
        ));
    }
    Ok(found)
}

fn single_message<'a, 'i>(
    op: Node<'a, 'i>,
    response: &str,
    message: &str,
) -> Result<(Node<'a, 'i>, String), ParseError> {
    if !op.is(ns::MESSAGES, response) {
        return Err(ParseError::new(
            "/soap:Envelope/soap:Body",
            format!("expected m:{response}, found {}", display_name(op)),
        ));
    }
    let msgs = response_messages(op, message)?;
    Ok((
        msgs[0],
        format!("/m:{response}/m:ResponseMessages/m:{message}"),
    ))
}

/// Renders `m:<Response>/m:ResponseMessages/m:<Message>` with `inner` writing the operation-specific children.
pub fn render_response(
    w: &mut XmlWriter,
    response: &str,
    message: &str,
    common: &ResponseMessage,
    inner: impl FnOnce(&mut XmlWriter),
) {
    super::envelope::open_operation(w, &format!("m:{response}"));
    w.start("m:ResponseMessages", &[]);
    let el = format!("m:{message}");
    common.render_open(w, &el);
    inner(w);
    w.end(&el);
    w.end("m:ResponseMessages").end(&format!("m:{response}"));
}

/// `m:SubscribeResponseMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeResponse {
    pub message: ResponseMessage,
    pub subscription_id: Option<String>,
    pub watermark: Option<String>,
}

impl SubscribeResponse {
    pub fn render(&self, w: &mut XmlWriter) {
        render_response(
            w,
            "SubscribeResponse",
            "SubscribeResponseMessage",
            &self.message,
            |w| {
                w.leaf_opt("m:SubscriptionId", self.subscription_id.as_deref());
                w.leaf_opt("m:Watermark", self.watermark.as_deref());
            },
        );
    }

    pub fn parse(op: Node<'_, '_>) -> Result<Self, ParseError> {
        let (msg, at) = single_message(op, "SubscribeResponse", "SubscribeResponseMessage")?;
        Ok(SubscribeResponse {
            message: ResponseMessage::parse(msg, &at)?,
            subscription_id: child(msg, ns::MESSAGES, "SubscriptionId").map(|n| n.text_trimmed()),
            watermark: child(msg, ns::MESSAGES, "Watermark").map(|n| n.text_trimmed()),
        })
    }
}

/// `m:GetEventsResponseMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetEventsResponse {
    pub message: ResponseMessage,
    pub notification: Option<Notification>,
}

impl GetEventsResponse {
    pub fn render(&self, w: &mut XmlWriter) {
        render_response(
            w,
            "GetEventsResponse",
            "GetEventsResponseMessage",
            &self.message,
            |w| {
                if let Some(n) = &self.notification {
                    n.render(w, "m:Notification");
                }
            },
        );
    }

    pub fn parse(op: Node<'_, '_>) -> Result<Self, ParseError> {
        let (msg, at) = single_message(op, "GetEventsResponse", "GetEventsResponseMessage")?;
        let notification = match child(msg, ns::MESSAGES, "Notification") {
            Some(n) => Some(Notification::parse(n, &at)?),
            None => None,
        };
        Ok(GetEventsResponse {
            message: ResponseMessage::parse(msg, &at)?,
            notification,
        })
    }
}

/// `t:ConnectionStatusType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    Ok,
    Closed,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Ok => "OK",
            ConnectionStatus::Closed => "Closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "OK" => Some(ConnectionStatus::Ok),
            "Closed" => Some(ConnectionStatus::Closed),
            _ => None,
        }
    }
}

/// One envelope of a GetStreamingEvents stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetStreamingEventsResponse {
    pub message: ResponseMessage,
    pub notifications: Vec<Notification>,
    pub error_subscription_ids: Vec<String>,
    pub connection_status: Option<ConnectionStatus>,
}

impl GetStreamingEventsResponse {
    /// `notification_element` is `t:Notification` (schema) or `m:Notification` (Exchange's wire form).
    pub fn render(&self, w: &mut XmlWriter, notification_element: &str) {
        render_response(
            w,
            "GetStreamingEventsResponse",
            "GetStreamingEventsResponseMessage",
            &self.message,
            |w| {
                if !self.notifications.is_empty() {
                    w.start("m:Notifications", &[]);
                    for n in &self.notifications {
                        n.render(w, notification_element);
                    }
                    w.end("m:Notifications");
                }
                if !self.error_subscription_ids.is_empty() {
                    w.start("m:ErrorSubscriptionIds", &[]);
                    for id in &self.error_subscription_ids {
                        w.leaf("t:SubscriptionId", id);
                    }
                    w.end("m:ErrorSubscriptionIds");
                }
                if let Some(s) = self.connection_status {
                    w.leaf("m:ConnectionStatus", s.as_str());
                }
            },
        );
    }

    pub fn parse(op: Node<'_, '_>) -> Result<Self, ParseError> {
        let (msg, at) = single_message(
            op,
            "GetStreamingEventsResponse",
            "GetStreamingEventsResponseMessage",
        )?;
        let mut notifications = Vec::new();
        if let Some(list) = child(msg, ns::MESSAGES, "Notifications") {
            // Both m:Notification (wire) and t:Notification (schema) are accepted (digest 0.3).
            for n in element_children(list).filter(|n| n.tag_name().name() == "Notification") {
                notifications.push(Notification::parse(n, &format!("{at}/m:Notifications"))?);
            }
        }
        let error_subscription_ids = child(msg, ns::MESSAGES, "ErrorSubscriptionIds")
            .map(|l| {
                element_children(l)
                    .filter(|n| n.tag_name().name() == "SubscriptionId")
                    .map(|n| n.text_trimmed())
                    .collect()
            })
            .unwrap_or_default();
        let connection_status = match child(msg, ns::MESSAGES, "ConnectionStatus") {
            None => None,
            Some(n) => {
                let t = n.text_trimmed();
                Some(ConnectionStatus::parse(&t).ok_or_else(|| {
                    ParseError::new(
                        &format!("{at}/m:ConnectionStatus"),
                        format!("`{t}` is not OK or Closed"),
                    )
                })?)
            }
        };
        Ok(GetStreamingEventsResponse {
            message: ResponseMessage::parse(msg, &at)?,
            notifications,
            error_subscription_ids,
            connection_status,
        })
    }
}

/// `m:UnsubscribeResponseMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeResponse {
    pub message: ResponseMessage,
}

impl UnsubscribeResponse {
    pub fn render(&self, w: &mut XmlWriter) {
        render_response(
            w,
            "UnsubscribeResponse",
            "UnsubscribeResponseMessage",
            &self.message,
            |_| {},
        );
    }

    pub fn parse(op: Node<'_, '_>) -> Result<Self, ParseError> {
        let (msg, at) = single_message(op, "UnsubscribeResponse", "UnsubscribeResponseMessage")?;
        Ok(UnsubscribeResponse {
            message: ResponseMessage::parse(msg, &at)?,
        })
    }
}

/// The push body the server POSTs: `m:SendNotification`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendNotification {
    pub message: ResponseMessage,
    pub notification: Option<Notification>,
}

impl SendNotification {
    pub fn render(&self, w: &mut XmlWriter) {
        render_response(
            w,
            "SendNotification",
            "SendNotificationResponseMessage",
            &self.message,
            |w| {
                if let Some(n) = &self.notification {
                    n.render(w, "m:Notification");
                }
            },
        );
    }

    pub fn parse(op: Node<'_, '_>) -> Result<Self, ParseError> {
        let (msg, at) = single_message(op, "SendNotification", "SendNotificationResponseMessage")?;
        let notification = match child(msg, ns::MESSAGES, "Notification") {
            Some(n) => Some(Notification::parse(n, &at)?),
            None => None,
        };
        Ok(SendNotification {
            message: ResponseMessage::parse(msg, &at)?,
            notification,
        })
    }
}

/// `t:SubscriptionStatusType`: the push listener's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    Ok,
    Unsubscribe,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Ok => "OK",
            SubscriptionStatus::Unsubscribe => "Unsubscribe",
        }
    }

    /// `m:SendNotificationResult/m:SubscriptionStatus` (the body of the listener's reply).
    pub fn render_result(self, w: &mut XmlWriter) {
        w.start("m:SendNotificationResult", &[("xmlns:m", ns::MESSAGES)]);
        w.leaf("m:SubscriptionStatus", self.as_str());
        w.end("m:SendNotificationResult");
    }

    /// Reads a `m:SendNotificationResult` element.
    pub fn parse_result(node: Node<'_, '_>) -> Result<Self, ParseError> {
        if !node.is(ns::MESSAGES, "SendNotificationResult") {
            return Err(ParseError::new(
                "/soap:Envelope/soap:Body",
                format!(
                    "expected m:SendNotificationResult, found {}",
                    display_name(node)
                ),
            ));
        }
        let Some(s) = child(node, ns::MESSAGES, "SubscriptionStatus") else {
            return Err(ParseError::new(
                "/m:SendNotificationResult",
                "m:SubscriptionStatus is missing",
            ));
        };
        match s.text_trimmed().as_str() {
            "OK" => Ok(SubscriptionStatus::Ok),
            "Unsubscribe" => Ok(SubscriptionStatus::Unsubscribe),
            other => Err(ParseError::new(
                "/m:SendNotificationResult/m:SubscriptionStatus",
                format!("`{other}` is not OK or Unsubscribe"),
            )),
        }
    }
}

/// Reads an xs:boolean element text, for callers outside this module.
pub fn bool_text(node: Node<'_, '_>) -> Option<bool> {
    parse_bool(&node.text_trimmed())
}
