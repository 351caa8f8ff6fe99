//! What the oracle tolerates from a target, and which of Exchange's legal
//! choices the model predicts: each switch names one way a legitimate
//! server may depart from the model's first prediction, with its source.

/// How DeleteItem SoftDelete shows on a listed-folder subscription (R76,
/// digest 2.2 C-DEL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftDelete {
    /// Exchange 2013 / Online: a MovedEvent to the dumpster (Recoverable
    /// Items Deletions), old and new parent.
    ToDumpster,
    /// Exchange 2010: a DeletedEvent of the item in its folder.
    Deleted,
    /// A target of unknown version: either form.
    Either,
}

/// What MoveToDeletedItems does to an item already in Deleted Items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redelete {
    /// It moves within Deleted Items: R75 read literally, and what the
    /// reference server does.
    MoveWithin,
    /// A soft delete (the item goes to Recoverable Items), as Exchange does:
    /// the [`SoftDelete`] form of the profile.
    SoftDelete,
    /// Either.
    Either,
}

/// Tolerance and behaviour switches. [`Latitude::reference`] is the
/// strictest: the reference server must produce the predicted events and
/// batches, up to what the protocol leaves open to every server (the order
/// of one operation's events, a copy's event kind, an idle watermark).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latitude {
    pub name: &'static str,
    /// Extra folder ModifiedEvents are ignored: Exchange raises them for
    /// changes the model does not track (digest 2.2 notes: "one action can
    /// raise several events").
    pub extra_folder_modified: bool,
    /// Extra item ModifiedEvents are ignored: the digest's figure shows one
    /// for an item moved to a child folder and for a saved draft.
    pub extra_item_modified: bool,
    /// Predicted folder ModifiedEvents may be missing: the digest's figure
    /// shows none for an item copy, and says it is not exhaustive.
    pub missing_folder_modified: bool,
    /// A copy may surface as a CreatedEvent instead of a CopiedEvent (R77:
    /// the element reference says CopiedEvent, the overview figure Created).
    pub copy_as_created: bool,
    /// The event a soft delete raises (R76).
    pub soft_delete: SoftDelete,
    /// MoveToDeletedItems of an item already in Deleted Items. Exchange
    /// soft-deletes it; the docs (R75) do not single the case out, so every
    /// Exchange profile also accepts the literal reading, a move.
    pub redelete: Redelete,
    /// SubscribeToAllFolders subscriptions see deletions through the
    /// AllItems search folder (Exchange 2013+, digest 2.2 C-DEL): a
    /// MoveToDeletedItems raises no MovedEvent, a soft delete a DeletedEvent,
    /// and items appear as Created/Deleted in a folder the model does not know.
    pub all_folders_search_folder: bool,
    /// A SubscribeToAllFolders subscription sees the whole mailbox: events
    /// whose folders are none the model knows (the Outbox during a send,
    /// search folders, the server's own housekeeping) are ignored.
    pub foreign_folder_events: bool,
    /// An UpdateItem that changes nothing (IsRead set to the value it has)
    /// may raise no events: the docs do not say (digest 2.2, UNSURE).
    pub unchanged_update_optional: bool,
    /// A pull poll sees every event of the operations that completed before
    /// it. Exchange queues events asynchronously, so a later poll may bring them.
    pub synchronous_pull: bool,
    /// MoreEvents is true exactly when more events remain: only on a full
    /// batch, and never just before an empty one (the R33 boundary).
    pub exact_more_events: bool,
    /// The 50-event cap applies per streaming notification too (R59, UNSURE).
    pub streaming_batch_limit: bool,
    /// Folder ModifiedEvents carry UnreadCount (0..1 in the schema).
    pub unread_count_required: bool,
}

impl Latitude {
    /// The largest batch a notification may carry (R32, R70).
    pub const MAX_BATCH: usize = 50;

    /// What the reference server must do.
    pub fn reference() -> Self {
        Latitude {
            name: "reference",
            extra_folder_modified: false,
            extra_item_modified: false,
            missing_folder_modified: false,
            // R77: the digest says accept either, for every server.
            copy_as_created: true,
            soft_delete: SoftDelete::ToDumpster,
            redelete: Redelete::MoveWithin,
            all_folders_search_folder: false,
            foreign_folder_events: false,
            unchanged_update_optional: false,
            synchronous_pull: true,
            exact_more_events: true,
            streaming_batch_limit: true,
            unread_count_required: true,
        }
    }

    /// Exchange of unknown version: every version's documented latitude.
    pub fn exchange() -> Self {
        Latitude {
            name: "exchange",
            extra_folder_modified: true,
            extra_item_modified: true,
            missing_folder_modified: true,
            copy_as_created: true,
            soft_delete: SoftDelete::Either,
            redelete: Redelete::Either,
            all_folders_search_folder: true,
            foreign_folder_events: true,
            unchanged_update_optional: true,
            synchronous_pull: false,
            exact_more_events: false,
            streaming_batch_limit: false,
            unread_count_required: false,
        }
    }

    /// Exchange 2013 / 2016 / 2019 / Online.
    pub fn exchange2013() -> Self {
        Latitude {
            name: "exchange2013",
            soft_delete: SoftDelete::ToDumpster,
            ..Latitude::exchange()
        }
    }

    /// Exchange 2010 (SP1 and later): soft delete is a DeletedEvent, and
    /// all-folder subscriptions report deletions like listed ones (C-DEL).
    pub fn exchange2010() -> Self {
        Latitude {
            name: "exchange2010",
            soft_delete: SoftDelete::Deleted,
            all_folders_search_folder: false,
            ..Latitude::exchange()
        }
    }

    /// The profile a target's profile name selects (the names of the
    /// suite's profile files, and version names); `None` for a name the
    /// model does not know.
    pub fn named(name: &str) -> Option<Latitude> {
        match name.trim().to_ascii_lowercase().as_str() {
            "reference" => Some(Latitude::reference()),
            "exchange2010" | "exchange2010-sp1" | "exchange2010-sp2" | "exchange2010-sp3" => {
                Some(Latitude::exchange2010())
            }
            "exchange2013"
            | "exchange2013-and-online"
            | "exchange2016"
            | "exchange2019"
            | "exchange-online" => Some(Latitude::exchange2013()),
            "exchange" => Some(Latitude::exchange()),
            _ => None,
        }
    }

    /// Whether the profile lets a folder or item ModifiedEvent be extra or
    /// missing: a rendered case then cannot expect exact batches.
    pub fn loose(&self) -> bool {
        self.extra_folder_modified || self.missing_folder_modified || self.extra_item_modified
    }
}

impl Default for Latitude {
    fn default() -> Self {
        Latitude::reference()
    }
}
