//! The generator's alphabet: mailbox and subscription operations over
//! *symbolic* handles. A driver maps each handle to the real id it captured
//! from the target; the model and the oracle never see a real id except
//! through that mapping.

use std::collections::BTreeSet;
use std::fmt;

use ews_proto::ews::EventKind;

/// An item the sequence created (or delivered, moved, copied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemHandle(pub u32);

impl fmt::Display for ItemHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "i{}", self.0)
    }
}

/// A folder: the well-known ones a case can name, or one the sequence created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FolderHandle {
    /// `msgfolderroot`: the parent of the Inbox, Deleted Items and the case folder.
    Root,
    /// The fresh folder a case works in (`${folder}`).
    Case,
    Inbox,
    DeletedItems,
    /// `recoverableitemsroot`: the parent of the dumpster.
    RecoverableItemsRoot,
    /// `recoverableitemsdeletions`: where a soft delete moves an item (digest 2.2, C-DEL).
    Dumpster,
    /// A folder created by the sequence.
    User(u32),
}

impl FolderHandle {
    /// The `t:DistinguishedFolderId` value, for the folders that have one.
    pub fn distinguished_name(self) -> Option<&'static str> {
        match self {
            FolderHandle::Root => Some("msgfolderroot"),
            FolderHandle::Inbox => Some("inbox"),
            FolderHandle::DeletedItems => Some("deleteditems"),
            FolderHandle::RecoverableItemsRoot => Some("recoverableitemsroot"),
            FolderHandle::Dumpster => Some("recoverableitemsdeletions"),
            FolderHandle::Case | FolderHandle::User(_) => None,
        }
    }

    /// The parent of a folder that exists before any sequence runs.
    pub fn well_known_parent(self) -> Option<FolderHandle> {
        match self {
            FolderHandle::Case | FolderHandle::Inbox | FolderHandle::DeletedItems => {
                Some(FolderHandle::Root)
            }
            FolderHandle::Dumpster => Some(FolderHandle::RecoverableItemsRoot),
            FolderHandle::Root | FolderHandle::RecoverableItemsRoot | FolderHandle::User(_) => None,
        }
    }
}

impl fmt::Display for FolderHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FolderHandle::Root => f.write_str("root"),
            FolderHandle::Case => f.write_str("case"),
            FolderHandle::Inbox => f.write_str("inbox"),
            FolderHandle::DeletedItems => f.write_str("deleteditems"),
            FolderHandle::RecoverableItemsRoot => f.write_str("recoverableitemsroot"),
            FolderHandle::Dumpster => f.write_str("dumpster"),
            FolderHandle::User(n) => write!(f, "f{n}"),
        }
    }
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Handle {
    Item(ItemHandle),
    /// The item after a SoftDelete or MoveToDeletedItems moved it: it has a
    /// new id that no response reports, so the oracle learns it from the
    /// first event that names it.
    Remnant(ItemHandle),
    Folder(FolderHandle),
}

impl Handle {
    pub fn is_folder(self) -> bool {
        matches!(self, Handle::Folder(_))
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Handle::Item(i) => write!(f, "{i}"),
            Handle::Remnant(i) => write!(f, "{i}'"),
            Handle::Folder(x) => write!(f, "{x}"),
        }
    }
}

/// A subscription of the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubHandle(pub u32);

impl fmt::Display for SubHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// A watermark the driver remembered (the one it would send next after a poll).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatermarkHandle(pub u32);

impl fmt::Display for WatermarkHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{}", self.0)
    }
}

/// How a subscription delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    Pull,
    Streaming,
    Push,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Pull, Mode::Streaming, Mode::Push];

    /// The case format's `mode` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Pull => "pull",
            Mode::Streaming => "streaming",
            Mode::Push => "push",
        }
    }
}

/// Which folders a subscription watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Folders(BTreeSet<FolderHandle>),
    AllFolders,
}

impl Scope {
    /// Whether an event about `object` in `parent` (formerly `old_parent`)
    /// is in scope: its parent or old parent is watched, or it is a folder
    /// event whose folder is watched (the reference server's rule).
    pub fn covers(
        &self,
        object: Handle,
        parent: FolderHandle,
        old_parent: Option<FolderHandle>,
    ) -> bool {
        match self {
            Scope::AllFolders => true,
            Scope::Folders(set) => {
                set.contains(&parent)
                    || old_parent.is_some_and(|p| set.contains(&p))
                    || matches!(object, Handle::Folder(f) if set.contains(&f))
            }
        }
    }
}

/// `DeleteType` of DeleteItem and DeleteFolder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeleteHow {
    HardDelete,
    SoftDelete,
    MoveToDeletedItems,
}

impl DeleteHow {
    pub const ALL: [DeleteHow; 3] = [
        DeleteHow::HardDelete,
        DeleteHow::SoftDelete,
        DeleteHow::MoveToDeletedItems,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeleteHow::HardDelete => "HardDelete",
            DeleteHow::SoftDelete => "SoftDelete",
            DeleteHow::MoveToDeletedItems => "MoveToDeletedItems",
        }
    }
}

/// What the second user does in their own mailbox: a decoy. Nothing of it
/// may reach a subscription of ours (R42, R71: events are per mailbox),
/// even in their folders of the same distinguished name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OtherAction {
    /// The second user sends a message to themselves: a delivery into their Inbox.
    Deliver,
    /// The second user saves a message into their Inbox.
    SaveInInbox,
}

/// One step of a generated sequence. Operations that make an object name
/// its new handle, so a driver knows what to bind the response's id to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// CreateItem SaveOnly into `folder`; the response's ItemId is `item`.
    CreateItem {
        item: ItemHandle,
        folder: FolderHandle,
        read: bool,
    },
    /// One CreateItem SaveOnly request with `count` messages into `folder`
    /// (as a case's `count = 120`): items `first`, `first + 1`, … The driver
    /// binds them to the response's ItemIds for the oracle, but a rendered
    /// case captures none, so no later operation names them.
    CreateItems {
        first: ItemHandle,
        count: u32,
        folder: FolderHandle,
        read: bool,
    },
    /// A message sent to the test user, arriving in the Inbox. No response
    /// names the delivered item, so `item` is learnt from its events.
    Deliver {
        item: ItemHandle,
    },
    MarkRead {
        item: ItemHandle,
        read: bool,
    },
    SetSubject {
        item: ItemHandle,
    },
    /// The moved item has a new id (`new`, from the MoveItem response).
    MoveItem {
        item: ItemHandle,
        to: FolderHandle,
        new: ItemHandle,
    },
    CopyItem {
        item: ItemHandle,
        to: FolderHandle,
        new: ItemHandle,
    },
    DeleteItem {
        item: ItemHandle,
        how: DeleteHow,
    },
    CreateFolder {
        folder: FolderHandle,
        parent: FolderHandle,
    },
    DeleteFolder {
        folder: FolderHandle,
        how: DeleteHow,
    },
    Subscribe {
        sub: SubHandle,
        mode: Mode,
        scope: Scope,
        event_types: BTreeSet<EventKind>,
    },
    /// Pull: GetEvents until MoreEvents is false. Streaming and push:
    /// collect what has arrived (waiting until the predicted count is reached).
    Poll {
        sub: SubHandle,
    },
    /// Keep the watermark a pull subscription would send next (after its
    /// last poll, or its Subscribe watermark if never polled).
    Remember {
        sub: SubHandle,
        watermark: WatermarkHandle,
    },
    /// A new pull subscription with the same folders and event types as the
    /// one `from` was remembered on, resuming from that watermark (R21).
    Resubscribe {
        sub: SubHandle,
        from: WatermarkHandle,
    },
    Unsubscribe {
        sub: SubHandle,
    },
    /// Activity in the second user's mailbox (see [`OtherAction`]).
    OtherMailbox {
        action: OtherAction,
    },
}

impl Op {
    /// The largest `count` of [`Op::CreateItems`] (the case format's bound).
    pub const MAX_BULK: u32 = 1000;

    /// The handles of the items [`Op::CreateItems`] makes (empty for other operations).
    pub fn bulk_items(&self) -> impl Iterator<Item = ItemHandle> + use<> {
        let (first, count) = match self {
            Op::CreateItems { first, count, .. } => (first.0, *count),
            _ => (0, 0),
        };
        (first..first.saturating_add(count)).map(ItemHandle)
    }

    /// Whether the operation changes the mailbox (as opposed to a subscription action).
    pub fn is_mailbox_op(&self) -> bool {
        !matches!(
            self,
            Op::Subscribe { .. }
                | Op::Poll { .. }
                | Op::Remember { .. }
                | Op::Resubscribe { .. }
                | Op::Unsubscribe { .. }
        )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::CreateItem { item, folder, read } => {
                let state = if *read { "read" } else { "unread" };
                write!(f, "{item} = CreateItem({state}, in {folder})")
            }
            Op::CreateItems {
                first,
                count,
                folder,
                read,
            } => {
                let state = if *read { "read" } else { "unread" };
                let last = ItemHandle(first.0 + count.saturating_sub(1));
                write!(
                    f,
                    "{first}..{last} = CreateItems({count}, {state}, in {folder})"
                )
            }
            Op::Deliver { item } => write!(f, "{item} = Deliver()"),
            Op::MarkRead { item, read } => write!(f, "MarkRead({item}, {read})"),
            Op::SetSubject { item } => write!(f, "SetSubject({item})"),
            Op::MoveItem { item, to, new } => write!(f, "{new} = MoveItem({item} to {to})"),
            Op::CopyItem { item, to, new } => write!(f, "{new} = CopyItem({item} to {to})"),
            Op::DeleteItem { item, how } => write!(f, "DeleteItem({item}, {})", how.as_str()),
            Op::CreateFolder { folder, parent } => {
                write!(f, "{folder} = CreateFolder(in {parent})")
            }
            Op::DeleteFolder { folder, how } => {
                write!(f, "DeleteFolder({folder}, {})", how.as_str())
            }
            Op::Subscribe {
                sub,
                mode,
                scope,
                event_types,
            } => {
                write!(f, "{sub} = Subscribe({}, ", mode.as_str())?;
                match scope {
                    Scope::AllFolders => f.write_str("all folders")?,
                    Scope::Folders(set) => {
                        let names: Vec<String> = set.iter().map(|x| x.to_string()).collect();
                        write!(f, "[{}]", names.join(", "))?;
                    }
                }
                let kinds: Vec<&str> = event_types.iter().map(|k| k.element_name()).collect();
                write!(f, ", [{}])", kinds.join(", "))
            }
            Op::Poll { sub } => write!(f, "Poll({sub})"),
            Op::Remember { sub, watermark } => write!(f, "{watermark} = Remember({sub})"),
            Op::Resubscribe { sub, from } => write!(f, "{sub} = Resubscribe(from {from})"),
            Op::Unsubscribe { sub } => write!(f, "Unsubscribe({sub})"),
            Op::OtherMailbox { action } => match action {
                OtherAction::Deliver => f.write_str("OtherUser.Deliver()"),
                OtherAction::SaveInInbox => f.write_str("OtherUser.SaveInInbox()"),
            },
        }
    }
}

/// The sequence, one operation a line with its index (for failure messages).
pub fn describe_sequence(ops: &[Op]) -> String {
    ops.iter()
        .enumerate()
        .map(|(i, op)| format!("{i:>3}: {op}\n"))
        .collect()
}
