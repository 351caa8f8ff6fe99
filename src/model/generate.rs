//! The generator: builds valid sequences by simulating the model. Proptest
//! draws a list of plain number triples; each triple is read against the
//! current model state, so it can only pick operations and handles that are
//! valid at that point. Shrinking removes or lowers triples, and the
//! reading stays valid (lower numbers pick the first, simplest choices).

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::mailbox::{InvalidOp, Model};
use super::ops::{DeleteHow, FolderHandle, Mode, Op, OtherAction, Scope};
use ews_proto::ews::EventKind;

/// One drawn triple: which operation, then two numbers for its arguments.
pub type OpSeed = (u32, u32, u32);

/// What a generated sequence may contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenConfig {
    /// Bounds on the drawn operations (final polls come on top).
    pub min_ops: usize,
    pub max_ops: usize,
    /// Subscription modes to use.
    pub modes: Vec<Mode>,
    /// Use the Inbox and Deleted Items as item folders and subscription
    /// folders, and deliver mail. Other activity in the mailbox shows up
    /// there, so against a shared target such sequences must run alone.
    pub shared_folders: bool,
    /// Make SubscribeToAllFolders subscriptions (same caveat).
    pub all_folders: bool,
    pub max_user_folders: usize,
    /// Subscriptions made in total, resumed ones included.
    pub max_subscriptions: usize,
    /// Weight of Poll among the operation kinds (about 30 in total): low
    /// values let queues grow past 50 events between polls.
    pub poll_weight: u32,
    /// The DeleteType values DeleteItem and DeleteFolder use (empty: HardDelete).
    /// Soft deletes and MoveToDeletedItems put items into folders every
    /// sequence shares (the dumpster, Deleted Items).
    pub delete_kinds: Vec<DeleteHow>,
    /// Weight of CreateItems (one request making many messages) among
    /// the operation kinds: a few of them carry a queue past 50 events.
    pub bulk_weight: u32,
    /// The largest `count` a CreateItems draws (1 and up, shrinking towards 1).
    pub max_bulk: u32,
    /// Let the second user deliver and save mail in their own mailbox
    /// (decoys: none of it may reach our subscriptions). Explore turns it
    /// off when the target has no second user.
    pub other_mailbox: bool,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            min_ops: 1,
            max_ops: 60,
            modes: Mode::ALL.to_vec(),
            shared_folders: true,
            all_folders: true,
            max_user_folders: 4,
            max_subscriptions: 4,
            poll_weight: 4,
            delete_kinds: DeleteHow::ALL.to_vec(),
            bulk_weight: 1,
            max_bulk: 120,
            other_mailbox: true,
        }
    }
}

impl GenConfig {
    /// Long sequences with rare polls: hundreds of events, batches past 50.
    pub fn long() -> Self {
        GenConfig {
            min_ops: 200,
            max_ops: 400,
            poll_weight: 1,
            ..GenConfig::default()
        }
    }

    /// Only what runs in an isolated case folder against any target: pull
    /// subscriptions on the case folder and its subfolders.
    pub fn isolated_pull() -> Self {
        GenConfig {
            modes: vec![Mode::Pull],
            shared_folders: false,
            all_folders: false,
            other_mailbox: false,
            ..GenConfig::default()
        }
    }
}

/// Sequences of `min_ops..=max_ops` drawn operations plus a final poll
/// of every live subscription.
pub fn ops_strategy(config: GenConfig) -> BoxedStrategy<Vec<Op>> {
    let max = config.max_ops.max(1);
    let min = config.min_ops.clamp(1, max);
    proptest::collection::vec(any::<OpSeed>(), min..=max)
        .prop_filter_map(
            "the generator produced an invalid operation",
            move |seeds| build_ops(&seeds, &config).ok(),
        )
        .boxed()
}

/// Reads `seeds` against the model, one operation each, then polls every
/// live subscription once more so the oracle can check everything.
pub fn build_ops(seeds: &[OpSeed], config: &GenConfig) -> Result<Vec<Op>, InvalidOp> {
    let mut model = Model::new();
    let mut ops = Vec::with_capacity(seeds.len() + config.max_subscriptions);
    for &seed in seeds {
        let op = choose(&model, config, seed);
        model.apply(&op)?;
        ops.push(op);
    }
    for (sub, _) in model.live_subscriptions() {
        let op = Op::Poll { sub };
        model.apply(&op)?;
        ops.push(op);
    }
    Ok(ops)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Subscribe,
    Poll,
    Remember,
    Resubscribe,
    Unsubscribe,
    CreateItem,
    CreateItems,
    Deliver,
    MarkRead,
    SetSubject,
    MoveItem,
    CopyItem,
    DeleteItem,
    CreateFolder,
    DeleteFolder,
    OtherMailbox,
}

/// The event types a generated subscription picks from.
const SUBSCRIBABLE: [EventKind; 6] = [
    EventKind::Created,
    EventKind::Modified,
    EventKind::Moved,
    EventKind::Copied,
    EventKind::Deleted,
    EventKind::NewMail,
];

fn pick<T: Copy>(list: &[T], n: u32) -> Option<T> {
    if list.is_empty() {
        None
    } else {
        Some(list[n as usize % list.len()])
    }
}

fn choose(model: &Model, config: &GenConfig, (choice, a, b): OpSeed) -> Op {
    let live = model.live_subscriptions();
    let pulls: Vec<_> = live
        .iter()
        .filter(|(_, m)| *m == Mode::Pull)
        .map(|(s, _)| *s)
        .collect();
    // Push subscriptions end by answering a notification, not by Unsubscribe (R62).
    let unsubscribable: Vec<_> = live
        .iter()
        .filter(|(_, m)| *m != Mode::Push)
        .map(|(s, _)| *s)
        .collect();
    let items = model.addressable_items();
    let user_folders = model.user_folders();
    let targets: Vec<FolderHandle> = model
        .usable_folders()
        .into_iter()
        .filter(|f| {
            config.shared_folders || !matches!(f, FolderHandle::Inbox | FolderHandle::DeletedItems)
        })
        .collect();
    let can_subscribe =
        model.subscription_count() < config.max_subscriptions && !config.modes.is_empty();
    let resumable = model.resumable_watermarks();

    let mut menu: Vec<(Kind, u32)> = Vec::new();
    if live.is_empty() && can_subscribe {
        menu.push((Kind::Subscribe, 1));
    } else {
        let mut offer = |kind, weight, available: bool| {
            if available && weight > 0 {
                menu.push((kind, weight));
            }
        };
        offer(Kind::Subscribe, 2, can_subscribe);
        offer(Kind::Poll, config.poll_weight, !live.is_empty());
        offer(Kind::Remember, 1, !pulls.is_empty());
        offer(Kind::Resubscribe, 1, !resumable.is_empty() && can_subscribe);
        offer(Kind::Unsubscribe, 1, !unsubscribable.is_empty());
        offer(Kind::CreateItem, 8, true);
        offer(Kind::CreateItems, config.bulk_weight, config.max_bulk > 0);
        offer(Kind::Deliver, 2, config.shared_folders);
        offer(Kind::MarkRead, 3, !items.is_empty());
        offer(Kind::SetSubject, 2, !items.is_empty());
        offer(Kind::MoveItem, 3, !items.is_empty());
        offer(Kind::CopyItem, 2, !items.is_empty());
        offer(Kind::DeleteItem, 3, !items.is_empty());
        offer(
            Kind::CreateFolder,
            2,
            user_folders.len() < config.max_user_folders,
        );
        offer(Kind::DeleteFolder, 1, !user_folders.is_empty());
        offer(Kind::OtherMailbox, 2, config.other_mailbox);
    }
    let total: u32 = menu.iter().map(|(_, w)| *w).sum();
    let mut at = if total == 0 { 0 } else { choice % total };
    let mut kind = Kind::CreateItem;
    for (k, w) in &menu {
        if at < *w {
            kind = *k;
            break;
        }
        at -= *w;
    }

    let create_in_case = || Op::CreateItem {
        item: model.next_item_handle(),
        folder: FolderHandle::Case,
        read: false,
    };
    match kind {
        Kind::Subscribe => {
            let mode = pick(&config.modes, a).unwrap_or(Mode::Pull);
            let scope = if config.all_folders && b % 5 == 4 {
                Scope::AllFolders
            } else {
                let mask = b >> 3;
                let mut set: BTreeSet<FolderHandle> = targets
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| *k < 32 && mask & (1 << k) != 0)
                    .map(|(_, f)| *f)
                    .collect();
                if set.is_empty() {
                    set.insert(FolderHandle::Case);
                }
                Scope::Folders(set)
            };
            let mask = (a >> 4) & 0b11_1111;
            let event_types: BTreeSet<EventKind> = if mask == 0 {
                SUBSCRIBABLE.into_iter().collect()
            } else {
                SUBSCRIBABLE
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| mask & (1 << k) != 0)
                    .map(|(_, e)| *e)
                    .collect()
            };
            Op::Subscribe {
                sub: model.next_sub_handle(),
                mode,
                scope,
                event_types,
            }
        }
        Kind::Poll => match pick(&live, a) {
            Some((sub, _)) => Op::Poll { sub },
            None => create_in_case(),
        },
        Kind::Remember => match pick(&pulls, a) {
            Some(sub) => Op::Remember {
                sub,
                watermark: model.next_watermark_handle(),
            },
            None => create_in_case(),
        },
        Kind::Resubscribe => match pick(&resumable, a) {
            Some(from) => Op::Resubscribe {
                sub: model.next_sub_handle(),
                from,
            },
            None => create_in_case(),
        },
        Kind::Unsubscribe => match pick(&unsubscribable, a) {
            Some(sub) => Op::Unsubscribe { sub },
            None => create_in_case(),
        },
        Kind::CreateItem => Op::CreateItem {
            item: model.next_item_handle(),
            folder: pick(&targets, a).unwrap_or(FolderHandle::Case),
            read: b % 3 == 2,
        },
        Kind::CreateItems => Op::CreateItems {
            first: model.next_item_handle(),
            // Lower numbers, fewer messages: proptest shrinks the count too.
            count: 1 + (b >> 2) % config.max_bulk.clamp(1, Op::MAX_BULK),
            folder: pick(&targets, a).unwrap_or(FolderHandle::Case),
            read: b % 3 == 2,
        },
        Kind::Deliver => Op::Deliver {
            item: model.next_item_handle(),
        },
        Kind::MarkRead | Kind::SetSubject | Kind::MoveItem | Kind::CopyItem | Kind::DeleteItem => {
            let Some(item) = pick(&items, a) else {
                return create_in_case();
            };
            let (folder, read) = model.item(item).unwrap_or((FolderHandle::Case, false));
            match kind {
                Kind::MarkRead => Op::MarkRead { item, read: !read },
                Kind::SetSubject => Op::SetSubject { item },
                Kind::MoveItem => {
                    let elsewhere: Vec<_> =
                        targets.iter().copied().filter(|f| *f != folder).collect();
                    match pick(&elsewhere, b) {
                        Some(to) => Op::MoveItem {
                            item,
                            to,
                            new: model.next_item_handle(),
                        },
                        None => Op::SetSubject { item },
                    }
                }
                Kind::CopyItem => Op::CopyItem {
                    item,
                    to: pick(&targets, b).unwrap_or(folder),
                    new: model.next_item_handle(),
                },
                _ => Op::DeleteItem {
                    item,
                    how: pick(&config.delete_kinds, b).unwrap_or(DeleteHow::HardDelete),
                },
            }
        }
        Kind::CreateFolder => {
            let mut parents = vec![FolderHandle::Case];
            parents.extend(user_folders.iter().copied());
            Op::CreateFolder {
                folder: model.next_folder_handle(),
                parent: pick(&parents, a).unwrap_or(FolderHandle::Case),
            }
        }
        Kind::OtherMailbox => Op::OtherMailbox {
            action: if a % 2 == 0 {
                OtherAction::Deliver
            } else {
                OtherAction::SaveInInbox
            },
        },
        Kind::DeleteFolder => match pick(&user_folders, a) {
            Some(folder) => Op::DeleteFolder {
                folder,
                how: pick(&config.delete_kinds, b).unwrap_or(DeleteHow::HardDelete),
            },
            None => create_in_case(),
        },
    }
}
