//! Which operations are valid in the model's current state.

use super::state::*;
use crate::model::ops::{FolderHandle, Handle, ItemHandle, Mode, Op, Scope, SubHandle};

impl Model {
    // ------------------------------------------------------------ validity

    pub(super) fn check(&self, op: &Op) -> Result<(), String> {
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
}
