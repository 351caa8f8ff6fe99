//! Operation-level minimisation removes what a failure does not need, with
//! the operations that depend on it, and never yields an invalid sequence.

use ews_conformance::model::{
    DeleteHow, FolderHandle, GenConfig, ItemHandle, Latitude, Mode, Op, Scope, SubHandle,
    describe_sequence, judge, minimize, ops_strategy, predict, simulate,
};
use ews_proto::ews::EventKind;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

fn create(n: u32) -> Op {
    Op::CreateItem {
        item: ItemHandle(n),
        folder: FolderHandle::Case,
        read: false,
    }
}

#[test]
fn removing_an_operation_removes_its_dependants() {
    let ops = vec![
        create(1),
        create(2),
        Op::CreateFolder {
            folder: FolderHandle::User(1),
            parent: FolderHandle::Case,
        },
        Op::MoveItem {
            item: ItemHandle(2),
            to: FolderHandle::User(1),
            new: ItemHandle(3),
        },
        Op::SetSubject {
            item: ItemHandle(3),
        },
        create(4),
    ];
    let mut calls = 0;
    let has_move = |ops: &[Op]| ops.iter().any(|op| matches!(op, Op::MoveItem { .. }));
    let small = minimize(&ops, |candidate| {
        calls += 1;
        assert!(predict(candidate).is_ok(), "only valid candidates");
        has_move(candidate)
    });
    assert_eq!(small, vec![ops[1].clone(), ops[2].clone(), ops[3].clone()]);
    assert!(calls <= ops.len() * ops.len());
    // Removing the folder takes the move (and what followed from it) along.
    let no_folder = minimize(&ops, |c| c.len() >= 3 && !has_move(c));
    assert!(!has_move(&no_folder));
}

/// A target that loses the MovedEvent of every soft delete.
fn loses_soft_deletes(ops: &[Op]) -> bool {
    let Ok(prediction) = predict(ops) else {
        return false;
    };
    let mut observed = simulate(&prediction);
    let dumpster = format!("id-{}", FolderHandle::Dumpster);
    for o in observed.subscriptions.values_mut() {
        for d in &mut o.deliveries {
            d.notification.events.retain(|e| {
                !(e.kind == EventKind::Moved
                    && e.parent_folder_id
                        .as_ref()
                        .is_some_and(|p| p.id == dumpster))
            });
        }
    }
    !judge(&prediction, &observed, &Latitude::reference()).is_empty()
}

#[test]
fn a_found_failure_minimises_to_its_essentials() {
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(7),
        ..Config::default()
    });
    let result = runner.run(&ops_strategy(GenConfig::default()), |ops| {
        if loses_soft_deletes(&ops) {
            Err(TestCaseError::fail("soft delete lost"))
        } else {
            Ok(())
        }
    });
    let Err(TestError::Fail(_, shrunk)) = result else {
        panic!("the fault must be found: {result:?}");
    };
    let small = minimize(&shrunk, loses_soft_deletes);
    assert!(loses_soft_deletes(&small));
    let text = describe_sequence(&small);
    assert_eq!(small.len(), 4, "{text}");
    // A subscription, an item made before it is soft-deleted, and the poll
    // (the subscription may come before or after the item).
    let at = |f: fn(&Op) -> bool| small.iter().position(f);
    let created = at(|op| matches!(op, Op::CreateItem { .. }));
    let deleted = at(|op| {
        matches!(
            op,
            Op::DeleteItem {
                how: DeleteHow::SoftDelete,
                ..
            }
        )
    });
    let subscribed = at(|op| matches!(op, Op::Subscribe { .. }));
    assert!(created.is_some() && created < deleted, "{text}");
    assert!(subscribed.is_some() && subscribed < deleted, "{text}");
    assert!(matches!(small[3], Op::Poll { .. }), "{text}");
    assert!(small.len() <= shrunk.len());
}

#[test]
fn a_passing_remainder_is_never_chosen() {
    let ops = vec![
        Op::Subscribe {
            sub: SubHandle(1),
            mode: Mode::Pull,
            scope: Scope::AllFolders,
            event_types: [EventKind::Created].into_iter().collect(),
        },
        create(1),
        Op::Poll { sub: SubHandle(1) },
    ];
    // Nothing smaller fails: the sequence comes back whole.
    assert_eq!(minimize(&ops, |c| c.len() == 3), ops);
}

#[test]
fn long_sequences_shrink_in_chunks_with_few_runs() {
    // 200 items, one of which matters, and a subscription that sees it.
    let mut ops = vec![Op::Subscribe {
        sub: SubHandle(1),
        mode: Mode::Pull,
        scope: Scope::Folders([FolderHandle::Case].into()),
        event_types: [EventKind::Created].into_iter().collect(),
    }];
    ops.extend((1..=200).map(create));
    ops.push(Op::Poll { sub: SubHandle(1) });
    let essential = |c: &[Op]| {
        c.iter()
            .any(|op| matches!(op, Op::CreateItem { item, .. } if *item == ItemHandle(137)))
            && c.iter().any(|op| matches!(op, Op::Poll { .. }))
    };
    let mut calls = 0;
    let small = minimize(&ops, |c| {
        calls += 1;
        essential(c)
    });
    assert_eq!(small.len(), 3, "{}", describe_sequence(&small));
    assert!(
        calls < 60,
        "halving chunks find the one item in {calls} runs (one at a time would need ~200)"
    );
}

#[test]
fn the_minimizer_hands_out_one_candidate_until_told_the_result() {
    let ops = vec![
        Op::Subscribe {
            sub: SubHandle(1),
            mode: Mode::Pull,
            scope: Scope::AllFolders,
            event_types: [EventKind::Created].into_iter().collect(),
        },
        create(1),
        create(2),
        Op::Poll { sub: SubHandle(1) },
    ];
    let mut m = ews_conformance::model::Minimizer::new(&ops);
    let first = m.candidate().expect("something to try");
    assert_eq!(m.candidate(), Some(first.clone()), "asked again: the same");
    assert!(first.len() < ops.len());
    assert!(predict(&first).is_ok(), "only valid candidates");
    m.report(false);
    assert_eq!(m.tried(), 1);
    assert_eq!(
        m.current(),
        ops.as_slice(),
        "a passing candidate is not kept"
    );
    while let Some(c) = m.candidate() {
        let keep = c.len() >= 3 && c.iter().any(|op| matches!(op, Op::Poll { .. }));
        m.report(keep);
    }
    assert!(m.is_done());
    assert_eq!(m.current().len(), 3, "{}", describe_sequence(m.current()));
}

#[test]
fn bulk_counts_are_lowered_to_the_least_that_still_fails() {
    let bulk = |first: u32, count: u32| Op::CreateItems {
        first: ItemHandle(first),
        count,
        folder: FolderHandle::Case,
        read: false,
    };
    let ops = vec![
        Op::Subscribe {
            sub: SubHandle(1),
            mode: Mode::Pull,
            scope: Scope::Folders([FolderHandle::Case].into()),
            event_types: [EventKind::Created].into_iter().collect(),
        },
        bulk(1, 40),
        create(41),
        bulk(42, 117),
        Op::Poll { sub: SubHandle(1) },
    ];
    // Fails while the poll sees at least 51 CreatedEvents.
    let created = |c: &[Op]| -> u32 {
        c.iter()
            .map(|op| match op {
                Op::CreateItem { .. } => 1,
                Op::CreateItems { count, .. } => *count,
                _ => 0,
            })
            .sum()
    };
    let mut calls = 0;
    let small = minimize(&ops, |c| {
        calls += 1;
        assert!(predict(c).is_ok(), "only valid candidates");
        created(c) >= 51 && c.iter().any(|op| matches!(op, Op::Poll { .. }))
    });
    assert_eq!(small.len(), 3, "{}", describe_sequence(&small));
    assert_eq!(created(&small), 51, "{}", describe_sequence(&small));
    assert!(calls < 40, "bisection, not counting down: {calls} runs");
}
