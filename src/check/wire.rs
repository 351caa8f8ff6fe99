//! Reading recorded exchanges the way the protocol sees them: what a
//! request asked for (from its body, never from the case file) and what
//! came back. The case-level checks (`watermark`, `batching`) build their
//! picture of a case from these readings alone, so they judge a live
//! target and the reference server the same way.
//!
//! Element names are matched by local name where the harness reads its own
//! requests (a raw `send` may use any prefix or even a wrong namespace) and
//! namespace-aware where it reads responses.

use roxmltree::Node;

use super::request::{Request, SubscribeAsk, read_request};
use crate::check::exchange::Exchange;
use crate::client::stream::split_all;
use ews_proto::ews::Notification;
use ews_proto::ews::envelope::open;
use ews_proto::xml::{ElementExt, element_children, ns, parse_document};

/// The documents of a response body: usually one; several when the body is
/// a GetStreamingEvents stream read to its end by a raw `send`.
pub fn documents(text: &str) -> Vec<String> {
    if parse_document(text).is_ok() {
        return vec![text.to_string()];
    }
    let (pieces, _) = split_all(text.as_bytes());
    let envelopes: Vec<String> = pieces.into_iter().flatten().map(|e| e.text).collect();
    if envelopes.len() > 1 {
        envelopes
    } else {
        vec![text.to_string()]
    }
}

/// Visits the documents of a response body, as [`documents`] finds them,
/// each with its parse: `f(index, count, text, parsed)`, given the parse of
/// the whole body (so a body that is one document is parsed only once).
pub fn each_document_parsed(
    text: &str,
    whole: Result<&roxmltree::Document<'_>, &ews_proto::xml::XmlError>,
    mut f: impl FnMut(usize, usize, &str, Result<&roxmltree::Document<'_>, &ews_proto::xml::XmlError>),
) {
    let whole = match whole {
        Ok(doc) => return f(0, 1, text, Ok(doc)),
        Err(e) => e,
    };
    let (pieces, _) = split_all(text.as_bytes());
    let envelopes: Vec<String> = pieces.into_iter().flatten().map(|e| e.text).collect();
    if envelopes.len() > 1 {
        let count = envelopes.len();
        for (i, piece) in envelopes.iter().enumerate() {
            match parse_document(piece) {
                Ok(doc) => f(i, count, piece, Ok(&doc)),
                Err(e) => f(i, count, piece, Err(&e)),
            }
        }
    } else {
        f(0, 1, text, Err(whole));
    }
}

/// The HTTP status of what an exchange received, if it received anything.
/// A document delivered to the harness without an HTTP answer of its own
/// (a push body the listener took in) counts as 200.
pub fn received(ex: &Exchange) -> Option<u16> {
    match ex.status {
        Some(s) => Some(s),
        None if !ex.response_text.trim().is_empty() => Some(200),
        None => None,
    }
}

/// Where a notification came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A GetEvents response.
    Pull,
    /// A push body (`m:SendNotification`).
    Push,
    /// An envelope of a GetStreamingEvents response.
    Streaming,
}

impl Channel {
    pub fn describe(self) -> &'static str {
        match self {
            Channel::Pull => "GetEvents",
            Channel::Push => "push notification",
            Channel::Streaming => "streaming notification",
        }
    }
}

/// What a response body said, as far as the case-level checks care.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// The payload's local name (`GetEventsResponse`, `SendNotification`, `Fault`, …).
    pub payload: String,
    /// Whether every response message has ResponseClass Success or Warning.
    pub success: bool,
    /// `m:SubscriptionId` of a SubscribeResponse.
    pub subscription: Option<String>,
    /// `m:Watermark` of a SubscribeResponse.
    pub watermark: Option<String>,
    /// Notifications, in document order, with the channel they came by.
    pub notifications: Vec<(Channel, Notification)>,
    /// Item ids of a successful CreateItem/CopyItem response, in order.
    pub items: Vec<String>,
}

/// Reads a response body (every document of it). `None` when it holds no
/// readable SOAP envelope at all.
pub fn read_reply(text: &str) -> Option<Reply> {
    read_reply_parsed(text, parse_document(text).as_ref())
}

/// [`read_reply`] given the parse of the whole body.
pub fn read_reply_parsed(
    text: &str,
    whole: Result<&roxmltree::Document<'_>, &ews_proto::xml::XmlError>,
) -> Option<Reply> {
    let mut out: Option<Reply> = None;
    each_document_parsed(text, whole, |_, _, _, parsed| {
        let Ok(doc) = parsed else {
            return;
        };
        let Ok(opened) = open(doc) else {
            return;
        };
        let payload = opened.payload;
        let reply = out.get_or_insert_with(|| Reply {
            payload: payload.tag_name().name().to_string(),
            success: true,
            ..Reply::default()
        });
        let channel = match payload.tag_name().name() {
            "SendNotification" => Channel::Push,
            "GetStreamingEventsResponse" => Channel::Streaming,
            _ => Channel::Pull,
        };
        if payload.is(ns::SOAP, "Fault") {
            reply.success = false;
            return;
        }
        let messages: Vec<Node<'_, '_>> = payload
            .child_ns(ns::MESSAGES, "ResponseMessages")
            .map(|m| element_children(m).collect())
            .unwrap_or_default();
        if messages.is_empty() {
            reply.success = false;
        }
        for msg in messages {
            if !matches!(msg.attribute("ResponseClass"), Some("Success" | "Warning")) {
                reply.success = false;
            }
            if let Some(id) = msg.child_ns(ns::MESSAGES, "SubscriptionId") {
                reply.subscription = Some(id.text_trimmed());
            }
            if let Some(w) = msg.child_ns(ns::MESSAGES, "Watermark") {
                reply.watermark = Some(w.text_trimmed());
            }
            for n in msg
                .descendants()
                .filter(|n| n.is(ns::MESSAGES, "Notification") || n.is(ns::TYPES, "Notification"))
            {
                if let Ok(parsed) = Notification::parse(n, "") {
                    reply.notifications.push((channel, parsed));
                }
            }
            if let Some(items) = msg.child_ns(ns::MESSAGES, "Items") {
                reply.items.extend(
                    items
                        .descendants()
                        .filter(|n| n.is(ns::TYPES, "ItemId"))
                        .filter_map(|n| n.attribute("Id").map(str::to_string)),
                );
            }
        }
    });
    out
}
// ------------------------------------------------------ the picture of a case

/// A case's exchanges as read, once: the cache [`super::input::CaseInput`] shares
/// among the case-level checks.
#[derive(Debug, Default)]
pub struct Readings {
    entries: std::sync::OnceLock<Vec<Entry>>,
    /// Readings made while each step was judged (from the parses its checks
    /// shared), by exchange index; a gap is read when the entries are built.
    /// Taken (not copied) when the entries are built.
    early: std::sync::Mutex<Vec<Option<Reading>>>,
}

impl Readings {
    /// A cache that starts from readings already made, by exchange index.
    pub fn prefilled(early: Vec<Option<Reading>>) -> Self {
        Readings {
            entries: std::sync::OnceLock::new(),
            early: std::sync::Mutex::new(early),
        }
    }

    /// The readings of `exchanges`, read on the first call.
    pub fn get_or_read(&self, exchanges: &[Exchange]) -> &[Entry] {
        self.entries.get_or_init(|| {
            let mut early = match self.early.lock() {
                Ok(mut e) => std::mem::take(&mut *e),
                Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
            };
            exchanges
                .iter()
                .enumerate()
                .map(|(index, ex)| {
                    let reading = match early.get_mut(index).and_then(Option::take) {
                        Some(made) => {
                            // The shortcut must never change what a check sees.
                            debug_assert_eq!(made, read_exchange(ex), "exchange {index}");
                            made
                        }
                        None => read_exchange(ex),
                    };
                    Entry {
                        index,
                        step: ex.step.clone(),
                        request: reading.request,
                        reply: reading.reply,
                    }
                })
                .collect()
        })
    }
}

/// What one exchange asked for and what came back, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub request: Request,
    /// `None`: no response, or no readable SOAP envelope in it.
    pub reply: Option<Reply>,
}

/// Reads one exchange, parsing both bodies (the reference every shortcut
/// must agree with).
pub fn read_exchange(ex: &Exchange) -> Reading {
    Reading {
        request: read_request(&ex.request),
        reply: received(ex)
            .is_some()
            .then(|| read_reply(&ex.response_text))
            .flatten(),
    }
}

/// One exchange as read: its index in the case, what was asked, what came back.
#[derive(Debug, Clone)]
pub struct Entry {
    pub index: usize,
    pub step: String,
    pub request: Request,
    /// `None`: no response, or no readable SOAP envelope in it.
    pub reply: Option<Reply>,
}

/// Reads every exchange of a case.
pub fn entries(exchanges: &[Exchange]) -> Vec<Entry> {
    exchanges
        .iter()
        .enumerate()
        .map(|(index, ex)| {
            let Reading { request, reply } = read_exchange(ex);
            Entry {
                index,
                step: ex.step.clone(),
                request,
                reply,
            }
        })
        .collect()
}

/// How a GetEvents call relates to the chain of its subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// It sent the watermark the client had to send (the Subscribe
    /// watermark first, then the last watermark of the previous answer).
    Chained,
    /// It sent another watermark (an older one: digest G5, R40).
    Other,
    /// What it had to send is not known (an earlier answer carried no watermark).
    Unknown,
}

/// One GetEvents call of a subscription.
#[derive(Debug, Clone)]
pub struct Poll {
    pub index: usize,
    pub step: String,
    pub sent: String,
    pub link: Link,
    /// The notification of a successful answer.
    pub notification: Option<Notification>,
}

/// A delivered notification that arrived without a request (push) or in a stream.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub index: usize,
    pub step: String,
    pub notification: Notification,
}

/// Everything a case did with one subscription id.
#[derive(Debug, Clone, Default)]
pub struct Subscription {
    pub id: String,
    /// What its Subscribe asked for (`None` when the case never subscribed it).
    pub ask: Option<SubscribeAsk>,
    /// The exchange whose answer created it.
    pub subscribed_at: Option<usize>,
    /// The Subscribe answer's watermark.
    pub initial_watermark: Option<String>,
    /// Exchanges of later Subscribe calls that were answered with this same
    /// id (each Subscribe must create a new subscription).
    pub reused_at: Vec<usize>,
    pub polls: Vec<Poll>,
    pub pushes: Vec<Delivery>,
    pub streamed: Vec<Delivery>,
}

impl Subscription {
    /// Where the events it must deliver start: its own Subscribe, or for a
    /// re-subscription the exchange that handed out its resume watermark.
    pub fn window_start(&self, origin: Option<usize>) -> Option<usize> {
        match (&self.ask, origin) {
            (Some(ask), Some(o)) if ask.watermark.is_some() => Some(o),
            _ => self.subscribed_at,
        }
    }
}

/// The subscriptions of a case in order of first appearance.
pub fn subscriptions(entries: &[Entry]) -> Vec<Subscription> {
    let mut subs: Vec<Subscription> = Vec::new();
    // The watermark each subscription's client must send next.
    let mut next: Vec<Option<String>> = Vec::new();
    let find = |subs: &mut Vec<Subscription>, next: &mut Vec<Option<String>>, id: &str| match subs
        .iter()
        .position(|s| s.id == id)
    {
        Some(i) => i,
        None => {
            subs.push(Subscription {
                id: id.to_string(),
                ..Subscription::default()
            });
            next.push(None);
            subs.len() - 1
        }
    };
    for e in entries {
        let Some(reply) = &e.reply else { continue };
        match &e.request {
            Request::Subscribe(ask) if reply.success => {
                if let Some(id) = &reply.subscription {
                    let i = find(&mut subs, &mut next, id);
                    let s = &mut subs[i];
                    if s.subscribed_at.is_some() {
                        s.reused_at.push(e.index);
                        continue;
                    }
                    s.ask = Some(ask.clone());
                    s.subscribed_at = Some(e.index);
                    s.initial_watermark = reply.watermark.clone();
                    next[i] = reply.watermark.clone();
                }
            }
            Request::GetEvents {
                subscription,
                watermark,
            } => {
                let i = find(&mut subs, &mut next, subscription);
                let link = match &next[i] {
                    Some(w) if w == watermark => Link::Chained,
                    Some(_) => Link::Other,
                    None => Link::Unknown,
                };
                let notification = reply
                    .success
                    .then(|| reply.notifications.first().map(|(_, n)| n.clone()))
                    .flatten();
                if let Some(n) = &notification {
                    next[i] = n.last_watermark().map(str::to_string);
                }
                subs[i].polls.push(Poll {
                    index: e.index,
                    step: e.step.clone(),
                    sent: watermark.clone(),
                    link,
                    notification,
                });
            }
            _ => {
                for (channel, n) in &reply.notifications {
                    let delivery = Delivery {
                        index: e.index,
                        step: e.step.clone(),
                        notification: n.clone(),
                    };
                    match channel {
                        Channel::Push => {
                            let i = find(&mut subs, &mut next, &n.subscription_id);
                            subs[i].pushes.push(delivery);
                        }
                        Channel::Streaming => {
                            let i = find(&mut subs, &mut next, &n.subscription_id);
                            subs[i].streamed.push(delivery);
                        }
                        Channel::Pull => {}
                    }
                }
            }
        }
    }
    subs
}

/// A short, readable form of an opaque id for messages.
pub fn short(id: &str) -> String {
    let n = id.chars().count();
    if n <= 16 {
        id.to_string()
    } else {
        let head: String = id.chars().take(8).collect();
        let tail: String = id.chars().skip(n - 6).collect();
        format!("{head}…{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::request::{FolderKey, SubscriptionKind, requested_version};
    use super::*;
    use ews_proto::ews::EventKind;

    const SUBSCRIBE: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
<s:Header><t:RequestServerVersion Version="Exchange2010_SP1"/></s:Header>
<s:Body><m:Subscribe><m:PullSubscriptionRequest><t:FolderIds><t:FolderId Id="F1"/><t:DistinguishedFolderId Id="Inbox"/></t:FolderIds>
<t:EventTypes><t:EventType>CreatedEvent</t:EventType><t:EventType>NewMailEvent</t:EventType></t:EventTypes><m:Watermark>W9</m:Watermark><t:Timeout>10</t:Timeout>
</m:PullSubscriptionRequest></m:Subscribe></s:Body></s:Envelope>"#;

    #[test]
    fn requests_are_read_by_local_name() {
        let Request::Subscribe(ask) = read_request(SUBSCRIBE) else {
            panic!("a Subscribe");
        };
        assert_eq!(ask.mode, SubscriptionKind::Pull);
        assert_eq!(ask.watermark.as_deref(), Some("W9"));
        assert!(ask.covers(EventKind::Created, &FolderKey::Id("F1".into())));
        assert!(ask.covers(
            EventKind::NewMail,
            &FolderKey::Distinguished {
                name: "inbox".into(),
                mailbox: None
            }
        ));
        assert!(!ask.covers(EventKind::Deleted, &FolderKey::Id("F1".into())));
        assert!(!ask.covers(EventKind::Created, &FolderKey::Id("F2".into())));
        assert_eq!(
            requested_version(SUBSCRIBE).as_deref(),
            Some("Exchange2010_SP1")
        );
        assert_eq!(read_request("not xml"), Request::Unreadable);
    }

    #[test]
    fn replies_collect_notifications_and_ids() {
        let r = read_reply(crate::check::testing::GET_EVENTS_OK).expect("a reply");
        assert!(r.success);
        assert_eq!(r.payload, "GetEventsResponse");
        assert_eq!(r.notifications.len(), 1);
        assert_eq!(r.notifications[0].0, Channel::Pull);
        let r = read_reply(crate::check::testing::NOT_FOUND).expect("a reply");
        assert!(!r.success);
        assert!(read_reply("<x/>").is_none());
    }

    #[test]
    fn a_stream_body_is_split_into_its_envelopes() {
        let env = |status: &str| {
            format!(
                r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetStreamingEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ConnectionStatus>{status}</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></s:Body></s:Envelope>"#
            )
        };
        let body = format!("{}\n{}", env("OK"), env("Closed"));
        assert_eq!(documents(&body).len(), 2);
        assert_eq!(documents(&env("OK")).len(), 1);
        let r = read_reply(&body).expect("a reply");
        assert!(r.success);
        assert_eq!(r.payload, "GetStreamingEventsResponse");
    }
}
