//! What the oracle tolerates from a target: each switch names one way a
//! legitimate server may depart from the model's exact prediction.

/// Tolerance switches. [`Profile::reference`] is strict: the reference
/// server must produce exactly the predicted events and batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    /// Extra folder ModifiedEvents are ignored: Exchange raises them for
    /// changes the model does not track (digest 2.2 notes: "one action can
    /// raise several events").
    pub extra_folder_modified: bool,
    /// Predicted folder ModifiedEvents may be missing: the digest's figure
    /// shows none for an item copy, and says it is not exhaustive.
    pub missing_folder_modified: bool,
    /// A copy may surface as a CreatedEvent instead of a CopiedEvent (R77).
    pub copy_as_created: bool,
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

impl Profile {
    /// The largest batch a notification may carry (R32, R70).
    pub const MAX_BATCH: usize = 50;

    /// Nothing extra tolerated: what the reference server must do.
    pub fn reference() -> Self {
        Profile {
            name: "reference",
            extra_folder_modified: false,
            missing_folder_modified: false,
            copy_as_created: false,
            synchronous_pull: true,
            exact_more_events: true,
            streaming_batch_limit: true,
            unread_count_required: true,
        }
    }

    /// Exchange 2013 / Online, listed folders: the documented latitude.
    pub fn exchange2013() -> Self {
        Profile {
            name: "exchange2013",
            extra_folder_modified: true,
            missing_folder_modified: true,
            copy_as_created: true,
            synchronous_pull: false,
            exact_more_events: false,
            streaming_batch_limit: false,
            unread_count_required: false,
        }
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::reference()
    }
}
