//! What the model predicts: the events of the mailbox log and, per
//! subscription, the events it must see.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::model::ops::WatermarkHandle;
use crate::model::ops::{FolderHandle, Handle, Mode, Scope, SubHandle};
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
