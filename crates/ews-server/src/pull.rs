//! Subscribe (all three kinds), GetEvents and Unsubscribe (digest 1.1, 1.2, 1.4).
//! Requests reaching these handlers have passed `validate::notification_request`.
//!
//! Decisions where the documentation is silent:
//! * R19: a subscription with neither FolderIds nor SubscribeToAllFolders
//!   watches all folders; with both, SubscribeToAllFolders wins.
//! * R13: a push request without StatusFrequency gets the documented
//!   default of 30 minutes instead of a schema fault.
//! * R40: GetEvents resumes from the watermark it is sent (see [`get_events`]).
//! * R63: Unsubscribe ends streaming subscriptions too (Exchange 2010 SP1+).

use std::collections::HashSet;

use roxmltree::Node;
use tokio::time::Instant;

use super::dialects::Dialect;
use super::faults::{Fault, shape_events};
use super::ids::new_subscription_id;
use super::log::Filter;
use super::reply::{Call, Reply, access_denied, not_found, not_pull};
use super::resolve::{self, Unresolved};
use super::subscriptions::{DeliveryState, Subscription};
use super::sync::lock;
use ews_proto::ews::{
    Event, EventKind, GetEventsResponse, Notification, ResponseCode, ResponseMessage,
    SubscribeResponse, UnsubscribeResponse,
};
use ews_proto::xml::{ElementExt, child, element_children, ns};

const M: &str = ns::MESSAGES;
const T: &str = ns::TYPES;

/// StatusFrequency when a push request leaves it out: the docs' default
/// (digest R13 CONFLICT: the schema makes it mandatory).
pub const DEFAULT_STATUS_FREQUENCY: u32 = 30;

fn text(node: Node<'_, '_>, ns_uri: &str, local: &str) -> Option<String> {
    child(node, ns_uri, local).map(|n| n.text_trimmed())
}

fn subscribe_error(call: &Call<'_>, code: ResponseCode, text: &str) -> Reply {
    let r = SubscribeResponse {
        message: ResponseMessage::error(code, text),
        subscription_id: None,
        watermark: None,
    };
    Reply::Envelope(call.envelope(|w| r.render(w)))
}

/// Whether Exchange would take this push URL: length 1..2082, http or https, parseable.
pub fn push_url_acceptable(url: &str) -> bool {
    !url.is_empty()
        && url.len() < 2083
        && reqwest::Url::parse(url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

pub fn subscribe(call: &Call<'_>, op: Node<'_, '_>) -> Reply {
    let Some(req) = element_children(op).next() else {
        return subscribe_error(
            call,
            ResponseCode::ErrorInvalidRequest,
            "Subscribe is empty.",
        );
    };
    let kind = req.tag_name().name();
    let url = text(req, T, "URL").unwrap_or_default();
    if kind == "PushSubscriptionRequest"
        && !push_url_acceptable(&url)
        && !call.state.faults.has(Fault::PushUrlUnchecked)
    {
        return subscribe_error(
            call,
            ResponseCode::ErrorInvalidPushSubscriptionUrl,
            "The push subscription URL is invalid.",
        );
    }
    // A literal address the push policy refuses is refused at once; a
    // name is checked when it is resolved for each POST.
    if kind == "PushSubscriptionRequest"
        && !call.state.config.push_destinations.allows_literal(&url)
    {
        return subscribe_error(
            call,
            ResponseCode::ErrorInvalidPushSubscriptionUrl,
            "The push subscription URL is not an allowed destination for notifications.",
        );
    }
    let listed: Vec<Node<'_, '_>> = child(req, T, "FolderIds")
        .map(|f| element_children(f).collect())
        .unwrap_or_default();
    let mut folders = HashSet::new();
    for f in &listed {
        match resolve::folder(call, *f) {
            Ok(n) => {
                folders.insert(n);
            }
            // The fault skips another mailbox's folder instead of refusing.
            Err(Unresolved::OtherMailbox)
                if call.state.faults.has(Fault::DelegateSubscribeAllowed) => {}
            Err(Unresolved::OtherMailbox) => {
                return subscribe_error(
                    call,
                    ResponseCode::ErrorSubscriptionDelegateAccessNotSupported,
                    "Subscriptions are not supported for delegate user access.",
                );
            }
            Err(u) => return subscribe_error(call, u.code(), u.text()),
        }
    }
    if call.state.faults.has(Fault::ChildFolderLeak)
        && let Some(mailbox) = call.state.mailbox(call.user)
    {
        let below: Vec<u64> =
            mailbox.with(|d| folders.iter().flat_map(|f| d.folders_below(*f)).collect());
        folders.extend(below);
    }
    let to_all = req
        .attribute("SubscribeToAllFolders")
        .is_some_and(|v| matches!(v.trim(), "true" | "1"));
    let mut kinds: HashSet<EventKind> = child(req, T, "EventTypes")
        .map(|e| {
            element_children(e)
                .filter_map(|t| EventKind::from_element_name(t.text_trimmed().as_str()))
                .collect()
        })
        .unwrap_or_default();
    if call.state.faults.has(Fault::EventTypeFilterIgnored) {
        kinds = EventKind::ALL.into_iter().collect();
    }
    // R19 (module docs): no folders named means every folder.
    let filter = Filter {
        all_folders: to_all
            || listed.is_empty()
            || call.state.faults.has(Fault::FolderFilterIgnored),
        folders,
        kinds,
    };
    let Some(mailbox) = call.state.mailbox(call.user) else {
        return subscribe_error(call, ResponseCode::ErrorInternalServerError, "No mailbox.");
    };
    // t:Watermark per the schema, or m:Watermark as exchangelib writes it (see validate).
    let watermark = text(req, T, "Watermark")
        .or_else(|| text(req, M, "Watermark"))
        .filter(|_| !call.state.faults.has(Fault::ResumeIgnoresWatermark));
    let start = match &watermark {
        Some(_) if call.state.faults.has(Fault::ResumeRefused) => None,
        Some(w) => mailbox.with(|d| d.log.position(w)),
        None => Some(mailbox.with(|d| d.log.head())),
    };
    let Some(start) = start else {
        return subscribe_error(
            call,
            ResponseCode::ErrorInvalidWatermark,
            "Watermark is invalid.",
        );
    };
    let minute = call.state.minute();
    let mode = match kind {
        "PullSubscriptionRequest" => {
            let timeout = text(req, T, "Timeout")
                .and_then(|t| t.parse::<u32>().ok())
                .unwrap_or(1);
            DeliveryState::Pull {
                timeout: minute * timeout,
                last_used: Instant::now(),
            }
        }
        "PushSubscriptionRequest" => DeliveryState::Push { cursor: start },
        _ => DeliveryState::Streaming {
            cursor: start,
            connection: None,
            idle_since: Instant::now(),
            connected_before: false,
        },
    };
    let id = new_subscription_id(&call.state.dialects);
    {
        let mut registry = lock(&call.state.registry);
        registry.sweep(minute);
        if registry.count_for(call.user) >= call.state.config.max_subscriptions_per_user {
            drop(registry);
            return subscribe_error(
                call,
                ResponseCode::ErrorExceededSubscriptionCount,
                "You have exceeded the maximum number of subscriptions.",
            );
        }
        registry.insert(Subscription {
            id: id.clone(),
            owner: call.user,
            version: call.version.clone(),
            filter,
            mode,
        });
    }
    if kind == "PushSubscriptionRequest" {
        let frequency = text(req, T, "StatusFrequency")
            .and_then(|t| t.parse::<u32>().ok())
            .unwrap_or(DEFAULT_STATUS_FREQUENCY)
            // Only a fault lets 0 past validation; never send in a busy loop.
            .max(1);
        super::push::spawn(call.state.clone(), id.clone(), url, frequency);
    }
    let watermark =
        (kind != "StreamingSubscriptionRequest").then(|| mailbox.with(|d| d.log.watermark(start)));
    tracing::debug!(user = call.user, kind, "subscribed");
    let r = SubscribeResponse {
        message: ResponseMessage::success(),
        subscription_id: Some(id),
        watermark,
    };
    Reply::Envelope(call.envelope(|w| r.render(w)))
}

fn get_events_error(call: &Call<'_>, code: ResponseCode, text: &str) -> Reply {
    let r = GetEventsResponse {
        message: ResponseMessage::error(code, text),
        notification: None,
    };
    Reply::Envelope(call.envelope(|w| r.render(w)))
}

/// GetEvents. Decision (R40): the sent watermark is the resume point, so
/// re-sending an older valid watermark re-delivers from there; a client
/// that lost a response can simply retry.
pub fn get_events(call: &Call<'_>, op: Node<'_, '_>) -> Reply {
    let id = text(op, M, "SubscriptionId").unwrap_or_default();
    let watermark = text(op, M, "Watermark").unwrap_or_default();
    let faults = &call.state.faults;
    let looked_up: Result<(Filter, usize), (ResponseCode, &str)> = {
        let mut registry = lock(&call.state.registry);
        let unsubscribed = registry.was_unsubscribed(&id);
        match registry.live(&id, call.state.minute()) {
            None => Err(not_found(call.state, unsubscribed)),
            Some(sub) if sub.owner != call.user && !faults.has(Fault::NoOwnerCheck) => {
                Err(access_denied())
            }
            Some(sub) => {
                let found = (sub.filter.clone(), sub.owner);
                match &mut sub.mode {
                    DeliveryState::Pull { last_used, .. } => {
                        if !faults.has(Fault::TimeoutNotReset) {
                            *last_used = Instant::now();
                        }
                        Ok(found)
                    }
                    _ => Err(not_pull()),
                }
            }
        }
    };
    let (filter, owner) = match looked_up {
        Ok(f) => f,
        Err((code, text)) => return get_events_error(call, code, text),
    };
    let Some(mailbox) = call.state.mailbox(owner) else {
        let (code, text) = not_found(call.state, false);
        return get_events_error(call, code, text);
    };
    let batch = mailbox.with(|d| {
        let position = d.log.position(&watermark)?;
        let (found, more) = d.log.read_after(position, &filter, call.state.batch());
        let events: Vec<Event> = found
            .iter()
            .map(|e| e.to_event(Some(d.log.watermark(e.seq))))
            .collect();
        Some((events, more))
    });
    let Some((mut events, more)) = batch else {
        return get_events_error(
            call,
            ResponseCode::ErrorInvalidWatermark,
            "Watermark is invalid.",
        );
    };
    events = shape_events(faults, events);
    if events.is_empty() && !faults.has(Fault::NoStatusEvent) {
        // Digest G3: the server may refresh an idle subscription's watermark.
        let mark = if call.state.dialects.has(Dialect::StatusWatermarkRefreshed) {
            mailbox
                .with(|d| {
                    d.log
                        .position(&watermark)
                        .map(|p| d.log.refreshed_watermark(p))
                })
                .unwrap_or_else(|| watermark.clone())
        } else {
            watermark.clone()
        };
        let mut status = Event::status(Some(mark));
        if faults.has(Fault::StatusEventTimestamp) {
            status.timestamp = Some(ews_proto::ews::time::now_utc());
        }
        events.push(status);
    }
    let previous = if faults.has(Fault::StalePreviousWatermark) {
        call.state.fault_memory.stale_previous(&id, &watermark)
    } else {
        watermark
    };
    let r = GetEventsResponse {
        message: ResponseMessage::success(),
        notification: Some(Notification {
            subscription_id: id,
            previous_watermark: Some(previous),
            more_events: Some(more && !faults.has(Fault::MoreEventsFalse)),
            events,
        }),
    };
    Reply::Envelope(call.envelope(|w| r.render(w)))
}

/// Unsubscribe: pull and streaming subscriptions end (streaming from
/// Exchange 2010 SP1 on, digest U4); push ones cannot be ended this way.
pub fn unsubscribe(call: &Call<'_>, op: Node<'_, '_>) -> Reply {
    let id = text(op, M, "SubscriptionId").unwrap_or_default();
    let outcome = {
        let mut registry = lock(&call.state.registry);
        let unsubscribed = registry.was_unsubscribed(&id);
        match registry.live(&id, call.state.minute()) {
            None if !unsubscribed && call.state.faults.has(Fault::UnsubscribeUnknownSucceeds) => {
                Ok(())
            }
            None => Err(not_found(call.state, unsubscribed)),
            Some(sub) if sub.owner != call.user => Err(access_denied()),
            Some(Subscription {
                mode: DeliveryState::Push { .. },
                ..
            }) => Err(not_pull()),
            Some(_) => {
                if !call.state.faults.has(Fault::UnsubscribeKeepsSubscription) {
                    registry.unsubscribe(&id);
                }
                Ok(())
            }
        }
    };
    let message = match outcome {
        Ok(()) => ResponseMessage::success(),
        Err((code, text)) => ResponseMessage::error(code, text),
    };
    let r = UnsubscribeResponse { message };
    Reply::Envelope(call.envelope(|w| r.render(w)))
}
