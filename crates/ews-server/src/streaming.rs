//! GetStreamingEvents: one long HTTP response carrying consecutive SOAP
//! envelopes, each its own chunk. The envelopes are unprefixed
//! (`<Envelope xmlns="…soap/envelope/">`, no declaration, no newline in a
//! start tag) because that is what real clients scan for.
//!
//! Choices where the documentation leaves room (digest GS4-GS7):
//! * Per-id failures are reported after the first OK envelope, one Error
//!   envelope per code, while the good ids keep delivering: an unknown id
//!   gets ErrorSubscriptionNotFound, another user's ErrorSubscriptionAccessDenied,
//!   a pull or push id ErrorInvalidSubscription. No valid id at all:
//!   one Error envelope (ErrorInvalidSubscription, Closed) and the end.
//! * More than 200 ids: ErrorInvalidSubscription, Closed.
//! * A connection whose last subscription was taken over (ErrorNewEventStreamConnectionOpened),
//!   unsubscribed or expired closes instead of idling on the user's connection budget.
//! * Each subscription's Notification carries at most 50 events; more follow at once.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use roxmltree::Node;
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep_until};

use super::dialects::Dialect;
use super::faults::{Fault, shape_events};
use super::reply::{Call, Reply};
use super::reply::{access_denied, not_found};
use super::state::State;
use super::subscriptions::DeliveryState;
use super::sync::{lock, stopped};
use ews_proto::ews::envelope::{EnvelopeStyle, response};
use ews_proto::ews::{
    ConnectionStatus, GetStreamingEventsResponse, Notification, ResponseCode, ResponseMessage,
};
use ews_proto::xml::{ElementExt, child, element_children, ns};

/// Subscriptions one connection may carry (digest L3).
pub const MAX_IDS_PER_CONNECTION: usize = 200;

/// The notification element inside `m:Notifications`: the schema's `t:`
/// (both reference clients accept it; Exchange itself writes `m:`).
const NOTIFICATION_ELEMENT: &str = "t:Notification";

/// The XML declaration (streaming envelopes go without one; a fault adds two).
const DECLARATION: &str = r#"<?xml version="1.0" encoding="utf-8"?>"#;

/// Exchange 2013's wire form (the `streaming-m-notification` dialect).
const EXCHANGE_NOTIFICATION_ELEMENT: &str = "m:Notification";

fn envelope(state: &State, r: &GetStreamingEventsResponse) -> String {
    let element = if state.dialects.has(Dialect::StreamingMNotification) {
        EXCHANGE_NOTIFICATION_ELEMENT
    } else {
        NOTIFICATION_ELEMENT
    };
    response(
        EnvelopeStyle::Unprefixed,
        &state.config.server_version,
        |w| r.render(w, element),
    )
}

fn status_only(state: &State, status: ConnectionStatus) -> String {
    envelope(
        state,
        &GetStreamingEventsResponse {
            message: ResponseMessage::success(),
            notifications: Vec::new(),
            error_subscription_ids: Vec::new(),
            connection_status: Some(status),
        },
    )
}

fn error_envelope(
    state: &State,
    code: ResponseCode,
    text: &str,
    ids: Vec<String>,
    status: ConnectionStatus,
) -> String {
    envelope(
        state,
        &GetStreamingEventsResponse {
            message: ResponseMessage::error(code, text),
            notifications: Vec::new(),
            error_subscription_ids: ids,
            connection_status: Some(status),
        },
    )
}

pub fn get_streaming_events(call: &Call<'_>, op: Node<'_, '_>) -> Reply {
    let state = call.state;
    let mut ids: Vec<String> = Vec::new();
    if let Some(list) = child(op, ns::MESSAGES, "SubscriptionIds") {
        for id in element_children(list).map(|n| n.text_trimmed()) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let minutes = child(op, ns::MESSAGES, "ConnectionTimeout")
        .and_then(|n| n.text_trimmed().parse::<u32>().ok())
        .unwrap_or(1);
    let final_status = if state.faults.has(Fault::ConnectionStatusOkOnError) {
        ConnectionStatus::Ok
    } else {
        ConnectionStatus::Closed
    };
    let closing = |code, text: &str, ids| {
        Reply::Envelope(error_envelope(state, code, text, ids, final_status))
    };
    if ids.len() > MAX_IDS_PER_CONNECTION {
        return closing(
            ResponseCode::ErrorInvalidSubscription,
            "At most 200 subscriptions may share one connection.",
            Vec::new(),
        );
    }
    let minute = state.minute();
    let mut registry = lock(&state.registry);
    let limit = state.config.max_streaming_connections_per_user;
    let Some((connection, kick)) = registry.open_connection(call.user, limit) else {
        drop(registry);
        return closing(
            ResponseCode::ErrorExceededConnectionCount,
            "You have exceeded the maximum number of connections.",
            Vec::new(),
        );
    };
    let mut good = Vec::new();
    let mut refused: Vec<(ResponseCode, &str, Vec<String>)> = Vec::new();
    let mut refuse = |(code, text): (ResponseCode, &'static str), id: &str| match refused
        .iter_mut()
        .find(|(c, _, _)| *c == code)
    {
        Some((_, _, list)) => list.push(id.to_string()),
        None => refused.push((code, text, vec![id.to_string()])),
    };
    for id in &ids {
        let unsubscribed = registry.was_unsubscribed(id);
        match registry.live(id, minute) {
            None => refuse(not_found(state, unsubscribed), id),
            Some(s) if s.owner != call.user => refuse(access_denied(), id),
            Some(s) if !matches!(s.mode, DeliveryState::Streaming { .. }) => refuse(
                (
                    ResponseCode::ErrorInvalidSubscription,
                    "The subscription is not a streaming subscription.",
                ),
                id,
            ),
            Some(_) => good.push(id.clone()),
        }
    }
    if good.is_empty() {
        registry.close_connection(connection);
        drop(registry);
        return closing(
            ResponseCode::ErrorInvalidSubscription,
            "Subscription is invalid.",
            ids,
        );
    }
    let gap = state.faults.has(Fault::StreamReconnectGap);
    let newest = gap
        .then(|| state.mailbox(call.user).map(|m| m.with(|d| d.log.head())))
        .flatten();
    // The dialect: a subscription reconnecting with events raised while no
    // connection was open drops them and says so (GS6's alternative).
    let mut missed = Vec::new();
    if state.dialects.has(Dialect::ReconnectReportsMissed)
        && let Some(mailbox) = state.mailbox(call.user)
    {
        for id in &good {
            let Some(sub) = registry.get_mut(id) else {
                continue;
            };
            let super::subscriptions::Subscription { filter, mode, .. } = sub;
            if let DeliveryState::Streaming {
                cursor,
                connection: None,
                connected_before: true,
                ..
            } = mode
            {
                let dropped = mailbox.with(|d| {
                    let pending = !d.log.read_after(*cursor, filter, 1).0.is_empty();
                    if pending {
                        *cursor = d.log.head();
                    }
                    pending
                });
                if dropped {
                    missed.push(id.clone());
                }
            }
        }
    }
    if !missed.is_empty() {
        refused.push((
            ResponseCode::ErrorMissedNotificationEvents,
            "Missed some notification events.",
            missed,
        ));
    }
    for id in &good {
        if let (Some(newest), Some(sub)) = (newest, registry.get_mut(id))
            && let DeliveryState::Streaming {
                cursor,
                connection: None,
                ..
            } = &mut sub.mode
        {
            *cursor = newest;
        }
        registry.attach(id, connection);
    }
    drop(registry);
    let (tx, mut rx) = mpsc::channel::<Bytes>(4);
    let chunking = if state.dialects.has(Dialect::StreamChunksSplit) {
        Chunking::Split
    } else if state.dialects.has(Dialect::StreamChunksJoined) {
        Chunking::Joined
    } else {
        Chunking::OnePerEnvelope
    };
    let task = Connection {
        chunking,
        pending: Vec::new(),
        state: state.clone(),
        user: call.user,
        id: connection,
        kick,
        subscriptions: good,
        tx,
    };
    let refused: Vec<(ResponseCode, String, Vec<String>)> = refused
        .into_iter()
        .map(|(c, t, l)| (c, t.to_string(), l))
        .collect();
    let lifetime = if state.faults.has(Fault::StreamNeverCloses) {
        Duration::from_secs(24 * 3600)
    } else {
        minute * minutes
    };
    tokio::spawn(task.run(refused, lifetime));
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|chunk| chunk.map(Ok::<Bytes, std::convert::Infallible>))
    });
    Reply::Stream(Body::from_stream(stream))
}

/// One open connection's delivery task. Dropping it (the client went away,
/// the timeout passed, the server stops) releases the connection.
/// How envelopes map onto HTTP chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunking {
    /// One chunk per envelope (the reference form).
    OnePerEnvelope,
    /// Each envelope cut into several chunks at arbitrary offsets.
    Split,
    /// Envelopes that are ready together share one chunk.
    Joined,
}

struct Connection {
    chunking: Chunking,
    /// Envelopes held for the next joined chunk.
    pending: Vec<u8>,
    state: Arc<State>,
    user: usize,
    id: u64,
    kick: Arc<Notify>,
    subscriptions: Vec<String>,
    tx: mpsc::Sender<Bytes>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        lock(&self.state.registry).close_connection(self.id);
    }
}

/// Why a connection loop ended early.
struct Gone;

/// Offsets that cut `len` bytes into three pieces (two when short), at
/// places that fall inside tags and text alike.
fn split_points(len: usize) -> Vec<usize> {
    let mut points = vec![0];
    if len >= 3 {
        let a = rand::random_range(1..len / 2 + 1);
        let b = rand::random_range(a + 1..len);
        points.extend([a, b]);
    } else if len == 2 {
        points.push(1);
    }
    points.push(len);
    points
}

impl Connection {
    async fn send(&mut self, xml: String) -> Result<(), Gone> {
        let xml = self.state.rewriter.for_stream().apply(xml);
        let xml = if self.state.faults.has(Fault::StreamDuplicateDeclaration) {
            format!("{DECLARATION}{DECLARATION}{xml}")
        } else {
            xml
        };
        match self.chunking {
            Chunking::OnePerEnvelope => self.tx.send(Bytes::from(xml)).await.map_err(|_| Gone),
            Chunking::Joined => {
                self.pending.extend_from_slice(xml.as_bytes());
                Ok(())
            }
            Chunking::Split => {
                let bytes = Bytes::from(xml);
                for piece in split_points(bytes.len()).windows(2) {
                    self.tx
                        .send(bytes.slice(piece[0]..piece[1]))
                        .await
                        .map_err(|_| Gone)?;
                    // Give the writer a chance to put each piece on the wire alone.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Ok(())
            }
        }
    }

    /// Sends the envelopes held for a joined chunk.
    async fn flush(&mut self) -> Result<(), Gone> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.pending));
        self.tx.send(chunk).await.map_err(|_| Gone)
    }

    async fn run(mut self, refused: Vec<(ResponseCode, String, Vec<String>)>, lifetime: Duration) {
        let deadline = Instant::now() + lifetime;
        let _ = self.serve(refused, deadline).await;
        let _ = self.flush().await;
    }

    async fn serve(
        &mut self,
        refused: Vec<(ResponseCode, String, Vec<String>)>,
        deadline: Instant,
    ) -> Result<(), Gone> {
        let heartbeat = (self.state.minute() / 4).max(Duration::from_millis(10));
        let Some(mailbox) = self.state.mailbox(self.user).cloned() else {
            return Err(Gone);
        };
        let mut changes = mailbox.watch();
        let mut shutdown = self.state.shutdown.clone();
        // First envelope at once: some clients count the connection as open
        // only when the first bytes arrive. The fault holds it back for three
        // protocol minutes (or until the first event): longer than real
        // clients bear silence (90 s), and long enough to tell from "at
        // once" even when a protocol minute lasts a second and a half and
        // the harness adds its 2 s of slack.
        let held = self.state.faults.has(Fault::StreamFirstEnvelopeHeld);
        if !held {
            self.send(status_only(&self.state, ConnectionStatus::Ok))
                .await?;
        }
        for (code, text, ids) in refused {
            let e = error_envelope(&self.state, code, &text, ids, ConnectionStatus::Ok);
            self.send(e).await?;
        }
        let mut last_sent = if held {
            Instant::now() + (self.state.minute() * 3).saturating_sub(heartbeat)
        } else {
            Instant::now()
        };
        loop {
            changes.borrow_and_update();
            if self.drop_lost_subscriptions().await? {
                return Ok(());
            }
            loop {
                let (notifications, more) = self.collect();
                if notifications.is_empty() {
                    break;
                }
                let r = GetStreamingEventsResponse {
                    message: ResponseMessage::success(),
                    notifications,
                    error_subscription_ids: Vec::new(),
                    connection_status: Some(ConnectionStatus::Ok),
                };
                self.send(envelope(&self.state, &r)).await?;
                last_sent = Instant::now();
                if !more {
                    break;
                }
            }
            let wake = (last_sent + heartbeat).min(deadline);
            self.flush().await?;
            tokio::select! {
                _ = changes.changed() => {}
                _ = self.kick.notified() => {}
                _ = self.tx.closed() => return Err(Gone),
                _ = stopped(&mut shutdown) => {
                    return self.send(status_only(&self.state, ConnectionStatus::Closed)).await;
                }
                _ = sleep_until(wake) => {
                    if Instant::now() >= deadline {
                        return self.send(status_only(&self.state, ConnectionStatus::Closed)).await;
                    }
                    if self.state.faults.has(Fault::StreamNoHeartbeats) {
                        // Silent until the deadline: wake only for it.
                        last_sent = deadline;
                        continue;
                    }
                    self.send(status_only(&self.state, ConnectionStatus::Ok)).await?;
                    last_sent = Instant::now();
                }
            }
        }
    }

    /// Drops subscriptions this connection no longer delivers. Those taken
    /// over by a newer connection are reported (GS7); unsubscribed or
    /// expired ones go silently. Returns whether the connection is finished.
    async fn drop_lost_subscriptions(&mut self) -> Result<bool, Gone> {
        let mut taken = Vec::new();
        {
            let registry = lock(&self.state.registry);
            self.subscriptions
                .retain(|id| match registry.get(id).map(|s| &s.mode) {
                    Some(DeliveryState::Streaming {
                        connection: Some(c),
                        ..
                    }) if *c == self.id => true,
                    Some(DeliveryState::Streaming { .. }) => {
                        taken.push(id.clone());
                        false
                    }
                    _ => false,
                });
        }
        let finished = self.subscriptions.is_empty();
        // With nothing left to deliver the connection closes rather than
        // idling on the user's connection budget.
        let status = if finished {
            ConnectionStatus::Closed
        } else {
            ConnectionStatus::Ok
        };
        if !taken.is_empty() && !self.state.faults.has(Fault::SecondConnectionSilent) {
            let e = error_envelope(
                &self.state,
                ResponseCode::ErrorNewEventStreamConnectionOpened,
                "A new connection was opened for this subscription.",
                taken,
                status,
            );
            self.send(e).await?;
        } else if finished {
            self.send(status_only(&self.state, ConnectionStatus::Closed))
                .await?;
        }
        Ok(finished)
    }

    /// Up to a batch (50) of new events per subscription, advancing their cursors;
    /// `true` when some subscription has more waiting.
    fn collect(&self) -> (Vec<Notification>, bool) {
        let Some(mailbox) = self.state.mailbox(self.user) else {
            return (Vec::new(), false);
        };
        let with_watermarks = self.state.dialects.has(Dialect::StreamingEventWatermarks);
        let mut registry = lock(&self.state.registry);
        let mut notifications = Vec::new();
        let mut more = false;
        for id in &self.subscriptions {
            let Some(sub) = registry.get_mut(id) else {
                continue;
            };
            let filter = &sub.filter;
            let DeliveryState::Streaming {
                cursor,
                connection: Some(c),
                ..
            } = &mut sub.mode
            else {
                continue;
            };
            if *c != self.id {
                continue;
            }
            let batch = self.state.batch();
            let (found, more_here) = mailbox.with(|d| {
                let (found, more) = d.log.read_after(*cursor, filter, batch);
                let events: Vec<_> = found
                    .iter()
                    .map(|e| {
                        (
                            e.seq,
                            e.to_event(with_watermarks.then(|| d.log.watermark(e.seq))),
                        )
                    })
                    .collect();
                (events, more)
            });
            more |= more_here;
            if let Some((last, _)) = found.last() {
                *cursor = *last;
                let events = found.into_iter().map(|(_, e)| e).collect();
                let events = shape_events(&self.state.faults, events);
                if !events.is_empty() {
                    notifications.push(Notification {
                        subscription_id: id.clone(),
                        previous_watermark: None,
                        more_events: None,
                        events,
                    });
                }
            }
        }
        (notifications, more)
    }
}
