//! The generator builds valid sequences: every handle an operation uses
//! exists at that point (checked here independently of the model), the
//! ideal target's deliveries pass the oracle, any dropped event is caught,
//! and long sequences queue well past 50 events between polls.

use std::collections::{BTreeMap, BTreeSet};

use ews_conformance::model::{
    DeleteHow, FolderHandle, GenConfig, ItemHandle, Latitude, Mode, Op, Scope, SubHandle,
    WatermarkHandle, build_ops, describe_sequence, judge, ops_strategy, predict, simulate,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// An independent bookkeeping of what exists, to check a sequence with.
#[derive(Default)]
struct Existence {
    items: BTreeMap<ItemHandle, FolderHandle>,
    delivered: BTreeSet<ItemHandle>,
    used_items: BTreeSet<ItemHandle>,
    folders: BTreeMap<FolderHandle, FolderHandle>,
    used_folders: BTreeSet<FolderHandle>,
    subs: BTreeMap<SubHandle, (Mode, bool)>,
    watermarks: BTreeSet<WatermarkHandle>,
}

impl Existence {
    fn new() -> Self {
        let mut e = Existence::default();
        for f in [
            FolderHandle::Case,
            FolderHandle::Inbox,
            FolderHandle::DeletedItems,
        ] {
            e.folders.insert(f, FolderHandle::Root);
        }
        e
    }

    fn new_item(&mut self, item: ItemHandle, folder: FolderHandle) -> Result<(), String> {
        if !self.used_items.insert(item) {
            return Err(format!("{item} reused"));
        }
        self.folder(folder)?;
        self.items.insert(item, folder);
        Ok(())
    }

    fn item(&self, item: ItemHandle) -> Result<FolderHandle, String> {
        self.items
            .get(&item)
            .copied()
            .ok_or_else(|| format!("{item} does not exist (or cannot be named)"))
    }

    fn folder(&self, f: FolderHandle) -> Result<(), String> {
        if self.folders.contains_key(&f) {
            Ok(())
        } else {
            Err(format!("{f} does not exist"))
        }
    }

    fn live_sub(&self, s: SubHandle) -> Result<Mode, String> {
        match self.subs.get(&s) {
            Some((mode, true)) => Ok(*mode),
            _ => Err(format!("{s} is not a live subscription")),
        }
    }

    /// Forgets `f`, its subfolders and their items.
    fn drop_folder(&mut self, f: FolderHandle) {
        let mut gone = vec![f];
        let mut k = 0;
        while k < gone.len() {
            let at = gone[k];
            gone.extend(
                self.folders
                    .iter()
                    .filter(|(_, p)| **p == at)
                    .map(|(c, _)| *c),
            );
            k += 1;
        }
        for g in &gone {
            self.folders.remove(g);
        }
        self.items.retain(|_, folder| !gone.contains(folder));
    }

    fn apply(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::CreateItem { item, folder, .. } => self.new_item(*item, *folder),
            Op::CreateItems { count, folder, .. } => {
                if *count == 0 || *count > Op::MAX_BULK {
                    return Err(format!("count {count}"));
                }
                self.folder(*folder)?;
                for item in op.bulk_items() {
                    if !self.used_items.insert(item) {
                        return Err(format!("{item} reused"));
                    }
                    // Nothing names a bulk item later.
                    self.delivered.insert(item);
                }
                Ok(())
            }
            Op::Deliver { item } => {
                if !self.used_items.insert(*item) {
                    return Err(format!("{item} reused"));
                }
                self.delivered.insert(*item);
                Ok(())
            }
            Op::MarkRead { item, .. } | Op::SetSubject { item } => self.item(*item).map(|_| ()),
            // The second user's mailbox: nothing of ours changes.
            Op::OtherMailbox { .. } => Ok(()),
            Op::MoveItem { item, to, new } => {
                let from = self.item(*item)?;
                if from == *to {
                    return Err(format!("{item} moved onto itself"));
                }
                self.items.remove(item);
                self.new_item(*new, *to)
            }
            Op::CopyItem { item, to, new } => {
                self.item(*item)?;
                self.new_item(*new, *to)
            }
            Op::DeleteItem { item, .. } => {
                self.item(*item)?;
                self.items.remove(item);
                Ok(())
            }
            Op::CreateFolder { folder, parent } => {
                self.folder(*parent)?;
                if !matches!(parent, FolderHandle::Case | FolderHandle::User(_)) {
                    return Err(format!("folder created under {parent}"));
                }
                if !self.used_folders.insert(*folder) {
                    return Err(format!("{folder} reused"));
                }
                self.folders.insert(*folder, *parent);
                Ok(())
            }
            Op::DeleteFolder { folder, .. } => {
                if !matches!(folder, FolderHandle::User(_)) {
                    return Err(format!("deleting {folder}"));
                }
                self.folder(*folder)?;
                self.drop_folder(*folder);
                Ok(())
            }
            Op::Subscribe {
                sub,
                mode,
                scope,
                event_types,
            } => {
                if self.subs.contains_key(sub) {
                    return Err(format!("{sub} reused"));
                }
                if event_types.is_empty() {
                    return Err("no event types".into());
                }
                if let Scope::Folders(set) = scope {
                    for f in set {
                        self.folder(*f)?;
                    }
                }
                self.subs.insert(*sub, (*mode, true));
                Ok(())
            }
            Op::Poll { sub } => self.live_sub(*sub).map(|_| ()),
            Op::Remember { sub, watermark } => {
                if self.live_sub(*sub)? != Mode::Pull {
                    return Err(format!("{sub} is not pull"));
                }
                if !self.watermarks.insert(*watermark) {
                    return Err(format!("{watermark} reused"));
                }
                Ok(())
            }
            Op::Resubscribe { sub, from } => {
                if !self.watermarks.contains(from) {
                    return Err(format!("{from} was never remembered"));
                }
                if self.subs.contains_key(sub) {
                    return Err(format!("{sub} reused"));
                }
                self.subs.insert(*sub, (Mode::Pull, true));
                Ok(())
            }
            Op::Unsubscribe { sub } => {
                if self.live_sub(*sub)? == Mode::Push {
                    return Err("Unsubscribe on a push subscription (R62)".into());
                }
                self.subs.insert(*sub, (Mode::Pull, false));
                Ok(())
            }
        }
    }
}

fn check_existence(ops: &[Op]) -> Result<(), String> {
    let mut e = Existence::new();
    for (k, op) in ops.iter().enumerate() {
        e.apply(op)
            .map_err(|why| format!("operation {k} ({op}): {why}"))?;
    }
    // The sequence ends by polling every live subscription.
    let final_polls: BTreeSet<SubHandle> = ops
        .iter()
        .rev()
        .map_while(|op| match op {
            Op::Poll { sub } => Some(*sub),
            _ => None,
        })
        .collect();
    let unpolled: Vec<SubHandle> = e
        .subs
        .iter()
        .filter(|(s, (_, live))| *live && !final_polls.contains(s))
        .map(|(s, _)| *s)
        .collect();
    if !unpolled.is_empty() {
        return Err(format!(
            "live subscriptions not polled at the end: {unpolled:?}"
        ));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn every_handle_used_exists(ops in ops_strategy(GenConfig::default())) {
        if let Err(why) = check_existence(&ops) {
            prop_assert!(false, "{why}\n{}", describe_sequence(&ops));
        }
        prop_assert!(predict(&ops).is_ok());
    }

    #[test]
    fn seeds_always_read_as_valid_sequences(
        seeds in proptest::collection::vec(any::<(u32, u32, u32)>(), 0..80),
        shared in any::<bool>(),
    ) {
        let config = GenConfig { shared_folders: shared, all_folders: shared, ..GenConfig::default() };
        let ops = build_ops(&seeds, &config);
        prop_assert!(ops.is_ok(), "{:?}", ops.err());
        let ops = ops.unwrap_or_default();
        prop_assert!(ops.len() >= seeds.len());
        if let Err(why) = check_existence(&ops) {
            prop_assert!(false, "{why}\n{}", describe_sequence(&ops));
        }
        if !shared {
            for op in &ops {
                let touches_shared = match op {
                    Op::Deliver { .. } => true,
                    Op::CreateItem { folder, .. } => matches!(folder, FolderHandle::Inbox | FolderHandle::DeletedItems),
                    Op::MoveItem { to, .. } | Op::CopyItem { to, .. } => matches!(to, FolderHandle::Inbox | FolderHandle::DeletedItems),
                    Op::Subscribe { scope: Scope::AllFolders, .. } => true,
                    Op::Subscribe { scope: Scope::Folders(set), .. } => set.contains(&FolderHandle::Inbox) || set.contains(&FolderHandle::DeletedItems),
                    _ => false,
                };
                prop_assert!(!touches_shared, "{op} uses a shared folder");
            }
        }
    }

    #[test]
    fn the_ideal_target_passes_the_oracle(ops in ops_strategy(GenConfig::default())) {
        let prediction = predict(&ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let observed = simulate(&prediction);
        for profile in [Latitude::reference(), Latitude::exchange2013()] {
            let found = judge(&prediction, &observed, &profile);
            prop_assert!(
                found.is_empty(),
                "{}: {}\n{}",
                profile.name,
                found.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
                describe_sequence(&ops)
            );
        }
    }

    #[test]
    fn any_dropped_event_is_caught(ops in ops_strategy(GenConfig::default()), pick in any::<prop::sample::Index>()) {
        let prediction = predict(&ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut observed = simulate(&prediction);
        // Every (subscription, delivery, event) that is a real event.
        // A legal outcome without the event (its other form is outside the
        // subscription, R77) makes dropping it no fault.
        let mut places = Vec::new();
        for (sub, obs) in &observed.subscriptions {
            let mut ordinal = 0;
            for (k, d) in obs.deliveries.iter().enumerate() {
                for (j, e) in d.notification.events.iter().enumerate() {
                    if e.kind != ews_proto::ews::EventKind::Status {
                        let optional = prediction.subscriptions[sub].events[ordinal].optional;
                        ordinal += 1;
                        if !optional {
                            places.push((*sub, k, j));
                        }
                    }
                }
            }
        }
        prop_assume!(!places.is_empty());
        let (sub, k, j) = places[pick.index(places.len())];
        let dropped = observed
            .subscriptions
            .get_mut(&sub)
            .map(|o| o.deliveries[k].notification.events.remove(j));
        let folder_modified = dropped.as_ref().is_some_and(|e| {
            e.kind == ews_proto::ews::EventKind::Modified
                && e.object.as_ref().is_some_and(|o| o.is_folder())
        });
        let mut profiles = vec![Latitude::reference()];
        if !folder_modified {
            // Exchange's profile lets folder ModifiedEvents go missing.
            profiles.push(Latitude::exchange2013());
        }
        for profile in profiles {
            let found = judge(&prediction, &observed, &profile);
            prop_assert!(
                found.iter().any(|d| d.subscription == sub && d.event_index.is_some()),
                "{}: dropping {:?} from {sub} went unnoticed: {:?}\n{}",
                profile.name, dropped, found, describe_sequence(&ops)
            );
        }
    }
}

#[test]
fn the_simplest_seed_is_one_pull_subscription_on_the_case_folder() {
    let ops = build_ops(&[(0, 0, 0)], &GenConfig::default()).expect("valid");
    assert_eq!(ops.len(), 2, "{}", describe_sequence(&ops));
    match &ops[0] {
        Op::Subscribe {
            mode: Mode::Pull,
            scope: Scope::Folders(set),
            event_types,
            ..
        } => {
            assert_eq!(set.iter().collect::<Vec<_>>(), vec![&FolderHandle::Case]);
            assert_eq!(
                event_types.len(),
                6,
                "all subscribable kinds but FreeBusyChanged"
            );
        }
        other => panic!("expected a pull Subscribe, got {other}"),
    }
    assert_eq!(ops[1], Op::Poll { sub: SubHandle(1) });
    let more = build_ops(&[(0, 0, 0), (0, 0, 0), (0, 0, 0)], &GenConfig::default()).expect("valid");
    assert!(
        more[1..3]
            .iter()
            .all(|op| matches!(op, Op::Subscribe { .. })),
        "choice 0 keeps picking the first menu entry:\n{}",
        describe_sequence(&more)
    );
}

#[test]
fn long_sequences_queue_past_50_events_several_times() {
    let mut runner = TestRunner::deterministic();
    let strategy = ops_strategy(GenConfig::long());
    let mut over_50 = 0;
    let mut over_100 = 0;
    let mut most = 0;
    let mut delete_kinds = BTreeSet::new();
    const SAMPLES: usize = 24;
    for _ in 0..SAMPLES {
        let ops = strategy
            .new_tree(&mut runner)
            .expect("a sequence")
            .current();
        for op in &ops {
            if let Op::DeleteItem { how, .. } | Op::DeleteFolder { how, .. } = op {
                delete_kinds.insert(*how);
            }
        }
        let prediction = predict(&ops).expect("valid");
        let mut biggest_poll = 0;
        for s in prediction.subscriptions.values() {
            for &poll in &s.polls {
                biggest_poll = biggest_poll.max(s.due_at(poll).count());
            }
        }
        most = most.max(biggest_poll);
        over_50 += usize::from(biggest_poll > 50);
        over_100 += usize::from(biggest_poll > 100);
        // The ideal target needs several notifications for such polls, and passes.
        let observed = simulate(&prediction);
        assert!(judge(&prediction, &observed, &Latitude::reference()).is_empty());
    }
    eprintln!("polls past 50: {over_50}, past 100: {over_100}, largest {most}");
    assert!(
        over_50 >= SAMPLES / 3,
        "only {over_50} of {SAMPLES} sequences had a poll past 50 events"
    );
    assert!(
        over_100 >= 2,
        "only {over_100} sequences had a poll past 100 events (largest {most})"
    );
    assert_eq!(delete_kinds.len(), DeleteHow::ALL.len());
}
