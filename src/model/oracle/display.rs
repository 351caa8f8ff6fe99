//! Events and ids as the reports show them.

use super::bindings::*;
use ews_proto::ews::{Event, ObjectId};

// ------------------------------------------------------------- display

pub(super) fn short(id: &str) -> String {
    const KEEP: usize = 24;
    if id.chars().count() <= KEEP {
        id.to_string()
    } else {
        let head: String = id.chars().take(KEEP).collect();
        format!("{head}…")
    }
}

pub(super) fn show_id(id: &str, bindings: &Bindings) -> String {
    match bindings.handle_of(id) {
        Some(h) => h.to_string(),
        None => format!("{:?}", short(id)),
    }
}

/// A watermark in full: two of them often differ only at the end.
pub(super) fn show_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "(absent)".to_string(), str::to_string)
}

/// A received event in the words of [`ExpectedEvent`]'s display, with
/// known ids shown as their handles.
pub fn describe_received(e: &Event, bindings: &Bindings) -> String {
    let mut s = e.kind.to_string();
    match &e.object {
        Some(ObjectId::Item(id)) => s.push_str(&format!(" item {}", show_id(&id.id, bindings))),
        Some(ObjectId::Folder(id)) => s.push_str(&format!(" folder {}", show_id(&id.id, bindings))),
        None => {}
    }
    if let Some(p) = &e.parent_folder_id {
        s.push_str(&format!(" in {}", show_id(&p.id, bindings)));
    }
    if let Some(o) = &e.old_object {
        let old_parent = e
            .old_parent_folder_id
            .as_ref()
            .map_or_else(|| "?".to_string(), |p| show_id(&p.id, bindings));
        s.push_str(&format!(
            " (was {} in {old_parent})",
            show_id(&o.id().id, bindings)
        ));
    }
    if let Some(n) = e.unread_count {
        s.push_str(&format!(", unread {n}"));
    }
    s
}
