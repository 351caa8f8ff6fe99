//! The mailbox store: folders and messages of one user, and the events
//! each change writes to the mailbox's log (the Exchange 2013/Online,
//! listed-folder profile of digest section 2.2).

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::watch;

use super::ids::{IdKind, StoreId, change_key, new_nonce};
use super::log::{EventLog, LoggedEvent};
use super::sync::lock;
use ews_proto::ews::{EventKind, Id, ObjectId, ResponseCode, time::now_utc};

/// The distinguished folders every mailbox has: (name, display name, parent).
pub const DISTINGUISHED: &[(&str, &str, Option<&str>)] = &[
    ("root", "Root", None),
    ("msgfolderroot", "Top of Information Store", Some("root")),
    ("inbox", "Inbox", Some("msgfolderroot")),
    ("drafts", "Drafts", Some("msgfolderroot")),
    ("sentitems", "Sent Items", Some("msgfolderroot")),
    ("deleteditems", "Deleted Items", Some("msgfolderroot")),
    ("junkemail", "Junk Email", Some("msgfolderroot")),
    ("outbox", "Outbox", Some("msgfolderroot")),
    // The dumpster: hidden from the IPM tree, the target of soft deletes.
    ("recoverableitemsdeletions", "Deletions", Some("root")),
];

/// Why a store operation failed, as an EWS response code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("The specified folder could not be found in the store.")]
    FolderNotFound,
    #[error("The specified object was not found in the store.")]
    ItemNotFound,
    #[error("A folder with the specified name already exists.")]
    FolderExists,
    #[error("Distinguished folders cannot be deleted.")]
    DeleteDistinguished,
}

impl StoreError {
    pub fn code(&self) -> ResponseCode {
        match self {
            StoreError::FolderNotFound => ResponseCode::ErrorFolderNotFound,
            StoreError::ItemNotFound => ResponseCode::ErrorItemNotFound,
            StoreError::FolderExists => ResponseCode::ErrorFolderExists,
            StoreError::DeleteDistinguished => ResponseCode::ErrorDeleteDistinguishedFolder,
        }
    }
}

/// `DeleteType` of DeleteItem and DeleteFolder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteType {
    Hard,
    Soft,
    MoveToDeletedItems,
}

impl DeleteType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "HardDelete" => Some(DeleteType::Hard),
            "SoftDelete" => Some(DeleteType::Soft),
            "MoveToDeletedItems" => Some(DeleteType::MoveToDeletedItems),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Folder {
    parent: Option<u64>,
    name: String,
    class: String,
    distinguished: Option<&'static str>,
    version: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewMessage {
    pub subject: String,
    pub body: String,
    pub is_read: bool,
    pub to: Vec<String>,
}

#[derive(Debug, Clone)]
struct Item {
    folder: u64,
    message: NewMessage,
    version: u32,
}

/// One property change of UpdateItem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldChange {
    Subject(String),
    Body(String),
    IsRead(bool),
    /// A field this store does not model; it still counts as a modification.
    Other,
}

/// What GetFolder shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderView {
    pub id: Id,
    pub parent: Option<Id>,
    pub class: String,
    pub name: String,
    pub total: usize,
    pub child_folders: usize,
    pub unread: i64,
}

/// What GetItem shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemView {
    pub id: Id,
    pub parent: Id,
    pub subject: String,
    pub is_read: bool,
    pub to: Vec<String>,
}

/// A mailbox's contents and log; only reachable through [`Mailbox::with`].
#[derive(Debug)]
pub struct MailboxData {
    nonce: u64,
    folders: BTreeMap<u64, Folder>,
    items: BTreeMap<u64, Item>,
    next_number: u64,
    pub log: EventLog,
    /// Which legal event forms this mailbox uses (the server's dialects).
    pub forms: EventForms,
}

/// Version-dependent event forms a mailbox can take (set from the dialects).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventForms {
    /// CopyItem raises a CreatedEvent of the copy, not a CopiedEvent.
    pub copy_as_created: bool,
    /// SoftDelete raises a DeletedEvent (Exchange 2010), not a MovedEvent.
    pub soft_delete_as_deleted: bool,
}

/// A user's mailbox, shared between requests and delivery tasks.
#[derive(Debug)]
pub struct Mailbox {
    pub owner: usize,
    pub nonce: u64,
    data: Mutex<MailboxData>,
    /// Carries the log head; bumped after every append so deliveries wake.
    changed: watch::Sender<u64>,
}

impl Mailbox {
    pub fn new(owner: usize) -> Self {
        let nonce = new_nonce();
        let mut data = MailboxData {
            nonce,
            folders: BTreeMap::new(),
            items: BTreeMap::new(),
            next_number: 1,
            log: EventLog::new(nonce),
            forms: EventForms::default(),
        };
        for (name, display, parent) in DISTINGUISHED {
            let parent = parent.and_then(|p| data.distinguished(p));
            let n = data.allocate();
            data.folders.insert(
                n,
                Folder {
                    parent,
                    name: (*display).to_string(),
                    class: "IPF.Note".into(),
                    distinguished: Some(name),
                    version: 1,
                },
            );
        }
        Mailbox {
            owner,
            nonce,
            data: Mutex::new(data),
            changed: watch::channel(0).0,
        }
    }

    /// Runs `f` under the mailbox lock, then wakes watchers if the log grew.
    pub fn with<R>(&self, f: impl FnOnce(&mut MailboxData) -> R) -> R {
        let mut data = lock(&self.data);
        let before = data.log.head();
        let result = f(&mut data);
        let after = data.log.head();
        drop(data);
        if after != before {
            self.changed.send_replace(after);
        }
        result
    }

    /// A receiver that changes whenever an event is appended.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

impl MailboxData {
    fn allocate(&mut self) -> u64 {
        let n = self.next_number;
        self.next_number += 1;
        n
    }

    pub fn distinguished(&self, name: &str) -> Option<u64> {
        self.folders
            .iter()
            .find(|(_, f)| f.distinguished == Some(name))
            .map(|(n, _)| *n)
    }

    pub fn has_folder(&self, n: u64) -> bool {
        self.folders.contains_key(&n)
    }

    pub fn has_item(&self, n: u64) -> bool {
        self.items.contains_key(&n)
    }

    fn id_text(&self, kind: IdKind, number: u64) -> String {
        StoreId {
            kind,
            mailbox: self.nonce,
            number,
        }
        .encode()
    }

    fn folder_id(&self, n: u64) -> Id {
        let version = self.folders.get(&n).map_or(0, |f| f.version);
        Id::with_change_key(self.id_text(IdKind::Folder, n), change_key(n, version))
    }

    fn item_id(&self, n: u64) -> Id {
        let version = self.items.get(&n).map_or(0, |i| i.version);
        Id::with_change_key(self.id_text(IdKind::Item, n), change_key(n, version))
    }

    /// The item's ItemId with its current ChangeKey.
    pub fn item_id_of(&self, n: u64) -> Result<Id, StoreError> {
        self.items
            .contains_key(&n)
            .then(|| self.item_id(n))
            .ok_or(StoreError::ItemNotFound)
    }

    /// The folder's FolderId with its current ChangeKey.
    pub fn folder_id_of(&self, n: u64) -> Result<Id, StoreError> {
        self.folders
            .contains_key(&n)
            .then(|| self.folder_id(n))
            .ok_or(StoreError::FolderNotFound)
    }

    fn unread(&self, folder: u64) -> i64 {
        self.items
            .values()
            .filter(|i| i.folder == folder && !i.message.is_read)
            .count() as i64
    }

    fn emit(&mut self, kind: EventKind, object: ObjectId, parent_key: u64) -> LoggedEvent {
        LoggedEvent {
            seq: 0,
            kind,
            timestamp: now_utc(),
            object,
            parent: self.folder_id(parent_key),
            old_object: None,
            old_parent: None,
            unread_count: None,
            folder_key: None,
            parent_key,
            old_parent_key: None,
        }
    }

    /// The newest item in the Inbox: its ItemId and the Inbox's FolderId.
    pub fn newest_in_inbox(&self) -> Option<(Id, Id)> {
        let inbox = self.distinguished("inbox")?;
        let (n, _) = self.items.iter().rev().find(|(_, i)| i.folder == inbox)?;
        Some((self.item_id(*n), self.folder_id(inbox)))
    }

    /// Logs another mailbox's delivery (its item, its Inbox) as if it had
    /// happened in this mailbox's Inbox: what a server that matches
    /// distinguished folders by name across mailboxes delivers (a fault).
    pub fn log_foreign_delivery(&mut self, item: Id, their_inbox: Id) {
        let Some(inbox) = self.distinguished("inbox") else {
            return;
        };
        for kind in [EventKind::Created, EventKind::NewMail] {
            let mut e = self.emit(kind, ObjectId::Item(item.clone()), inbox);
            e.parent = their_inbox.clone();
            self.log.append(e);
        }
    }

    fn item_event(&mut self, kind: EventKind, item: u64, parent_key: u64) {
        let e = self.emit(kind, ObjectId::Item(self.item_id(item)), parent_key);
        self.log.append(e);
    }

    /// Bumps the folder's change key and logs its ModifiedEvent with UnreadCount.
    fn folder_modified(&mut self, folder: u64) {
        let Some(f) = self.folders.get_mut(&folder) else {
            return;
        };
        f.version += 1;
        let parent_key = f.parent.unwrap_or(folder);
        let mut e = self.emit(
            EventKind::Modified,
            ObjectId::Folder(self.folder_id(folder)),
            parent_key,
        );
        e.folder_key = Some(folder);
        e.unread_count = Some(self.unread(folder));
        self.log.append(e);
    }

    fn moved_or_copied(
        &mut self,
        kind: EventKind,
        object: ObjectId,
        new_parent: u64,
        old_object: ObjectId,
        old_parent: u64,
        folder_key: Option<u64>,
    ) {
        let mut e = self.emit(kind, object, new_parent);
        e.old_object = Some(old_object);
        e.old_parent = Some(self.folder_id(old_parent));
        e.old_parent_key = Some(old_parent);
        e.folder_key = folder_key;
        self.log.append(e);
    }

    /// CreateItem into `folder`; `delivered` marks an Inbox delivery (adds NewMailEvent).
    pub fn create_item(
        &mut self,
        folder: u64,
        message: NewMessage,
        delivered: bool,
    ) -> Result<u64, StoreError> {
        if !self.has_folder(folder) {
            return Err(StoreError::FolderNotFound);
        }
        let n = self.allocate();
        self.items.insert(
            n,
            Item {
                folder,
                message,
                version: 1,
            },
        );
        self.item_event(EventKind::Created, n, folder);
        if delivered {
            self.item_event(EventKind::NewMail, n, folder);
        }
        self.folder_modified(folder);
        Ok(n)
    }

    pub fn update_item(&mut self, n: u64, changes: &[FieldChange]) -> Result<(), StoreError> {
        let item = self.items.get_mut(&n).ok_or(StoreError::ItemNotFound)?;
        for c in changes {
            match c {
                FieldChange::Subject(s) => item.message.subject = s.clone(),
                FieldChange::Body(b) => item.message.body = b.clone(),
                FieldChange::IsRead(r) => item.message.is_read = *r,
                FieldChange::Other => {}
            }
        }
        item.version += 1;
        let folder = item.folder;
        self.item_event(EventKind::Modified, n, folder);
        self.folder_modified(folder);
        Ok(())
    }

    /// Re-homes an item under a new number (Exchange gives moved items new ids).
    fn rehome(&mut self, n: u64, to: u64) -> Result<(u64, u64, Id), StoreError> {
        if !self.has_folder(to) {
            return Err(StoreError::FolderNotFound);
        }
        let old_id = self.item_id_of(n)?;
        let mut item = self.items.remove(&n).ok_or(StoreError::ItemNotFound)?;
        let from = item.folder;
        item.folder = to;
        item.version += 1;
        let new = self.allocate();
        self.items.insert(new, item);
        Ok((new, from, old_id))
    }

    pub fn move_item(&mut self, n: u64, to: u64) -> Result<u64, StoreError> {
        let (new, from, old_id) = self.rehome(n, to)?;
        let new_id = self.item_id(new);
        self.moved_or_copied(
            EventKind::Moved,
            ObjectId::Item(new_id),
            to,
            ObjectId::Item(old_id),
            from,
            None,
        );
        self.folder_modified(from);
        self.folder_modified(to);
        Ok(new)
    }

    pub fn copy_item(&mut self, n: u64, to: u64) -> Result<u64, StoreError> {
        if !self.has_folder(to) {
            return Err(StoreError::FolderNotFound);
        }
        let source = self.items.get(&n).ok_or(StoreError::ItemNotFound)?;
        let copy = Item {
            folder: to,
            message: source.message.clone(),
            version: 1,
        };
        let from = source.folder;
        let old_id = self.item_id(n);
        let new = self.allocate();
        self.items.insert(new, copy);
        if self.forms.copy_as_created {
            self.item_event(EventKind::Created, new, to);
            self.folder_modified(to);
            return Ok(new);
        }
        let new_id = self.item_id(new);
        self.moved_or_copied(
            EventKind::Copied,
            ObjectId::Item(new_id),
            to,
            ObjectId::Item(old_id),
            from,
            None,
        );
        self.folder_modified(to);
        Ok(new)
    }

    pub fn delete_item(&mut self, n: u64, how: DeleteType) -> Result<(), StoreError> {
        let from = self.items.get(&n).ok_or(StoreError::ItemNotFound)?.folder;
        match how {
            DeleteType::Hard => {
                let id = self.item_id(n);
                self.items.remove(&n);
                let e = self.emit(EventKind::Deleted, ObjectId::Item(id), from);
                self.log.append(e);
                self.folder_modified(from);
            }
            DeleteType::Soft => {
                let dumpster = self
                    .distinguished("recoverableitemsdeletions")
                    .ok_or(StoreError::FolderNotFound)?;
                let (new, from, old_id) = self.rehome(n, dumpster)?;
                if self.forms.soft_delete_as_deleted {
                    // The item still goes to the dumpster; only the event differs.
                    let e = self.emit(EventKind::Deleted, ObjectId::Item(old_id), from);
                    self.log.append(e);
                    self.folder_modified(from);
                    return Ok(());
                }
                let new_id = self.item_id(new);
                self.moved_or_copied(
                    EventKind::Moved,
                    ObjectId::Item(new_id),
                    dumpster,
                    ObjectId::Item(old_id),
                    from,
                    None,
                );
                self.folder_modified(from);
            }
            DeleteType::MoveToDeletedItems => {
                let trash = self
                    .distinguished("deleteditems")
                    .ok_or(StoreError::FolderNotFound)?;
                self.move_item(n, trash)?;
            }
        }
        Ok(())
    }

    pub fn create_folder(
        &mut self,
        parent: u64,
        name: &str,
        class: &str,
    ) -> Result<u64, StoreError> {
        if !self.has_folder(parent) {
            return Err(StoreError::FolderNotFound);
        }
        let clash = self
            .folders
            .values()
            .any(|f| f.parent == Some(parent) && f.name.eq_ignore_ascii_case(name));
        if clash {
            return Err(StoreError::FolderExists);
        }
        let n = self.allocate();
        self.folders.insert(
            n,
            Folder {
                parent: Some(parent),
                name: name.to_string(),
                class: class.to_string(),
                distinguished: None,
                version: 1,
            },
        );
        let mut e = self.emit(
            EventKind::Created,
            ObjectId::Folder(self.folder_id(n)),
            parent,
        );
        e.folder_key = Some(n);
        self.log.append(e);
        self.folder_modified(parent);
        Ok(n)
    }

    /// Every folder below `root` (children, their children, …).
    pub fn folders_below(&self, root: u64) -> Vec<u64> {
        let mut all = self.subtree(root);
        all.retain(|f| *f != root);
        all
    }

    fn subtree(&self, root: u64) -> Vec<u64> {
        let mut all = vec![root];
        let mut i = 0;
        while i < all.len() {
            let here = all[i];
            all.extend(
                self.folders
                    .iter()
                    .filter(|(_, f)| f.parent == Some(here))
                    .map(|(n, _)| *n),
            );
            i += 1;
        }
        all
    }

    pub fn delete_folder(&mut self, n: u64, how: DeleteType) -> Result<(), StoreError> {
        let folder = self.folders.get(&n).ok_or(StoreError::FolderNotFound)?;
        if folder.distinguished.is_some() {
            return Err(StoreError::DeleteDistinguished);
        }
        let parent = folder.parent.unwrap_or(n);
        match how {
            DeleteType::Hard | DeleteType::Soft => {
                let id = self.folder_id(n);
                let doomed = self.subtree(n);
                self.items.retain(|_, i| !doomed.contains(&i.folder));
                self.folders.retain(|k, _| !doomed.contains(k));
                let mut e = self.emit(EventKind::Deleted, ObjectId::Folder(id), parent);
                e.folder_key = Some(n);
                self.log.append(e);
                self.folder_modified(parent);
            }
            DeleteType::MoveToDeletedItems => {
                let trash = self
                    .distinguished("deleteditems")
                    .ok_or(StoreError::FolderNotFound)?;
                let old_id = self.folder_id(n);
                if let Some(f) = self.folders.get_mut(&n) {
                    f.parent = Some(trash);
                    f.version += 1;
                }
                let new_id = self.folder_id(n);
                self.moved_or_copied(
                    EventKind::Moved,
                    ObjectId::Folder(new_id),
                    trash,
                    ObjectId::Folder(old_id),
                    parent,
                    Some(n),
                );
                self.folder_modified(parent);
                self.folder_modified(trash);
            }
        }
        Ok(())
    }

    pub fn folder_view(&self, n: u64) -> Result<FolderView, StoreError> {
        let f = self.folders.get(&n).ok_or(StoreError::FolderNotFound)?;
        Ok(FolderView {
            id: self.folder_id(n),
            parent: f.parent.map(|p| self.folder_id(p)),
            class: f.class.clone(),
            name: f.name.clone(),
            total: self.items.values().filter(|i| i.folder == n).count(),
            child_folders: self
                .folders
                .values()
                .filter(|c| c.parent == Some(n))
                .count(),
            unread: self.unread(n),
        })
    }

    /// The items directly in `folder`, oldest first (for FindItem).
    pub fn items_in(&self, folder: u64) -> Vec<u64> {
        self.items
            .iter()
            .filter(|(_, i)| i.folder == folder)
            .map(|(n, _)| *n)
            .collect()
    }

    /// The subjects of a folder's items, oldest first.
    #[cfg(test)]
    pub fn subjects_in(&self, folder: u64) -> Vec<String> {
        self.items
            .values()
            .filter(|i| i.folder == folder)
            .map(|i| i.message.subject.clone())
            .collect()
    }

    pub fn item_view(&self, n: u64) -> Result<ItemView, StoreError> {
        let i = self.items.get(&n).ok_or(StoreError::ItemNotFound)?;
        Ok(ItemView {
            id: self.item_id(n),
            parent: self.folder_id(i.folder),
            subject: i.message.subject.clone(),
            is_read: i.message.is_read,
            to: i.message.to.clone(),
        })
    }
}

#[cfg(test)]
mod tests;
