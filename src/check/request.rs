//! What a request asked for, read from its body (never from the case
//! file): the operation, a Subscribe's kind, folders and event types, and
//! the RequestServerVersion it names. Element names are matched by local
//! name: a raw `send` may use any prefix or even a wrong namespace.

use roxmltree::Node;

use ews_proto::ews::EventKind;
use ews_proto::xml::{ElementExt, element_children, ns, parse_document};

/// A folder as a request names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FolderKey {
    /// `t:FolderId Id="…"`.
    Id(String),
    /// `t:DistinguishedFolderId Id="inbox"`, with the mailbox it names, if any.
    Distinguished {
        name: String,
        mailbox: Option<String>,
    },
}

/// Which kind of subscription a Subscribe asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionKind {
    Pull,
    Push,
    Streaming,
}

/// What a Subscribe request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeAsk {
    pub mode: SubscriptionKind,
    pub folders: Vec<FolderKey>,
    pub all_folders: bool,
    pub event_types: Vec<EventKind>,
    /// The resume point, when the request carries one (`t:Watermark`, or the
    /// `m:Watermark` some clients send).
    pub watermark: Option<String>,
}

impl SubscribeAsk {
    /// Whether an event of `kind` in `folder` is one this subscription asked for.
    pub fn covers(&self, kind: EventKind, folder: &FolderKey) -> bool {
        self.event_types.contains(&kind) && (self.all_folders || self.folders.contains(folder))
    }
}

/// What a request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Subscribe(SubscribeAsk),
    GetEvents {
        subscription: String,
        watermark: String,
    },
    GetStreamingEvents {
        subscriptions: Vec<String>,
    },
    Unsubscribe {
        subscription: String,
    },
    CreateItem {
        /// `SavedItemFolderId`; `None` for SendOnly.
        folder: Option<FolderKey>,
        save_only: bool,
    },
    /// Another operation (its local name).
    Other(String),
    /// No SOAP body could be read (a push exchange, a defective request).
    Unreadable,
}

/// What a request body says, read once: what it asked for and the
/// RequestServerVersion it names. The executor reads it while the target
/// works on the request and keeps it on the exchange ([`Exchange::asked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub request: Request,
    pub version: Option<String>,
}

impl Asked {
    pub fn read(text: &str) -> Asked {
        let parsed = parse_document(text);
        Asked {
            request: read_request_parsed(parsed.as_ref()),
            version: requested_version_parsed(parsed.as_ref()),
        }
    }
}

/// Reads the operation a request body carries.
pub fn read_request(text: &str) -> Request {
    read_request_parsed(parse_document(text).as_ref())
}

/// [`read_request`] on a body already parsed.
pub fn read_request_parsed(
    parsed: Result<&roxmltree::Document<'_>, &ews_proto::xml::XmlError>,
) -> Request {
    let Ok(doc) = parsed else {
        return Request::Unreadable;
    };
    let Some(op) = body_child(doc.root_element()) else {
        return Request::Unreadable;
    };
    let text_of = |parent: Node<'_, '_>, local: &str| {
        element_children(parent)
            .find(|c| c.tag_name().name() == local)
            .map(|c| c.text_trimmed())
    };
    match op.tag_name().name() {
        "Subscribe" => {
            let Some(req) = element_children(op).next() else {
                return Request::Unreadable;
            };
            let mode = match req.tag_name().name() {
                "PullSubscriptionRequest" => SubscriptionKind::Pull,
                "PushSubscriptionRequest" => SubscriptionKind::Push,
                "StreamingSubscriptionRequest" => SubscriptionKind::Streaming,
                _ => return Request::Unreadable,
            };
            let folders = element_children(req)
                .filter(|c| c.tag_name().name() == "FolderIds")
                .flat_map(element_children)
                .filter_map(folder_key)
                .collect();
            let event_types = element_children(req)
                .filter(|c| c.tag_name().name() == "EventTypes")
                .flat_map(element_children)
                .filter_map(|e| EventKind::from_element_name(&e.text_trimmed()))
                .collect();
            Request::Subscribe(SubscribeAsk {
                mode,
                folders,
                all_folders: matches!(req.attribute("SubscribeToAllFolders"), Some("true" | "1")),
                event_types,
                watermark: text_of(req, "Watermark").filter(|w| !w.is_empty()),
            })
        }
        "GetEvents" => match (text_of(op, "SubscriptionId"), text_of(op, "Watermark")) {
            (Some(subscription), Some(watermark)) => Request::GetEvents {
                subscription,
                watermark,
            },
            _ => Request::Unreadable,
        },
        "GetStreamingEvents" => Request::GetStreamingEvents {
            subscriptions: op
                .descendants()
                .filter(|n| n.is_element() && n.tag_name().name() == "SubscriptionId")
                .map(|n| n.text_trimmed())
                .collect(),
        },
        "Unsubscribe" => match text_of(op, "SubscriptionId") {
            Some(subscription) => Request::Unsubscribe { subscription },
            None => Request::Unreadable,
        },
        "CreateItem" => Request::CreateItem {
            folder: element_children(op)
                .find(|c| c.tag_name().name() == "SavedItemFolderId")
                .and_then(|f| element_children(f).find_map(folder_key)),
            save_only: op.attribute("MessageDisposition").unwrap_or("SaveOnly") == "SaveOnly",
        },
        other => Request::Other(other.to_string()),
    }
}

fn body_child<'a, 'i>(envelope: Node<'a, 'i>) -> Option<Node<'a, 'i>> {
    element_children(envelope)
        .find(|c| c.tag_name().name() == "Body")
        .and_then(|b| element_children(b).next())
}

fn folder_key(node: Node<'_, '_>) -> Option<FolderKey> {
    let id = node.attribute("Id")?.to_string();
    match node.tag_name().name() {
        "FolderId" => Some(FolderKey::Id(id)),
        "DistinguishedFolderId" => Some(FolderKey::Distinguished {
            name: id.to_ascii_lowercase(),
            mailbox: node
                .descendants()
                .find(|n| n.is_element() && n.tag_name().name() == "EmailAddress")
                .map(|n| n.text_trimmed().to_ascii_lowercase()),
        }),
        _ => None,
    }
}

/// The RequestServerVersion a request body names, if any.
pub fn requested_version(request: &str) -> Option<String> {
    requested_version_parsed(parse_document(request).as_ref())
}

/// [`requested_version`] on a body already parsed.
pub fn requested_version_parsed(
    parsed: Result<&roxmltree::Document<'_>, &ews_proto::xml::XmlError>,
) -> Option<String> {
    let doc = parsed.ok()?;
    let header = element_children(doc.root_element()).find(|c| c.tag_name().name() == "Header")?;
    element_children(header)
        .find(|c| c.is(ns::TYPES, "RequestServerVersion"))
        .and_then(|c| c.attribute("Version"))
        .map(str::to_string)
}
