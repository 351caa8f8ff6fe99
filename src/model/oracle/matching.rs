//! Unifying a received event with a predicted one, field by field.

use super::bindings::*;
use super::display::*;
use crate::model::latitude::Latitude;
use crate::model::mailbox::{ExpectedEvent, PredictedEvent};
use crate::model::ops::Handle;
use ews_proto::ews::{Event, EventKind, ObjectId};

// ------------------------------------------------------------- matching

/// Why a received event is not the predicted one.
pub(super) struct FieldMismatch {
    /// A more specific requirement than the operation's (R43 old ids, R44 UnreadCount).
    pub(super) rule: Option<&'static str>,
    pub(super) detail: String,
    /// The object matched an id bound before this event: the event is
    /// certainly about the predicted object, so a wrong field is a wrong
    /// detail. An object matched only by a fresh binding (an item moved by
    /// a delete, a delivered item) is weak evidence: a lost event explains
    /// the difference as well.
    pub(super) known_object: bool,
}

pub(super) fn mismatch(rule: Option<&'static str>, detail: String) -> FieldMismatch {
    FieldMismatch {
        rule,
        detail,
        known_object: false,
    }
}

/// Whether `got` is one of the legal forms of `pe`. On a mismatch, the
/// reason given is that of the form of `got`'s kind, if any: it names the
/// wrong detail rather than the kind.
pub(super) fn unify_any(
    pe: &PredictedEvent,
    got: &Event,
    bindings: &Bindings,
    profile: &Latitude,
) -> Result<Vec<(Handle, String)>, FieldMismatch> {
    let mut first: Option<FieldMismatch> = None;
    for form in pe.forms() {
        match unify(form, got, bindings, profile) {
            Ok(new) => return Ok(new),
            Err(m) => {
                let same_kind = form.kind == got.kind;
                if first.is_none() || (same_kind && !pe.event.kind.eq(&got.kind)) {
                    first = Some(m);
                }
            }
        }
    }
    Err(first.unwrap_or_else(|| mismatch(None, "no form".to_string())))
}

/// Whether `got` is `pred` under the bindings; if so, the new bindings it implies.
pub(super) fn unify(
    pred: &ExpectedEvent,
    got: &Event,
    bindings: &Bindings,
    profile: &Latitude,
) -> Result<Vec<(Handle, String)>, FieldMismatch> {
    let mut pending: Vec<(Handle, String)> = Vec::new();
    let as_created =
        pred.kind == EventKind::Copied && got.kind == EventKind::Created && profile.copy_as_created;
    if got.kind != pred.kind && !as_created {
        return Err(mismatch(
            None,
            format!("{} where {} was predicted", got.kind, pred.kind),
        ));
    }
    let object = got
        .object
        .as_ref()
        .ok_or_else(|| mismatch(None, "no ItemId or FolderId".to_string()))?;
    bind_object(bindings, &mut pending, pred.object, object)
        .map_err(|d| mismatch(None, format!("object: {d}")))?;
    let known_object = !pending.iter().any(|(h, _)| *h == pred.object);
    let mismatch = |rule: Option<&'static str>, detail: String| FieldMismatch {
        known_object,
        ..mismatch(rule, detail)
    };
    let parent = got
        .parent_folder_id
        .as_ref()
        .ok_or_else(|| mismatch(None, "no ParentFolderId".to_string()))?;
    bind_trial(
        bindings,
        &mut pending,
        Handle::Folder(pred.parent),
        &parent.id,
    )
    .map_err(|d| mismatch(None, format!("ParentFolderId: {d}")))?;
    if !as_created {
        if let Some(old) = pred.old_object {
            let got_old = got
                .old_object
                .as_ref()
                .ok_or_else(|| mismatch(Some("R43"), "no OldItemId or OldFolderId".to_string()))?;
            bind_object(bindings, &mut pending, old, got_old)
                .map_err(|d| mismatch(Some("R43"), format!("old object: {d}")))?;
        }
        // A moved item's new id may be fresh; its old id, when already
        // known and matched, identifies the event as surely.
        let old_known = pred
            .old_object
            .is_some_and(|old| bindings.id_of(old).is_some());
        let mismatch = |rule: Option<&'static str>, detail: String| FieldMismatch {
            known_object: known_object || old_known,
            ..mismatch(rule, detail)
        };
        if let Some(old_parent) = pred.old_parent {
            let got_old = got
                .old_parent_folder_id
                .as_ref()
                .ok_or_else(|| mismatch(Some("R43"), "no OldParentFolderId".to_string()))?;
            bind_trial(
                bindings,
                &mut pending,
                Handle::Folder(old_parent),
                &got_old.id,
            )
            .map_err(|d| mismatch(Some("R43"), format!("OldParentFolderId: {d}")))?;
        }
    }
    match (pred.unread_count, got.unread_count) {
        (Some(want), Some(have)) if want != have => {
            return Err(mismatch(
                Some("R44"),
                format!("UnreadCount {have} where {want} was predicted"),
            ));
        }
        (Some(want), None) if profile.unread_count_required => {
            return Err(mismatch(
                Some("R44"),
                format!("no UnreadCount where {want} was predicted"),
            ));
        }
        _ => {}
    }
    Ok(pending)
}

pub(super) fn bind_object(
    bindings: &Bindings,
    pending: &mut Vec<(Handle, String)>,
    want: Handle,
    got: &ObjectId,
) -> Result<(), String> {
    match (want, got) {
        (Handle::Folder(_), ObjectId::Folder(id))
        | (Handle::Item(_) | Handle::Remnant(_), ObjectId::Item(id)) => {
            bind_trial(bindings, pending, want, &id.id)
        }
        (Handle::Folder(_), ObjectId::Item(_)) => {
            Err("an item where a folder was predicted".into())
        }
        (_, ObjectId::Folder(_)) => Err("a folder where an item was predicted".into()),
    }
}

pub(super) fn bind_trial(
    bindings: &Bindings,
    pending: &mut Vec<(Handle, String)>,
    handle: Handle,
    id: &str,
) -> Result<(), String> {
    let bound = bindings.id_of(handle).or_else(|| {
        pending
            .iter()
            .find(|(h, _)| *h == handle)
            .map(|(_, i)| i.as_str())
    });
    if let Some(known) = bound {
        return if known == id {
            Ok(())
        } else {
            Err(format!(
                "{} where {handle} ({}) was predicted",
                show_id(id, bindings),
                short(known)
            ))
        };
    }
    let owner = bindings
        .handle_of(id)
        .or_else(|| pending.iter().find(|(_, i)| i == id).map(|(h, _)| *h));
    if let Some(other) = owner
        && other != handle
    {
        return Err(format!("{other} where {handle} was predicted"));
    }
    pending.push((handle, id.to_string()));
    Ok(())
}
