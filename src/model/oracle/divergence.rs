//! What the oracle reports: a divergence, its kind and requirement, and the
//! evidence.

use std::fmt;

use crate::model::ops::SubHandle;

// ------------------------------------------------------------- output

/// The kind of departure from the prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DivergenceKind {
    /// The driver recorded nothing for a subscription that should have seen events.
    NotObserved,
    /// A notification names another subscription (R51).
    ForeignSubscription,
    /// More than 50 events in one notification.
    BatchTooLarge,
    /// MoreEvents not true exactly on all but the last notification of a run.
    MoreEvents,
    /// PreviousWatermark breaks the chain (R31 pull, R69 push).
    PreviousWatermark,
    /// An event without a (non-empty) Watermark.
    EmptyWatermark,
    /// A notification with no event at all: an idle poll must still carry
    /// a StatusEvent (R29); the schema wants at least one event.
    EmptyNotification,
    /// An event's TimeStamp is missing or not an xs:dateTime (R78).
    BadTimestamp,
    /// A resumed subscription kept the old SubscriptionId (R21).
    SameSubscriptionId,
    /// A predicted event never arrived.
    Lost,
    /// An event arrived twice.
    Repeated,
    /// Two predicted events arrived in the other order.
    Reordered,
    /// A pull event arrived in a later poll than the one it was queued for.
    Late,
    /// An event the subscription's folders or event types exclude (R42).
    Filtered,
    /// The right place in the sequence, the wrong event.
    Mismatch,
    /// An event from before the subscription's starting watermark (for a
    /// resumed subscription: the resume ignored the watermark, R21).
    BeforeStart,
    /// An event no operation explains.
    Unexpected,
}

impl DivergenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DivergenceKind::NotObserved => "not observed",
            DivergenceKind::ForeignSubscription => "foreign subscription",
            DivergenceKind::BatchTooLarge => "batch too large",
            DivergenceKind::MoreEvents => "wrong MoreEvents",
            DivergenceKind::PreviousWatermark => "broken watermark chain",
            DivergenceKind::EmptyWatermark => "missing watermark",
            DivergenceKind::EmptyNotification => "notification without events",
            DivergenceKind::BadTimestamp => "invalid TimeStamp",
            DivergenceKind::SameSubscriptionId => "same subscription id",
            DivergenceKind::Lost => "lost event",
            DivergenceKind::Repeated => "repeated event",
            DivergenceKind::Reordered => "reordered events",
            DivergenceKind::Late => "late event",
            DivergenceKind::Filtered => "filtered event delivered",
            DivergenceKind::Mismatch => "wrong event",
            DivergenceKind::BeforeStart => "event from before the start",
            DivergenceKind::Unexpected => "unexpected event",
        }
    }
}

/// One departure from the prediction, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    pub subscription: SubHandle,
    pub kind: DivergenceKind,
    /// The requirement id broken (digest section 3).
    pub rule: &'static str,
    /// Index of the event among the subscription's received non-status
    /// events, in arrival order.
    pub event_index: Option<usize>,
    /// Index of the notification among the subscription's deliveries.
    pub delivery_index: Option<usize>,
    pub predicted: Option<String>,
    pub received: Option<String>,
    pub detail: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({}): {}",
            self.subscription,
            self.kind.as_str(),
            self.rule,
            self.detail
        )?;
        if let Some(i) = self.event_index {
            write!(f, " [event #{i}]")?;
        }
        if let Some(d) = self.delivery_index {
            write!(f, " [notification #{d}]")?;
        }
        if let Some(p) = &self.predicted {
            write!(f, "\n  predicted: {p}")?;
        }
        if let Some(r) = &self.received {
            write!(f, "\n  received:  {r}")?;
        }
        Ok(())
    }
}
