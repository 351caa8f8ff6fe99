//! The subscription registry: every live subscription, its owner, filter
//! and delivery mode, plus the open streaming connections. Expiry is
//! checked both lazily (on lookup) and by a periodic sweep.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::log::Filter;

/// Events per notification (digest 1.2 step 3).
pub const BATCH: usize = 50;

/// How long (in protocol minutes) a streaming subscription survives with no open connection.
pub const STREAMING_IDLE_MINUTES: u32 = 30;

#[derive(Debug, Clone)]
pub enum DeliveryState {
    Pull {
        timeout: Duration,
        last_used: Instant,
    },
    Push {
        /// The position of the last event the listener acknowledged.
        cursor: u64,
    },
    Streaming {
        /// The position of the last event sent on a connection.
        cursor: u64,
        connection: Option<u64>,
        idle_since: Instant,
        /// A connection has delivered it before (it is reconnecting, not
        /// connecting for the first time).
        connected_before: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    /// Index of the owning user (whose mailbox it watches).
    pub owner: usize,
    /// The RequestServerVersion it was made with (push sends it back).
    pub version: String,
    pub filter: Filter,
    pub mode: DeliveryState,
}

impl Subscription {
    fn expired(&self, now: Instant, minute: Duration) -> bool {
        match &self.mode {
            DeliveryState::Pull { timeout, last_used } => now >= *last_used + *timeout,
            DeliveryState::Push { .. } => false,
            DeliveryState::Streaming {
                connection: None,
                idle_since,
                ..
            } => now >= *idle_since + minute * STREAMING_IDLE_MINUTES,
            DeliveryState::Streaming { .. } => false,
        }
    }
}

/// An open GetStreamingEvents connection.
#[derive(Debug)]
struct Connection {
    owner: usize,
    /// Woken when the registry changes something the connection must see.
    kick: Arc<Notify>,
}

#[derive(Debug, Default)]
pub struct Registry {
    /// Fault `never-expire`: subscriptions outlive their Timeout.
    pub immortal: bool,
    subs: HashMap<String, Subscription>,
    /// Ids ended by Unsubscribe (bounded), so a later request can be told
    /// ErrorSubscriptionUnsubscribed.
    unsubscribed: std::collections::HashSet<String>,
    connections: HashMap<u64, Connection>,
    next_connection: u64,
}

impl Registry {
    pub fn count_for(&self, owner: usize) -> usize {
        self.subs.values().filter(|s| s.owner == owner).count()
    }

    pub fn insert(&mut self, sub: Subscription) {
        self.subs.insert(sub.id.clone(), sub);
    }

    /// The subscription if it exists and has not expired (an expired one is removed).
    pub fn live(&mut self, id: &str, minute: Duration) -> Option<&mut Subscription> {
        let expired = !self.immortal && self.subs.get(id)?.expired(Instant::now(), minute);
        if expired {
            self.subs.remove(id);
            return None;
        }
        self.subs.get_mut(id)
    }

    /// Removes a subscription and wakes the connection delivering it, if any.
    /// Ends a subscription by Unsubscribe (remembered, unlike expiry).
    pub fn unsubscribe(&mut self, id: &str) -> Option<Subscription> {
        const REMEMBERED: usize = 100_000;
        if self.unsubscribed.len() >= REMEMBERED {
            self.unsubscribed.clear();
        }
        self.unsubscribed.insert(id.to_string());
        self.remove(id)
    }

    /// Whether Unsubscribe ended this id.
    pub fn was_unsubscribed(&self, id: &str) -> bool {
        self.unsubscribed.contains(id)
    }

    pub fn remove(&mut self, id: &str) -> Option<Subscription> {
        let sub = self.subs.remove(id)?;
        if let DeliveryState::Streaming {
            connection: Some(c),
            ..
        } = sub.mode
        {
            self.kick(c);
        }
        Some(sub)
    }

    /// Drops every expired subscription; returns how many went.
    pub fn sweep(&mut self, minute: Duration) -> usize {
        let now = Instant::now();
        let before = self.subs.len();
        if self.immortal {
            return 0;
        }
        self.subs.retain(|_, s| !s.expired(now, minute));
        before - self.subs.len()
    }

    fn kick(&self, connection: u64) {
        if let Some(c) = self.connections.get(&connection) {
            c.kick.notify_one();
        }
    }

    pub fn open_connections(&self, owner: usize) -> usize {
        self.connections
            .values()
            .filter(|c| c.owner == owner)
            .count()
    }

    /// Registers a connection, or `None` when the owner is at `limit`.
    pub fn open_connection(&mut self, owner: usize, limit: usize) -> Option<(u64, Arc<Notify>)> {
        if self.open_connections(owner) >= limit {
            return None;
        }
        self.next_connection += 1;
        let id = self.next_connection;
        let kick = Arc::new(Notify::new());
        self.connections.insert(
            id,
            Connection {
                owner,
                kick: kick.clone(),
            },
        );
        Some((id, kick))
    }

    /// Forgets a connection and detaches its subscriptions (their idle clock starts).
    pub fn close_connection(&mut self, connection: u64) {
        self.connections.remove(&connection);
        let now = Instant::now();
        for s in self.subs.values_mut() {
            if let DeliveryState::Streaming {
                connection: c,
                idle_since,
                ..
            } = &mut s.mode
                && *c == Some(connection)
            {
                *c = None;
                *idle_since = now;
            }
        }
    }

    /// Makes `connection` the one delivering streaming subscription `id`;
    /// a previous connection is woken so it can report the takeover.
    pub fn attach(&mut self, id: &str, connection: u64) {
        let previous = match self.subs.get_mut(id).map(|s| &mut s.mode) {
            Some(DeliveryState::Streaming {
                connection: c,
                connected_before,
                ..
            }) => {
                *connected_before = true;
                c.replace(connection)
            }
            _ => None,
        };
        if let Some(p) = previous.filter(|p| *p != connection) {
            self.kick(p);
        }
    }

    pub fn get(&self, id: &str) -> Option<&Subscription> {
        self.subs.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Subscription> {
        self.subs.get_mut(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ews_proto::ews::EventKind;

    fn sub(id: &str, mode: DeliveryState) -> Subscription {
        Subscription {
            id: id.into(),
            owner: 0,
            version: "Exchange2013".into(),
            filter: Filter {
                all_folders: true,
                folders: Default::default(),
                kinds: [EventKind::Created].into_iter().collect(),
            },
            mode,
        }
    }

    #[tokio::test]
    async fn pull_subscriptions_expire_after_their_timeout() {
        let minute = Duration::from_millis(100);
        let mut r = Registry::default();
        r.insert(sub(
            "p",
            DeliveryState::Pull {
                timeout: minute,
                last_used: Instant::now(),
            },
        ));
        assert!(r.live("p", minute).is_some());
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(r.sweep(minute), 1);
        assert!(r.live("p", minute).is_none());
    }

    #[tokio::test]
    async fn connections_are_limited_and_detach_on_close() {
        let minute = Duration::from_millis(2);
        let mut r = Registry::default();
        r.insert(sub(
            "s",
            DeliveryState::Streaming {
                cursor: 0,
                connection: None,
                idle_since: Instant::now(),
                connected_before: false,
            },
        ));
        let (c1, _) = r.open_connection(0, 1).expect("first connection");
        assert!(r.open_connection(0, 1).is_none(), "limit reached");
        r.attach("s", c1);
        tokio::time::sleep(minute * 40).await;
        assert_eq!(r.sweep(minute), 0, "attached subscriptions do not expire");
        r.close_connection(c1);
        assert_eq!(r.open_connections(0), 0);
        tokio::time::sleep(minute * 40).await;
        assert_eq!(r.sweep(minute), 1);
    }
}
