//! The model's predictions, one test per row of digest 2.2 (Exchange
//! 2013/Online, listed folders), plus visibility, timing and validity.

use std::collections::BTreeSet;

use super::mailbox::AllFolders;
use super::*;
use ews_proto::ews::EventKind::{self, Copied, Created, Deleted, Modified, Moved, NewMail};

const CASE: FolderHandle = FolderHandle::Case;
const INBOX: FolderHandle = FolderHandle::Inbox;
const DELETED: FolderHandle = FolderHandle::DeletedItems;
const ROOT: FolderHandle = FolderHandle::Root;
const F1: FolderHandle = FolderHandle::User(1);

fn i(n: u32) -> ItemHandle {
    ItemHandle(n)
}

fn ev(kind: EventKind, object: Handle, parent: FolderHandle) -> ExpectedEvent {
    ExpectedEvent {
        kind,
        object,
        parent,
        old_object: None,
        old_parent: None,
        unread_count: None,
    }
}

fn item_ev(kind: EventKind, item: u32, parent: FolderHandle) -> ExpectedEvent {
    ev(kind, Handle::Item(i(item)), parent)
}

fn folder_mod(folder: FolderHandle, parent: FolderHandle, unread: Option<i64>) -> ExpectedEvent {
    ExpectedEvent {
        unread_count: unread,
        ..ev(Modified, Handle::Folder(folder), parent)
    }
}

fn moved(
    kind: EventKind,
    new: Handle,
    to: FolderHandle,
    old: Handle,
    from: FolderHandle,
) -> ExpectedEvent {
    ExpectedEvent {
        old_object: Some(old),
        old_parent: Some(from),
        ..ev(kind, new, to)
    }
}

fn create(item: u32, folder: FolderHandle) -> Op {
    Op::CreateItem {
        item: i(item),
        folder,
        read: false,
    }
}

fn mkdir(n: u32, parent: FolderHandle) -> Op {
    Op::CreateFolder {
        folder: FolderHandle::User(n),
        parent,
    }
}

fn all_types() -> BTreeSet<EventKind> {
    [Copied, Created, Deleted, Modified, Moved, NewMail]
        .into_iter()
        .collect()
}

fn subscribe(sub: u32, folders: &[FolderHandle], types: &[EventKind]) -> Op {
    Op::Subscribe {
        sub: SubHandle(sub),
        mode: Mode::Pull,
        scope: Scope::Folders(folders.iter().copied().collect()),
        event_types: types.iter().copied().collect(),
    }
}

fn poll(sub: u32) -> Op {
    Op::Poll {
        sub: SubHandle(sub),
    }
}

/// The events the last operation of `ops` adds to the log.
fn events_of_last(model: Model, ops: &[Op]) -> Vec<ExpectedEvent> {
    let mut model = model;
    let (last, setup) = ops.split_last().expect("at least one operation");
    for op in setup {
        model.apply(op).expect("setup is valid");
    }
    model
        .apply(last)
        .expect("the operation is valid")
        .into_iter()
        .map(|l| l.event)
        .collect()
}

fn last(ops: &[Op]) -> Vec<ExpectedEvent> {
    events_of_last(Model::new(), ops)
}

/// The events subscription 1 is predicted to see.
fn seen_by(ops: &[Op], sub: u32) -> Vec<ExpectedEvent> {
    let p = predict(ops).expect("valid sequence");
    p.subscriptions[&SubHandle(sub)]
        .events
        .iter()
        .map(|e| e.event.clone())
        .collect()
}

#[test]
fn create_item_gives_created_and_folder_modified_with_unread_count() {
    assert_eq!(
        last(&[create(1, CASE)]),
        vec![item_ev(Created, 1, CASE), folder_mod(CASE, ROOT, Some(1))]
    );
    let read = Op::CreateItem {
        item: i(1),
        folder: CASE,
        read: true,
    };
    assert_eq!(
        last(&[read]),
        vec![item_ev(Created, 1, CASE), folder_mod(CASE, ROOT, Some(0))]
    );
}

#[test]
fn delivery_gives_created_newmail_and_inbox_modified() {
    let deliver = Op::Deliver { item: i(1) };
    assert_eq!(
        last(std::slice::from_ref(&deliver)),
        vec![
            item_ev(Created, 1, INBOX),
            item_ev(NewMail, 1, INBOX),
            folder_mod(INBOX, ROOT, None),
        ],
        "the Inbox's unread count is unknown without a baseline"
    );
    let with_baseline = Model::new().with_unread_baseline(INBOX, 5);
    assert_eq!(
        events_of_last(with_baseline, &[deliver])[2],
        folder_mod(INBOX, ROOT, Some(6))
    );
}

#[test]
fn mark_read_modifies_item_and_folder_and_lowers_unread_count() {
    let ops = [
        create(1, CASE),
        Op::MarkRead {
            item: i(1),
            read: true,
        },
    ];
    assert_eq!(
        last(&ops),
        vec![item_ev(Modified, 1, CASE), folder_mod(CASE, ROOT, Some(0))]
    );
}

#[test]
fn subject_change_modifies_item_and_folder() {
    let ops = [create(1, CASE), Op::SetSubject { item: i(1) }];
    assert_eq!(
        last(&ops),
        vec![item_ev(Modified, 1, CASE), folder_mod(CASE, ROOT, Some(1))]
    );
}

#[test]
fn move_gives_moved_with_new_id_and_both_folders_modified() {
    let ops = [
        create(1, CASE),
        mkdir(1, CASE),
        Op::MoveItem {
            item: i(1),
            to: F1,
            new: i(2),
        },
    ];
    assert_eq!(
        last(&ops),
        vec![
            moved(Moved, Handle::Item(i(2)), F1, Handle::Item(i(1)), CASE),
            folder_mod(CASE, ROOT, Some(0)),
            folder_mod(F1, CASE, Some(1)),
        ]
    );
}

#[test]
fn copy_gives_copied_and_target_modified() {
    let ops = [
        create(1, CASE),
        mkdir(1, CASE),
        Op::CopyItem {
            item: i(1),
            to: F1,
            new: i(2),
        },
    ];
    assert_eq!(
        last(&ops),
        vec![
            moved(Copied, Handle::Item(i(2)), F1, Handle::Item(i(1)), CASE),
            folder_mod(F1, CASE, Some(1)),
        ]
    );
}

#[test]
fn hard_delete_gives_deleted_with_original_parent_and_parent_modified() {
    let ops = [
        create(1, CASE),
        Op::DeleteItem {
            item: i(1),
            how: DeleteHow::HardDelete,
        },
    ];
    assert_eq!(
        last(&ops),
        vec![item_ev(Deleted, 1, CASE), folder_mod(CASE, ROOT, Some(0))]
    );
}

#[test]
fn soft_delete_moves_to_the_dumpster_and_modifies_only_the_parent() {
    let ops = [
        create(1, CASE),
        Op::DeleteItem {
            item: i(1),
            how: DeleteHow::SoftDelete,
        },
    ];
    assert_eq!(
        last(&ops),
        vec![
            moved(
                Moved,
                Handle::Remnant(i(1)),
                FolderHandle::Dumpster,
                Handle::Item(i(1)),
                CASE
            ),
            folder_mod(CASE, ROOT, Some(0)),
        ]
    );
}

#[test]
fn move_to_deleted_items_moves_and_modifies_both_folders() {
    let ops = [
        create(1, CASE),
        Op::DeleteItem {
            item: i(1),
            how: DeleteHow::MoveToDeletedItems,
        },
    ];
    assert_eq!(
        last(&ops),
        vec![
            moved(
                Moved,
                Handle::Remnant(i(1)),
                DELETED,
                Handle::Item(i(1)),
                CASE
            ),
            folder_mod(CASE, ROOT, Some(0)),
            folder_mod(DELETED, ROOT, None),
        ]
    );
}

#[test]
fn create_folder_gives_created_folder_and_parent_modified() {
    assert_eq!(
        last(&[mkdir(1, CASE)]),
        vec![
            ev(Created, Handle::Folder(F1), CASE),
            folder_mod(CASE, ROOT, Some(0))
        ]
    );
}

#[test]
fn folder_hard_and_soft_delete_give_deleted_and_parent_modified() {
    for how in [DeleteHow::HardDelete, DeleteHow::SoftDelete] {
        let ops = [mkdir(1, CASE), Op::DeleteFolder { folder: F1, how }];
        assert_eq!(
            last(&ops),
            vec![
                ev(Deleted, Handle::Folder(F1), CASE),
                folder_mod(CASE, ROOT, Some(0))
            ],
            "{how:?}"
        );
    }
}

#[test]
fn folder_move_to_deleted_items_keeps_its_id_and_modifies_both_parents() {
    let ops = [
        mkdir(1, CASE),
        Op::DeleteFolder {
            folder: F1,
            how: DeleteHow::MoveToDeletedItems,
        },
    ];
    assert_eq!(
        last(&ops),
        vec![
            moved(Moved, Handle::Folder(F1), DELETED, Handle::Folder(F1), CASE),
            folder_mod(CASE, ROOT, Some(0)),
            folder_mod(DELETED, ROOT, None),
        ]
    );
}

#[test]
fn a_folder_subscription_sees_parent_old_parent_and_own_folder_events() {
    let ops = [
        mkdir(1, CASE),
        create(1, CASE),
        subscribe(1, &[F1], &all_types().into_iter().collect::<Vec<_>>()),
        create(2, CASE), // not seen: neither parent nor folder is f1
        Op::MoveItem {
            item: i(1),
            to: F1,
            new: i(3),
        },
        poll(1),
    ];
    assert_eq!(
        seen_by(&ops, 1),
        vec![
            moved(Moved, Handle::Item(i(3)), F1, Handle::Item(i(1)), CASE),
            folder_mod(F1, CASE, Some(1)),
        ],
        "Modified(case) has parent root: not in scope"
    );
    let from_f1 = [
        mkdir(1, CASE),
        create(1, F1),
        subscribe(1, &[F1], &[Moved]),
        Op::MoveItem {
            item: i(1),
            to: CASE,
            new: i(2),
        },
        poll(1),
    ];
    assert_eq!(
        seen_by(&from_f1, 1),
        vec![moved(
            Moved,
            Handle::Item(i(2)),
            CASE,
            Handle::Item(i(1)),
            F1
        )],
        "the old parent puts a move in scope"
    );
}

#[test]
fn a_parent_subscription_sees_child_folder_events() {
    let ops = [
        subscribe(1, &[CASE], &[Created, Modified]),
        mkdir(1, CASE),
        create(1, F1),
        poll(1),
    ];
    assert_eq!(
        seen_by(&ops, 1),
        vec![
            ev(Created, Handle::Folder(F1), CASE),
            folder_mod(CASE, ROOT, Some(0)),
            folder_mod(F1, CASE, Some(1)),
        ]
    );
}

#[test]
fn event_type_filter_and_all_folders() {
    let ops = [
        subscribe(1, &[CASE], &[Created]),
        Op::Subscribe {
            sub: SubHandle(2),
            mode: Mode::Streaming,
            scope: Scope::AllFolders,
            event_types: all_types(),
        },
        mkdir(1, CASE),
        create(1, F1),
        poll(1),
        poll(2),
    ];
    assert_eq!(
        seen_by(&ops, 1),
        vec![ev(Created, Handle::Folder(F1), CASE)]
    );
    assert_eq!(seen_by(&ops, 2).len(), 4, "all folders, all types");
}

#[test]
fn events_are_due_at_the_next_poll_and_bounded_by_subscribe_and_unsubscribe() {
    let ops = [
        create(1, CASE),                   // 0: before the subscription
        subscribe(1, &[CASE], &[Created]), // 1
        create(2, CASE),                   // 2
        poll(1),                           // 3
        create(3, CASE),                   // 4
        create(4, CASE),                   // 5
        poll(1),                           // 6
        create(5, CASE),                   // 7: never polled
    ];
    let p = predict(&ops).expect("valid");
    let s = &p.subscriptions[&SubHandle(1)];
    let seen: Vec<(Handle, usize)> = s.events.iter().map(|e| (e.event.object, e.due)).collect();
    assert_eq!(
        seen,
        vec![
            (Handle::Item(i(2)), 3),
            (Handle::Item(i(3)), 6),
            (Handle::Item(i(4)), 6)
        ]
    );
    assert_eq!(s.expected_by(3), 1);
    assert_eq!(s.expected_by(6), 3);
    assert_eq!(s.polls, vec![3, 6]);

    let unsubscribed = [
        subscribe(1, &[CASE], &[Created]),
        create(1, CASE),
        poll(1),
        Op::Unsubscribe { sub: SubHandle(1) },
        create(2, CASE),
    ];
    let p = predict(&unsubscribed).expect("valid");
    assert_eq!(p.subscriptions[&SubHandle(1)].events.len(), 1);
    assert_eq!(p.subscriptions[&SubHandle(1)].unsubscribed_at, Some(3));
}

#[test]
fn resubscribe_replays_exactly_the_events_after_the_remembered_watermark() {
    let ops = [
        subscribe(1, &[CASE], &[Created]), // 0
        create(1, CASE),                   // 1
        poll(1),                           // 2
        Op::Remember {
            sub: SubHandle(1),
            watermark: WatermarkHandle(1),
        }, // 3
        create(2, CASE),                   // 4
        create(3, CASE),                   // 5
        poll(1),                           // 6
        Op::Resubscribe {
            sub: SubHandle(2),
            from: WatermarkHandle(1),
        }, // 7
        create(4, CASE),                   // 8
        poll(2),                           // 9
    ];
    let p = predict(&ops).expect("valid");
    let s2 = &p.subscriptions[&SubHandle(2)];
    assert_eq!(s2.mode, Mode::Pull);
    assert_eq!(s2.resumed_from, Some((SubHandle(1), WatermarkHandle(1))));
    let objects: Vec<Handle> = s2.events.iter().map(|e| e.event.object).collect();
    assert_eq!(
        objects,
        vec![Handle::Item(i(2)), Handle::Item(i(3)), Handle::Item(i(4))]
    );
    assert!(s2.events.iter().all(|e| e.due == 9));

    let never_polled = [
        subscribe(1, &[CASE], &[Created]),
        create(1, CASE),
        Op::Remember {
            sub: SubHandle(1),
            watermark: WatermarkHandle(1),
        },
        Op::Resubscribe {
            sub: SubHandle(2),
            from: WatermarkHandle(1),
        },
        poll(2),
    ];
    let p = predict(&never_polled).expect("valid");
    assert_eq!(
        p.subscriptions[&SubHandle(2)].events.len(),
        1,
        "a watermark remembered before any poll is the Subscribe watermark"
    );
}

#[test]
fn invalid_operations_are_rejected_and_leave_the_model_unchanged() {
    let cases: Vec<(Vec<Op>, &str)> = vec![
        (
            vec![Op::MarkRead {
                item: i(1),
                read: true,
            }],
            "does not exist",
        ),
        (vec![create(1, CASE), create(1, CASE)], "already used"),
        (
            vec![Op::Deliver { item: i(1) }, Op::SetSubject { item: i(1) }],
            "delivered",
        ),
        (
            vec![
                subscribe(1, &[CASE], &[Created]),
                Op::Unsubscribe { sub: SubHandle(1) },
                poll(1),
            ],
            "unsubscribed",
        ),
        (
            vec![
                Op::Subscribe {
                    sub: SubHandle(1),
                    mode: Mode::Streaming,
                    scope: Scope::AllFolders,
                    event_types: all_types(),
                },
                Op::Remember {
                    sub: SubHandle(1),
                    watermark: WatermarkHandle(1),
                },
            ],
            "not a pull subscription",
        ),
        (
            vec![Op::DeleteFolder {
                folder: CASE,
                how: DeleteHow::HardDelete,
            }],
            "not a user folder",
        ),
        (
            vec![subscribe(1, &[CASE], &[EventKind::Status])],
            "cannot be subscribed",
        ),
        (
            vec![
                create(1, CASE),
                Op::MoveItem {
                    item: i(1),
                    to: CASE,
                    new: i(2),
                },
            ],
            "already in",
        ),
        (
            vec![
                mkdir(1, CASE),
                create(1, F1),
                Op::DeleteFolder {
                    folder: F1,
                    how: DeleteHow::HardDelete,
                },
                Op::SetSubject { item: i(1) },
            ],
            "does not exist",
        ),
        (
            vec![
                mkdir(1, CASE),
                subscribe(1, &[F1], &[Created]),
                Op::Remember {
                    sub: SubHandle(1),
                    watermark: WatermarkHandle(1),
                },
                Op::DeleteFolder {
                    folder: F1,
                    how: DeleteHow::HardDelete,
                },
                Op::Resubscribe {
                    sub: SubHandle(2),
                    from: WatermarkHandle(1),
                },
            ],
            "no longer exists",
        ),
    ];
    for (ops, why) in cases {
        let mut model = Model::new();
        let (bad, setup) = ops.split_last().expect("non-empty");
        for op in setup {
            model.apply(op).expect("setup is valid");
        }
        let before = model.prediction();
        let err = model.apply(bad).expect_err("must be rejected");
        assert!(err.reason.contains(why), "{err} should mention {why:?}");
        assert_eq!(err.index, setup.len());
        assert_eq!(model.prediction(), before, "a rejected op changes nothing");
        assert_eq!(model.len(), setup.len());
    }
}

#[test]
fn retired_folders_and_their_items_are_not_offered_to_a_generator() {
    let mut model = Model::new();
    for op in [
        mkdir(1, CASE),
        create(1, F1),
        create(2, CASE),
        Op::DeleteFolder {
            folder: F1,
            how: DeleteHow::MoveToDeletedItems,
        },
    ] {
        model.apply(&op).expect("valid");
    }
    assert_eq!(model.addressable_items(), vec![i(2)]);
    assert!(model.user_folders().is_empty());
    assert!(!model.usable_folders().contains(&F1));
    assert_eq!(model.next_folder_handle(), FolderHandle::User(2));
    assert_eq!(model.next_item_handle(), i(3));
}

#[test]
fn display_is_readable() {
    let e = moved(
        Moved,
        Handle::Remnant(i(3)),
        DELETED,
        Handle::Item(i(3)),
        F1,
    );
    assert_eq!(
        e.to_string(),
        "MovedEvent item i3' in deleteditems (was i3 in f1)"
    );
    assert_eq!(
        folder_mod(F1, CASE, Some(2)).to_string(),
        "ModifiedEvent folder f1 in case, unread 2"
    );
    let op = subscribe(1, &[CASE, F1], &[Created, Moved]);
    assert_eq!(
        op.to_string(),
        "s1 = Subscribe(pull, [case, f1], [CreatedEvent, MovedEvent])"
    );
}

#[test]
fn a_bulk_create_predicts_what_as_many_single_creates_do_and_names_no_item_later() {
    let bulk = Op::CreateItems {
        first: i(1),
        count: 3,
        folder: CASE,
        read: false,
    };
    let singles = [create(1, CASE), create(2, CASE), create(3, CASE)];
    let mut m = Model::new();
    let mut one = Vec::new();
    for op in &singles {
        one.extend(events_of_last(m.clone(), std::slice::from_ref(op)));
        m.apply(op).expect("valid");
    }
    assert_eq!(last(std::slice::from_ref(&bulk)), one);
    assert_eq!(bulk.to_string(), "i1..i3 = CreateItems(3, unread, in case)");
    let mut m = Model::new();
    m.apply(&bulk).expect("valid");
    assert!(
        m.addressable_items().is_empty(),
        "no response captures them"
    );
    assert_eq!(m.next_item_handle(), i(4));
    assert!(m.apply(&Op::SetSubject { item: i(2) }).is_err());
    for count in [0, Op::MAX_BULK + 1] {
        let bad = Op::CreateItems {
            first: i(9),
            count,
            folder: CASE,
            read: false,
        };
        assert!(Model::new().apply(&bad).is_err(), "count {count}");
    }
    let text = to_case_toml(
        "bulk",
        std::slice::from_ref(&bulk),
        &predict(std::slice::from_ref(&bulk)).expect("valid"),
        &Latitude::reference(),
    );
    assert!(text.contains("count = 3"), "{text}");
}

// ------------------------------------------------ per-profile predictions

fn logged_last(profile: &Latitude, ops: &[Op]) -> Vec<LoggedEvent> {
    let mut model = Model::for_profile(profile).with_unread_baseline(DELETED, 0);
    let (last, setup) = ops.split_last().expect("at least one operation");
    for op in setup {
        model.apply(op).expect("setup is valid");
    }
    model.apply(last).expect("the operation is valid")
}

/// An unread item moved to Deleted Items, then deleted there again with
/// MoveToDeletedItems.
fn redelete() -> Vec<Op> {
    vec![
        create(1, CASE),
        Op::DeleteItem {
            item: i(1),
            how: DeleteHow::MoveToDeletedItems,
        },
        create(2, DELETED),
        Op::DeleteItem {
            item: i(2),
            how: DeleteHow::MoveToDeletedItems,
        },
    ]
}

#[test]
fn move_to_deleted_items_of_an_item_in_deleted_items_is_a_soft_delete_on_exchange() {
    let ops = redelete();
    let to_dumpster = moved(
        Moved,
        Handle::Remnant(i(2)),
        FolderHandle::Dumpster,
        Handle::Item(i(2)),
        DELETED,
    );
    let deleted = item_ev(Deleted, 2, DELETED);
    // R75 read literally: a move within Deleted Items.
    let within = moved(
        Moved,
        Handle::Remnant(i(2)),
        DELETED,
        Handle::Item(i(2)),
        DELETED,
    );
    let events = |profile: &Latitude| -> Vec<ExpectedEvent> {
        logged_last(profile, &ops)
            .into_iter()
            .map(|l| l.event)
            .collect()
    };

    // Only Exchange's soft delete: i1 (unread) stays in Deleted Items, i2
    // leaves it: unread 2 -> 1.
    let soft_only = Latitude {
        redelete: Redelete::SoftDelete,
        ..Latitude::exchange2013()
    };
    let after = folder_mod(DELETED, ROOT, Some(1));
    assert_eq!(events(&soft_only), vec![to_dumpster.clone(), after]);
    assert!(logged_last(&soft_only, &ops)[0].alternatives.is_empty());

    // Exchange 2013 / Online: a MovedEvent to the dumpster (R76), or the
    // literal move; Deleted Items' unread count is then unknown.
    let unknown = folder_mod(DELETED, ROOT, None);
    let e13 = logged_last(&Latitude::exchange2013(), &ops);
    assert_eq!(
        events(&Latitude::exchange2013()),
        vec![to_dumpster.clone(), unknown.clone()]
    );
    assert_eq!(e13[0].alternatives, vec![within.clone()]);

    // Exchange 2010: a DeletedEvent.
    let e10 = logged_last(&Latitude::exchange2010(), &ops);
    assert_eq!(
        events(&Latitude::exchange2010()),
        vec![deleted.clone(), unknown.clone()]
    );
    assert_eq!(e10[0].alternatives, vec![within.clone()]);

    // Unknown version: any of the three.
    let any = logged_last(&Latitude::exchange(), &ops);
    assert_eq!(any[0].event, to_dumpster);
    assert_eq!(any[0].alternatives, vec![deleted, within.clone()]);
    assert_eq!(any[1].event, unknown);

    // The reference server moves it within Deleted Items.
    assert_eq!(
        events(&Latitude::reference()),
        vec![
            within,
            folder_mod(DELETED, ROOT, Some(2)),
            folder_mod(DELETED, ROOT, Some(2)),
        ]
    );
}

#[test]
fn soft_delete_follows_the_profile_and_all_folders_see_the_deleted_form() {
    let ops = [
        create(1, CASE),
        Op::DeleteItem {
            item: i(1),
            how: DeleteHow::SoftDelete,
        },
    ];
    let e10 = logged_last(&Latitude::exchange2010(), &ops);
    assert_eq!(e10[0].event, item_ev(Deleted, 1, CASE));
    let e13 = logged_last(&Latitude::exchange2013(), &ops);
    assert_eq!(e13[0].event.kind, Moved);
    assert_eq!(
        e13[0].all_folders,
        AllFolders::Also(item_ev(Deleted, 1, CASE))
    );

    // A SubscribeToAllFolders subscription on 2013 may get either form.
    let mut all = vec![Op::Subscribe {
        sub: SubHandle(1),
        mode: Mode::Pull,
        scope: Scope::AllFolders,
        event_types: all_types(),
    }];
    all.extend(ops.iter().cloned());
    all.push(poll(1));
    let p = predict_for(&Latitude::exchange2013(), &all).expect("valid");
    let soft = &p.subscriptions[&SubHandle(1)].events[2];
    assert_eq!(soft.event.kind, Moved);
    assert_eq!(soft.alternatives, vec![item_ev(Deleted, 1, CASE)]);
    // The reference model has one form only.
    let p = predict(&all).expect("valid");
    assert!(!p.subscriptions[&SubHandle(1)].events[2].has_latitude());
}

#[test]
fn a_form_outside_the_subscription_makes_the_event_optional() {
    // A copy from the case folder into f1, watched on the case folder only:
    // the CopiedEvent names the case folder as old parent, a CreatedEvent (R77)
    // would not, so the subscription may see nothing.
    let ops = [
        mkdir(1, CASE),
        create(1, CASE),
        subscribe(1, &[CASE], &[Copied, Created]),
        Op::CopyItem {
            item: i(1),
            to: F1,
            new: i(2),
        },
        poll(1),
    ];
    let p = predict(&ops).expect("valid");
    let events = &p.subscriptions[&SubHandle(1)].events;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.kind, Copied);
    assert!(
        events[0].optional,
        "the CreatedEvent form is outside the case folder"
    );
    // Watching f1 too, both forms are visible: the event must come.
    let mut both = ops.to_vec();
    both[2] = subscribe(1, &[CASE, F1], &[Copied, Created]);
    let p = predict(&both).expect("valid");
    let copy = &p.subscriptions[&SubHandle(1)].events[0];
    assert!(!copy.optional);
    assert_eq!(copy.alternatives[0].kind, Created);
}

#[test]
fn a_move_to_deleted_items_is_optional_for_all_folders_on_exchange_2013_only() {
    let ops = vec![
        Op::Subscribe {
            sub: SubHandle(1),
            mode: Mode::Pull,
            scope: Scope::AllFolders,
            event_types: all_types(),
        },
        create(1, CASE),
        Op::DeleteItem {
            item: i(1),
            how: DeleteHow::MoveToDeletedItems,
        },
        poll(1),
    ];
    let moved_of = |profile: &Latitude| {
        let p = predict_for(profile, &ops).expect("valid");
        p.subscriptions[&SubHandle(1)]
            .events
            .iter()
            .find(|e| e.event.kind == Moved)
            .cloned()
            .expect("a MovedEvent")
    };
    assert!(moved_of(&Latitude::exchange2013()).optional);
    assert!(moved_of(&Latitude::exchange()).optional);
    assert!(!moved_of(&Latitude::exchange2010()).optional);
    assert!(!moved_of(&Latitude::reference()).optional);
}

#[test]
fn profile_names_follow_the_suite_profiles_and_versions() {
    let name = |n: &str| Latitude::named(n).map(|p| p.name);
    assert_eq!(name("exchange2010"), Some("exchange2010"));
    assert_eq!(name("Exchange2013-and-Online"), Some("exchange2013"));
    assert_eq!(name("exchange-online"), Some("exchange2013"));
    assert_eq!(name("exchange"), Some("exchange"));
    assert_eq!(name("reference"), Some("reference"));
    assert_eq!(name("something else"), None);
    assert_eq!(Latitude::exchange2010().soft_delete, SoftDelete::Deleted);
    assert_eq!(Latitude::exchange2013().soft_delete, SoftDelete::ToDumpster);
    assert_eq!(Latitude::exchange().soft_delete, SoftDelete::Either);
    // R77 is open in every profile.
    assert!(Latitude::reference().copy_as_created);
}
