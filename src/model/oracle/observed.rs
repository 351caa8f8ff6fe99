//! What the driver saw: each subscription's deliveries, in arrival order.

use std::collections::BTreeMap;

use super::bindings::*;
use crate::model::ops::SubHandle;
use ews_proto::ews::Notification;

// ------------------------------------------------------------- input

/// One notification as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub notification: Notification,
    /// Pull: the watermark the GetEvents request sent.
    pub request_watermark: Option<String>,
    /// Index (in the sequence) of the Poll that collected it: for pull, the
    /// Poll whose GetEvents fetched it (one Poll's deliveries form one
    /// drained run); for streaming and push, the Poll during or before
    /// which it arrived.
    pub poll: usize,
    /// Pull: which drained run of its Poll the notification belongs to (0
    /// for the first). A driver that drains again because events are late
    /// (an asynchronous target) starts a new run, so MoreEvents is judged
    /// per run. Always 0 for streaming and push.
    pub drain: usize,
}

/// What one subscription received, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedSubscription {
    /// The SubscriptionId the target returned from Subscribe.
    pub subscription_id: String,
    pub deliveries: Vec<Delivery>,
}

impl ObservedSubscription {
    pub fn new(subscription_id: impl Into<String>) -> Self {
        ObservedSubscription {
            subscription_id: subscription_id.into(),
            deliveries: Vec::new(),
        }
    }
}

/// Everything a driver collected for one sequence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    pub bindings: Bindings,
    pub subscriptions: BTreeMap<SubHandle, ObservedSubscription>,
}
