//! Stress: many pull, streaming and push subscriptions on one folder
//! (made for the run, removed after it) while items are created in it at
//! a steady rate. Every subscription must
//! see each item's CreatedEvent exactly once, in creation order (events of
//! different operations keep their order, R-digest 1.2). The report counts
//! what was generated, delivered, lost, duplicated and reordered per
//! delivery mode, with delivery latency percentiles (from the CreateItem
//! request to the event's arrival).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::client::push::{PushAnswer, PushConfig, PushListener};
use crate::client::session::{Session, SessionError};
use crate::client::stream::parse_envelope;
use crate::client::transport::{Transport, TransportConfig};
use crate::suite::target::Target;
use ews_proto::ews::{
    EventKind, FolderRef, FolderScope, Notification, ObjectId, SubscribeRequest, SubscriptionKind,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct StressConfig {
    pub pull: usize,
    pub streams: usize,
    /// GetStreamingEvents connections the streaming subscriptions share.
    pub stream_connections: usize,
    pub push: usize,
    /// How long items are created.
    pub generate_for: Duration,
    /// Items created per second.
    pub rate: u32,
    /// Pause between GetEvents polls of one pull subscription.
    pub poll_every: Duration,
    /// How long to wait after the last item for the last deliveries.
    pub drain_for: Duration,
}

impl Default for StressConfig {
    fn default() -> Self {
        StressConfig {
            pull: 20,
            streams: 10,
            stream_connections: 4,
            push: 5,
            generate_for: Duration::from_secs(10),
            rate: 20,
            poll_every: Duration::from_millis(200),
            drain_for: Duration::from_secs(15),
        }
    }
}

/// Why a stress run could not be carried out at all.
#[derive(Debug, thiserror::Error)]
pub enum StressError {
    #[error("the target is unreachable: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Setup(String),
}

impl From<SessionError> for StressError {
    fn from(e: SessionError) -> Self {
        if e.is_fatal() {
            StressError::Unreachable(e.to_string())
        } else {
            StressError::Setup(e.to_string())
        }
    }
}

/// Delivery latency in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    fn of(mut ms: Vec<f64>) -> Self {
        if ms.is_empty() {
            return Latency::default();
        }
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((ms.len() as f64 - 1.0) * q).round() as usize;
            ms[i.min(ms.len() - 1)]
        };
        Latency {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: ms[ms.len() - 1],
        }
    }
}

/// The figures of one delivery mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeFigures {
    pub mode: &'static str,
    pub subscriptions: usize,
    /// Items × subscriptions.
    pub expected: usize,
    /// Distinct items seen, summed over subscriptions.
    pub delivered: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub reordered: usize,
    pub latency_ms: Latency,
}

/// What a stress run measured.
#[derive(Debug, Clone, Serialize)]
pub struct StressReport {
    pub target: String,
    pub generated: usize,
    pub generate_seconds: f64,
    pub modes: Vec<ModeFigures>,
    /// Errors met on the way (a failed poll, a stream that broke), each once
    /// with its count.
    pub problems: Vec<String>,
}

impl StressReport {
    /// Nothing lost, duplicated or reordered.
    pub fn passed(&self) -> bool {
        self.modes
            .iter()
            .all(|m| m.lost == 0 && m.duplicated == 0 && m.reordered == 0)
    }

    /// The report as a table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "stress against {}: {} items in {:.1} s\n{:<10} {:>5} {:>9} {:>9} {:>6} {:>10} {:>9} {:>8} {:>8} {:>8} {:>8}\n",
            self.target,
            self.generated,
            self.generate_seconds,
            "mode",
            "subs",
            "expected",
            "delivered",
            "lost",
            "duplicated",
            "reordered",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms"
        );
        for m in &self.modes {
            out.push_str(&format!(
                "{:<10} {:>5} {:>9} {:>9} {:>6} {:>10} {:>9} {:>8.1} {:>8.1} {:>8.1} {:>8.1}\n",
                m.mode,
                m.subscriptions,
                m.expected,
                m.delivered,
                m.lost,
                m.duplicated,
                m.reordered,
                m.latency_ms.p50,
                m.latency_ms.p95,
                m.latency_ms.p99,
                m.latency_ms.max
            ));
        }
        for p in &self.problems {
            out.push_str(&format!("problem: {p}\n"));
        }
        out
    }
}

/// One subscription's arrivals: item ids in arrival order, with times.
#[derive(Default)]
struct Arrivals {
    seen: Vec<(String, Instant)>,
}

type Shared<T> = Arc<Mutex<T>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Item ids of the CreatedEvents in some notifications.
fn created<'a>(notifications: impl IntoIterator<Item = &'a Notification>) -> Vec<String> {
    notifications
        .into_iter()
        .flat_map(|n| n.events.iter())
        .filter(|e| e.kind == EventKind::Created)
        .filter_map(|e| match &e.object {
            Some(ObjectId::Item(id)) => Some(id.id.clone()),
            _ => None,
        })
        .collect()
}

/// Problems counted by text, so a thousand failed polls are one line.
#[derive(Default)]
struct Problems(HashMap<String, usize>);

impl Problems {
    fn add(&mut self, p: String) {
        *self.0.entry(p).or_default() += 1;
    }
    fn lines(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .iter()
            .map(|(p, n)| {
                if *n > 1 {
                    format!("{p} (×{n})")
                } else {
                    p.clone()
                }
            })
            .collect();
        v.sort();
        v
    }
}

/// Where pushes arrive: the target's own listener when it has one, else
/// one started for the run.
#[derive(Clone)]
enum Pushes {
    Target(Arc<dyn Target>),
    Own(Arc<PushListener>),
}

impl Pushes {
    fn listener(&self) -> Option<&PushListener> {
        match self {
            Pushes::Target(t) => t.push_listener(),
            Pushes::Own(l) => Some(l),
        }
    }
}

/// Runs one stress session against `target`.
pub async fn stress(
    shared: Arc<dyn Target>,
    config: &StressConfig,
) -> Result<StressReport, StressError> {
    let target = shared.config();
    let mut tc = TransportConfig::new(target.endpoint.clone());
    tc.deadline = target.request_timeout;
    tc.insecure_tls = target.insecure_tls;
    let transport = Arc::new(Transport::new(tc).map_err(|e| StressError::Setup(e.to_string()))?);
    let session = Session::new(
        transport,
        target.user.auth.clone(),
        Some(target.version.clone()),
    );
    // A folder of the run's own: no other mail is judged, nothing else is
    // disturbed, and saved items raise CreatedEvents only.
    let name = format!("ews-conformance stress {:08x}", rand::random::<u32>());
    let folder = session
        .create_folder(&FolderRef::distinguished("msgfolderroot"), &name)
        .await?;
    let request = |kind| SubscribeRequest {
        kind,
        scope: FolderScope::Listed(vec![folder.clone()]),
        event_types: vec![EventKind::Created],
        watermark: None,
    };
    let problems: Shared<Problems> = Arc::default();
    let (stop_tx, stop) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut subs: Vec<(&'static str, String, Shared<Arrivals>)> = Vec::new();

    // Every subscription exists before the first item is made.
    for _ in 0..config.pull {
        let (id, wm) = session
            .subscribe(&request(SubscriptionKind::Pull { timeout: 30 }))
            .await?;
        let arrivals: Shared<Arrivals> = Arc::default();
        subs.push(("pull", id.clone(), arrivals.clone()));
        tasks.spawn(pull(
            session.clone(),
            id,
            wm,
            arrivals,
            problems.clone(),
            stop.clone(),
            config.poll_every,
        ));
    }
    let minutes = {
        let span = config.generate_for + config.drain_for;
        let per = target.protocol_minute.max(Duration::from_millis(1));
        (span.as_secs_f64() / per.as_secs_f64())
            .ceil()
            .clamp(1.0, 30.0) as u32
    };
    // Streaming subscriptions share connections (Exchange limits each
    // user's open streams), dealt round-robin.
    let connections = config.streams.min(config.stream_connections.max(1));
    let mut groups: Vec<HashMap<String, Shared<Arrivals>>> = vec![HashMap::new(); connections];
    for n in 0..config.streams {
        let (id, _) = session
            .subscribe(&request(SubscriptionKind::Streaming))
            .await?;
        let arrivals: Shared<Arrivals> = Arc::default();
        subs.push(("streaming", id.clone(), arrivals.clone()));
        groups[n % connections].insert(id, arrivals);
    }
    for group in groups {
        tasks.spawn(stream(
            session.clone(),
            group,
            minutes,
            target.request_timeout,
            problems.clone(),
            stop.clone(),
        ));
    }
    let listener = if config.push == 0 {
        None
    } else if shared.push_listener().is_some() {
        Some(Pushes::Target(shared.clone()))
    } else {
        let bind = target.push_bind.parse().map_err(|_| {
            StressError::Setup(format!(
                "push bind `{}` is not an address",
                target.push_bind
            ))
        })?;
        let l = PushListener::start_with(PushConfig {
            bind,
            public_url: target.push_url.clone(),
            // Pushes are taken out as they come; these only bound a burst.
            history_limit: 1 << 16,
            per_subscription_limit: 1 << 16,
            ..PushConfig::default()
        })
        .await
        .map_err(|e| StressError::Setup(format!("the push listener: {e}")))?;
        Some(Pushes::Own(Arc::new(l)))
    };
    let mut push_subs: HashMap<String, Shared<Arrivals>> = HashMap::new();
    if let Some(l) = listener.as_ref().and_then(Pushes::listener) {
        for _ in 0..config.push {
            let (id, _) = session
                .subscribe(&request(SubscriptionKind::Push {
                    status_frequency: Some(1),
                    url: l.url().to_string(),
                    caller_data: None,
                }))
                .await?;
            let arrivals: Shared<Arrivals> = Arc::default();
            subs.push(("push", id.clone(), arrivals.clone()));
            push_subs.insert(id, arrivals);
        }
    }
    if let Some(pushes) = listener.clone() {
        tasks.spawn(collect_pushes(
            pushes,
            push_subs,
            problems.clone(),
            stop.clone(),
        ));
    }

    // The items, at the asked rate; each remembered with when it was asked for.
    let made: Shared<HashMap<String, (usize, Instant)>> = Arc::default();
    let started = Instant::now();
    let every = Duration::from_secs_f64(1.0 / f64::from(config.rate.max(1)));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0usize;
    while started.elapsed() < config.generate_for {
        tick.tick().await;
        let sent = Instant::now();
        match session
            .save_messages(&folder, &format!("stress {n}"), 1)
            .await
        {
            Ok(ids) => {
                let mut m = lock(&made);
                for id in ids {
                    m.insert(id, (n, sent));
                    n += 1;
                }
            }
            Err(e) if e.is_fatal() => {
                let _ = stop_tx.send(true);
                return Err(StressError::Unreachable(e.to_string()));
            }
            Err(e) => lock(&problems).add(e.to_string()),
        }
    }
    let generate_seconds = started.elapsed().as_secs_f64();

    // Wait until every subscription has every item, or the drain time is up.
    let generated = lock(&made).len();
    let drain_end = Instant::now() + config.drain_for;
    while Instant::now() < drain_end {
        let complete = subs.iter().all(|(_, _, a)| {
            let a = lock(a);
            a.seen
                .iter()
                .map(|(id, _)| id)
                .collect::<HashSet<_>>()
                .len()
                >= generated
        });
        if complete {
            // Room for duplicates right behind the last event.
            tokio::time::sleep(Duration::from_millis(300)).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    if let Some(l) = listener.as_ref().and_then(Pushes::listener) {
        tracing::debug!(stats = ?l.stats(), "push listener");
        l.set_default_answer(PushAnswer::Unsubscribe);
    }
    for (mode, id, _) in &subs {
        if *mode != "push" {
            let _ = session.unsubscribe(id).await;
        }
    }
    if let Err(e) = session.delete_folder(&folder).await {
        lock(&problems).add(format!("removing the run's folder `{name}`: {e}"));
    }

    let made = lock(&made).clone();
    let modes = ["pull", "streaming", "push"]
        .into_iter()
        .map(|mode| {
            let of_mode: Vec<&Shared<Arrivals>> = subs
                .iter()
                .filter(|(m, _, _)| *m == mode)
                .map(|(_, _, a)| a)
                .collect();
            figures(mode, &of_mode, &made)
        })
        .filter(|f| f.subscriptions > 0)
        .collect();
    let problems = lock(&problems).lines();
    Ok(StressReport {
        target: target.label.clone(),
        generated,
        generate_seconds,
        modes,
        problems,
    })
}

fn figures(
    mode: &'static str,
    subs: &[&Shared<Arrivals>],
    made: &HashMap<String, (usize, Instant)>,
) -> ModeFigures {
    let mut f = ModeFigures {
        mode,
        subscriptions: subs.len(),
        expected: made.len() * subs.len(),
        delivered: 0,
        lost: 0,
        duplicated: 0,
        reordered: 0,
        latency_ms: Latency::default(),
    };
    let mut latencies = Vec::new();
    for a in subs {
        let a = lock(a);
        let mut distinct = HashSet::new();
        let mut highest = None;
        for (id, arrived) in &a.seen {
            // Items this run did not make (other mail) are not judged.
            let Some((seq, sent)) = made.get(id) else {
                continue;
            };
            if !distinct.insert(id.as_str()) {
                f.duplicated += 1;
                continue;
            }
            if highest.is_some_and(|h| *seq < h) {
                f.reordered += 1;
            }
            highest = highest.max(Some(*seq));
            latencies.push(arrived.saturating_duration_since(*sent).as_secs_f64() * 1000.0);
        }
        f.delivered += distinct.len();
        f.lost += made.len() - distinct.len();
    }
    f.latency_ms = Latency::of(latencies);
    f
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|v| *v).await;
}

async fn pull(
    session: Session,
    id: String,
    mut watermark: String,
    arrivals: Shared<Arrivals>,
    problems: Shared<Problems>,
    mut stop: watch::Receiver<bool>,
    every: Duration,
) {
    loop {
        // Drain: poll again at once while the server says MoreEvents.
        loop {
            match session.get_events(&id, &watermark).await {
                Ok(n) => {
                    let now = Instant::now();
                    lock(&arrivals)
                        .seen
                        .extend(created([&n]).into_iter().map(|i| (i, now)));
                    if let Some(w) = n.events.last().and_then(|e| e.watermark.clone()) {
                        watermark = w;
                    }
                    if n.more_events != Some(true) {
                        break;
                    }
                }
                Err(e) => {
                    lock(&problems).add(format!("pull: {e}"));
                    break;
                }
            }
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped(&mut stop) => {}
        }
    }
}

async fn stream(
    session: Session,
    subs: HashMap<String, Shared<Arrivals>>,
    minutes: u32,
    open_deadline: Duration,
    problems: Shared<Problems>,
    mut stop: watch::Receiver<bool>,
) {
    let ids: Vec<String> = subs.keys().cloned().collect();
    'connection: while !*stop.borrow() {
        let mut reader = match session.open_stream(&ids, minutes, open_deadline).await {
            Ok(r) => r,
            Err(e) => {
                lock(&problems).add(format!("streaming: {e}"));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue 'connection,
                    _ = stopped(&mut stop) => return,
                }
            }
        };
        loop {
            let far = tokio::time::Instant::now() + Duration::from_secs(3600);
            let next = tokio::select! {
                n = reader.next_envelope(far) => n,
                _ = stopped(&mut stop) => return,
            };
            match next {
                Ok(Some(env)) => match parse_envelope(&env.text) {
                    Ok(r) => {
                        for n in &r.notifications {
                            if let Some(arrivals) = subs.get(&n.subscription_id) {
                                lock(arrivals)
                                    .seen
                                    .extend(created([n]).into_iter().map(|i| (i, env.arrived)));
                            }
                        }
                    }
                    Err(e) => lock(&problems).add(format!("streaming envelope: {e}")),
                },
                // The connection's time is up (ConnectionStatus Closed): reopen.
                Ok(None) => continue 'connection,
                Err(e) => {
                    lock(&problems).add(format!("streaming: {e}"));
                    continue 'connection;
                }
            }
        }
    }
}

async fn collect_pushes(
    pushes: Pushes,
    subs: HashMap<String, Shared<Arrivals>>,
    problems: Shared<Problems>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let done = *stop.borrow();
        let Some(listener) = pushes.listener() else {
            return;
        };
        for p in listener.drain() {
            let Some(arrivals) = p.subscription_id.as_deref().and_then(|id| subs.get(id)) else {
                continue;
            };
            match &p.parsed {
                Ok(s) => {
                    let ids = created(s.notification.iter());
                    lock(arrivals)
                        .seen
                        .extend(ids.into_iter().map(|i| (i, p.arrived)));
                }
                Err(e) => lock(&problems).add(format!("push: {e}")),
            }
        }
        if done {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stopped(&mut stop) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_count_loss_duplicates_and_reordering() {
        let t0 = Instant::now();
        let made: HashMap<String, (usize, Instant)> =
            (0..4).map(|i| (format!("i{i}"), (i, t0))).collect();
        let a: Shared<Arrivals> = Arc::default();
        let at = t0 + Duration::from_millis(10);
        lock(&a).seen = ["i0", "i2", "i1", "i2", "other"]
            .iter()
            .map(|s| (s.to_string(), at))
            .collect();
        let f = figures("pull", &[&a], &made);
        assert_eq!(f.expected, 4);
        assert_eq!(f.delivered, 3);
        assert_eq!(f.lost, 1);
        assert_eq!(f.duplicated, 1);
        assert_eq!(f.reordered, 1);
        assert!((f.latency_ms.p50 - 10.0).abs() < 1.0, "{:?}", f.latency_ms);
    }

    #[test]
    fn percentiles_come_from_the_sorted_sample() {
        let l = Latency::of((1..=100).map(f64::from).rev().collect());
        assert_eq!((l.p50, l.p95, l.p99, l.max), (51.0, 95.0, 99.0, 100.0));
        assert_eq!(Latency::of(Vec::new()), Latency::default());
    }
}
