//! An ideal target in miniature: turns a prediction into the deliveries a
//! correct server would make. It lets the oracle be tested without a
//! network (accept the ideal, reject each injected fault) and gives a driver
//! author a worked example of what to record.

use std::collections::BTreeSet;

use super::latitude::Latitude;
use super::mailbox::{ExpectedEvent, Prediction};
use super::ops::{FolderHandle, Handle, ItemHandle, Mode, SubHandle};
use super::oracle::{Bindings, Delivery, Observed, ObservedSubscription};
use ews_proto::ews::{Event, EventKind, Id, Notification, ObjectId};

/// The fixed TimeStamp of simulated events.
const TIMESTAMP: &str = "2024-01-01T00:00:00Z";

/// The id the simulated target gives `handle`.
pub fn fake_id(handle: Handle) -> String {
    format!("id-{handle}")
}

/// The SubscriptionId the simulated target gives `sub`.
pub fn fake_subscription_id(sub: SubHandle) -> String {
    format!("subscription-{sub}")
}

/// The watermark after the `n`-th event delivered to `sub` (0: the Subscribe watermark).
pub fn fake_watermark(sub: SubHandle, n: usize) -> String {
    format!("{sub}-wm{n}")
}

/// A simulated event as the target would send it.
pub fn render_event(e: &ExpectedEvent, watermark: Option<String>) -> Event {
    let object = |h: Handle| match h {
        Handle::Folder(_) => ObjectId::Folder(Id::new(fake_id(h))),
        Handle::Item(_) | Handle::Remnant(_) => ObjectId::Item(Id::new(fake_id(h))),
    };
    Event {
        kind: e.kind,
        watermark,
        timestamp: Some(TIMESTAMP.to_string()),
        object: Some(object(e.object)),
        parent_folder_id: Some(Id::new(fake_id(Handle::Folder(e.parent)))),
        old_object: e.old_object.map(object),
        old_parent_folder_id: e.old_parent.map(|p| Id::new(fake_id(Handle::Folder(p)))),
        unread_count: e.unread_count,
    }
}

/// What a correct server delivers for `prediction`, with the bindings a
/// driver could capture: items from CreateItem/MoveItem/CopyItem responses,
/// the case folder and created folders. Delivered items, items moved by a
/// delete and the other well-known folders stay unbound, as they would.
pub fn simulate(prediction: &Prediction) -> Observed {
    let delivered: BTreeSet<ItemHandle> = prediction
        .log
        .iter()
        .filter(|l| l.event.kind == EventKind::NewMail)
        .filter_map(|l| match l.event.object {
            Handle::Item(i) => Some(i),
            _ => None,
        })
        .collect();
    let mut bindings = Bindings::new();
    for logged in &prediction.log {
        let e = &logged.event;
        for h in [Some(e.object), e.old_object, Some(Handle::Folder(e.parent))]
            .into_iter()
            .flatten()
        {
            let capturable = match h {
                Handle::Item(i) => !delivered.contains(&i),
                Handle::Folder(f) => matches!(f, FolderHandle::Case | FolderHandle::User(_)),
                Handle::Remnant(_) => false,
            };
            if capturable {
                // Fake ids are distinct per handle, so binding cannot conflict.
                let _ = bindings.bind(h, fake_id(h));
            }
        }
    }
    let _ = bindings.bind_folder(
        FolderHandle::Case,
        fake_id(Handle::Folder(FolderHandle::Case)),
    );

    let mut observed = Observed {
        bindings,
        subscriptions: Default::default(),
    };
    for (sub, pred) in &prediction.subscriptions {
        let mut obs = ObservedSubscription::new(fake_subscription_id(*sub));
        let mut delivered_count = 0usize;
        for &poll in &pred.polls {
            let due: Vec<&ExpectedEvent> = pred.due_at(poll).map(|p| &p.event).collect();
            if due.is_empty() {
                if pred.mode == Mode::Pull {
                    let wm = fake_watermark(*sub, delivered_count);
                    obs.deliveries.push(Delivery {
                        notification: Notification {
                            subscription_id: obs.subscription_id.clone(),
                            previous_watermark: Some(wm.clone()),
                            more_events: Some(false),
                            events: vec![Event::status(Some(wm.clone()))],
                        },
                        request_watermark: Some(wm),
                        poll,
                        drain: 0,
                    });
                }
                continue;
            }
            let chunks: Vec<&[&ExpectedEvent]> = due.chunks(Latitude::MAX_BATCH).collect();
            for (j, chunk) in chunks.iter().enumerate() {
                let previous = fake_watermark(*sub, delivered_count);
                let mut events = Vec::with_capacity(chunk.len());
                for e in chunk.iter() {
                    delivered_count += 1;
                    let wm = (pred.mode != Mode::Streaming)
                        .then(|| fake_watermark(*sub, delivered_count));
                    events.push(render_event(e, wm));
                }
                let more = j + 1 < chunks.len();
                let notification = match pred.mode {
                    Mode::Streaming => Notification {
                        subscription_id: obs.subscription_id.clone(),
                        previous_watermark: None,
                        more_events: None,
                        events,
                    },
                    Mode::Pull | Mode::Push => Notification {
                        subscription_id: obs.subscription_id.clone(),
                        previous_watermark: Some(previous.clone()),
                        more_events: Some(more),
                        events,
                    },
                };
                obs.deliveries.push(Delivery {
                    notification,
                    request_watermark: (pred.mode == Mode::Pull).then_some(previous),
                    poll,
                    drain: 0,
                });
            }
        }
        observed.subscriptions.insert(*sub, obs);
    }
    observed
}
