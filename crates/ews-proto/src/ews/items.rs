//! The item and folder operations cases use to cause mailbox events
//! (CreateItem, UpdateItem, MoveItem, CopyItem, DeleteItem, CreateFolder,
//! DeleteFolder, GetFolder, GetItem), rendered as request bodies.

use super::events::Id;
use super::messages::FolderRef;
use crate::xml::XmlWriter;

/// The DistinguishedFolderId names a case may use instead of an id: the
/// schema's `t:DistinguishedFolderIdNameType` values.
pub use super::grammar::DISTINGUISHED_FOLDERS;

/// A distinguished name becomes `t:DistinguishedFolderId`, anything else
/// `t:FolderId`. `inbox:user@example.com` names that mailbox's Inbox
/// (`t:Mailbox` inside the DistinguishedFolderId; ids never hold a `:`).
pub fn folder_ref(name_or_id: &str) -> FolderRef {
    if let Some((name, mailbox)) = name_or_id.split_once(':')
        && DISTINGUISHED_FOLDERS.contains(&name)
        && mailbox.contains('@')
    {
        return FolderRef::Distinguished {
            id: name.to_string(),
            mailbox: Some(mailbox.to_string()),
        };
    }
    if DISTINGUISHED_FOLDERS.contains(&name_or_id) {
        FolderRef::distinguished(name_or_id)
    } else {
        FolderRef::Id(Id::new(name_or_id))
    }
}

/// `MessageDisposition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    SaveOnly,
    SendOnly,
    SendAndSaveCopy,
}

impl Disposition {
    pub const NAMES: &'static [&'static str] = &["SaveOnly", "SendOnly", "SendAndSaveCopy"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "SaveOnly" => Some(Disposition::SaveOnly),
            "SendOnly" => Some(Disposition::SendOnly),
            "SendAndSaveCopy" => Some(Disposition::SendAndSaveCopy),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::SaveOnly => "SaveOnly",
            Disposition::SendOnly => "SendOnly",
            Disposition::SendAndSaveCopy => "SendAndSaveCopy",
        }
    }
}

/// `DeleteType`.
pub const DELETE_TYPES: &[&str] = &["HardDelete", "SoftDelete", "MoveToDeletedItems"];

/// `m:CreateItem`: `count` messages in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateItem {
    /// Where the item (or the sent copy) is saved; ignored for SendOnly.
    pub folder: FolderRef,
    pub subject: String,
    pub count: usize,
    pub disposition: Disposition,
    pub to: Vec<String>,
    pub is_read: Option<bool>,
}

impl CreateItem {
    pub fn render(&self, w: &mut XmlWriter) {
        w.start(
            "m:CreateItem",
            &[("MessageDisposition", self.disposition.as_str())],
        );
        if self.disposition != Disposition::SendOnly {
            w.start("m:SavedItemFolderId", &[]);
            self.folder.render(w);
            w.end("m:SavedItemFolderId");
        }
        w.start("m:Items", &[]);
        for _ in 0..self.count {
            // Schema order of t:MessageType: Subject, Body, …, ToRecipients, …, IsRead.
            w.start("t:Message", &[]);
            w.leaf("t:Subject", &self.subject);
            w.start("t:Body", &[("BodyType", "Text")])
                .text(&self.subject)
                .end("t:Body");
            if !self.to.is_empty() {
                w.start("t:ToRecipients", &[]);
                for smtp in &self.to {
                    w.start("t:Mailbox", &[]);
                    w.leaf("t:EmailAddress", smtp);
                    w.end("t:Mailbox");
                }
                w.end("t:ToRecipients");
            }
            if let Some(read) = self.is_read {
                w.leaf("t:IsRead", bool_text(read));
            }
            w.end("t:Message");
        }
        w.end("m:Items").end("m:CreateItem");
    }
}

/// `m:UpdateItem` setting IsRead and/or Subject on one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateItem {
    pub item: String,
    pub is_read: Option<bool>,
    pub subject: Option<String>,
}

impl UpdateItem {
    pub fn render(&self, w: &mut XmlWriter) {
        w.start(
            "m:UpdateItem",
            &[
                ("MessageDisposition", "SaveOnly"),
                ("ConflictResolution", "AlwaysOverwrite"),
            ],
        );
        w.start("m:ItemChanges", &[]).start("t:ItemChange", &[]);
        Id::new(&self.item).render(w, "t:ItemId");
        w.start("t:Updates", &[]);
        if let Some(subject) = &self.subject {
            set_field(w, "item:Subject", |w| {
                w.leaf("t:Subject", subject);
            });
        }
        if let Some(read) = self.is_read {
            set_field(w, "message:IsRead", |w| {
                w.leaf("t:IsRead", bool_text(read));
            });
        }
        w.end("t:Updates");
        w.end("t:ItemChange").end("m:ItemChanges");
        w.end("m:UpdateItem");
    }
}

fn set_field(w: &mut XmlWriter, uri: &str, value: impl FnOnce(&mut XmlWriter)) {
    w.start("t:SetItemField", &[]);
    w.empty("t:FieldURI", &[("FieldURI", uri)]);
    w.start("t:Message", &[]);
    value(w);
    w.end("t:Message");
    w.end("t:SetItemField");
}

/// `m:MoveItem` or `m:CopyItem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveOrCopyItem {
    pub copy: bool,
    pub item: String,
    pub to: FolderRef,
}

impl MoveOrCopyItem {
    pub fn render(&self, w: &mut XmlWriter) {
        let op = if self.copy {
            "m:CopyItem"
        } else {
            "m:MoveItem"
        };
        w.start(op, &[]);
        w.start("m:ToFolderId", &[]);
        self.to.render(w);
        w.end("m:ToFolderId");
        w.start("m:ItemIds", &[]);
        Id::new(&self.item).render(w, "t:ItemId");
        w.end("m:ItemIds");
        w.end(op);
    }
}

/// `m:DeleteItem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteItem {
    pub item: String,
    pub delete_type: String,
}

impl DeleteItem {
    pub fn render(&self, w: &mut XmlWriter) {
        w.start("m:DeleteItem", &[("DeleteType", &self.delete_type)]);
        w.start("m:ItemIds", &[]);
        Id::new(&self.item).render(w, "t:ItemId");
        w.end("m:ItemIds");
        w.end("m:DeleteItem");
    }
}

/// `m:CreateFolder` with one `t:Folder`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateFolder {
    pub parent: FolderRef,
    pub name: String,
}

impl CreateFolder {
    pub fn render(&self, w: &mut XmlWriter) {
        w.start("m:CreateFolder", &[]);
        w.start("m:ParentFolderId", &[]);
        self.parent.render(w);
        w.end("m:ParentFolderId");
        w.start("m:Folders", &[]).start("t:Folder", &[]);
        w.leaf("t:DisplayName", &self.name);
        w.end("t:Folder").end("m:Folders");
        w.end("m:CreateFolder");
    }
}

/// `m:DeleteFolder`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteFolder {
    pub folder: FolderRef,
    pub delete_type: String,
}

impl DeleteFolder {
    pub fn render(&self, w: &mut XmlWriter) {
        w.start("m:DeleteFolder", &[("DeleteType", &self.delete_type)]);
        w.start("m:FolderIds", &[]);
        self.folder.render(w);
        w.end("m:FolderIds");
        w.end("m:DeleteFolder");
    }
}

/// `m:GetFolder` with the Default shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetFolder {
    pub folder: FolderRef,
}

impl GetFolder {
    pub fn render(&self, w: &mut XmlWriter) {
        w.start("m:GetFolder", &[]);
        w.start("m:FolderShape", &[]);
        w.leaf("t:BaseShape", "Default");
        w.end("m:FolderShape");
        w.start("m:FolderIds", &[]);
        self.folder.render(w);
        w.end("m:FolderIds");
        w.end("m:GetFolder");
    }
}

/// `m:GetItem` with the Default shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetItem {
    pub item: String,
}

impl GetItem {
    pub fn render(&self, w: &mut XmlWriter) {
        w.start("m:GetItem", &[]);
        w.start("m:ItemShape", &[]);
        w.leaf("t:BaseShape", "Default");
        w.end("m:ItemShape");
        w.start("m:ItemIds", &[]);
        Id::new(&self.item).render(w, "t:ItemId");
        w.end("m:ItemIds");
        w.end("m:GetItem");
    }
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::envelope::{RequestHeader, request};
    use crate::xml::path::XPath;

    fn strings(xml: &str, path: &str) -> Vec<String> {
        let doc = roxmltree::Document::parse(xml).expect("rendered XML parses");
        XPath::parse(path)
            .expect("path parses")
            .select(&doc)
            .strings()
    }

    fn names_under(xml: &str, path: &str) -> Vec<String> {
        let doc = roxmltree::Document::parse(xml).expect("rendered XML parses");
        match XPath::parse(path).expect("path").select(&doc) {
            crate::xml::path::Selection::Nodes(n) => n
                .first()
                .map(|n| {
                    crate::xml::element_children(*n)
                        .map(crate::xml::display_name)
                        .collect()
                })
                .unwrap_or_default(),
            crate::xml::path::Selection::Values(_) => vec![],
        }
    }

    #[test]
    fn create_item_has_schema_order_and_count() {
        let body = request(&RequestHeader::default(), |w| {
            CreateItem {
                folder: folder_ref("AAMkFolder"),
                subject: "hello".into(),
                count: 3,
                disposition: Disposition::SendAndSaveCopy,
                to: vec!["a@example.test".into()],
                is_read: Some(false),
            }
            .render(w)
        });
        assert_eq!(
            strings(&body, "//m:CreateItem/@MessageDisposition"),
            ["SendAndSaveCopy"]
        );
        assert_eq!(
            strings(&body, "//m:SavedItemFolderId/t:FolderId/@Id"),
            ["AAMkFolder"]
        );
        assert_eq!(strings(&body, "//t:Message/t:Subject").len(), 3);
        assert_eq!(
            names_under(&body, "//m:Items/t:Message"),
            ["t:Subject", "t:Body", "t:ToRecipients", "t:IsRead"]
        );
        assert_eq!(
            strings(&body, "//t:Body/@BodyType"),
            ["Text", "Text", "Text"]
        );
    }

    #[test]
    fn a_distinguished_name_may_name_its_mailbox() {
        assert_eq!(
            folder_ref("inbox:bob@example.com"),
            FolderRef::Distinguished {
                id: "inbox".into(),
                mailbox: Some("bob@example.com".into())
            }
        );
        assert_eq!(folder_ref("inbox"), FolderRef::distinguished("inbox"));
        // An id stays an id.
        assert_eq!(folder_ref("AAMk:x"), FolderRef::Id(Id::new("AAMk:x")));
    }

    #[test]
    fn send_only_has_no_saved_folder_and_inbox_is_distinguished() {
        let body = request(&RequestHeader::default(), |w| {
            CreateItem {
                folder: folder_ref("inbox"),
                subject: "s".into(),
                count: 1,
                disposition: Disposition::SendOnly,
                to: vec![],
                is_read: None,
            }
            .render(w)
        });
        assert!(strings(&body, "//m:SavedItemFolderId").is_empty());
        assert_eq!(folder_ref("inbox"), FolderRef::distinguished("inbox"));
    }

    #[test]
    fn update_move_delete_and_folders() {
        let body = request(&RequestHeader::default(), |w| {
            UpdateItem {
                item: "I1".into(),
                is_read: Some(true),
                subject: Some("new".into()),
            }
            .render(w)
        });
        assert_eq!(
            strings(&body, "//t:SetItemField/t:FieldURI/@FieldURI"),
            ["item:Subject", "message:IsRead"]
        );
        assert_eq!(
            strings(&body, "//m:UpdateItem/@ConflictResolution"),
            ["AlwaysOverwrite"]
        );
        assert_eq!(strings(&body, "//t:ItemChange/t:ItemId/@Id"), ["I1"]);

        let body = request(&RequestHeader::default(), |w| {
            MoveOrCopyItem {
                copy: true,
                item: "I1".into(),
                to: folder_ref("deleteditems"),
            }
            .render(w)
        });
        assert_eq!(
            strings(
                &body,
                "//m:CopyItem/m:ToFolderId/t:DistinguishedFolderId/@Id"
            ),
            ["deleteditems"]
        );

        let body = request(&RequestHeader::default(), |w| {
            DeleteItem {
                item: "I1".into(),
                delete_type: "HardDelete".into(),
            }
            .render(w)
        });
        assert_eq!(strings(&body, "//m:DeleteItem/@DeleteType"), ["HardDelete"]);

        let body = request(&RequestHeader::default(), |w| {
            CreateFolder {
                parent: folder_ref("msgfolderroot"),
                name: "case 1".into(),
            }
            .render(w)
        });
        assert_eq!(
            strings(&body, "//m:Folders/t:Folder/t:DisplayName"),
            ["case 1"]
        );
        let body = request(&RequestHeader::default(), |w| {
            DeleteFolder {
                folder: folder_ref("F1"),
                delete_type: "HardDelete".into(),
            }
            .render(w)
        });
        assert_eq!(
            strings(&body, "//m:DeleteFolder/m:FolderIds/t:FolderId/@Id"),
            ["F1"]
        );
    }
}
