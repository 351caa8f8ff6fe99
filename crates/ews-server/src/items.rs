//! The item and folder operations cases use to cause mailbox events:
//! CreateItem, UpdateItem, MoveItem, CopyItem, DeleteItem, CreateFolder,
//! DeleteFolder, GetFolder and GetItem. One response message per input.
//! FindItem lets a client (and the suite) see when sent mail has arrived.

use std::sync::Arc;

use roxmltree::Node;

use super::dialects::Dialect;
use super::faults::Fault;
use super::reply::{Call, MessageOut};
use super::resolve::{self, Unresolved};
use super::state::State;
use super::store::{
    DeleteType, FieldChange, FolderView, ItemView, Mailbox, NewMessage, StoreError,
};
use super::transport;
use super::validate::SchemaViolation;
use ews_proto::ews::events::parse_bool;
use ews_proto::ews::{Id, ResponseCode};
use ews_proto::xml::{ElementExt, XmlWriter, child, children, display_name, element_children, ns};

const M: &str = ns::MESSAGES;
const T: &str = ns::TYPES;

type Outcome = Result<Vec<MessageOut>, SchemaViolation>;

fn required<'a, 'i>(op: Node<'a, 'i>, local: &str) -> Result<Node<'a, 'i>, SchemaViolation> {
    child(op, M, local).ok_or_else(|| {
        SchemaViolation::new(
            &format!("/{}", display_name(op)),
            format!("m:{local} is required"),
        )
    })
}

/// A required list element, which the schema's NonEmptyArrayOf… types
/// require to hold at least one entry (Exchange answers an empty one with
/// ErrorSchemaValidation).
fn required_list<'a, 'i>(op: Node<'a, 'i>, local: &str) -> Result<Node<'a, 'i>, SchemaViolation> {
    let list = required(op, local)?;
    if element_children(list).next().is_none() {
        return Err(SchemaViolation::new(
            &format!("/{}/m:{local}", display_name(op)),
            format!("m:{local} is empty: it needs at least one entry"),
        ));
    }
    Ok(list)
}

/// The single folder reference inside a wrapper such as `m:SavedItemFolderId`.
fn folder_in<'a, 'i>(wrapper: Node<'a, 'i>) -> Result<Node<'a, 'i>, SchemaViolation> {
    element_children(wrapper)
        .find(|c| c.is(T, "FolderId") || c.is(T, "DistinguishedFolderId"))
        .ok_or_else(|| {
            SchemaViolation::new(
                &format!("/{}", display_name(wrapper)),
                "expected t:FolderId or t:DistinguishedFolderId",
            )
        })
}

fn delete_type(op: Node<'_, '_>) -> Result<DeleteType, SchemaViolation> {
    let at = format!("/{}", display_name(op));
    let raw = op
        .attribute("DeleteType")
        .ok_or_else(|| SchemaViolation::new(&at, "the DeleteType attribute is required"))?;
    DeleteType::parse(raw).ok_or_else(|| {
        SchemaViolation::new(
            &at,
            format!("DeleteType `{raw}` is not HardDelete, SoftDelete or MoveToDeletedItems"),
        )
    })
}

fn unresolved(u: Unresolved) -> MessageOut {
    MessageOut::error(u.code(), u.text())
}

fn store_error(e: StoreError) -> MessageOut {
    MessageOut::error(e.code(), e.to_string())
}

/// The response message for one referenced object: why the reference did
/// not resolve, the store's error, or the success `render` writes.
fn answer<V>(
    done: Result<Result<V, StoreError>, Unresolved>,
    render: impl FnOnce(&mut XmlWriter, &V),
) -> MessageOut {
    match done {
        Err(u) => unresolved(u),
        Ok(Err(e)) => store_error(e),
        Ok(Ok(v)) => MessageOut::success(|w| render(w, &v)),
    }
}

fn item_id_message(w: &mut XmlWriter, id: &Id) {
    w.start("m:Items", &[]).start("t:Message", &[]);
    id.render(w, "t:ItemId");
    w.end("t:Message").end("m:Items");
}

fn own_mailbox<'c>(
    call: &'c Call<'_>,
) -> Result<&'c std::sync::Arc<super::store::Mailbox>, SchemaViolation> {
    call.state
        .mailbox(call.user)
        .ok_or_else(|| SchemaViolation::new("/", "the caller has no mailbox"))
}

fn message_from(node: Node<'_, '_>) -> NewMessage {
    let text = |local: &str| child(node, T, local).map(|n| n.text_trimmed());
    let to = child(node, T, "ToRecipients")
        .map(|r| {
            children(r, T, "Mailbox")
                .filter_map(|m| child(m, T, "EmailAddress"))
                .map(|a| a.text_trimmed())
                .filter(|a| !a.is_empty())
                .collect()
        })
        .unwrap_or_default();
    NewMessage {
        subject: text("Subject").unwrap_or_default(),
        body: text("Body").unwrap_or_default(),
        is_read: text("IsRead").and_then(|t| parse_bool(&t)).unwrap_or(false),
        to,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Disposition {
    SaveOnly,
    SendOnly,
    SendAndSaveCopy,
}

pub fn create_item(call: &Call<'_>, op: Node<'_, '_>) -> Outcome {
    let at = format!("/{}", display_name(op));
    let disposition = match op.attribute("MessageDisposition") {
        None | Some("SaveOnly") => Disposition::SaveOnly,
        Some("SendOnly") => Disposition::SendOnly,
        Some("SendAndSaveCopy") => Disposition::SendAndSaveCopy,
        Some(other) => {
            return Err(SchemaViolation::new(
                &at,
                format!(
                    "MessageDisposition `{other}` is not SaveOnly, SendOnly or SendAndSaveCopy"
                ),
            ));
        }
    };
    let saved = match child(op, M, "SavedItemFolderId") {
        Some(w) => Some(folder_in(w)?),
        None => None,
    };
    let items = required_list(op, "Items")?;
    let mailbox = own_mailbox(call)?;
    let default_folder = match disposition {
        Disposition::SendAndSaveCopy => "sentitems",
        _ => "drafts",
    };
    let folder = match saved {
        Some(f) => resolve::folder(call, f),
        None => mailbox
            .with(|d| d.distinguished(default_folder))
            .ok_or(Unresolved::FolderNotFound),
    };
    let mut out = Vec::new();
    for node in element_children(items) {
        let mut message = message_from(node);
        let folder = match folder.clone() {
            Ok(f) => f,
            Err(u) => {
                out.push(unresolved(u));
                continue;
            }
        };
        if disposition != Disposition::SaveOnly && message.to.is_empty() {
            out.push(MessageOut::error(
                ResponseCode::ErrorInvalidRecipients,
                "At least one recipient is required.",
            ));
            continue;
        }
        match disposition {
            Disposition::SaveOnly => match mailbox.with(|d| {
                // NewMailEvent means delivered mail (digest 2.2): a message
                // saved into the Inbox raises CreatedEvent only, as on
                // Exchange. The fault treats it as arrived mail.
                let arrived = call.state.faults.has(Fault::NewMailOnSave)
                    && d.distinguished("inbox") == Some(folder);
                let n = d.create_item(folder, message, arrived)?;
                d.item_id_of(n)
            }) {
                Ok(id) => out.push(MessageOut::success(|w| item_id_message(w, &id))),
                Err(e) => out.push(store_error(e)),
            },
            Disposition::SendOnly | Disposition::SendAndSaveCopy => {
                if disposition == Disposition::SendAndSaveCopy {
                    let mut copy = message.clone();
                    copy.is_read = true;
                    if let Err(e) = mailbox.with(|d| d.create_item(folder, copy, false)) {
                        out.push(store_error(e));
                        continue;
                    }
                }
                message.is_read = false;
                deliver(call, &message);
                out.push(MessageOut::success(|w| {
                    w.empty("m:Items", &[]);
                }));
            }
        }
    }
    Ok(out)
}

/// Puts a copy of the message into each local recipient's Inbox. Unknown
/// recipients are ignored (Exchange would send a non-delivery report).
fn deliver(call: &Call<'_>, message: &NewMessage) {
    let mut seen = Vec::new();
    let mut to = Vec::new();
    for addr in &message.to {
        let Some(user) = call.state.user_by_smtp(addr) else {
            tracing::debug!(recipient = %addr, "no local mailbox; message dropped");
            continue;
        };
        if seen.contains(&user) {
            continue;
        }
        seen.push(user);
        if let Some(mb) = call.state.mailbox(user) {
            to.push(mb.clone());
        }
    }
    let state = call.state;
    if state.dialects.has(Dialect::LateDelivery) {
        state
            .transport
            .send(state.minute(), &state.shutdown, to, message.clone());
    } else {
        transport::deliver_now(&to, message);
        if state.faults.has(Fault::CrossMailboxLeak) {
            leak_to_other_inboxes(state, &to);
        }
    }
}

/// The cross-mailbox-leak fault: each recipient's new mail also shows up
/// in every other mailbox's Inbox subscriptions.
fn leak_to_other_inboxes(state: &State, recipients: &[Arc<Mailbox>]) {
    for mb in recipients {
        let Some((item, inbox)) = mb.with(|d| d.newest_in_inbox()) else {
            continue;
        };
        for other in state.mailboxes.iter().filter(|o| !Arc::ptr_eq(o, mb)) {
            other.with(|d| d.log_foreign_delivery(item.clone(), inbox.clone()));
        }
    }
}

fn field_changes(updates: Node<'_, '_>) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    for u in element_children(updates) {
        let uri = child(u, T, "FieldURI")
            .and_then(|f| f.attribute("FieldURI"))
            .unwrap_or_default();
        let value_holder = element_children(u).find(|c| {
            !(c.is(T, "FieldURI") || c.is(T, "IndexedFieldURI") || c.is(T, "ExtendedFieldURI"))
        });
        let value = |local: &str| {
            value_holder
                .and_then(|h| child(h, T, local))
                .map(|n| n.text_trimmed())
        };
        let local = u.tag_name().name();
        let change = match (local, uri) {
            ("SetItemField", "message:IsRead") => value("IsRead")
                .and_then(|v| parse_bool(&v))
                .map_or(FieldChange::Other, FieldChange::IsRead),
            ("SetItemField", "item:Subject") => {
                FieldChange::Subject(value("Subject").unwrap_or_default())
            }
            ("SetItemField", "item:Body") => FieldChange::Body(value("Body").unwrap_or_default()),
            ("DeleteItemField", "item:Subject") => FieldChange::Subject(String::new()),
            ("DeleteItemField", "message:IsRead") => FieldChange::IsRead(false),
            _ => FieldChange::Other,
        };
        changes.push(change);
    }
    changes
}

pub fn update_item(call: &Call<'_>, op: Node<'_, '_>) -> Outcome {
    let item_changes = required_list(op, "ItemChanges")?;
    let mailbox = own_mailbox(call)?;
    let mut out = Vec::new();
    for change in children(item_changes, T, "ItemChange") {
        let Some(id_node) = child(change, T, "ItemId") else {
            return Err(SchemaViolation::new(
                "/m:UpdateItem/m:ItemChanges/t:ItemChange",
                "t:ItemId is required",
            ));
        };
        let done = resolve::item(call, id_node).map(|n| {
            let changes = child(change, T, "Updates")
                .map(field_changes)
                .unwrap_or_default();
            mailbox.with(|d| {
                d.update_item(n, &changes)?;
                d.item_id_of(n)
            })
        });
        out.push(answer(done, |w, id| {
            item_id_message(w, id);
            w.start("m:ConflictResults", &[]);
            w.leaf("t:Count", "0");
            w.end("m:ConflictResults");
        }));
    }
    Ok(out)
}

/// MoveItem (`copy == false`) and CopyItem.
pub fn move_or_copy_item(call: &Call<'_>, op: Node<'_, '_>, copy: bool) -> Outcome {
    let target = folder_in(required(op, "ToFolderId")?)?;
    let ids = required_list(op, "ItemIds")?;
    let mailbox = own_mailbox(call)?;
    let target = resolve::folder(call, target);
    let mut out = Vec::new();
    for id_node in children(ids, T, "ItemId") {
        let done = target
            .clone()
            .and_then(|to| Ok((to, resolve::item(call, id_node)?)))
            .map(|(to, n)| {
                mailbox.with(|d| {
                    let new = if copy {
                        d.copy_item(n, to)?
                    } else {
                        d.move_item(n, to)?
                    };
                    d.item_id_of(new)
                })
            });
        out.push(answer(done, item_id_message));
    }
    Ok(out)
}

pub fn delete_item(call: &Call<'_>, op: Node<'_, '_>) -> Outcome {
    let how = delete_type(op)?;
    let ids = required_list(op, "ItemIds")?;
    let mailbox = own_mailbox(call)?;
    let mut out = Vec::new();
    for id_node in children(ids, T, "ItemId") {
        let done = resolve::item(call, id_node).map(|n| mailbox.with(|d| d.delete_item(n, how)));
        out.push(answer(done, |_, ()| {}));
    }
    Ok(out)
}

pub fn create_folder(call: &Call<'_>, op: Node<'_, '_>) -> Outcome {
    let parent = folder_in(required(op, "ParentFolderId")?)?;
    let folders = required_list(op, "Folders")?;
    let mailbox = own_mailbox(call)?;
    let parent = resolve::folder(call, parent);
    let mut out = Vec::new();
    for f in element_children(folders) {
        let parent = match parent.clone() {
            Ok(p) => p,
            Err(u) => {
                out.push(unresolved(u));
                continue;
            }
        };
        let name = child(f, T, "DisplayName")
            .map(|n| n.text_trimmed())
            .unwrap_or_default();
        if name.is_empty() {
            out.push(MessageOut::error(
                ResponseCode::ErrorInvalidOperation,
                "A folder needs a non-empty DisplayName.",
            ));
            continue;
        }
        let class = child(f, T, "FolderClass")
            .map(|n| n.text_trimmed())
            .unwrap_or_else(|| "IPF.Note".into());
        match mailbox.with(|d| {
            let n = d.create_folder(parent, &name, &class)?;
            d.folder_id_of(n)
        }) {
            Ok(id) => out.push(MessageOut::success(|w| {
                w.start("m:Folders", &[]).start("t:Folder", &[]);
                id.render(w, "t:FolderId");
                w.end("t:Folder").end("m:Folders");
            })),
            Err(e) => out.push(store_error(e)),
        }
    }
    Ok(out)
}

fn folder_refs<'a, 'i>(list: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    element_children(list).filter(|c| c.is(T, "FolderId") || c.is(T, "DistinguishedFolderId"))
}

pub fn delete_folder(call: &Call<'_>, op: Node<'_, '_>) -> Outcome {
    let how = delete_type(op)?;
    let ids = required_list(op, "FolderIds")?;
    let mailbox = own_mailbox(call)?;
    let mut out = Vec::new();
    for f in folder_refs(ids) {
        let done = resolve::folder(call, f).map(|n| mailbox.with(|d| d.delete_folder(n, how)));
        out.push(answer(done, |_, ()| {}));
    }
    Ok(out)
}

fn render_folder(w: &mut XmlWriter, v: &FolderView) {
    w.start("m:Folders", &[]).start("t:Folder", &[]);
    v.id.render(w, "t:FolderId");
    if let Some(p) = &v.parent {
        p.render(w, "t:ParentFolderId");
    }
    w.leaf("t:FolderClass", &v.class);
    w.leaf("t:DisplayName", &v.name);
    w.leaf("t:TotalCount", &v.total.to_string());
    w.leaf("t:ChildFolderCount", &v.child_folders.to_string());
    w.start("t:EffectiveRights", &[]);
    for right in [
        "CreateAssociated",
        "CreateContents",
        "CreateHierarchy",
        "Delete",
        "Modify",
        "Read",
    ] {
        w.leaf(&format!("t:{right}"), "true");
    }
    w.end("t:EffectiveRights");
    w.leaf("t:UnreadCount", &v.unread.to_string());
    w.end("t:Folder").end("m:Folders");
}

pub fn get_folder(call: &Call<'_>, op: Node<'_, '_>) -> Outcome {
    let ids = required_list(op, "FolderIds")?;
    let mailbox = own_mailbox(call)?;
    let mut out = Vec::new();
    for f in folder_refs(ids) {
        let done = resolve::folder(call, f).map(|n| mailbox.with(|d| d.folder_view(n)));
        out.push(answer(done, render_folder));
    }
    Ok(out)
}

fn render_item(w: &mut XmlWriter, v: &ItemView) {
    w.start("m:Items", &[]).start("t:Message", &[]);
    v.id.render(w, "t:ItemId");
    v.parent.render(w, "t:ParentFolderId");
    w.leaf("t:ItemClass", "IPM.Note");
    w.leaf("t:Subject", &v.subject);
    if !v.to.is_empty() {
        w.start("t:ToRecipients", &[]);
        for a in &v.to {
            w.start("t:Mailbox", &[]);
            w.leaf("t:EmailAddress", a);
            w.end("t:Mailbox");
        }
        w.end("t:ToRecipients");
    }
    w.leaf("t:IsRead", if v.is_read { "true" } else { "false" });
    w.end("t:Message").end("m:Items");
}

pub fn get_item(call: &Call<'_>, op: Node<'_, '_>) -> Outcome {
    let ids = required_list(op, "ItemIds")?;
    let mailbox = own_mailbox(call)?;
    let mut out = Vec::new();
    for id_node in children(ids, T, "ItemId") {
        let done = resolve::item(call, id_node).map(|n| mailbox.with(|d| d.item_view(n)));
        out.push(answer(done, render_item));
    }
    Ok(out)
}

/// A FindItem restriction this server does not evaluate.
struct Unsupported;

/// A `t:Contains` restriction on `item:Subject`.
struct SubjectContains {
    value: String,
    mode: String,
    ignore_case: bool,
}

impl SubjectContains {
    fn matches(&self, subject: &str) -> bool {
        let (s, v) = if self.ignore_case {
            (subject.to_lowercase(), self.value.to_lowercase())
        } else {
            (subject.to_string(), self.value.clone())
        };
        match self.mode.as_str() {
            "FullString" => s == v,
            "Prefixed" => s.starts_with(&v),
            "PrefixOnWords" => s.split_whitespace().any(|w| w.starts_with(&v)),
            // Substring and ExactPhrase.
            _ => s.contains(&v),
        }
    }
}

/// The restriction FindItem supports: `t:Contains` on `item:Subject`.
/// `Ok(None)`: no restriction; `Err`: one this server does not evaluate.
fn subject_restriction(op: Node<'_, '_>) -> Result<Option<SubjectContains>, Unsupported> {
    let Some(r) = child(op, M, "Restriction") else {
        return Ok(None);
    };
    let mut kids = element_children(r);
    let (Some(contains), None) = (kids.next(), kids.next()) else {
        return Err(Unsupported);
    };
    let field = child(contains, T, "FieldURI").and_then(|f| f.attribute("FieldURI"));
    let constant = child(contains, T, "Constant").and_then(|c| c.attribute("Value"));
    match (contains.is(T, "Contains"), field, constant) {
        (true, Some("item:Subject"), Some(value)) => Ok(Some(SubjectContains {
            value: value.to_string(),
            mode: contains
                .attribute("ContainmentMode")
                .unwrap_or("FullString")
                .to_string(),
            ignore_case: contains
                .attribute("ContainmentComparison")
                .is_some_and(|c| c.contains("IgnoreCase")),
        })),
        _ => Err(Unsupported),
    }
}

/// FindItem: the items of each folder in `m:ParentFolderIds` (Traversal
/// Shallow), newest first, each with its ItemId and, when the shape asks
/// for it, its Subject. One response message per folder.
pub fn find_item(call: &Call<'_>, op: Node<'_, '_>) -> Outcome {
    let at = format!("/{}", display_name(op));
    let traversal = op
        .attribute("Traversal")
        .ok_or_else(|| SchemaViolation::new(&at, "the Traversal attribute is required"))?;
    if !matches!(traversal, "Shallow" | "SoftDeleted" | "Associated") {
        return Err(SchemaViolation::new(
            &at,
            format!("Traversal `{traversal}` is not Shallow, SoftDeleted or Associated"),
        ));
    }
    let shape = required(op, "ItemShape")?;
    let base = child(shape, T, "BaseShape")
        .map(|b| b.text_trimmed())
        .ok_or_else(|| {
            SchemaViolation::new(&format!("{at}/m:ItemShape"), "t:BaseShape is required")
        })?;
    let with_subject = base != "IdOnly"
        || child(shape, T, "AdditionalProperties").is_some_and(|a| {
            children(a, T, "FieldURI").any(|f| f.attribute("FieldURI") == Some("item:Subject"))
        });
    let folders = required_list(op, "ParentFolderIds")?;
    let restriction = subject_restriction(op);
    let mailbox = own_mailbox(call)?;
    let mut out = Vec::new();
    for f in folder_refs(folders) {
        let restriction = match &restriction {
            Ok(r) => r,
            Err(Unsupported) => {
                out.push(MessageOut::error(
                    ResponseCode::ErrorInvalidOperation,
                    "The reference server evaluates only a t:Contains restriction on item:Subject.",
                ));
                continue;
            }
        };
        if traversal == "SoftDeleted" {
            out.push(MessageOut::error(
                ResponseCode::ErrorInvalidOperation,
                "The reference server does not list soft-deleted items.",
            ));
            continue;
        }
        let done = resolve::folder(call, f).map(|n| {
            mailbox.with(|d| {
                d.folder_view(n)?;
                // The store keeps no associated (folder-associated) items.
                let listed = if traversal == "Shallow" {
                    d.items_in(n)
                } else {
                    Vec::new()
                };
                let mut views = Vec::new();
                for i in listed.into_iter().rev() {
                    let v = d.item_view(i)?;
                    if restriction.as_ref().is_none_or(|r| r.matches(&v.subject)) {
                        views.push(v);
                    }
                }
                Ok(views)
            })
        });
        out.push(answer(done, |w, views: &Vec<ItemView>| {
            let total = views.len().to_string();
            w.start(
                "m:RootFolder",
                &[
                    ("TotalItemsInView", total.as_str()),
                    ("IncludesLastItemInRange", "true"),
                ],
            );
            w.start("t:Items", &[]);
            for v in views {
                w.start("t:Message", &[]);
                v.id.render(w, "t:ItemId");
                if with_subject {
                    w.leaf("t:Subject", &v.subject);
                }
                w.end("t:Message");
            }
            w.end("t:Items").end("m:RootFolder");
        }));
    }
    Ok(out)
}
