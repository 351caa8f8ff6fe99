//! Push delivery: one task per push subscription POSTs SendNotification
//! envelopes to the subscriber's URL and reads its SendNotificationResult
//! (digest 1.5). Events go out as they happen, a StatusEvent right after
//! Subscribe and then every StatusFrequency while idle; an unanswered
//! notification is retried after 30 protocol seconds, then 60, 120, …
//! from the first attempt, until the next retry would fall past
//! StatusFrequency, and then the subscription is dropped.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use super::faults::{Fault, shape_events};
use super::state::State;
use super::subscriptions::DeliveryState;
use super::sync::lock;
use super::sync::stopped;
use super::validate::notification_request;
use ews_proto::ews::envelope::{RequestHeader, open, request};
use ews_proto::ews::{Event, Notification, ResponseMessage, SendNotification, SubscriptionStatus};

/// Largest listener answer read (anything longer is not a usable answer).
const MAX_ANSWER: usize = 1024 * 1024;

pub fn spawn(state: Arc<State>, id: String, url: String, frequency_minutes: u32) {
    let frequency = state.minute() * frequency_minutes;
    tokio::spawn(deliver(state, id, url, frequency));
}

/// The next notification to send, and the cursor it moves the subscription to.
struct Pending {
    body: String,
    next_cursor: u64,
    has_events: bool,
    more: bool,
}

/// Reads what the subscription should send next; `None` once it is gone.
fn pending(state: &State, id: &str) -> Option<Pending> {
    let registry = lock(&state.registry);
    let sub = registry.get(id)?;
    let DeliveryState::Push { cursor } = sub.mode else {
        return None;
    };
    let mailbox = state.mailbox(sub.owner)?;
    let (events, more, previous, next_cursor) = mailbox.with(|d| {
        let (found, more) = d.log.read_after(cursor, &sub.filter, state.batch());
        let events: Vec<Event> = found
            .iter()
            .map(|e| e.to_event(Some(d.log.watermark(e.seq))))
            .collect();
        let events = shape_events(&state.faults, events);
        let next = found.last().map_or(cursor, |e| e.seq);
        (events, more, d.log.watermark(cursor), next)
    });
    let has_events = !events.is_empty();
    let events = if has_events {
        events
    } else {
        vec![Event::status(Some(previous.clone()))]
    };
    let message = SendNotification {
        message: ResponseMessage::success(),
        notification: Some(Notification {
            subscription_id: if state.faults.has(Fault::PushWrongSubscriptionId) {
                format!("{id}-other")
            } else {
                id.to_string()
            },
            previous_watermark: Some(previous),
            more_events: Some(more),
            events,
        }),
    };
    let header = RequestHeader {
        version: Some(sub.version.clone()),
        impersonate: None,
    };
    Some(Pending {
        body: state
            .rewriter
            .apply(request(&header, |w| message.render(w))),
        next_cursor,
        has_events,
        more,
    })
}

async fn deliver(state: Arc<State>, id: String, url: String, frequency: Duration) {
    let Some(owner) = lock(&state.registry).get(&id).map(|s| s.owner) else {
        return;
    };
    let Some(mailbox) = state.mailbox(owner).cloned() else {
        return;
    };
    let mut changes = mailbox.watch();
    let mut shutdown = state.shutdown.clone();
    // P5: a StatusEvent right after Subscribe tells the listener it works.
    let mut status_due = Instant::now();
    loop {
        if state.is_shutting_down() {
            return;
        }
        changes.borrow_and_update();
        let Some(next) = pending(&state, &id) else {
            return;
        };
        if !next.has_events {
            // The fault stays silent until an event comes.
            let silent = state.faults.has(Fault::PushNoStatusEvent);
            if silent || Instant::now() < status_due {
                let due = if silent {
                    Instant::now() + Duration::from_secs(24 * 3600)
                } else {
                    status_due
                };
                tokio::select! {
                    _ = changes.changed() => {}
                    _ = sleep_until(due) => {}
                    _ = stopped(&mut shutdown) => return,
                }
                continue;
            }
        }
        let answer = match post_with_retries(&state, &url, &next.body, frequency).await {
            Some(SubscriptionStatus::Unsubscribe)
                if state.faults.has(Fault::PushIgnoresUnsubscribe) =>
            {
                Some(SubscriptionStatus::Ok)
            }
            other => other,
        };
        match answer {
            Some(SubscriptionStatus::Ok) => {
                let mut registry = lock(&state.registry);
                match registry.get_mut(&id).map(|s| &mut s.mode) {
                    Some(DeliveryState::Push { cursor }) => *cursor = next.next_cursor,
                    _ => return,
                }
                drop(registry);
                status_due = Instant::now() + frequency;
                if next.more {
                    continue;
                }
            }
            Some(SubscriptionStatus::Unsubscribe) => {
                tracing::debug!("push listener unsubscribed");
                lock(&state.registry).remove(&id);
                return;
            }
            None => {
                tracing::debug!("push listener did not answer; subscription dropped");
                lock(&state.registry).remove(&id);
                return;
            }
        }
    }
}

/// Sends one notification, retrying per the StatusFrequency schedule.
/// `None` means the server gave up (or is stopping).
async fn post_with_retries(
    state: &State,
    url: &str,
    body: &str,
    frequency: Duration,
) -> Option<SubscriptionStatus> {
    let first = Instant::now();
    let mut offset = state.minute() / 2;
    let mut shutdown = state.shutdown.clone();
    loop {
        if let Some(status) = post_once(state, url, body).await {
            return Some(status);
        }
        if offset > frequency || state.faults.has(Fault::PushNeverRetries) {
            return None;
        }
        tokio::select! {
            _ = sleep_until(first + offset) => {}
            _ = stopped(&mut shutdown) => return None,
        }
        offset *= 2;
    }
}

/// One POST with a deadline; the listener's status if it gave a usable answer.
async fn post_once(state: &State, url: &str, body: &str) -> Option<SubscriptionStatus> {
    // Names are checked by the client's resolver; literal addresses here.
    if !state.config.push_destinations.allows_literal(url) {
        tracing::warn!(%url, "push destination refused by the push policy");
        return None;
    }
    let deadline = (state.minute() / 2).clamp(Duration::from_millis(250), Duration::from_secs(30));
    let attempt = async {
        let mut r = state
            .http
            .post(url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        let mut answer = Vec::new();
        while let Some(chunk) = r.chunk().await.ok()? {
            answer.extend_from_slice(&chunk);
            if answer.len() > MAX_ANSWER {
                return None;
            }
        }
        Some(answer)
    };
    let answer = tokio::time::timeout(deadline, attempt).await.ok()??;
    let text = std::str::from_utf8(&answer).ok()?;
    read_result(text)
}

/// Reads `m:SendNotificationResult/m:SubscriptionStatus` from the listener's envelope.
pub fn read_result(text: &str) -> Option<SubscriptionStatus> {
    let doc = ews_proto::xml::parse_bounded(text, false, 10_000).ok()?;
    let opened = open(&doc).ok()?;
    let version = opened.requested_version().unwrap_or("Exchange2013");
    notification_request(opened.payload, version).ok()?;
    SubscriptionStatus::parse_result(opened.payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ews_proto::ews::envelope::{EnvelopeStyle, response};

    fn answer(status: &str) -> String {
        format!(
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><m:SendNotificationResult xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"><m:SubscriptionStatus>{status}</m:SubscriptionStatus></m:SendNotificationResult></s:Body></s:Envelope>"
        )
    }

    #[test]
    fn reads_listener_answers() {
        assert_eq!(read_result(&answer("OK")), Some(SubscriptionStatus::Ok));
        assert_eq!(
            read_result(&answer("Unsubscribe")),
            Some(SubscriptionStatus::Unsubscribe)
        );
        assert_eq!(read_result(&answer("Maybe")), None);
        assert_eq!(read_result("<html/>"), None);
        let built = response(EnvelopeStyle::Prefixed, &Default::default(), |w| {
            SubscriptionStatus::Ok.render_result(w)
        });
        assert_eq!(read_result(&built), Some(SubscriptionStatus::Ok));
    }
}
