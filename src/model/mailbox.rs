//! The mailbox model: folders, items, unread counts, the mailbox event log
//! and, per subscription, the events it must see. Event shapes are those of
//! the Exchange 2013/Online profile for listed folders (digest 2.2), which the
//! reference server implements; where Exchange versions differ, a
//! [`Latitude`] picks the prediction and each event carries the other legal
//! forms ([`LoggedEvent::alternatives`]) and whether it may be absent.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::latitude::{Latitude, Redelete, SoftDelete};
use super::ops::WatermarkHandle;
use super::ops::{DeleteHow, FolderHandle, Handle, ItemHandle, Mode, Op, Scope, SubHandle};
use ews_proto::ews::EventKind;

/// One event the model predicts, in terms of handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedEvent {
    pub kind: EventKind,
    pub object: Handle,
    pub parent: FolderHandle,
    /// Moved/Copied: the object before the move (a new item id, or the same folder).
    pub old_object: Option<Handle>,
    pub old_parent: Option<FolderHandle>,
    /// Folder ModifiedEvents: the folder's unread count after the operation,
    /// when the model knows the folder's starting count.
    pub unread_count: Option<i64>,
}

impl fmt::Display for ExpectedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.object.is_folder() {
            "folder"
        } else {
            "item"
        };
        write!(f, "{} {what} {} in {}", self.kind, self.object, self.parent)?;
        if let (Some(o), Some(p)) = (self.old_object, self.old_parent) {
            write!(f, " (was {o} in {p})")?;
        }
        if let Some(n) = self.unread_count {
            write!(f, ", unread {n}")?;
        }
        Ok(())
    }
}

/// An event of the mailbox log with the operation that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    pub event: ExpectedEvent,
    /// Index of the causing operation in the sequence.
    pub op_index: usize,
    /// The requirement whose event shape this is (digest section 3).
    pub rule: &'static str,
    /// Other legal forms of this event: what another Exchange version
    /// raises for the same change (e.g. a soft delete's DeletedEvent on
    /// 2010 for the MovedEvent to the dumpster on 2013, R76).
    pub alternatives: Vec<ExpectedEvent>,
    /// What a SubscribeToAllFolders subscription may see instead (profile
    /// `all_folders_search_folder`, digest 2.2 C-DEL).
    pub all_folders: AllFolders,
    /// A legal outcome raises no such event at all.
    pub optional: bool,
}

/// How an event differs for a SubscribeToAllFolders subscription on a
/// server that reports deletions through the AllItems search folder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllFolders {
    #[default]
    Same,
    /// It may be absent (a MoveToDeletedItems raises no MovedEvent there).
    Optional,
    /// It may come in this form too (a soft delete is a DeletedEvent there).
    Also(ExpectedEvent),
}

impl LoggedEvent {
    /// The predicted form and its legal alternatives.
    pub fn forms(&self) -> impl Iterator<Item = &ExpectedEvent> {
        std::iter::once(&self.event).chain(&self.alternatives)
    }
}

/// An event one subscription must receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictedEvent {
    pub event: ExpectedEvent,
    pub caused_by: usize,
    /// Index of the Poll operation by which the event must have arrived.
    pub due: usize,
    pub rule: &'static str,
    /// Other legal forms (see [`LoggedEvent::alternatives`]) this
    /// subscription would see.
    pub alternatives: Vec<ExpectedEvent>,
    /// A legal outcome leaves it out for this subscription: another form
    /// is outside its folders, or its server raises none.
    pub optional: bool,
}

impl PredictedEvent {
    /// The predicted form and its legal alternatives.
    pub fn forms(&self) -> impl Iterator<Item = &ExpectedEvent> {
        std::iter::once(&self.event).chain(&self.alternatives)
    }

    /// Whether more than one outcome is legal for it (another form, or none).
    pub fn has_latitude(&self) -> bool {
        self.optional || !self.alternatives.is_empty()
    }
}

/// Everything the oracle needs to know about one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictedSubscription {
    pub mode: Mode,
    pub scope: Scope,
    pub event_types: BTreeSet<EventKind>,
    /// Index of the Subscribe or Resubscribe operation.
    pub subscribed_at: usize,
    pub unsubscribed_at: Option<usize>,
    /// For a Resubscribe: the subscription the watermark was remembered on, and the watermark.
    pub resumed_from: Option<(SubHandle, WatermarkHandle)>,
    /// The first mailbox log index the subscription sees (its Subscribe
    /// watermark, or the remembered one it resumed from).
    pub log_start: usize,
    /// Indices of this subscription's Poll operations, in order.
    pub polls: Vec<usize>,
    /// The events due by some poll, in mailbox order.
    pub events: Vec<PredictedEvent>,
}

impl PredictedSubscription {
    /// Whether the subscription's filters let `event` through.
    pub fn sees(&self, event: &ExpectedEvent) -> bool {
        self.event_types.contains(&event.kind)
            && self
                .scope
                .covers(event.object, event.parent, event.old_parent)
    }

    /// The events that arrive in the poll at `poll` when delivery is synchronous.
    pub fn due_at(&self, poll: usize) -> impl Iterator<Item = &PredictedEvent> {
        self.events.iter().filter(move |e| e.due == poll)
    }

    /// How many events must have arrived once the poll at `poll` is over
    /// (a streaming or push driver waits, bounded, until it has this many).
    pub fn expected_by(&self, poll: usize) -> usize {
        self.events.iter().filter(|e| e.due <= poll).count()
    }
}

/// The model's prediction for a whole sequence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Prediction {
    pub subscriptions: BTreeMap<SubHandle, PredictedSubscription>,
    /// The whole mailbox log (every event any subscription could see).
    pub log: Vec<LoggedEvent>,
}

/// An operation that the model cannot apply in the current state: a
/// sequence containing one is not a valid sequence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operation {index} ({op}) is invalid: {reason}")]
pub struct InvalidOp {
    pub index: usize,
    pub op: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
struct FolderState {
    parent: FolderHandle,
    /// Unread items added since the model started.
    unread_delta: i64,
    /// The unread count when the model started, if known.
    baseline: Option<i64>,
    /// Moved to Deleted Items: still there, but a generator leaves it alone.
    retired: bool,
}

impl FolderState {
    fn unread(&self) -> Option<i64> {
        self.baseline.map(|b| b + self.unread_delta)
    }
}

#[derive(Debug, Clone)]
struct ItemState {
    folder: FolderHandle,
    read: bool,
}

#[derive(Debug, Clone)]
struct SubState {
    mode: Mode,
    scope: Scope,
    event_types: BTreeSet<EventKind>,
    subscribed_at: usize,
    /// First log index the subscription sees.
    start: usize,
    /// Log length at Unsubscribe.
    end: Option<usize>,
    unsubscribed_at: Option<usize>,
    /// (op index, log length) of each poll.
    polls: Vec<(usize, usize)>,
    resumed_from: Option<(SubHandle, WatermarkHandle)>,
}

#[derive(Debug, Clone)]
struct Remembered {
    sub: SubHandle,
    position: usize,
}

/// The state of the mailbox and the subscriptions after a prefix of a sequence.
#[derive(Debug, Clone)]
pub struct Model {
    folders: BTreeMap<FolderHandle, FolderState>,
    items: BTreeMap<Handle, ItemState>,
    used_items: BTreeSet<ItemHandle>,
    /// Delivered items and items made in bulk: their ids are in no response
    /// a case captures, so no operation names them.
    delivered: BTreeSet<ItemHandle>,
    used_folders: BTreeSet<FolderHandle>,
    subs: BTreeMap<SubHandle, SubState>,
    watermarks: BTreeMap<WatermarkHandle, Remembered>,
    log: Vec<LoggedEvent>,
    next_index: usize,
    /// The server's choices where Exchange versions differ.
    profile: Latitude,
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

    fn folder_usable(&self, f: FolderHandle) -> bool {
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

    fn scope_exists(&self, scope: &Scope) -> bool {
        match scope {
            Scope::AllFolders => true,
            Scope::Folders(set) => set.iter().all(|f| self.folders.contains_key(f)),
        }
    }

    // ------------------------------------------------------------ validity

    fn check(&self, op: &Op) -> Result<(), String> {
        let item_exists = |i: &ItemHandle| {
            if self.delivered.contains(i) {
                Err(format!(
                    "item {i} was delivered or made in bulk: no captured response names its id"
                ))
            } else if self.items.contains_key(&Handle::Item(*i)) {
                Ok(())
            } else {
                Err(format!("item {i} does not exist"))
            }
        };
        let fresh_item = |i: &ItemHandle| {
            if self.used_items.contains(i) {
                Err(format!("item handle {i} is already used"))
            } else {
                Ok(())
            }
        };
        let item_target = |f: &FolderHandle| {
            if *f == FolderHandle::Dumpster {
                Err("items are not put into the dumpster directly".to_string())
            } else if self.folders.contains_key(f) {
                Ok(())
            } else {
                Err(format!("folder {f} does not exist"))
            }
        };
        let live_sub = |s: &SubHandle| match self.subs.get(s) {
            Some(state) if state.end.is_none() => Ok(state),
            Some(_) => Err(format!("subscription {s} was unsubscribed")),
            None => Err(format!("subscription {s} does not exist")),
        };
        let fresh_sub = |s: &SubHandle| {
            if self.subs.contains_key(s) {
                Err(format!("subscription handle {s} is already used"))
            } else {
                Ok(())
            }
        };
        match op {
            Op::CreateItem { item, folder, .. } => {
                fresh_item(item)?;
                item_target(folder)
            }
            Op::CreateItems { count, folder, .. } => {
                if !(1..=Op::MAX_BULK).contains(count) {
                    return Err(format!("count {count} is outside 1..={}", Op::MAX_BULK));
                }
                for i in op.bulk_items() {
                    fresh_item(&i)?;
                }
                item_target(folder)
            }
            Op::Deliver { item } => fresh_item(item),
            Op::MarkRead { item, .. } | Op::SetSubject { item } => item_exists(item),
            Op::MoveItem { item, to, new } | Op::CopyItem { item, to, new } => {
                item_exists(item)?;
                fresh_item(new)?;
                item_target(to)?;
                if matches!(op, Op::MoveItem { .. }) && self.item(*item).map(|x| x.0) == Some(*to) {
                    return Err(format!("item {item} is already in {to}"));
                }
                Ok(())
            }
            Op::DeleteItem { item, .. } => item_exists(item),
            Op::CreateFolder { folder, parent } => {
                if !matches!(folder, FolderHandle::User(_)) {
                    return Err(format!("{folder} is not a user folder handle"));
                }
                if self.used_folders.contains(folder) {
                    return Err(format!("folder handle {folder} is already used"));
                }
                if !matches!(parent, FolderHandle::Case | FolderHandle::User(_)) {
                    return Err(format!(
                        "folders are created under the case folder or a user folder, not {parent}"
                    ));
                }
                if !self.folders.contains_key(parent) {
                    return Err(format!("folder {parent} does not exist"));
                }
                Ok(())
            }
            Op::DeleteFolder { folder, .. } => {
                if !matches!(folder, FolderHandle::User(_)) {
                    return Err(format!("{folder} is not a user folder"));
                }
                match self.folders.get(folder) {
                    None => Err(format!("folder {folder} does not exist")),
                    Some(s) if s.retired => Err(format!("folder {folder} is in Deleted Items")),
                    Some(_) => Ok(()),
                }
            }
            Op::Subscribe {
                sub,
                scope,
                event_types,
                ..
            } => {
                fresh_sub(sub)?;
                if event_types.is_empty() {
                    return Err("no event types".to_string());
                }
                if let Some(k) = event_types.iter().find(|k| !k.subscribable()) {
                    return Err(format!("{k} cannot be subscribed to"));
                }
                if let Scope::Folders(set) = scope {
                    if set.is_empty() {
                        return Err("no folders".to_string());
                    }
                    if let Some(f) = set.iter().find(|f| !self.folders.contains_key(f)) {
                        return Err(format!("folder {f} does not exist"));
                    }
                }
                Ok(())
            }
            Op::Poll { sub } => live_sub(sub).map(|_| ()),
            Op::Remember { sub, watermark } => {
                let state = live_sub(sub)?;
                if state.mode != Mode::Pull {
                    return Err(format!("{sub} is not a pull subscription"));
                }
                if self.watermarks.contains_key(watermark) {
                    return Err(format!("watermark handle {watermark} is already used"));
                }
                Ok(())
            }
            Op::Resubscribe { sub, from } => {
                fresh_sub(sub)?;
                let Some(r) = self.watermarks.get(from) else {
                    return Err(format!("watermark {from} was not remembered"));
                };
                match self.subs.get(&r.sub) {
                    Some(origin) if self.scope_exists(&origin.scope) => Ok(()),
                    Some(_) => Err(format!("a folder of {} no longer exists", r.sub)),
                    None => Err(format!("subscription {} does not exist", r.sub)),
                }
            }
            Op::Unsubscribe { sub } => live_sub(sub).map(|_| ()),
            Op::OtherMailbox { .. } => Ok(()),
        }
    }

    // ------------------------------------------------------------ effects

    fn emit(&mut self, index: usize, rule: &'static str, event: ExpectedEvent) {
        self.log.push(LoggedEvent {
            event,
            op_index: index,
            rule,
            alternatives: Vec::new(),
            all_folders: AllFolders::Same,
            optional: false,
        });
    }

    /// From now on the unread count of `folder` is unknown (two legal
    /// outcomes left it different), starting with the events of operation
    /// `index` logged from `at` on.
    fn forget_unread(&mut self, index: usize, at: usize, folder: FolderHandle) {
        if let Some(s) = self.folders.get_mut(&folder) {
            s.baseline = None;
        }
        for l in &mut self.log[at..] {
            if l.op_index == index && l.event.object == Handle::Folder(folder) {
                l.event.unread_count = None;
            }
        }
    }

    /// Marks the last logged event for SubscribeToAllFolders subscriptions.
    fn last_all_folders(&mut self, form: AllFolders) {
        if let Some(last) = self.log.last_mut() {
            last.all_folders = form;
        }
    }

    /// A soft delete (R76): the item goes to the dumpster. Exchange 2013
    /// raises a MovedEvent to it, Exchange 2010 a DeletedEvent (C-DEL);
    /// either way the parent's ModifiedEvent follows.
    fn soft_delete(&mut self, index: usize, rule: &'static str, item: ItemHandle) {
        let h = Handle::Item(item);
        let Some(state) = self.remove_item(h) else {
            return;
        };
        let remnant = Handle::Remnant(item);
        self.add_item(remnant, FolderHandle::Dumpster, state.read);
        let moved = ExpectedEvent {
            kind: EventKind::Moved,
            object: remnant,
            parent: FolderHandle::Dumpster,
            old_object: Some(h),
            old_parent: Some(state.folder),
            unread_count: None,
        };
        let deleted = ExpectedEvent {
            kind: EventKind::Deleted,
            object: h,
            parent: state.folder,
            old_object: None,
            old_parent: None,
            unread_count: None,
        };
        let (event, alternatives) = match self.profile.soft_delete {
            SoftDelete::ToDumpster => (moved, Vec::new()),
            SoftDelete::Deleted => (deleted.clone(), Vec::new()),
            SoftDelete::Either => (moved, vec![deleted.clone()]),
        };
        self.emit(index, rule, event);
        if let Some(last) = self.log.last_mut() {
            last.alternatives = alternatives;
            last.all_folders = AllFolders::Also(deleted);
        }
        self.folder_modified(index, rule, state.folder);
    }

    fn folder_modified(&mut self, index: usize, rule: &'static str, folder: FolderHandle) {
        let (parent, unread) = match self.folders.get(&folder) {
            Some(s) => (s.parent, s.unread()),
            None => return,
        };
        self.emit(
            index,
            rule,
            ExpectedEvent {
                kind: EventKind::Modified,
                object: Handle::Folder(folder),
                parent,
                old_object: None,
                old_parent: None,
                unread_count: unread,
            },
        );
    }

    fn item_event(&mut self, index: usize, rule: &'static str, kind: EventKind, item: Handle) {
        let Some(parent) = self.items.get(&item).map(|s| s.folder) else {
            return;
        };
        self.emit(
            index,
            rule,
            ExpectedEvent {
                kind,
                object: item,
                parent,
                old_object: None,
                old_parent: None,
                unread_count: None,
            },
        );
    }

    fn adjust_unread(&mut self, folder: FolderHandle, delta: i64) {
        if let Some(s) = self.folders.get_mut(&folder) {
            s.unread_delta += delta;
        }
    }

    fn create_item(&mut self, index: usize, item: ItemHandle, folder: FolderHandle, read: bool) {
        self.add_item(Handle::Item(item), folder, read);
        // A save is not a delivery: no NewMailEvent, even in the Inbox
        // (digest 2.2 notes; Op::Deliver raises it).
        self.item_event(index, "R30", EventKind::Created, Handle::Item(item));
        self.folder_modified(index, "R30", folder);
    }

    fn add_item(&mut self, handle: Handle, folder: FolderHandle, read: bool) {
        if let Handle::Item(i) = handle {
            self.used_items.insert(i);
        }
        self.items.insert(handle, ItemState { folder, read });
        if !read {
            self.adjust_unread(folder, 1);
        }
    }

    fn remove_item(&mut self, handle: Handle) -> Option<ItemState> {
        let state = self.items.remove(&handle)?;
        if !state.read {
            self.adjust_unread(state.folder, -1);
        }
        Some(state)
    }

    /// A move of `item` into `to` as `new`: MovedEvent, then ModifiedEvent
    /// of the old parent and (when `modify_target`) of the new one.
    fn move_item(
        &mut self,
        index: usize,
        rule: &'static str,
        item: Handle,
        to: FolderHandle,
        new: Handle,
        modify_target: bool,
    ) {
        let Some(state) = self.remove_item(item) else {
            return;
        };
        self.add_item(new, to, state.read);
        self.emit(
            index,
            rule,
            ExpectedEvent {
                kind: EventKind::Moved,
                object: new,
                parent: to,
                old_object: Some(item),
                old_parent: Some(state.folder),
                unread_count: None,
            },
        );
        self.folder_modified(index, rule, state.folder);
        if modify_target {
            self.folder_modified(index, rule, to);
        }
    }

    /// Removes `folder` and everything below it (a hard or soft folder delete).
    fn remove_subtree(&mut self, folder: FolderHandle) {
        let mut doomed = vec![folder];
        let mut i = 0;
        while i < doomed.len() {
            let at = doomed[i];
            doomed.extend(
                self.folders
                    .iter()
                    .filter(|(f, s)| s.parent == at && **f != at)
                    .map(|(f, _)| *f),
            );
            i += 1;
        }
        for f in &doomed {
            self.folders.remove(f);
        }
        self.items.retain(|_, s| !doomed.contains(&s.folder));
    }

    fn perform(&mut self, op: &Op, index: usize) {
        match op {
            Op::CreateItem { item, folder, read } => {
                self.create_item(index, *item, *folder, *read);
            }
            Op::CreateItems { folder, read, .. } => {
                // The same events as `count` single CreateItems, in order;
                // a rendered case captures no id, so nothing names them later.
                for item in op.bulk_items() {
                    self.create_item(index, item, *folder, *read);
                    self.delivered.insert(item);
                }
            }
            Op::Deliver { item } => {
                // No response names a delivered item: later operations
                // cannot address it (see `check`).
                let h = Handle::Item(*item);
                self.delivered.insert(*item);
                self.add_item(h, FolderHandle::Inbox, false);
                self.item_event(index, "R71", EventKind::Created, h);
                self.item_event(index, "R71", EventKind::NewMail, h);
                self.folder_modified(index, "R71", FolderHandle::Inbox);
            }
            Op::MarkRead { item, read } => {
                let h = Handle::Item(*item);
                let Some(state) = self.items.get_mut(&h) else {
                    return;
                };
                let folder = state.folder;
                let was = std::mem::replace(&mut state.read, *read);
                if was != *read {
                    self.adjust_unread(folder, if *read { -1 } else { 1 });
                }
                let at = self.log.len();
                self.item_event(index, "R72", EventKind::Modified, h);
                self.folder_modified(index, "R72", folder);
                if was == *read && self.profile.unchanged_update_optional {
                    for l in &mut self.log[at..] {
                        l.optional = true;
                    }
                }
            }
            Op::SetSubject { item } => {
                let h = Handle::Item(*item);
                let Some(folder) = self.items.get(&h).map(|s| s.folder) else {
                    return;
                };
                self.item_event(index, "R72", EventKind::Modified, h);
                self.folder_modified(index, "R72", folder);
            }
            Op::MoveItem { item, to, new } => {
                self.move_item(
                    index,
                    "R73",
                    Handle::Item(*item),
                    *to,
                    Handle::Item(*new),
                    true,
                );
            }
            Op::CopyItem { item, to, new } => {
                let Some(state) = self.items.get(&Handle::Item(*item)).cloned() else {
                    return;
                };
                self.add_item(Handle::Item(*new), *to, state.read);
                self.emit(
                    index,
                    "R77",
                    ExpectedEvent {
                        kind: EventKind::Copied,
                        object: Handle::Item(*new),
                        parent: *to,
                        old_object: Some(Handle::Item(*item)),
                        old_parent: Some(state.folder),
                        unread_count: None,
                    },
                );
                // R77: Exchange's overview figure shows a CreatedEvent for a
                // copy, which a subscription on the source folder alone
                // does not see.
                if self.profile.copy_as_created
                    && let Some(last) = self.log.last_mut()
                {
                    last.alternatives.push(ExpectedEvent {
                        kind: EventKind::Created,
                        object: Handle::Item(*new),
                        parent: *to,
                        old_object: None,
                        old_parent: None,
                        unread_count: None,
                    });
                }
                self.folder_modified(index, "R77", *to);
            }
            Op::DeleteItem { item, how } => {
                let h = Handle::Item(*item);
                match how {
                    DeleteHow::HardDelete => {
                        let Some(folder) = self.items.get(&h).map(|s| s.folder) else {
                            return;
                        };
                        self.item_event(index, "R74", EventKind::Deleted, h);
                        self.remove_item(h);
                        self.folder_modified(index, "R74", folder);
                    }
                    DeleteHow::SoftDelete => self.soft_delete(index, "R76", *item),
                    // Exchange soft-deletes an item that is already in
                    // Deleted Items: it goes to Recoverable Items.
                    DeleteHow::MoveToDeletedItems
                        if self.profile.redelete != Redelete::MoveWithin
                            && self.item(*item).map(|x| x.0)
                                == Some(FolderHandle::DeletedItems) =>
                    {
                        let unread = self.item(*item).is_some_and(|x| !x.1);
                        let at = self.log.len();
                        self.soft_delete(index, "R76", *item);
                        if self.profile.redelete == Redelete::Either {
                            // R75 read literally: a move within Deleted Items,
                            // which leaves its unread count as it was.
                            if let Some(first) = self.log.get_mut(at) {
                                first.alternatives.push(ExpectedEvent {
                                    kind: EventKind::Moved,
                                    object: Handle::Remnant(*item),
                                    parent: FolderHandle::DeletedItems,
                                    old_object: Some(h),
                                    old_parent: Some(FolderHandle::DeletedItems),
                                    unread_count: None,
                                });
                            }
                            if unread {
                                self.forget_unread(index, at, FolderHandle::DeletedItems);
                            }
                        }
                    }
                    DeleteHow::MoveToDeletedItems => {
                        let at = self.log.len();
                        self.move_item(
                            index,
                            "R75",
                            h,
                            FolderHandle::DeletedItems,
                            Handle::Remnant(*item),
                            true,
                        );
                        // All folders on 2013: no MovedEvent, only the
                        // AllItems search folder's Deleted + Created (C-DEL).
                        if let Some(moved) = self.log.get_mut(at) {
                            moved.all_folders = AllFolders::Optional;
                        }
                    }
                }
            }
            Op::CreateFolder { folder, parent } => {
                self.used_folders.insert(*folder);
                self.folders.insert(
                    *folder,
                    FolderState {
                        parent: *parent,
                        unread_delta: 0,
                        baseline: Some(0),
                        retired: false,
                    },
                );
                self.emit(
                    index,
                    "R30",
                    ExpectedEvent {
                        kind: EventKind::Created,
                        object: Handle::Folder(*folder),
                        parent: *parent,
                        old_object: None,
                        old_parent: None,
                        unread_count: None,
                    },
                );
                self.folder_modified(index, "R30", *parent);
            }
            Op::DeleteFolder { folder, how } => {
                let Some(parent) = self.folders.get(folder).map(|s| s.parent) else {
                    return;
                };
                match how {
                    DeleteHow::HardDelete | DeleteHow::SoftDelete => {
                        self.emit(
                            index,
                            "R74",
                            ExpectedEvent {
                                kind: EventKind::Deleted,
                                object: Handle::Folder(*folder),
                                parent,
                                old_object: None,
                                old_parent: None,
                                unread_count: None,
                            },
                        );
                        self.remove_subtree(*folder);
                        self.folder_modified(index, "R74", parent);
                    }
                    DeleteHow::MoveToDeletedItems => {
                        if let Some(s) = self.folders.get_mut(folder) {
                            s.parent = FolderHandle::DeletedItems;
                            s.retired = true;
                        }
                        self.emit(
                            index,
                            "R75",
                            ExpectedEvent {
                                kind: EventKind::Moved,
                                object: Handle::Folder(*folder),
                                parent: FolderHandle::DeletedItems,
                                old_object: Some(Handle::Folder(*folder)),
                                old_parent: Some(parent),
                                unread_count: None,
                            },
                        );
                        // All folders on 2013: only the two ModifiedEvents (C-DEL).
                        self.last_all_folders(AllFolders::Optional);
                        self.folder_modified(index, "R75", parent);
                        self.folder_modified(index, "R75", FolderHandle::DeletedItems);
                    }
                }
            }
            Op::Subscribe {
                sub,
                mode,
                scope,
                event_types,
            } => {
                self.subs.insert(
                    *sub,
                    SubState {
                        mode: *mode,
                        scope: scope.clone(),
                        event_types: event_types.clone(),
                        subscribed_at: index,
                        start: self.log.len(),
                        end: None,
                        unsubscribed_at: None,
                        polls: Vec::new(),
                        resumed_from: None,
                    },
                );
            }
            Op::Poll { sub } => {
                let len = self.log.len();
                if let Some(s) = self.subs.get_mut(sub) {
                    s.polls.push((index, len));
                }
            }
            Op::Remember { sub, watermark } => {
                if let Some(s) = self.subs.get(sub) {
                    let position = s.polls.last().map_or(s.start, |p| p.1);
                    self.watermarks.insert(
                        *watermark,
                        Remembered {
                            sub: *sub,
                            position,
                        },
                    );
                }
            }
            Op::Resubscribe { sub, from } => {
                let Some(r) = self.watermarks.get(from).cloned() else {
                    return;
                };
                let Some(origin) = self.subs.get(&r.sub).cloned() else {
                    return;
                };
                self.subs.insert(
                    *sub,
                    SubState {
                        mode: Mode::Pull,
                        scope: origin.scope,
                        event_types: origin.event_types,
                        subscribed_at: index,
                        start: r.position,
                        end: None,
                        unsubscribed_at: None,
                        polls: Vec::new(),
                        resumed_from: Some((r.sub, *from)),
                    },
                );
            }
            Op::Unsubscribe { sub } => {
                let len = self.log.len();
                if let Some(s) = self.subs.get_mut(sub) {
                    s.end = Some(len);
                    s.unsubscribed_at = Some(index);
                }
            }
            // Another mailbox: no event of ours (R42, R71).
            Op::OtherMailbox { .. } => {}
        }
    }

    fn predict_subscription(&self, s: &SubState) -> PredictedSubscription {
        let mut p = PredictedSubscription {
            mode: s.mode,
            scope: s.scope.clone(),
            event_types: s.event_types.clone(),
            subscribed_at: s.subscribed_at,
            unsubscribed_at: s.unsubscribed_at,
            resumed_from: s.resumed_from,
            log_start: s.start,
            polls: s.polls.iter().map(|(i, _)| *i).collect(),
            events: Vec::new(),
        };
        let end = s.end.unwrap_or(self.log.len()).min(self.log.len());
        let search_folder = s.scope == Scope::AllFolders && self.profile.all_folders_search_folder;
        for (at, logged) in self.log.iter().enumerate().take(end).skip(s.start) {
            let mut optional = logged.optional;
            let mut forms: Vec<ExpectedEvent> = logged.forms().cloned().collect();
            if search_folder {
                match &logged.all_folders {
                    AllFolders::Same => {}
                    AllFolders::Optional => optional = true,
                    AllFolders::Also(e) => {
                        if !forms.contains(e) {
                            forms.push(e.clone());
                        }
                    }
                }
            }
            // A form this subscription does not see is a legal outcome in
            // which it receives nothing.
            let total = forms.len();
            forms.retain(|e| p.sees(e));
            if forms.is_empty() {
                continue;
            }
            optional |= forms.len() < total;
            let event = forms.remove(0);
            // Due at the first poll that came after the event was logged.
            let Some(due) = s.polls.iter().find(|(_, len)| *len > at).map(|(i, _)| *i) else {
                continue;
            };
            p.events.push(PredictedEvent {
                event,
                caused_by: logged.op_index,
                due,
                rule: logged.rule,
                alternatives: forms,
                optional,
            });
        }
        p
    }
}

/// Runs a whole sequence through a fresh model of the reference server.
pub fn predict(ops: &[Op]) -> Result<Prediction, InvalidOp> {
    predict_with(Model::new(), ops)
}

/// Runs a whole sequence through a fresh model of a `profile` target.
pub fn predict_for(profile: &Latitude, ops: &[Op]) -> Result<Prediction, InvalidOp> {
    predict_with(Model::for_profile(profile), ops)
}

/// Runs a sequence through `model` (e.g. one with known unread baselines).
pub fn predict_with(mut model: Model, ops: &[Op]) -> Result<Prediction, InvalidOp> {
    for op in ops {
        model.apply(op)?;
    }
    Ok(model.prediction())
}
