//! The oracle accepts what an ideal target delivers and rejects each kind of
//! fault with the right requirement id.

use std::collections::BTreeSet;

use ews_conformance::model::simulate::{
    fake_id, fake_subscription_id, fake_watermark, render_event,
};
use ews_conformance::model::{
    DeleteHow, Divergence, DivergenceKind, ExpectedEvent, FolderHandle, Handle, ItemHandle,
    Latitude, Mode, Observed, ObservedSubscription, Op, Prediction, Redelete, Scope, SubHandle,
    WatermarkHandle, judge, predict, predict_for, simulate,
};
use ews_proto::ews::{Event, EventKind, Id, ObjectId};

const CASE: FolderHandle = FolderHandle::Case;
const F1: FolderHandle = FolderHandle::User(1);
const S1: SubHandle = SubHandle(1);
const S2: SubHandle = SubHandle(2);

fn all_types() -> BTreeSet<EventKind> {
    [
        EventKind::Copied,
        EventKind::Created,
        EventKind::Deleted,
        EventKind::Modified,
        EventKind::Moved,
        EventKind::NewMail,
    ]
    .into_iter()
    .collect()
}

fn subscribe(
    sub: SubHandle,
    mode: Mode,
    folders: &[FolderHandle],
    types: BTreeSet<EventKind>,
) -> Op {
    Op::Subscribe {
        sub,
        mode,
        scope: Scope::Folders(folders.iter().copied().collect()),
        event_types: types,
    }
}

fn create(n: u32, folder: FolderHandle) -> Op {
    Op::CreateItem {
        item: ItemHandle(n),
        folder,
        read: false,
    }
}

fn creates(range: std::ops::RangeInclusive<u32>, folder: FolderHandle) -> Vec<Op> {
    range.map(|n| create(n, folder)).collect()
}

/// A `mode` subscription on the case folder, 60 created items (120 events), one poll.
fn batch_120(mode: Mode) -> (Vec<Op>, Prediction, Observed) {
    let mut ops = vec![subscribe(S1, mode, &[CASE], all_types())];
    ops.extend(creates(1..=60, CASE));
    ops.push(Op::Poll { sub: S1 });
    let prediction = predict(&ops).expect("valid sequence");
    let observed = simulate(&prediction);
    (ops, prediction, observed)
}

fn sub_mut(o: &mut Observed, sub: SubHandle) -> &mut ObservedSubscription {
    o.subscriptions
        .get_mut(&sub)
        .expect("observed subscription")
}

fn check(prediction: &Prediction, observed: &Observed, profile: &Latitude) -> Vec<Divergence> {
    judge(prediction, observed, profile)
}

/// Asserts that some divergence has `kind` and `rule`, and returns it.
fn expect_divergence(found: &[Divergence], kind: DivergenceKind, rule: &str) -> Divergence {
    let text: Vec<String> = found.iter().map(|d| d.to_string()).collect();
    found
        .iter()
        .find(|d| d.kind == kind && d.rule == rule)
        .cloned()
        .unwrap_or_else(|| panic!("expected {kind:?} ({rule}), got:\n{}", text.join("\n")))
}

fn assert_clean(found: &[Divergence]) {
    let text: Vec<String> = found.iter().map(|d| d.to_string()).collect();
    assert!(
        found.is_empty(),
        "unexpected divergences:\n{}",
        text.join("\n")
    );
}

#[test]
fn the_ideal_delivery_is_accepted_in_every_mode_and_profile() {
    for mode in Mode::ALL {
        let (_, prediction, observed) = batch_120(mode);
        let batches: Vec<usize> = observed.subscriptions[&S1]
            .deliveries
            .iter()
            .map(|d| d.notification.events.len())
            .collect();
        assert_eq!(batches, vec![50, 50, 20], "{mode:?}");
        assert_clean(&check(&prediction, &observed, &Latitude::reference()));
        assert_clean(&check(&prediction, &observed, &Latitude::exchange2013()));
    }
}

#[test]
fn a_dropped_event_is_lost() {
    let (_, prediction, mut observed) = batch_120(Mode::Pull);
    // The 61st event (index 60) is the CreatedEvent of i31.
    sub_mut(&mut observed, S1).deliveries[1]
        .notification
        .events
        .remove(10);
    let found = check(&prediction, &observed, &Latitude::reference());
    let d = expect_divergence(&found, DivergenceKind::Lost, "R32");
    // The folder ModifiedEvent of the same CreateItem may come first (one
    // operation's events in any order): the loss shows at the next operation's.
    assert_eq!(d.event_index, Some(61));
    assert_eq!(
        d.predicted.as_deref(),
        Some("CreatedEvent item i31 in case")
    );
    assert!(d.to_string().contains("s1: lost event (R32)"), "{d}");
}

#[test]
fn a_lost_event_at_the_end_is_reported_after_the_last_received() {
    let (_, prediction, mut observed) = batch_120(Mode::Streaming);
    sub_mut(&mut observed, S1).deliveries[2]
        .notification
        .events
        .pop();
    let found = check(&prediction, &observed, &Latitude::reference());
    let d = expect_divergence(&found, DivergenceKind::Lost, "R59");
    assert_eq!(d.event_index, Some(119));
}

#[test]
fn a_repeated_event_is_caught() {
    let (_, prediction, mut observed) = batch_120(Mode::Pull);
    let events = &mut sub_mut(&mut observed, S1).deliveries[2].notification.events;
    let again = events[4].clone();
    events.insert(5, again);
    let found = check(&prediction, &observed, &Latitude::reference());
    let d = expect_divergence(&found, DivergenceKind::Repeated, "R32");
    assert_eq!(d.event_index, Some(105));
    assert_eq!(d.delivery_index, Some(2));
}

#[test]
fn two_swapped_events_are_reordered() {
    let (_, prediction, mut observed) = batch_120(Mode::Push);
    // The CreatedEvents of i51 and i52: two operations, whose order holds.
    sub_mut(&mut observed, S1).deliveries[2]
        .notification
        .events
        .swap(0, 2);
    let found = check(&prediction, &observed, &Latitude::reference());
    let d = expect_divergence(&found, DivergenceKind::Reordered, "R70");
    assert_eq!(d.event_index, Some(100));
    assert_eq!(
        d.predicted.as_deref(),
        Some("CreatedEvent item i51 in case")
    );
}

#[test]
fn a_batch_of_51_breaks_the_cap() {
    let (_, prediction, mut observed) = batch_120(Mode::Pull);
    let obs = sub_mut(&mut observed, S1);
    let moved = obs.deliveries[1].notification.events.remove(0);
    obs.deliveries[0].notification.events.push(moved);
    let found = check(&prediction, &observed, &Latitude::reference());
    let d = expect_divergence(&found, DivergenceKind::BatchTooLarge, "R32");
    assert_eq!(d.delivery_index, Some(0));
    assert!(
        !found.iter().any(|d| d.event_index.is_some()),
        "the events themselves are all there, in order: {found:?}"
    );

    // Streaming: R59, which only the strict profile asserts.
    let (_, prediction, mut observed) = batch_120(Mode::Streaming);
    let obs = sub_mut(&mut observed, S1);
    let moved = obs.deliveries[1].notification.events.remove(0);
    obs.deliveries[0].notification.events.push(moved);
    let found = check(&prediction, &observed, &Latitude::reference());
    expect_divergence(&found, DivergenceKind::BatchTooLarge, "R59");
    assert_clean(&check(&prediction, &observed, &Latitude::exchange2013()));
}

#[test]
fn wrong_more_events_is_caught() {
    let (_, prediction, mut observed) = batch_120(Mode::Pull);
    sub_mut(&mut observed, S1).deliveries[0]
        .notification
        .more_events = Some(false);
    let d = expect_divergence(
        &check(&prediction, &observed, &Latitude::reference()),
        DivergenceKind::MoreEvents,
        "R32",
    );
    assert_eq!(d.delivery_index, Some(0));

    let (_, prediction, mut observed) = batch_120(Mode::Pull);
    sub_mut(&mut observed, S1).deliveries[2]
        .notification
        .more_events = Some(true);
    let d = expect_divergence(
        &check(&prediction, &observed, &Latitude::reference()),
        DivergenceKind::MoreEvents,
        "R32",
    );
    assert_eq!(d.delivery_index, Some(2));

    // Push: a MoreEvents=true with nothing after it.
    let (_, prediction, mut observed) = batch_120(Mode::Push);
    sub_mut(&mut observed, S1).deliveries[2]
        .notification
        .more_events = Some(true);
    expect_divergence(
        &check(&prediction, &observed, &Latitude::exchange2013()),
        DivergenceKind::MoreEvents,
        "R70",
    );
}

#[test]
fn more_events_true_before_an_empty_poll_is_the_r33_boundary() {
    let mut ops = vec![subscribe(S1, Mode::Pull, &[CASE], all_types())];
    ops.extend(creates(1..=25, CASE));
    ops.push(Op::Poll { sub: S1 });
    let prediction = predict(&ops).expect("valid");
    let mut observed = simulate(&prediction);
    let obs = sub_mut(&mut observed, S1);
    assert_eq!(obs.deliveries.len(), 1, "exactly 50 events: one batch");
    assert_eq!(obs.deliveries[0].notification.more_events, Some(false));
    // A server that does not look ahead: true, then a StatusEvent.
    obs.deliveries[0].notification.more_events = Some(true);
    let wm = fake_watermark(S1, 50);
    let mut status = obs.deliveries[0].clone();
    status.notification.previous_watermark = Some(wm.clone());
    status.notification.more_events = Some(false);
    status.notification.events = vec![Event::status(Some(wm.clone()))];
    status.request_watermark = Some(wm);
    obs.deliveries.push(status);
    let found = check(&prediction, &observed, &Latitude::reference());
    expect_divergence(&found, DivergenceKind::MoreEvents, "R33");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_clean(&check(&prediction, &observed, &Latitude::exchange2013()));
}

#[test]
fn a_stale_previous_watermark_breaks_the_chain() {
    let (_, prediction, mut observed) = batch_120(Mode::Pull);
    sub_mut(&mut observed, S1).deliveries[1]
        .notification
        .previous_watermark = Some(fake_watermark(S1, 0));
    let d = expect_divergence(
        &check(&prediction, &observed, &Latitude::reference()),
        DivergenceKind::PreviousWatermark,
        "R31",
    );
    assert_eq!(d.delivery_index, Some(1));
    assert_eq!(d.predicted, Some(fake_watermark(S1, 50)));

    let (_, prediction, mut observed) = batch_120(Mode::Push);
    sub_mut(&mut observed, S1).deliveries[2]
        .notification
        .previous_watermark = Some(fake_watermark(S1, 50));
    let d = expect_divergence(
        &check(&prediction, &observed, &Latitude::exchange2013()),
        DivergenceKind::PreviousWatermark,
        "R69",
    );
    assert_eq!(d.delivery_index, Some(2));
}

#[test]
fn an_event_without_watermark_is_caught_for_pull_and_push_only() {
    let (_, prediction, mut observed) = batch_120(Mode::Pull);
    sub_mut(&mut observed, S1).deliveries[1].notification.events[3].watermark = Some(String::new());
    expect_divergence(
        &check(&prediction, &observed, &Latitude::reference()),
        DivergenceKind::EmptyWatermark,
        "R31",
    );
    let (_, prediction, observed) = batch_120(Mode::Streaming);
    assert!(
        observed.subscriptions[&S1].deliveries[0]
            .notification
            .events[0]
            .watermark
            .is_none()
    );
    assert_clean(&check(&prediction, &observed, &Latitude::reference()));
}

#[test]
fn an_event_of_a_filtered_type_or_folder_is_r42() {
    let created_only: BTreeSet<EventKind> = [EventKind::Created].into_iter().collect();
    let mut ops = vec![
        Op::CreateFolder {
            folder: F1,
            parent: CASE,
        },
        subscribe(S1, Mode::Pull, &[CASE], created_only),
        subscribe(S2, Mode::Pull, &[F1], all_types()),
    ];
    ops.extend(creates(1..=3, CASE));
    ops.extend([Op::Poll { sub: S1 }, Op::Poll { sub: S2 }]);
    let prediction = predict(&ops).expect("valid");
    let clean = simulate(&prediction);
    assert_clean(&check(&prediction, &clean, &Latitude::reference()));

    // s1 subscribed to CreatedEvent only: a folder ModifiedEvent leaks through.
    let mut observed = clean.clone();
    let leak = ExpectedEvent {
        kind: EventKind::Modified,
        object: Handle::Folder(CASE),
        parent: FolderHandle::Root,
        old_object: None,
        old_parent: None,
        unread_count: Some(1),
    };
    sub_mut(&mut observed, S1).deliveries[0]
        .notification
        .events
        .insert(1, render_event(&leak, Some("x".into())));
    let d = expect_divergence(
        &check(&prediction, &observed, &Latitude::exchange2013()),
        DivergenceKind::Filtered,
        "R42",
    );
    assert_eq!(d.event_index, Some(1));

    // s2 watches f1 only: an item created in the case folder leaks through.
    let mut observed = clean;
    let outside = ExpectedEvent {
        kind: EventKind::Created,
        object: Handle::Item(ItemHandle(2)),
        parent: CASE,
        old_object: None,
        old_parent: None,
        unread_count: None,
    };
    let obs = sub_mut(&mut observed, S2);
    assert_eq!(
        obs.deliveries[0].notification.events[0].kind,
        EventKind::Status,
        "nothing happened in f1"
    );
    obs.deliveries[0]
        .notification
        .events
        .push(render_event(&outside, Some("y".into())));
    let d = expect_divergence(
        &check(&prediction, &observed, &Latitude::reference()),
        DivergenceKind::Filtered,
        "R42",
    );
    assert_eq!(d.received.as_deref(), Some("CreatedEvent item i2 in case"));
}

/// s1 polls once, remembers, more items arrive; s2 resumes from the watermark.
fn resume_scenario() -> (Prediction, Observed) {
    let mut ops = vec![subscribe(S1, Mode::Pull, &[CASE], all_types())];
    ops.extend(creates(1..=2, CASE));
    ops.push(Op::Poll { sub: S1 });
    ops.push(Op::Remember {
        sub: S1,
        watermark: WatermarkHandle(1),
    });
    ops.extend(creates(3..=4, CASE));
    ops.push(Op::Poll { sub: S1 });
    ops.push(Op::Resubscribe {
        sub: S2,
        from: WatermarkHandle(1),
    });
    ops.push(Op::Poll { sub: S2 });
    let prediction = predict(&ops).expect("valid");
    let observed = simulate(&prediction);
    (prediction, observed)
}

#[test]
fn a_resume_must_replay_exactly_the_events_after_the_watermark() {
    let (prediction, observed) = resume_scenario();
    assert_eq!(prediction.subscriptions[&S2].events.len(), 4);
    assert_clean(&check(&prediction, &observed, &Latitude::reference()));

    // A resume that ignores the watermark replays from the first subscription's start.
    let mut replayed = observed.clone();
    let early: Vec<Event> = prediction.subscriptions[&S1].events[..4]
        .iter()
        .map(|e| render_event(&e.event, Some("old".into())))
        .collect();
    let events = &mut sub_mut(&mut replayed, S2).deliveries[0].notification.events;
    events.splice(0..0, early);
    let found = check(&prediction, &replayed, &Latitude::reference());
    let d = expect_divergence(&found, DivergenceKind::BeforeStart, "R21");
    assert_eq!(d.event_index, Some(0));

    // A resume that starts at the head instead: the replayed events are lost.
    let mut head = observed.clone();
    let events = &mut sub_mut(&mut head, S2).deliveries[0].notification.events;
    events.drain(..);
    events.push(Event::status(Some(fake_watermark(S2, 0))));
    expect_divergence(
        &check(&prediction, &head, &Latitude::reference()),
        DivergenceKind::Lost,
        "R21",
    );

    // The resumed subscription must get a new id.
    let mut same = observed;
    sub_mut(&mut same, S2).subscription_id = fake_subscription_id(S1);
    for d in &mut sub_mut(&mut same, S2).deliveries {
        d.notification.subscription_id = fake_subscription_id(S1);
    }
    expect_divergence(
        &check(&prediction, &same, &Latitude::reference()),
        DivergenceKind::SameSubscriptionId,
        "R21",
    );
}

#[test]
fn a_notification_for_another_subscription_is_r51() {
    let (_, prediction, mut observed) = batch_120(Mode::Streaming);
    sub_mut(&mut observed, S1).deliveries[1]
        .notification
        .subscription_id = "someone-else".into();
    let found = check(&prediction, &observed, &Latitude::reference());
    let d = expect_divergence(&found, DivergenceKind::ForeignSubscription, "R51");
    assert_eq!(d.delivery_index, Some(1));
    expect_divergence(&found, DivergenceKind::Lost, "R59");
}

#[test]
fn a_subscription_without_records_is_not_observed() {
    let (_, prediction, mut observed) = batch_120(Mode::Push);
    observed.subscriptions.clear();
    let found = check(&prediction, &observed, &Latitude::reference());
    let d = expect_divergence(&found, DivergenceKind::NotObserved, "R11");
    assert_eq!(d.predicted.as_deref(), Some("CreatedEvent item i1 in case"));
}

#[test]
fn a_late_pull_event_fails_only_when_pull_is_synchronous() {
    let ops = vec![
        subscribe(S1, Mode::Pull, &[CASE], all_types()),
        create(1, CASE),
        Op::Poll { sub: S1 },
        create(2, CASE),
        Op::Poll { sub: S1 },
    ];
    let prediction = predict(&ops).expect("valid");
    let mut observed = simulate(&prediction);
    let obs = sub_mut(&mut observed, S1);
    assert_eq!(obs.deliveries.len(), 2);
    // The first poll saw nothing; everything came with the second.
    let first = std::mem::take(&mut obs.deliveries[0].notification.events);
    let first_request = obs.deliveries[0].request_watermark.clone();
    obs.deliveries[0]
        .notification
        .events
        .push(Event::status(first_request));
    obs.deliveries[1].notification.events.splice(0..0, first);
    obs.deliveries[1].request_watermark = obs.deliveries[0].request_watermark.clone();
    obs.deliveries[1].notification.previous_watermark = obs.deliveries[0].request_watermark.clone();
    let found = check(&prediction, &observed, &Latitude::reference());
    let d = expect_divergence(&found, DivergenceKind::Late, "R32");
    assert_eq!(d.event_index, Some(0));
    assert_clean(&check(&prediction, &observed, &Latitude::exchange2013()));
}

#[test]
fn tolerances_follow_the_profile() {
    let ops = vec![
        Op::CreateFolder {
            folder: F1,
            parent: CASE,
        },
        create(1, CASE),
        subscribe(S1, Mode::Pull, &[CASE, F1], all_types()),
        Op::CopyItem {
            item: ItemHandle(1),
            to: F1,
            new: ItemHandle(2),
        },
        Op::Poll { sub: S1 },
    ];
    let prediction = predict(&ops).expect("valid");
    let clean = simulate(&prediction);
    assert_eq!(
        clean.subscriptions[&S1].deliveries[0]
            .notification
            .events
            .len(),
        2,
        "CopiedEvent + ModifiedEvent(f1)"
    );

    // An extra folder ModifiedEvent (of the case folder) is tolerated by Exchange's profile only.
    let mut extra = clean.clone();
    let folder_mod = ExpectedEvent {
        kind: EventKind::Modified,
        object: Handle::Folder(CASE),
        parent: FolderHandle::Root,
        old_object: None,
        old_parent: None,
        unread_count: Some(5),
    };
    sub_mut(&mut extra, S1).deliveries[0]
        .notification
        .events
        .insert(1, render_event(&folder_mod, Some("w".into())));
    assert_clean(&check(&prediction, &extra, &Latitude::exchange2013()));
    let found = check(&prediction, &extra, &Latitude::reference());
    let d = expect_divergence(&found, DivergenceKind::Mismatch, "R77");
    assert_eq!(d.event_index, Some(1));

    // The target folder's ModifiedEvent left out (the digest's figure shows none for a copy).
    let mut missing = clean.clone();
    sub_mut(&mut missing, S1).deliveries[0]
        .notification
        .events
        .pop();
    assert_clean(&check(&prediction, &missing, &Latitude::exchange2013()));
    let d = expect_divergence(
        &check(&prediction, &missing, &Latitude::reference()),
        DivergenceKind::Lost,
        "R32",
    );
    assert_eq!(
        d.predicted.as_deref(),
        Some("ModifiedEvent folder f1 in case, unread 1")
    );

    // CopyItem surfacing as CreatedEvent (R77).
    let mut created = clean;
    let copy = &mut sub_mut(&mut created, S1).deliveries[0].notification.events[0];
    copy.kind = EventKind::Created;
    copy.old_object = None;
    copy.old_parent_folder_id = None;
    assert_clean(&check(&prediction, &created, &Latitude::exchange2013()));
    // The digest says accept either (R77): the reference profile does too.
    assert_clean(&check(&prediction, &created, &Latitude::reference()));
    // A profile that holds copies to CopiedEvent still tells them apart.
    let copied_only = Latitude {
        copy_as_created: false,
        ..Latitude::reference()
    };
    let strict = predict_for(&copied_only, &ops).expect("valid");
    let found = check(&strict, &created, &copied_only);
    let d = expect_divergence(&found, DivergenceKind::Mismatch, "R77");
    assert!(
        d.detail
            .contains("CreatedEvent where CopiedEvent was predicted"),
        "{d}"
    );
}

#[test]
fn wrong_fields_name_the_specific_requirement() {
    let ops = vec![
        Op::CreateFolder {
            folder: F1,
            parent: CASE,
        },
        create(1, CASE),
        subscribe(S1, Mode::Pull, &[CASE, F1], all_types()),
        Op::MoveItem {
            item: ItemHandle(1),
            to: F1,
            new: ItemHandle(2),
        },
        Op::MarkRead {
            item: ItemHandle(2),
            read: true,
        },
        Op::Poll { sub: S1 },
    ];
    let prediction = predict(&ops).expect("valid");
    let clean = simulate(&prediction);
    assert_clean(&check(&prediction, &clean, &Latitude::reference()));

    let mut wrong_old_parent = clean.clone();
    sub_mut(&mut wrong_old_parent, S1).deliveries[0]
        .notification
        .events[0]
        .old_parent_folder_id = Some(Id::new(fake_id(Handle::Folder(F1))));
    let d = expect_divergence(
        &check(&prediction, &wrong_old_parent, &Latitude::reference()),
        DivergenceKind::Mismatch,
        "R43",
    );
    assert!(d.detail.contains("OldParentFolderId"), "{d}");

    // Events: Moved, Modified(case), Modified(f1), Modified(i2), Modified(f1, unread 0).
    let mut wrong_unread = clean;
    let last = &mut sub_mut(&mut wrong_unread, S1).deliveries[0]
        .notification
        .events[4];
    assert_eq!(last.unread_count, Some(0));
    last.unread_count = Some(1);
    for profile in [Latitude::reference(), Latitude::exchange2013()] {
        let d = expect_divergence(
            &check(&prediction, &wrong_unread, &profile),
            DivergenceKind::Mismatch,
            "R44",
        );
        assert_eq!(d.event_index, Some(4), "{}", profile.name);
    }
    last_unread_absent_is_tolerated_only_when_optional(&prediction);
}

fn last_unread_absent_is_tolerated_only_when_optional(prediction: &Prediction) {
    let mut absent = simulate(prediction);
    sub_mut(&mut absent, S1).deliveries[0].notification.events[4].unread_count = None;
    assert_clean(&check(prediction, &absent, &Latitude::exchange2013()));
    expect_divergence(
        &check(prediction, &absent, &Latitude::reference()),
        DivergenceKind::Mismatch,
        "R44",
    );
}

#[test]
fn unbound_handles_are_learnt_once_and_then_held() {
    let ops = vec![
        subscribe(S1, Mode::Streaming, &[FolderHandle::Inbox], all_types()),
        Op::Deliver {
            item: ItemHandle(1),
        },
        Op::Poll { sub: S1 },
    ];
    let prediction = predict(&ops).expect("valid");
    let observed = simulate(&prediction);
    assert!(
        observed
            .bindings
            .id_of(Handle::Item(ItemHandle(1)))
            .is_none(),
        "a delivered item is not captured by the driver"
    );
    assert_clean(&check(&prediction, &observed, &Latitude::reference()));

    // NewMailEvent naming another item than the CreatedEvent before it.
    let mut other = observed;
    sub_mut(&mut other, S1).deliveries[0].notification.events[1].object =
        Some(ObjectId::Item(Id::new("not-the-delivered-item")));
    let d = expect_divergence(
        &check(&prediction, &other, &Latitude::reference()),
        DivergenceKind::Mismatch,
        "R71",
    );
    assert_eq!(d.event_index, Some(1));
}

#[test]
fn soft_deleted_items_are_matched_through_their_new_id() {
    let ops = vec![
        create(1, CASE),
        subscribe(S1, Mode::Pull, &[CASE], all_types()),
        Op::DeleteItem {
            item: ItemHandle(1),
            how: DeleteHow::SoftDelete,
        },
        Op::Poll { sub: S1 },
    ];
    let prediction = predict(&ops).expect("valid");
    let observed = simulate(&prediction);
    assert_clean(&check(&prediction, &observed, &Latitude::reference()));
    // Reusing the old id for the moved item is wrong: moves give new ids.
    let mut reused = observed;
    sub_mut(&mut reused, S1).deliveries[0].notification.events[0].object = Some(ObjectId::Item(
        Id::new(fake_id(Handle::Item(ItemHandle(1)))),
    ));
    expect_divergence(
        &check(&prediction, &reused, &Latitude::reference()),
        DivergenceKind::Mismatch,
        "R76",
    );
}

#[test]
fn a_save_into_the_inbox_is_not_new_mail_on_any_profile() {
    let ops = vec![
        subscribe(S1, Mode::Pull, &[FolderHandle::Inbox], all_types()),
        create(1, FolderHandle::Inbox),
        Op::Poll { sub: S1 },
    ];
    let prediction = predict(&ops).expect("valid");
    let kinds: Vec<EventKind> = prediction.subscriptions[&S1]
        .events
        .iter()
        .map(|e| e.event.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![EventKind::Created, EventKind::Modified],
        "NewMailEvent is for delivered mail only (digest 2.2 notes)"
    );
    let observed = simulate(&prediction);
    for profile in [Latitude::reference(), Latitude::exchange2013()] {
        assert_clean(&check(&prediction, &observed, &profile));
    }
    // A server that calls the save new mail (the new-mail-on-save fault).
    let mut with_new_mail = observed;
    let notification = &mut sub_mut(&mut with_new_mail, S1).deliveries[0].notification;
    let mut new_mail = notification.events[0].clone();
    new_mail.kind = EventKind::NewMail;
    notification.events.insert(1, new_mail);
    for profile in [Latitude::reference(), Latitude::exchange2013()] {
        let divergences = check(&prediction, &with_new_mail, &profile);
        assert!(
            !divergences.is_empty(),
            "{}: a NewMailEvent for a save went unnoticed",
            profile.name
        );
    }
    assert_eq!(
        Latitude::named("Exchange2013"),
        Some(Latitude::exchange2013())
    );
    assert_eq!(Latitude::named("reference"), Some(Latitude::reference()));
    assert_eq!(Latitude::named("gromox"), None);
}

#[test]
fn more_events_is_judged_per_drained_run() {
    // An asynchronous target: the driver drained once (MoreEvents false),
    // then again within the same poll for late events.
    let ops = vec![
        subscribe(S1, Mode::Pull, &[CASE], all_types()),
        create(1, CASE),
        Op::Poll { sub: S1 },
    ];
    let prediction = predict(&ops).expect("valid");
    let mut observed = simulate(&prediction);
    let sub = sub_mut(&mut observed, S1);
    let mut late = sub.deliveries[0].clone();
    let wm = late.notification.last_watermark().map(str::to_string);
    late.drain = 1;
    late.request_watermark = wm.clone();
    late.notification.previous_watermark = wm.clone();
    late.notification.events = vec![Event::status(wm)];
    sub.deliveries.push(late.clone());
    assert_clean(&check(&prediction, &observed, &Latitude::exchange2013()));
    // The same two answers in one run: the run went on after MoreEvents false.
    sub_mut(&mut observed, S1).deliveries[1].drain = 0;
    expect_divergence(
        &check(&prediction, &observed, &Latitude::exchange2013()),
        DivergenceKind::MoreEvents,
        "R32",
    );
}

#[test]
fn a_lost_move_of_a_deleted_item_is_lost_not_a_wrong_old_id() {
    // Items moved by a delete have ids no response reports: the oracle
    // learns them from events, so a missing one must not look like the
    // next one with a wrong OldItemId.
    let mut ops = vec![subscribe(S1, Mode::Pull, &[CASE], all_types())];
    ops.extend(creates(1..=2, CASE));
    for n in 1..=2 {
        ops.push(Op::DeleteItem {
            item: ItemHandle(n),
            how: DeleteHow::SoftDelete,
        });
    }
    ops.push(Op::Poll { sub: S1 });
    let prediction = predict(&ops).expect("valid");
    let mut observed = simulate(&prediction);
    let events = &mut sub_mut(&mut observed, S1).deliveries[0].notification.events;
    let first_move = events
        .iter()
        .position(|e| e.kind == EventKind::Moved)
        .expect("a MovedEvent");
    events.remove(first_move);
    let found = check(&prediction, &observed, &Latitude::reference());
    assert_eq!(found[0].kind, DivergenceKind::Lost, "{}", found[0]);
    assert_eq!(found[0].rule, "R32");
}

#[test]
fn an_idle_poll_without_status_event_and_a_bad_timestamp_are_caught() {
    let ops = vec![
        subscribe(S1, Mode::Pull, &[CASE], all_types()),
        Op::Poll { sub: S1 },
        create(1, CASE),
        Op::Poll { sub: S1 },
    ];
    let prediction = predict(&ops).expect("valid");
    let clean = simulate(&prediction);
    assert_clean(&check(&prediction, &clean, &Latitude::reference()));

    let mut observed = clean.clone();
    sub_mut(&mut observed, S1).deliveries[0]
        .notification
        .events
        .clear();
    expect_divergence(
        &check(&prediction, &observed, &Latitude::exchange2013()),
        DivergenceKind::EmptyNotification,
        "R29",
    );

    let mut observed = clean;
    if let Some(t) = &mut sub_mut(&mut observed, S1).deliveries[1].notification.events[0].timestamp
    {
        *t = t.replacen('T', " ", 1);
    }
    let d = expect_divergence(
        &check(&prediction, &observed, &Latitude::exchange2013()),
        DivergenceKind::BadTimestamp,
        "R78",
    );
    assert_eq!(d.received.as_deref(), Some("2024-01-01 00:00:00Z"));
}

#[test]
fn a_wrong_old_parent_is_r43_even_when_it_puts_the_move_outside_the_filter() {
    // Watching only the folder the item leaves: the MovedEvent is in scope
    // through its OldParentFolderId, which the target gets wrong.
    let ops = vec![
        Op::CreateFolder {
            folder: F1,
            parent: CASE,
        },
        subscribe(S1, Mode::Pull, &[CASE], all_types()),
        create(1, CASE),
        Op::MoveItem {
            item: ItemHandle(1),
            to: F1,
            new: ItemHandle(2),
        },
        Op::Poll { sub: S1 },
    ];
    let prediction = predict(&ops).expect("valid");
    let mut observed = simulate(&prediction);
    for d in &mut sub_mut(&mut observed, S1).deliveries {
        for e in &mut d.notification.events {
            if e.kind == EventKind::Moved {
                e.old_parent_folder_id = e.parent_folder_id.clone();
            }
        }
    }
    let found = check(&prediction, &observed, &Latitude::reference());
    assert_eq!(found[0].kind, DivergenceKind::Mismatch, "{}", found[0]);
    assert_eq!(found[0].rule, "R43", "{}", found[0]);
}

#[test]
fn a_wrong_old_parent_of_a_deleted_item_is_r43() {
    // The item moved by MoveToDeletedItems has a fresh id; its old id is known.
    let ops = vec![
        subscribe(S1, Mode::Pull, &[CASE], all_types()),
        create(1, CASE),
        Op::DeleteItem {
            item: ItemHandle(1),
            how: DeleteHow::MoveToDeletedItems,
        },
        Op::Poll { sub: S1 },
    ];
    let prediction = predict(&ops).expect("valid");
    let mut observed = simulate(&prediction);
    for d in &mut sub_mut(&mut observed, S1).deliveries {
        for e in &mut d.notification.events {
            if e.kind == EventKind::Moved {
                e.old_parent_folder_id = e.parent_folder_id.clone();
            }
        }
    }
    let found = check(&prediction, &observed, &Latitude::reference());
    assert_eq!(found[0].kind, DivergenceKind::Mismatch, "{}", found[0]);
    assert_eq!(found[0].rule, "R43", "{}", found[0]);
}

#[test]
fn more_events_false_on_a_full_batch_with_events_queued_is_named() {
    let (_, prediction, mut observed) = batch_120(Mode::Pull);
    let sub = sub_mut(&mut observed, S1);
    sub.deliveries[0].notification.more_events = Some(false);
    // The client stops draining: 70 predicted events never arrive.
    sub.deliveries.truncate(1);
    let found = check(&prediction, &observed, &Latitude::reference());
    assert_eq!(found[0].kind, DivergenceKind::MoreEvents, "{}", found[0]);
    assert!(
        found[0].detail.contains("70 predicted events"),
        "{}",
        found[0]
    );
    // Exchange's profile does not promise exact MoreEvents: the loss is named.
    let lenient = check(&prediction, &observed, &Latitude::exchange2013());
    assert!(lenient.iter().all(|d| d.kind != DivergenceKind::MoreEvents));
    expect_divergence(&lenient, DivergenceKind::Lost, "R32");
}

#[test]
fn a_full_last_batch_owes_nothing_when_only_optional_events_are_missing() {
    // 26 creations: 52 events, the last two of which a legal outcome may
    // leave out. A target that leaves them out has exactly one full batch,
    // and its MoreEvents=false is right (found by explore: the oracle once
    // counted the optional events as still queued).
    let mut ops = vec![subscribe(S1, Mode::Pull, &[CASE], all_types())];
    ops.extend(creates(1..=26, CASE));
    ops.push(Op::Poll { sub: S1 });
    let mut prediction = predict(&ops).expect("valid sequence");
    let events = &mut prediction
        .subscriptions
        .get_mut(&S1)
        .expect("predicted subscription")
        .events;
    assert_eq!(events.len(), 52);
    for e in &mut events[50..] {
        e.optional = true;
    }
    let mut without = prediction.clone();
    without
        .subscriptions
        .get_mut(&S1)
        .expect("predicted subscription")
        .events
        .truncate(50);
    let observed = simulate(&without);
    let sub = &observed.subscriptions[&S1];
    assert_eq!(sub.deliveries.len(), 1);
    assert_eq!(sub.deliveries[0].notification.more_events, Some(false));
    assert_clean(&check(&prediction, &observed, &Latitude::reference()));
    // The same batch owes the two events when they are required.
    for e in &mut prediction
        .subscriptions
        .get_mut(&S1)
        .expect("predicted subscription")
        .events
    {
        e.optional = false;
    }
    let found = check(&prediction, &observed, &Latitude::reference());
    let d = expect_divergence(&found, DivergenceKind::MoreEvents, "R32");
    assert!(d.detail.contains("2 predicted events"), "{d}");
}

// ------------------------------------------------ legal alternative outcomes

#[test]
fn the_events_of_one_operation_may_come_in_any_order() {
    // CreatedEvent and the folder's ModifiedEvent of i51, swapped.
    for mode in Mode::ALL {
        let (_, prediction, mut observed) = batch_120(mode);
        sub_mut(&mut observed, S1).deliveries[2]
            .notification
            .events
            .swap(0, 1);
        assert_clean(&check(&prediction, &observed, &Latitude::reference()));
        assert_clean(&check(&prediction, &observed, &Latitude::exchange()));
    }
}

fn deleting(how: DeleteHow, first_in: FolderHandle) -> Vec<Op> {
    vec![
        subscribe(
            S1,
            Mode::Pull,
            &[CASE, FolderHandle::DeletedItems],
            all_types(),
        ),
        create(1, first_in),
        Op::DeleteItem {
            item: ItemHandle(1),
            how,
        },
        Op::Poll { sub: S1 },
    ]
}

/// What a server of `server` delivers, judged against the model of `judge_as`.
fn cross(ops: &[Op], server: &Latitude, judge_as: &Latitude) -> Vec<Divergence> {
    let delivered = simulate(&predict_for(server, ops).expect("valid"));
    let prediction = predict_for(judge_as, ops).expect("valid");
    check(&prediction, &delivered, judge_as)
}

#[test]
fn a_soft_delete_is_moved_on_2013_deleted_on_2010_and_either_on_an_unknown_version() {
    let ops = deleting(DeleteHow::SoftDelete, CASE);
    let (e10, e13, any) = (
        Latitude::exchange2010(),
        Latitude::exchange2013(),
        Latitude::exchange(),
    );
    for server in [&e10, &e13] {
        assert_clean(&cross(&ops, server, server));
        assert_clean(&cross(&ops, server, &any));
    }
    // A version's profile still holds its own form (R76).
    let d = expect_divergence(&cross(&ops, &e10, &e13), DivergenceKind::Mismatch, "R76");
    assert!(d.detail.contains("DeletedEvent where MovedEvent"), "{d}");
    expect_divergence(&cross(&ops, &e13, &e10), DivergenceKind::Mismatch, "R76");
}

#[test]
fn move_to_deleted_items_from_deleted_items_is_judged_per_profile() {
    let ops = deleting(DeleteHow::MoveToDeletedItems, FolderHandle::DeletedItems);
    let (e10, e13, any, reference) = (
        Latitude::exchange2010(),
        Latitude::exchange2013(),
        Latitude::exchange(),
        Latitude::reference(),
    );
    // Exchange soft-deletes it; each version's form passes its own profile
    // and the unknown-version one.
    for server in [&e10, &e13] {
        assert_clean(&cross(&ops, server, server));
        assert_clean(&cross(&ops, server, &any));
    }
    assert_clean(&cross(&ops, &reference, &reference));
    // The unknown-version profile also takes R75 read literally.
    assert_clean(&cross(&ops, &reference, &any));
    // The false divergence explore reported against Exchange 2013 is gone.
    assert!(!cross(&ops, &e13, &e13).iter().any(|d| d.rule == "R75"));
    // The docs do not single the case out: R75 read literally (a move
    // within Deleted Items) passes every Exchange profile, but not one
    // held to the soft delete.
    assert_clean(&cross(&ops, &reference, &e13));
    let soft_only = Latitude {
        redelete: Redelete::SoftDelete,
        ..Latitude::exchange2013()
    };
    assert!(!cross(&ops, &reference, &soft_only).is_empty());
    // A lost soft delete is still lost.
    let mut observed = simulate(&predict_for(&e13, &ops).expect("valid"));
    let events = &mut sub_mut(&mut observed, S1).deliveries[0].notification.events;
    let at = events
        .iter()
        .position(|e| e.kind == EventKind::Moved)
        .expect("the move to the dumpster");
    events.remove(at);
    let prediction = predict_for(&any, &ops).expect("valid");
    expect_divergence(
        &check(&prediction, &observed, &any),
        DivergenceKind::Lost,
        "R32",
    );
}

#[test]
fn all_folder_deletions_through_the_search_folder_are_accepted_on_2013() {
    let mut ops = vec![Op::Subscribe {
        sub: S1,
        mode: Mode::Pull,
        scope: Scope::AllFolders,
        event_types: all_types(),
    }];
    ops.push(create(1, CASE));
    ops.push(Op::DeleteItem {
        item: ItemHandle(1),
        how: DeleteHow::MoveToDeletedItems,
    });
    ops.push(Op::Poll { sub: S1 });
    let e13 = Latitude::exchange2013();
    let prediction = predict_for(&e13, &ops).expect("valid");
    let mut observed = simulate(&prediction);
    // Exchange 2013: no MovedEvent, but Deleted + Created in AllItems.
    let events = &mut sub_mut(&mut observed, S1).deliveries[0].notification.events;
    let at = events
        .iter()
        .position(|e| e.kind == EventKind::Moved)
        .expect("the move");
    events.remove(at);
    let in_all_items = |kind, item: &str| Event {
        kind,
        object: Some(ObjectId::Item(Id::new(item))),
        parent_folder_id: Some(Id::new("all-items-search-folder")),
        ..events[0].clone()
    };
    let extra = [
        in_all_items(EventKind::Deleted, "id-i1"),
        in_all_items(EventKind::Created, "id-i1-in-deleted-items"),
    ];
    events.splice(at..at, extra);
    assert_clean(&check(&prediction, &observed, &e13));
    // Exchange 2010 and the reference server send the MovedEvent.
    let e10 = Latitude::exchange2010();
    let strict = predict_for(&e10, &ops).expect("valid");
    assert!(!check(&strict, &observed, &e10).is_empty());
}

#[test]
fn a_push_chain_may_continue_from_a_refreshed_or_a_repeated_status_watermark() {
    let ops = vec![
        subscribe(S1, Mode::Push, &[CASE], all_types()),
        create(1, CASE),
        Op::Poll { sub: S1 },
        create(2, CASE),
        Op::Poll { sub: S1 },
    ];
    let prediction = predict(&ops).expect("valid");
    let clean = simulate(&prediction);
    let with_status = |status_wm: &str, next_previous: &str| {
        let mut o = clean.clone();
        let deliveries = &mut sub_mut(&mut o, S1).deliveries;
        let mut idle = deliveries[0].clone();
        idle.notification.previous_watermark = deliveries[0]
            .notification
            .last_watermark()
            .map(str::to_string);
        idle.notification.more_events = Some(false);
        idle.notification.events = vec![Event::status(Some(status_wm.to_string()))];
        deliveries.insert(1, idle);
        deliveries[2].notification.previous_watermark = Some(next_previous.to_string());
        o
    };
    let last = fake_watermark(S1, 2);
    // G3: the idle StatusEvent repeats the last watermark, or refreshes it.
    assert_clean(&check(
        &prediction,
        &with_status(&last, &last),
        &Latitude::reference(),
    ));
    assert_clean(&check(
        &prediction,
        &with_status("refreshed", "refreshed"),
        &Latitude::reference(),
    ));
    assert_clean(&check(
        &prediction,
        &with_status("refreshed", &last),
        &Latitude::reference(),
    ));
    // Any other watermark still breaks the chain (R69).
    let found = check(
        &prediction,
        &with_status("refreshed", "elsewhere"),
        &Latitude::reference(),
    );
    expect_divergence(&found, DivergenceKind::PreviousWatermark, "R69");
}

#[test]
fn an_update_that_changes_nothing_may_raise_nothing_on_exchange() {
    let ops = vec![
        subscribe(S1, Mode::Pull, &[CASE], all_types()),
        create(1, CASE),
        Op::MarkRead {
            item: ItemHandle(1),
            read: false,
        },
        Op::Poll { sub: S1 },
    ];
    let any = Latitude::exchange();
    let prediction = predict_for(&any, &ops).expect("valid");
    let mut observed = simulate(&prediction);
    // Only the CreateItem's two events arrive.
    sub_mut(&mut observed, S1).deliveries[0]
        .notification
        .events
        .truncate(2);
    assert_clean(&check(&prediction, &observed, &any));
    // The reference server raises them.
    let strict = predict(&ops).expect("valid");
    let found = check(&strict, &observed, &Latitude::reference());
    let d = expect_divergence(&found, DivergenceKind::Lost, "R32");
    assert_eq!(
        d.predicted.as_deref(),
        Some("ModifiedEvent item i1 in case")
    );
    // An item that really changes must still show it.
    let mut changed = ops.clone();
    changed[2] = Op::MarkRead {
        item: ItemHandle(1),
        read: true,
    };
    let prediction = predict_for(&any, &changed).expect("valid");
    expect_divergence(
        &check(&prediction, &observed, &any),
        DivergenceKind::Lost,
        "R32",
    );
}

#[test]
fn an_all_folder_subscription_on_exchange_ignores_folders_the_model_does_not_know() {
    let ops = vec![
        Op::Subscribe {
            sub: S1,
            mode: Mode::Pull,
            scope: Scope::AllFolders,
            event_types: all_types(),
        },
        create(1, CASE),
        Op::Poll { sub: S1 },
    ];
    let any = Latitude::exchange();
    let prediction = predict_for(&any, &ops).expect("valid");
    let mut observed = simulate(&prediction);
    // The Outbox of a send, say: an item created and moved there.
    let events = &mut sub_mut(&mut observed, S1).deliveries[0].notification.events;
    let outbox = Event {
        kind: EventKind::Moved,
        object: Some(ObjectId::Item(Id::new("outbox-item"))),
        parent_folder_id: Some(Id::new("sent-items")),
        old_object: Some(ObjectId::Item(Id::new("outbox-item-0"))),
        old_parent_folder_id: Some(Id::new("outbox")),
        ..events[0].clone()
    };
    events.insert(1, outbox.clone());
    assert_clean(&check(&prediction, &observed, &any));
    assert!(
        !check(
            &predict(&ops).expect("valid"),
            &observed,
            &Latitude::reference()
        )
        .is_empty()
    );
    // An event in a folder the model knows is still judged.
    let mut known = outbox;
    known.old_parent_folder_id = Some(Id::new(fake_id(Handle::Folder(CASE))));
    let events = &mut sub_mut(&mut observed, S1).deliveries[0].notification.events;
    events[1] = known;
    expect_divergence(
        &check(&prediction, &observed, &any),
        DivergenceKind::Unexpected,
        "R32",
    );
}

#[test]
fn a_tolerated_extra_inside_an_operation_leaves_its_optional_events_pending() {
    let inbox = FolderHandle::Inbox;
    let ops = vec![
        subscribe(S1, Mode::Pull, &[inbox], all_types()),
        Op::Deliver {
            item: ItemHandle(1),
        },
        Op::Poll { sub: S1 },
    ];
    let any = Latitude::exchange();
    let prediction = predict_for(&any, &ops).expect("valid");
    let mut observed = simulate(&prediction);
    let events = &mut sub_mut(&mut observed, S1).deliveries[0].notification.events;
    // Created, NewMail, Modified(inbox) (optional on Exchange): the
    // Modified comes last, after a second (tolerated) ModifiedEvent of the
    // Inbox that looks just like it.
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [EventKind::Created, EventKind::NewMail, EventKind::Modified]
    );
    let again = events[2].clone();
    events.push(again);
    assert_clean(&check(&prediction, &observed, &any));
    // A NewMail that really came twice is still a repeat.
    let events = &mut sub_mut(&mut observed, S1).deliveries[0].notification.events;
    let twice = events[1].clone();
    events.push(twice);
    expect_divergence(
        &check(&prediction, &observed, &any),
        DivergenceKind::Repeated,
        "R32",
    );
}

#[test]
fn a_tolerated_extra_that_looks_like_a_later_event_does_not_end_an_operation() {
    let inbox = FolderHandle::Inbox;
    let ops = vec![
        subscribe(S1, Mode::Pull, &[inbox], all_types()),
        Op::Deliver {
            item: ItemHandle(1),
        },
        Op::Deliver {
            item: ItemHandle(2),
        },
        Op::Poll { sub: S1 },
    ];
    // The Inbox's unread count is unknown: every ModifiedEvent of it fits.
    let any = Latitude::exchange();
    let prediction = predict_for(&any, &ops).expect("valid");
    let mut observed = simulate(&prediction);
    let events = &mut sub_mut(&mut observed, S1).deliveries[0].notification.events;
    // i1: Created, Modified(inbox), a second Modified(inbox), then NewMail
    // (the order inside one delivery's burst is free).
    let new_mail = events.remove(1);
    let again = events[1].clone();
    events.insert(2, again);
    events.insert(3, new_mail);
    assert_clean(&check(&prediction, &observed, &any));
}

#[test]
fn a_left_out_event_followed_by_an_extra_kind_of_event_is_not_waited_for() {
    // A copy out of Deleted Items, watched there: its CopiedEvent may be
    // absent (its CreatedEvent form is outside the folder, R77). The next
    // operation's item ModifiedEvent, a kind Exchange may also send extra,
    // is that operation's event.
    let deleted = FolderHandle::DeletedItems;
    let ops = vec![
        subscribe(S1, Mode::Push, &[deleted], all_types()),
        create(1, deleted),
        Op::CopyItem {
            item: ItemHandle(1),
            to: CASE,
            new: ItemHandle(2),
        },
        Op::MarkRead {
            item: ItemHandle(1),
            read: true,
        },
        Op::Poll { sub: S1 },
    ];
    let any = Latitude::exchange();
    let prediction = predict_for(&any, &ops).expect("valid");
    let mut observed = simulate(&prediction);
    let events = &mut sub_mut(&mut observed, S1).deliveries[0].notification.events;
    let at = events
        .iter()
        .position(|e| e.kind == EventKind::Copied)
        .expect("the copy");
    events.remove(at);
    assert_clean(&check(&prediction, &observed, &any));
}
