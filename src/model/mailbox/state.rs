//! The model's state (folders, items, unread counts, subscriptions) and
//! what a generator may ask of it.

use std::collections::{BTreeMap, BTreeSet};

use super::prediction::*;
use crate::model::latitude::Latitude;
use crate::model::ops::WatermarkHandle;
use crate::model::ops::{FolderHandle, Handle, ItemHandle, Mode, Op, Scope, SubHandle};
use ews_proto::ews::EventKind;

#[derive(Debug, Clone)]
pub(super) struct FolderState {
    pub(super) parent: FolderHandle,
    /// Unread items added since the model started.
    pub(super) unread_delta: i64,
    /// The unread count when the model started, if known.
    pub(super) baseline: Option<i64>,
    /// Moved to Deleted Items: still there, but a generator leaves it alone.
    pub(super) retired: bool,
}

impl FolderState {
    pub(super) fn unread(&self) -> Option<i64> {
        self.baseline.map(|b| b + self.unread_delta)
    }
}

#[derive(Debug, Clone)]
pub(super) struct ItemState {
    pub(super) folder: FolderHandle,
    pub(super) read: bool,
}

#[derive(Debug, Clone)]
pub(super) struct SubState {
    pub(super) mode: Mode,
    pub(super) scope: Scope,
    pub(super) event_types: BTreeSet<EventKind>,
    pub(super) subscribed_at: usize,
    /// First log index the subscription sees.
    pub(super) start: usize,
    /// Log length at Unsubscribe.
    pub(super) end: Option<usize>,
    pub(super) unsubscribed_at: Option<usize>,
    /// (op index, log length) of each poll.
    pub(super) polls: Vec<(usize, usize)>,
    pub(super) resumed_from: Option<(SubHandle, WatermarkHandle)>,
}

#[derive(Debug, Clone)]
pub(super) struct Remembered {
    pub(super) sub: SubHandle,
    pub(super) position: usize,
}

/// The state of the mailbox and the subscriptions after a prefix of a sequence.
#[derive(Debug, Clone)]
pub struct Model {
    pub(super) folders: BTreeMap<FolderHandle, FolderState>,
    pub(super) items: BTreeMap<Handle, ItemState>,
    pub(super) used_items: BTreeSet<ItemHandle>,
    /// Delivered items and items made in bulk: their ids are in no response
    /// a case captures, so no operation names them.
    pub(super) delivered: BTreeSet<ItemHandle>,
    pub(super) used_folders: BTreeSet<FolderHandle>,
    pub(super) subs: BTreeMap<SubHandle, SubState>,
    pub(super) watermarks: BTreeMap<WatermarkHandle, Remembered>,
    pub(super) log: Vec<LoggedEvent>,
    pub(super) next_index: usize,
    /// The server's choices where Exchange versions differ.
    pub(super) profile: Latitude,
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

impl Model {
    /// A mailbox with the well-known folders. The case folder starts empty;
    /// the unread counts of the Inbox, Deleted Items and the dumpster are
    /// unknown until [`Model::with_unread_baseline`] states them.
    pub fn new() -> Self {
        let mut folders = BTreeMap::new();
        for f in [
            FolderHandle::Case,
            FolderHandle::Inbox,
            FolderHandle::DeletedItems,
            FolderHandle::Dumpster,
        ] {
            let parent = f.well_known_parent().unwrap_or(FolderHandle::Root);
            let baseline = (f == FolderHandle::Case).then_some(0);
            folders.insert(
                f,
                FolderState {
                    parent,
                    unread_delta: 0,
                    baseline,
                    retired: false,
                },
            );
        }
        Model {
            used_folders: folders.keys().copied().collect(),
            folders,
            items: BTreeMap::new(),
            used_items: BTreeSet::new(),
            delivered: BTreeSet::new(),
            subs: BTreeMap::new(),
            watermarks: BTreeMap::new(),
            log: Vec::new(),
            next_index: 0,
            profile: Latitude::reference(),
        }
    }

    /// A model predicting what a target of `profile` does where Exchange
    /// versions differ ([`Model::new`] predicts the reference server).
    pub fn for_profile(profile: &Latitude) -> Self {
        Model {
            profile: profile.clone(),
            ..Model::new()
        }
    }

    /// States the unread count a well-known folder had before the sequence
    /// (a driver reads it with GetFolder), so ModifiedEvents predict it.
    pub fn with_unread_baseline(mut self, folder: FolderHandle, unread: i64) -> Self {
        if let Some(state) = self.folders.get_mut(&folder) {
            state.baseline = Some(unread);
        }
        self
    }

    /// The number of operations applied so far (the index the next one gets).
    pub fn len(&self) -> usize {
        self.next_index
    }

    pub fn is_empty(&self) -> bool {
        self.next_index == 0
    }

    /// Applies `op`, returning the events it adds to the mailbox log. On
    /// error the model is unchanged.
    pub fn apply(&mut self, op: &Op) -> Result<Vec<LoggedEvent>, InvalidOp> {
        let index = self.next_index;
        let invalid = |reason: String| InvalidOp {
            index,
            op: op.to_string(),
            reason,
        };
        self.check(op).map_err(invalid)?;
        let before = self.log.len();
        self.perform(op, index);
        self.next_index += 1;
        Ok(self.log[before..].to_vec())
    }

    /// The prediction for everything applied so far.
    pub fn prediction(&self) -> Prediction {
        let subscriptions = self
            .subs
            .iter()
            .map(|(h, s)| (*h, self.predict_subscription(s)))
            .collect();
        Prediction {
            subscriptions,
            log: self.log.clone(),
        }
    }

    // ------------------------------------------------------------ queries

    /// Items a driver can name (it captured their ids), for a generator.
    pub fn addressable_items(&self) -> Vec<ItemHandle> {
        self.items
            .iter()
            .filter_map(|(h, s)| match h {
                Handle::Item(i) if !self.delivered.contains(i) && self.folder_usable(s.folder) => {
                    Some(*i)
                }
                _ => None,
            })
            .collect()
    }

    /// The folder an item is in, and whether it is read.
    pub fn item(&self, item: ItemHandle) -> Option<(FolderHandle, bool)> {
        self.items
            .get(&Handle::Item(item))
            .map(|s| (s.folder, s.read))
    }

    /// Folders a generator may put items in or subscribe to: the case
    /// folder, the Inbox, Deleted Items and live user folders.
    pub fn usable_folders(&self) -> Vec<FolderHandle> {
        self.folders
            .keys()
            .copied()
            .filter(|f| *f != FolderHandle::Dumpster && self.folder_usable(*f))
            .collect()
    }

    /// Live user folders (not deleted, not moved to Deleted Items).
    pub fn user_folders(&self) -> Vec<FolderHandle> {
        self.usable_folders()
            .into_iter()
            .filter(|f| matches!(f, FolderHandle::User(_)))
            .collect()
    }

    /// Subscriptions not yet unsubscribed.
    pub fn live_subscriptions(&self) -> Vec<(SubHandle, Mode)> {
        self.subs
            .iter()
            .filter(|(_, s)| s.end.is_none())
            .map(|(h, s)| (*h, s.mode))
            .collect()
    }

    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    /// Remembered watermarks whose subscription's folders all still exist
    /// (a resume naming a deleted folder would fail on the target).
    pub fn resumable_watermarks(&self) -> Vec<WatermarkHandle> {
        self.watermarks
            .iter()
            .filter(|(_, r)| {
                self.subs
                    .get(&r.sub)
                    .is_some_and(|s| self.scope_exists(&s.scope))
            })
            .map(|(w, _)| *w)
            .collect()
    }

    pub fn next_item_handle(&self) -> ItemHandle {
        ItemHandle(self.used_items.iter().next_back().map_or(1, |i| i.0 + 1))
    }

    pub fn next_folder_handle(&self) -> FolderHandle {
        let n = self
            .used_folders
            .iter()
            .filter_map(|f| match f {
                FolderHandle::User(n) => Some(*n),
                _ => None,
            })
            .max()
            .map_or(1, |n| n + 1);
        FolderHandle::User(n)
    }

    pub fn next_sub_handle(&self) -> SubHandle {
        SubHandle(self.subs.keys().next_back().map_or(1, |s| s.0 + 1))
    }

    pub fn next_watermark_handle(&self) -> WatermarkHandle {
        WatermarkHandle(self.watermarks.keys().next_back().map_or(1, |w| w.0 + 1))
    }

    pub(super) fn folder_usable(&self, f: FolderHandle) -> bool {
        let mut at = f;
        // Bounded walk: folder depth never exceeds the number of folders.
        for _ in 0..=self.folders.len() {
            let Some(state) = self.folders.get(&at) else {
                return false;
            };
            if state.retired {
                return false;
            }
            if !matches!(at, FolderHandle::User(_)) {
                return true;
            }
            at = state.parent;
        }
        false
    }

    pub(super) fn scope_exists(&self, scope: &Scope) -> bool {
        match scope {
            Scope::AllFolders => true,
            Scope::Folders(set) => set.iter().all(|f| self.folders.contains_key(f)),
        }
    }
}
