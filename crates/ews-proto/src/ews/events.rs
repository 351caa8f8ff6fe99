//! Notifications and their events (digest section 2.1), rendered and parsed.

use roxmltree::Node;

use super::error::ParseError;
use crate::xml::{ElementExt, XmlWriter, element_children, ns};

/// The eight event elements of `t:NotificationType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Copied,
    Created,
    Deleted,
    Modified,
    Moved,
    NewMail,
    Status,
    FreeBusyChanged,
}

impl EventKind {
    pub const ALL: [EventKind; 8] = [
        EventKind::Copied,
        EventKind::Created,
        EventKind::Deleted,
        EventKind::Modified,
        EventKind::Moved,
        EventKind::NewMail,
        EventKind::Status,
        EventKind::FreeBusyChanged,
    ];

    /// The element name, which is also the `t:EventType` value.
    pub fn element_name(self) -> &'static str {
        match self {
            EventKind::Copied => "CopiedEvent",
            EventKind::Created => "CreatedEvent",
            EventKind::Deleted => "DeletedEvent",
            EventKind::Modified => "ModifiedEvent",
            EventKind::Moved => "MovedEvent",
            EventKind::NewMail => "NewMailEvent",
            EventKind::Status => "StatusEvent",
            EventKind::FreeBusyChanged => "FreeBusyChangedEvent",
        }
    }

    pub fn from_element_name(name: &str) -> Option<Self> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.element_name() == name)
    }

    /// Whether the value may appear in `t:EventTypes` (StatusEvent may not, R10).
    pub fn subscribable(self) -> bool {
        self != EventKind::Status
    }

    /// Moved and Copied events carry the old location.
    pub fn has_old_location(self) -> bool {
        matches!(self, EventKind::Moved | EventKind::Copied)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.element_name())
    }
}

/// `t:ItemIdType` / `t:FolderIdType`: an opaque Id and an optional ChangeKey.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Id {
    pub id: String,
    pub change_key: Option<String>,
}

impl Id {
    pub fn new(id: impl Into<String>) -> Self {
        Id {
            id: id.into(),
            change_key: None,
        }
    }

    pub fn with_change_key(id: impl Into<String>, ck: impl Into<String>) -> Self {
        Id {
            id: id.into(),
            change_key: Some(ck.into()),
        }
    }

    pub fn render(&self, w: &mut XmlWriter, name: &str) {
        match &self.change_key {
            Some(ck) => w.empty(name, &[("Id", &self.id), ("ChangeKey", ck)]),
            None => w.empty(name, &[("Id", &self.id)]),
        };
    }

    pub fn parse(node: Node<'_, '_>, at: &str) -> Result<Self, ParseError> {
        let id = node.attribute("Id").unwrap_or_default();
        if id.is_empty() {
            return Err(ParseError::new(at, "the Id attribute is missing or empty"));
        }
        Ok(Id {
            id: id.to_string(),
            change_key: node.attribute("ChangeKey").map(str::to_string),
        })
    }
}

/// What an event is about: an item or a folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObjectId {
    Item(Id),
    Folder(Id),
}

impl ObjectId {
    pub fn id(&self) -> &Id {
        match self {
            ObjectId::Item(id) | ObjectId::Folder(id) => id,
        }
    }

    pub fn is_folder(&self) -> bool {
        matches!(self, ObjectId::Folder(_))
    }
}

/// One event of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub watermark: Option<String>,
    /// xs:dateTime, absent on StatusEvent.
    pub timestamp: Option<String>,
    /// The item or folder, absent on StatusEvent.
    pub object: Option<ObjectId>,
    pub parent_folder_id: Option<Id>,
    /// Moved/Copied: the original item or folder.
    pub old_object: Option<ObjectId>,
    pub old_parent_folder_id: Option<Id>,
    /// ModifiedEvent on a folder.
    pub unread_count: Option<i64>,
}

impl Event {
    pub fn status(watermark: Option<String>) -> Self {
        Event {
            kind: EventKind::Status,
            watermark,
            timestamp: None,
            object: None,
            parent_folder_id: None,
            old_object: None,
            old_parent_folder_id: None,
            unread_count: None,
        }
    }

    /// Writes the event in schema order with `t:` names.
    pub fn render(&self, w: &mut XmlWriter) {
        let name = format!("t:{}", self.kind.element_name());
        w.start(&name, &[]);
        w.leaf_opt("t:Watermark", self.watermark.as_deref());
        // A StatusEvent has no TimeStamp in the schema; only a fault sets one.
        w.leaf_opt("t:TimeStamp", self.timestamp.as_deref());
        if self.kind != EventKind::Status {
            match &self.object {
                Some(ObjectId::Item(id)) => id.render(w, "t:ItemId"),
                Some(ObjectId::Folder(id)) => id.render(w, "t:FolderId"),
                None => {}
            }
            if let Some(p) = &self.parent_folder_id {
                p.render(w, "t:ParentFolderId");
            }
            match &self.old_object {
                Some(ObjectId::Item(id)) => id.render(w, "t:OldItemId"),
                Some(ObjectId::Folder(id)) => id.render(w, "t:OldFolderId"),
                None => {}
            }
            if let Some(p) = &self.old_parent_folder_id {
                p.render(w, "t:OldParentFolderId");
            }
            if let Some(n) = self.unread_count {
                w.leaf("t:UnreadCount", &n.to_string());
            }
        }
        w.end(&name);
    }

    /// Reads an event element. Unknown children are ignored (a later schema
    /// may add some); missing required parts are errors naming the place.
    pub fn parse(node: Node<'_, '_>, at: &str) -> Result<Self, ParseError> {
        let local = node.tag_name().name();
        let Some(kind) = EventKind::from_element_name(local) else {
            return Err(ParseError::new(
                at,
                format!("`{local}` is not an event element"),
            ));
        };
        let at = format!("{at}/t:{local}");
        let mut ev = Event::status(None);
        ev.kind = kind;
        for c in element_children(node) {
            if c.tag_name().namespace() != Some(ns::TYPES) {
                continue;
            }
            let here = format!("{at}/t:{}", c.tag_name().name());
            match c.tag_name().name() {
                "Watermark" => ev.watermark = Some(c.text_trimmed()),
                "TimeStamp" => ev.timestamp = Some(c.text_trimmed()),
                "ItemId" => ev.object = Some(ObjectId::Item(Id::parse(c, &here)?)),
                "FolderId" => ev.object = Some(ObjectId::Folder(Id::parse(c, &here)?)),
                "ParentFolderId" => ev.parent_folder_id = Some(Id::parse(c, &here)?),
                "OldItemId" => ev.old_object = Some(ObjectId::Item(Id::parse(c, &here)?)),
                "OldFolderId" => ev.old_object = Some(ObjectId::Folder(Id::parse(c, &here)?)),
                "OldParentFolderId" => ev.old_parent_folder_id = Some(Id::parse(c, &here)?),
                "UnreadCount" => {
                    let text = c.text_trimmed();
                    let n = text.parse::<i64>().map_err(|_| {
                        ParseError::new(&here, format!("`{text}` is not an xs:int"))
                    })?;
                    ev.unread_count = Some(n);
                }
                _ => {}
            }
        }
        if kind != EventKind::Status {
            if ev.object.is_none() {
                return Err(ParseError::new(
                    &at,
                    "neither t:ItemId nor t:FolderId is present",
                ));
            }
            if ev.parent_folder_id.is_none() {
                return Err(ParseError::new(&at, "t:ParentFolderId is missing"));
            }
        }
        if kind.has_old_location() && ev.old_object.is_none() {
            return Err(ParseError::new(
                &at,
                "neither t:OldItemId nor t:OldFolderId is present",
            ));
        }
        Ok(ev)
    }
}

/// `t:NotificationType`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notification {
    pub subscription_id: String,
    pub previous_watermark: Option<String>,
    pub more_events: Option<bool>,
    pub events: Vec<Event>,
}

impl Notification {
    /// Writes the notification under the qualified element name `element`
    /// (`m:Notification` in GetEvents and push, `t:` or `m:` in streaming).
    pub fn render(&self, w: &mut XmlWriter, element: &str) {
        w.start(element, &[]);
        w.leaf("t:SubscriptionId", &self.subscription_id);
        w.leaf_opt("t:PreviousWatermark", self.previous_watermark.as_deref());
        if let Some(more) = self.more_events {
            w.leaf("t:MoreEvents", if more { "true" } else { "false" });
        }
        for ev in &self.events {
            ev.render(w);
        }
        w.end(element);
    }

    pub fn parse(node: Node<'_, '_>, at: &str) -> Result<Self, ParseError> {
        let at = format!("{at}/{}", crate::xml::display_name(node));
        let mut n = Notification::default();
        let mut saw_id = false;
        for c in element_children(node) {
            if c.tag_name().namespace() != Some(ns::TYPES) {
                continue;
            }
            let local = c.tag_name().name();
            match local {
                "SubscriptionId" => {
                    n.subscription_id = c.text_trimmed();
                    saw_id = true;
                }
                "PreviousWatermark" => n.previous_watermark = Some(c.text_trimmed()),
                "MoreEvents" => {
                    let text = c.text_trimmed();
                    n.more_events = Some(parse_bool(&text).ok_or_else(|| {
                        ParseError::new(
                            &format!("{at}/t:MoreEvents"),
                            format!("`{text}` is not an xs:boolean"),
                        )
                    })?);
                }
                _ if EventKind::from_element_name(local).is_some() => {
                    n.events.push(Event::parse(c, &at)?)
                }
                _ => {}
            }
        }
        if !saw_id || n.subscription_id.is_empty() {
            return Err(ParseError::new(&at, "t:SubscriptionId is missing or empty"));
        }
        Ok(n)
    }

    /// The watermark a pull client sends next: the last event's, if any carries one.
    pub fn last_watermark(&self) -> Option<&str> {
        self.events
            .iter()
            .rev()
            .find_map(|e| e.watermark.as_deref())
    }
}

/// xs:boolean in its four lexical forms.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}
