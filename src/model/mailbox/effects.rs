//! What each operation does to the model, and the events it logs.

use super::prediction::*;
use super::state::*;
use crate::model::latitude::{Redelete, SoftDelete};
use crate::model::ops::{DeleteHow, FolderHandle, Handle, ItemHandle, Mode, Op, Scope};
use ews_proto::ews::EventKind;

impl Model {
    // ------------------------------------------------------------ effects

    pub(super) fn emit(&mut self, index: usize, rule: &'static str, event: ExpectedEvent) {
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
    pub(super) fn forget_unread(&mut self, index: usize, at: usize, folder: FolderHandle) {
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
    pub(super) fn last_all_folders(&mut self, form: AllFolders) {
        if let Some(last) = self.log.last_mut() {
            last.all_folders = form;
        }
    }

    /// A soft delete (R76): the item goes to the dumpster. Exchange 2013
    /// raises a MovedEvent to it, Exchange 2010 a DeletedEvent (C-DEL);
    /// either way the parent's ModifiedEvent follows.
    pub(super) fn soft_delete(&mut self, index: usize, rule: &'static str, item: ItemHandle) {
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

    pub(super) fn folder_modified(
        &mut self,
        index: usize,
        rule: &'static str,
        folder: FolderHandle,
    ) {
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

    pub(super) fn item_event(
        &mut self,
        index: usize,
        rule: &'static str,
        kind: EventKind,
        item: Handle,
    ) {
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

    pub(super) fn adjust_unread(&mut self, folder: FolderHandle, delta: i64) {
        if let Some(s) = self.folders.get_mut(&folder) {
            s.unread_delta += delta;
        }
    }

    pub(super) fn create_item(
        &mut self,
        index: usize,
        item: ItemHandle,
        folder: FolderHandle,
        read: bool,
    ) {
        self.add_item(Handle::Item(item), folder, read);
        // A save is not a delivery: no NewMailEvent, even in the Inbox
        // (digest 2.2 notes; Op::Deliver raises it).
        self.item_event(index, "R30", EventKind::Created, Handle::Item(item));
        self.folder_modified(index, "R30", folder);
    }

    pub(super) fn add_item(&mut self, handle: Handle, folder: FolderHandle, read: bool) {
        if let Handle::Item(i) = handle {
            self.used_items.insert(i);
        }
        self.items.insert(handle, ItemState { folder, read });
        if !read {
            self.adjust_unread(folder, 1);
        }
    }

    pub(super) fn remove_item(&mut self, handle: Handle) -> Option<ItemState> {
        let state = self.items.remove(&handle)?;
        if !state.read {
            self.adjust_unread(state.folder, -1);
        }
        Some(state)
    }

    /// A move of `item` into `to` as `new`: MovedEvent, then ModifiedEvent
    /// of the old parent and (when `modify_target`) of the new one.
    pub(super) fn move_item(
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
    pub(super) fn remove_subtree(&mut self, folder: FolderHandle) {
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

    pub(super) fn perform(&mut self, op: &Op, index: usize) {
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

    pub(super) fn predict_subscription(&self, s: &SubState) -> PredictedSubscription {
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
