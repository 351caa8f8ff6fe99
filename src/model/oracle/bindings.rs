//! Which id stands for which handle: bound on first consistent appearance,
//! then fixed; one id never stands for two handles.

use std::collections::BTreeMap;

use crate::model::ops::{FolderHandle, Handle, ItemHandle};

// ------------------------------------------------------------- bindings

/// Handle ↔ real id, both ways.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bindings {
    pub(super) by_handle: BTreeMap<Handle, String>,
    pub(super) by_id: BTreeMap<String, Handle>,
}

/// A binding that contradicts an earlier one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot bind {handle} to {id:?}: {reason}")]
pub struct BindingConflict {
    pub handle: Handle,
    pub id: String,
    pub reason: String,
}

impl Bindings {
    pub fn new() -> Self {
        Bindings::default()
    }

    /// Records that `handle` is `id` on the target. Binding the same pair
    /// twice is fine; a second id for a handle, or a second handle for an
    /// id, is a conflict (the target reused an id).
    pub fn bind(&mut self, handle: Handle, id: impl Into<String>) -> Result<(), BindingConflict> {
        let id = id.into();
        if let Some(existing) = self.by_handle.get(&handle) {
            if *existing == id {
                return Ok(());
            }
            return Err(BindingConflict {
                reason: format!("it is already bound to {existing:?}"),
                handle,
                id,
            });
        }
        if let Some(other) = self.by_id.get(&id) {
            return Err(BindingConflict {
                reason: format!("that id is already bound to {other}"),
                handle,
                id,
            });
        }
        self.by_id.insert(id.clone(), handle);
        self.by_handle.insert(handle, id);
        Ok(())
    }

    pub fn bind_item(
        &mut self,
        item: ItemHandle,
        id: impl Into<String>,
    ) -> Result<(), BindingConflict> {
        self.bind(Handle::Item(item), id)
    }

    pub fn bind_folder(
        &mut self,
        folder: FolderHandle,
        id: impl Into<String>,
    ) -> Result<(), BindingConflict> {
        self.bind(Handle::Folder(folder), id)
    }

    pub fn id_of(&self, handle: Handle) -> Option<&str> {
        self.by_handle.get(&handle).map(String::as_str)
    }

    pub fn handle_of(&self, id: &str) -> Option<Handle> {
        self.by_id.get(id).copied()
    }

    pub fn len(&self) -> usize {
        self.by_handle.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_handle.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (Handle, &str)> {
        self.by_handle.iter().map(|(h, id)| (*h, id.as_str()))
    }
}
