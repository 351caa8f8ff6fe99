//! The subscriptions of a run: subscribing in each delivery mode, polling,
//! draining and waiting for what the model predicts, and cleaning up.

use super::runner::{Feed, Halt, SequenceRunner, SubRun, real_events};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::collect::{PushFeed, StreamFeed, StreamRequest};
use super::wire;
use crate::model::mailbox::Prediction;
use crate::model::ops::{Mode, Op, Scope, SubHandle};
use crate::model::oracle::{Delivery, DivergenceKind, Observed, ObservedSubscription, judge};
use ews_proto::ews::items::DeleteFolder;
use ews_proto::ews::{
    EventKind, FolderRef, FolderScope, GetEventsRequest, GetStreamingEventsRequest, Id,
    Notification, SubscribeRequest, SubscriptionKind, UnsubscribeRequest,
};

impl<'d> SequenceRunner<'d> {
    pub(super) async fn subscribe(
        &mut self,
        sub: SubHandle,
        mode: Mode,
        scope: &Scope,
        event_types: &BTreeSet<EventKind>,
        watermark: Option<String>,
    ) -> Result<(), Halt> {
        let folders = match scope {
            Scope::AllFolders => FolderScope::AllFolders,
            Scope::Folders(set) => {
                let mut refs = Vec::new();
                for f in set {
                    match self.folder_ref(*f) {
                        Ok(r) => refs.push(r),
                        Err(e) => return Err(Halt::Step(e)),
                    }
                }
                FolderScope::Listed(refs)
            }
        };
        let mut push_feed = None;
        let kind =
            match mode {
                Mode::Pull => SubscriptionKind::Pull {
                    timeout: self.d.config.pull_timeout_minutes,
                },
                Mode::Streaming => SubscriptionKind::Streaming,
                Mode::Push => {
                    let (Some(listener), Some(base)) =
                        (self.d.target.push_listener(), self.cfg().push_url.clone())
                    else {
                        return Err(Halt::Step(self.missing(
                        "a push subscription, but the target has no push listener it can reach"
                            .into(),
                    )));
                    };
                    let feed = PushFeed::new(format!("{}-{sub}", self.unique), listener);
                    let url = feed.url(&base);
                    push_feed = Some(feed);
                    SubscriptionKind::Push {
                        status_frequency: Some(self.d.config.push_status_frequency),
                        url,
                        caller_data: None,
                    }
                }
            };
        let r = SubscribeRequest {
            kind,
            scope: folders,
            event_types: event_types.iter().copied().collect(),
            watermark,
        };
        let body = self.render(|w| r.render(w));
        let (status, text) = self.post("Subscribe", body).await?;
        let (id, wm) = match wire::subscribe_reply(status, &text) {
            Ok(x) => x,
            Err(r) => return Err(Halt::Step(self.fail("Subscribe", r, Some(&text)))),
        };
        let feed = match mode {
            Mode::Pull => Feed::Pull { next_watermark: wm },
            Mode::Streaming => Feed::Streaming(self.open_stream(&id)),
            Mode::Push => {
                let Some(mut feed) = push_feed else {
                    return Err(Halt::Step(self.missing("the push feed vanished".into())));
                };
                feed.set_subscription_id(&id);
                Feed::Push(feed)
            }
        };
        self.filters
            .insert(sub, (scope.clone(), event_types.clone()));
        self.subs.insert(
            sub,
            SubRun {
                observed: ObservedSubscription::new(id.clone()),
                id,
                feed,
                events: 0,
                missed: false,
                live: true,
            },
        );
        Ok(())
    }

    pub(super) fn open_stream(&mut self, id: &str) -> StreamFeed {
        let r = GetStreamingEventsRequest {
            subscription_ids: vec![id.to_string()],
            connection_timeout: self.d.config.connection_timeout_minutes.clamp(1, 30),
        };
        let body = self.render(|w| r.render(w));
        self.requests += 1;
        StreamFeed::open(StreamRequest {
            session: self.d.ews.clone(),
            body,
            connect_deadline: self.cfg().request_timeout,
        })
    }

    pub(super) async fn unsubscribe(&mut self, sub: SubHandle) -> Result<(), Halt> {
        let Some(run) = self.subs.get_mut(&sub) else {
            return Err(Halt::Step(
                self.missing(format!("{sub} is not a subscription of this run")),
            ));
        };
        run.live = false;
        let id = run.id.clone();
        if let Feed::Push(_) = run.feed {
            // A push subscription ends by the listener's answer (R62).
            if let Some(listener) = self.d.target.push_listener() {
                listener.set_answer(&id, crate::client::push::PushAnswer::Unsubscribe);
            }
            return Ok(());
        }
        let body = self.render(|w| {
            UnsubscribeRequest {
                subscription_id: id,
            }
            .render(w)
        });
        let (status, text) = self.post("Unsubscribe", body).await?;
        if let Err(r) = wire::plain_reply(status, &text) {
            return Err(Halt::Step(self.fail("Unsubscribe", r, Some(&text))));
        }
        // The connection has nothing left to deliver.
        if let Some(run) = self.subs.get_mut(&sub)
            && let Feed::Streaming(_) = run.feed
        {
            run.feed = Feed::Closed;
        }
        Ok(())
    }

    // ------------------------------------------------------------ polls

    pub(super) async fn poll(
        &mut self,
        index: usize,
        sub: SubHandle,
        want: usize,
        prediction: &Prediction,
    ) -> Result<(), Halt> {
        let wait = match self.subs.get(&sub).map(|s| (&s.feed, s.missed)) {
            Some((Feed::Pull { .. }, _)) => {
                return self.poll_pull(index, sub, want, prediction).await;
            }
            Some((Feed::Streaming(_) | Feed::Push(_), true)) => self.d.config.settle,
            Some((Feed::Streaming(_) | Feed::Push(_), false)) => self.d.config.event_wait,
            Some((Feed::Closed, _)) | None => {
                return Err(Halt::Step(
                    self.missing(format!("{sub} is not a live subscription of this run")),
                ));
            }
        };
        let deadline = Instant::now() + wait;
        loop {
            let arrived = self.take(sub).await;
            self.record(sub, index, arrived);
            if !self.awaiting(sub, index, prediction) {
                break;
            }
            let Some(run) = self.subs.get_mut(&sub) else {
                break;
            };
            let woke = match &mut run.feed {
                Feed::Streaming(f) => f.wait(deadline).await,
                Feed::Push(f) => match self.d.target.push_listener() {
                    Some(l) => f.wait(l, deadline).await,
                    None => false,
                },
                Feed::Pull { .. } | Feed::Closed => false,
            };
            if woke {
                continue;
            }
            let arrived = self.take(sub).await;
            self.record(sub, index, arrived);
            let have = self.subs.get(&sub).map_or(0, |r| r.events);
            if self.awaiting(sub, index, prediction) {
                if let Some(run) = self.subs.get_mut(&sub) {
                    run.missed = true;
                }
                let problems = self.problems(sub);
                self.notes.push(format!(
                    "operation {index} (Poll({sub})): {have} of {want} predicted events arrived within {wait:?}{}",
                    if problems.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", problems.join("; "))
                    }
                ));
            }
            break;
        }
        Ok(())
    }

    /// Whether events due by the poll at `index` may still come: judging
    /// what arrived so far finds only that the next required event has not
    /// (events the profile lets a target leave out are not waited for, and
    /// a divergence already seen will not heal by waiting).
    pub(super) fn awaiting(&self, sub: SubHandle, index: usize, prediction: &Prediction) -> bool {
        let (Some(pred), Some(run)) = (prediction.subscriptions.get(&sub), self.subs.get(&sub))
        else {
            return false;
        };
        let mut due = pred.clone();
        due.events.retain(|e| e.due <= index);
        let partial = Prediction {
            subscriptions: BTreeMap::from([(sub, due)]),
            log: prediction.log.clone(),
        };
        let observed = Observed {
            bindings: self.bindings.clone(),
            subscriptions: BTreeMap::from([(sub, run.observed.clone())]),
        };
        judge(&partial, &observed, &self.d.config.profile)
            .iter()
            .any(|d| d.kind == DivergenceKind::Lost && d.delivery_index.is_none())
    }

    /// What arrived for a streaming or push subscription since the last take.
    pub(super) async fn take(&mut self, sub: SubHandle) -> Vec<Notification> {
        let listener = self.d.target.push_listener();
        match self.subs.get_mut(&sub).map(|s| &mut s.feed) {
            Some(Feed::Streaming(f)) => f.take(),
            Some(Feed::Push(f)) => match listener {
                Some(l) => f.take(l).await,
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    pub(super) fn problems(&mut self, sub: SubHandle) -> Vec<String> {
        match self.subs.get_mut(&sub).map(|s| &mut s.feed) {
            Some(Feed::Streaming(f)) => f.problems(),
            Some(Feed::Push(f)) => f.problems(),
            _ => Vec::new(),
        }
    }

    pub(super) fn record(&mut self, sub: SubHandle, poll: usize, arrived: Vec<Notification>) {
        let Some(run) = self.subs.get_mut(&sub) else {
            return;
        };
        for n in arrived {
            run.events += real_events(&n);
            run.observed.deliveries.push(Delivery {
                notification: n,
                request_watermark: None,
                poll,
                drain: 0,
            });
        }
    }

    pub(super) async fn poll_pull(
        &mut self,
        index: usize,
        sub: SubHandle,
        want: usize,
        prediction: &Prediction,
    ) -> Result<(), Halt> {
        let synchronous = self.d.config.profile.synchronous_pull;
        let deadline = Instant::now() + self.d.config.event_wait;
        let mut drain = 0;
        loop {
            self.drain(index, sub, drain).await?;
            let have = self.subs.get(&sub).map_or(0, |s| s.events);
            // An asynchronous target may queue events late: drain again.
            let awaiting = !synchronous && self.awaiting(sub, index, prediction);
            if !awaiting || Instant::now() >= deadline {
                if awaiting {
                    self.notes.push(format!(
                        "operation {index} (Poll({sub})): {have} of {want} predicted events arrived by {:?}",
                        self.d.config.event_wait
                    ));
                }
                return Ok(());
            }
            drain += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// GetEvents until MoreEvents is false.
    pub(super) async fn drain(
        &mut self,
        index: usize,
        sub: SubHandle,
        drain: usize,
    ) -> Result<(), Halt> {
        for _ in 0..self.d.config.max_drain_calls {
            let (id, watermark) = match self.subs.get(&sub) {
                Some(SubRun {
                    id,
                    feed: Feed::Pull { next_watermark },
                    ..
                }) => (id.clone(), next_watermark.clone()),
                _ => {
                    return Err(Halt::Step(
                        self.missing(format!("{sub} is not a pull subscription of this run")),
                    ));
                }
            };
            let body = self.render(|w| {
                GetEventsRequest {
                    subscription_id: id,
                    watermark: watermark.clone(),
                }
                .render(w)
            });
            let (status, text) = self.post("GetEvents", body).await?;
            let n = match wire::get_events_reply(status, &text) {
                Ok(n) => n,
                Err(r) => return Err(Halt::Step(self.fail("GetEvents", r, Some(&text)))),
            };
            let more = n.more_events == Some(true);
            let Some(run) = self.subs.get_mut(&sub) else {
                break;
            };
            if let (Feed::Pull { next_watermark }, Some(next)) = (&mut run.feed, n.last_watermark())
            {
                *next_watermark = next.to_string();
            }
            run.events += real_events(&n);
            run.observed.deliveries.push(Delivery {
                notification: n,
                request_watermark: Some(watermark),
                poll: index,
                drain,
            });
            if !more {
                return Ok(());
            }
        }
        // The oracle reports the run that ended on MoreEvents=true.
        self.notes.push(format!(
            "operation {index} (Poll({sub})): MoreEvents was still true after {} GetEvents calls",
            self.d.config.max_drain_calls
        ));
        Ok(())
    }

    /// After the last operation: streaming and push subscriptions whose last
    /// poll came after every mailbox operation get a short while for extra
    /// (repeated) notifications, which count toward that poll.
    pub(super) async fn settle(&mut self, ops: &[Op], prediction: &Prediction) {
        let last_change = ops.iter().rposition(Op::is_mailbox_op);
        let mut waiting = Vec::new();
        for (sub, p) in &prediction.subscriptions {
            let Some(&last_poll) = p.polls.last() else {
                continue;
            };
            let settles = last_change.is_none_or(|c| c < last_poll);
            let streaming_or_push = self
                .subs
                .get(sub)
                .is_some_and(|s| matches!(s.feed, Feed::Streaming(_) | Feed::Push(_)));
            if settles && streaming_or_push {
                waiting.push((*sub, last_poll));
            }
        }
        if waiting.is_empty() {
            return;
        }
        tokio::time::sleep(self.d.config.settle).await;
        for (sub, poll) in waiting {
            let arrived = self.take(sub).await;
            self.record(sub, poll, arrived);
        }
    }

    /// Unsubscribes what is still live and deletes the case folder. Nothing
    /// here judges the target; problems become notes.
    pub(super) async fn cleanup(&mut self) {
        self.at = None;
        let live: Vec<(SubHandle, String, bool)> = self
            .subs
            .iter()
            .filter(|(_, s)| s.live)
            .map(|(h, s)| (*h, s.id.clone(), matches!(s.feed, Feed::Push(_))))
            .collect();
        for (sub, id, push) in live {
            if let Some(s) = self.subs.get_mut(&sub) {
                s.live = false;
            }
            if push {
                if let Some(listener) = self.d.target.push_listener() {
                    listener.set_answer(&id, crate::client::push::PushAnswer::Unsubscribe);
                }
                continue;
            }
            self.at_label = format!("cleanup: unsubscribe {sub}");
            let body = self.render(|w| {
                UnsubscribeRequest {
                    subscription_id: id,
                }
                .render(w)
            });
            self.quietly("Unsubscribe", body).await;
        }
        // Closing the connections before the folder goes keeps its events off them.
        for s in self.subs.values_mut() {
            if let Feed::Streaming(_) = s.feed {
                s.feed = Feed::Closed;
            }
        }
        if let Some(id) = self.case_folder.take() {
            self.at_label = "cleanup: delete the case folder".into();
            let body = self.render(|w| {
                DeleteFolder {
                    folder: FolderRef::Id(Id::new(id)),
                    delete_type: "HardDelete".into(),
                }
                .render(w)
            });
            self.quietly("DeleteFolder", body).await;
        }
    }

    pub(super) async fn quietly(&mut self, request_name: &'static str, body: String) {
        let problem = match self.post(request_name, body).await {
            Err(Halt::Fatal(e)) => Some(e.to_string()),
            Err(Halt::Step(f)) => Some(f.detail),
            Ok((status, text)) => wire::plain_reply(status, &text).err().map(|r| r.detail),
        };
        if let Some(p) = problem {
            self.notes.push(format!("{}: {p}", self.at_label));
        }
    }

    pub(super) fn observed(&self) -> Observed {
        Observed {
            bindings: self.bindings.clone(),
            subscriptions: self
                .subs
                .iter()
                .map(|(h, s)| (*h, s.observed.clone()))
                .collect(),
        }
    }
}
