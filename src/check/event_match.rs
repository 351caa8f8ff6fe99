//! Matching received events against expected patterns, burst by burst.
//!
//! One operation can raise several events (a delivery: CreatedEvent,
//! NewMailEvent and the Inbox's ModifiedEvent; a move: MovedEvent and a
//! ModifiedEvent per folder). `t:NotificationType` is an unbounded
//! `xs:choice` and the documentation names those events without an order,
//! so the events of one operation may arrive in any order; the order of
//! operations stays strict. The patterns of a step are grouped into
//! *bursts* by [`bursts`]: each burst is matched in any order, the bursts
//! in sequence.

use std::ops::Range;

use crate::case::EventPattern;
use ews_proto::ews::{Event, EventKind, Id, ObjectId};

/// Larger bursts are matched greedily, most specific pattern first, instead
/// of trying every order (no real operation raises that many events).
const MAX_PERMUTED: usize = 6;

/// Groups the patterns (in the case's order) into the bursts of single
/// operations. A pattern starts a new burst unless it accompanies the
/// burst before it:
/// - a NewMailEvent accompanies a burst holding a CreatedEvent and no
///   NewMailEvent (and a CreatedEvent one holding a NewMailEvent and no
///   CreatedEvent), when their item ids do not disagree;
/// - a folder ModifiedEvent (a pattern naming a `folder`, or neither an
///   `item` nor a `folder`) accompanies a burst led by an item event, when
///   the burst has no folder ModifiedEvent for the same folder yet.
pub(crate) fn bursts(patterns: &[Rendered]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for (i, p) in patterns.iter().enumerate() {
        let joins = out
            .last()
            .is_some_and(|b| accompanies(p, &patterns[b.clone()]));
        match out.last_mut() {
            Some(b) if joins => b.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

fn accompanies(p: &Rendered, burst: &[Rendered]) -> bool {
    let Some(lead) = burst.first() else {
        return false;
    };
    let has = |k: EventKind| burst.iter().any(|q| q.kind == k);
    let pair = |want: EventKind, other: EventKind| {
        has(want)
            && !has(other)
            && burst
                .iter()
                .filter(|q| q.kind == want)
                .all(|q| same_or_unsaid(q.item(), p.item()))
    };
    match p.kind {
        EventKind::NewMail => pair(EventKind::Created, EventKind::NewMail),
        EventKind::Created => pair(EventKind::NewMail, EventKind::Created),
        EventKind::Modified if p.is_folder_change() => {
            lead.is_item_event()
                && !burst
                    .iter()
                    .skip(1)
                    .any(|q| q.is_folder_change() && q.folder() == p.folder())
        }
        _ => false,
    }
}

fn same_or_unsaid(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// Why the events do not meet the patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// In-order mode: pattern `pattern` found no event after the events
    /// of the bursts before it; `earlier` when a matching event came before.
    Missing { pattern: usize, earlier: bool },
    /// Exact mode: the events of burst `burst` (starting at event `at`) are
    /// not its patterns in some order.
    NotExact { burst: Range<usize>, at: usize },
    /// Exact mode: the counts differ.
    Count { expected: usize, got: usize },
}

/// In-order mode: every burst's patterns appear, in any order among
/// themselves, after the events the bursts before it matched. Other events
/// may come between.
pub(crate) fn in_order(patterns: &[Rendered], events: &[&Event]) -> Result<(), Mismatch> {
    let mut from = 0;
    for burst in bursts(patterns) {
        let group = &patterns[burst.clone()];
        match earliest_end(group, &events[from..]) {
            Some(end) => from += end,
            None => {
                // Name the first pattern of the burst that cannot be placed.
                let pattern = group
                    .iter()
                    .position(|p| !events[from..].iter().any(|ev| p.matches(ev)))
                    .map_or(burst.start, |k| burst.start + k);
                let earlier = events[..from]
                    .iter()
                    .any(|ev| patterns[pattern].matches(ev));
                return Err(Mismatch::Missing { pattern, earlier });
            }
        }
    }
    Ok(())
}

/// The events exact mode counts. A StatusEvent says "nothing happened"
/// (pull, when the queue is empty; push, every StatusFrequency; some
/// servers also at once after Subscribe): it counts only when a pattern
/// names one.
pub(crate) fn counted<'e>(patterns: &[Rendered], events: &[&'e Event]) -> Vec<&'e Event> {
    let status_expected = patterns.iter().any(|p| p.kind == EventKind::Status);
    events
        .iter()
        .copied()
        .filter(|e| status_expected || e.kind != EventKind::Status)
        .collect()
}

/// Exact mode: the [`counted`] events are exactly the patterns, burst after
/// burst, each burst's events in any order.
pub(crate) fn exact(patterns: &[Rendered], events: &[&Event]) -> Result<(), Mismatch> {
    let mut at = 0;
    for burst in bursts(patterns) {
        let group = &patterns[burst.clone()];
        let end = at + group.len();
        if end > events.len() || !is_permutation(group, &events[at..end]) {
            if end > events.len() && events.len() != patterns.len() {
                return Err(Mismatch::Count {
                    expected: patterns.len(),
                    got: events.len(),
                });
            }
            return Err(Mismatch::NotExact { burst, at });
        }
        at = end;
    }
    if at != events.len() {
        return Err(Mismatch::Count {
            expected: patterns.len(),
            got: events.len(),
        });
    }
    Ok(())
}

/// The smallest `end` such that every pattern matches a distinct event of
/// `events[..end]`, or `None`.
fn earliest_end(group: &[Rendered], events: &[&Event]) -> Option<usize> {
    if group.len() <= MAX_PERMUTED {
        let mut best = None;
        permute(&mut (0..group.len()).collect(), 0, &mut |order| {
            if let Some(end) = in_sequence(order.iter().map(|&k| &group[k]), events) {
                best = Some(best.map_or(end, |b: usize| b.min(end)));
            }
        });
        best
    } else {
        greedy(group, events)
    }
}

/// Matches the patterns as a subsequence in the given order; the index
/// after the last matched event.
fn in_sequence<'p>(order: impl Iterator<Item = &'p Rendered>, events: &[&Event]) -> Option<usize> {
    let mut from = 0;
    for p in order {
        from += events[from..].iter().position(|ev| p.matches(ev))? + 1;
    }
    Some(from)
}

fn greedy(group: &[Rendered], events: &[&Event]) -> Option<usize> {
    let mut order: Vec<&Rendered> = group.iter().collect();
    order.sort_by_key(|p| std::cmp::Reverse(p.specificity()));
    let mut used = vec![false; events.len()];
    let mut end = 0;
    for p in order {
        let k = (0..events.len()).find(|&k| !used[k] && p.matches(events[k]))?;
        used[k] = true;
        end = end.max(k + 1);
    }
    Some(end)
}

fn is_permutation(group: &[Rendered], events: &[&Event]) -> bool {
    if group.len() <= MAX_PERMUTED {
        let mut found = false;
        permute(&mut (0..group.len()).collect(), 0, &mut |order| {
            found |= order
                .iter()
                .zip(events)
                .all(|(&k, ev)| group[k].matches(ev));
        });
        found
    } else {
        greedy(group, events).is_some()
    }
}

/// Calls `f` with every order of `items[k..]` (Heap-free swap recursion).
fn permute(items: &mut Vec<usize>, k: usize, f: &mut dyn FnMut(&[usize])) {
    if k + 1 >= items.len() {
        f(items);
        return;
    }
    for i in k..items.len() {
        items.swap(k, i);
        permute(items, k + 1, f);
        items.swap(k, i);
    }
}

/// An expected event with its templates substituted: what `events` and
/// `notify` match the received events against.
pub(crate) struct Rendered {
    pub(crate) line: usize,
    pub(crate) kind: EventKind,
    /// item, folder, parent, old_item, old_folder, old_parent.
    ids: [Option<String>; 6],
    unread_count: Option<i64>,
}

const ID_NAMES: [&str; 6] = [
    "item",
    "folder",
    "parent",
    "old_item",
    "old_folder",
    "old_parent",
];

impl Rendered {
    /// The pattern with each template field passed through `render`.
    pub(crate) fn from_pattern<E>(
        p: &EventPattern,
        render: impl Fn(&str) -> Result<String, E>,
    ) -> Result<Self, E> {
        let r = |v: &Option<String>| v.as_deref().map(&render).transpose();
        Ok(Rendered {
            line: p.line,
            kind: p.kind,
            ids: [
                r(&p.item)?,
                r(&p.folder)?,
                r(&p.parent)?,
                r(&p.old_item)?,
                r(&p.old_folder)?,
                r(&p.old_parent)?,
            ],
            unread_count: p.unread_count,
        })
    }

    pub(crate) fn item(&self) -> Option<&str> {
        self.ids[0].as_deref()
    }

    pub(crate) fn folder(&self) -> Option<&str> {
        self.ids[1].as_deref()
    }

    /// A ModifiedEvent about a folder: one naming a `folder`, or naming
    /// neither an item nor a folder (the folder change a delivery raises).
    pub(crate) fn is_folder_change(&self) -> bool {
        self.kind == EventKind::Modified && self.item().is_none()
    }

    /// An event about an item (or, for moves and copies, either kind of object).
    pub(crate) fn is_item_event(&self) -> bool {
        match self.kind {
            EventKind::Created
            | EventKind::NewMail
            | EventKind::Moved
            | EventKind::Copied
            | EventKind::Deleted => self.folder().is_none(),
            EventKind::Modified => self.item().is_some(),
            _ => false,
        }
    }

    /// How many properties the pattern pins down.
    pub(crate) fn specificity(&self) -> usize {
        self.ids.iter().filter(|i| i.is_some()).count() + usize::from(self.unread_count.is_some())
    }

    #[cfg(test)]
    pub(crate) fn for_test(kind: EventKind, item: Option<&str>, folder: Option<&str>) -> Self {
        Rendered {
            line: 0,
            kind,
            ids: [
                item.map(str::to_string),
                folder.map(str::to_string),
                None,
                None,
                None,
                None,
            ],
            unread_count: None,
        }
    }

    pub(crate) fn matches(&self, ev: &Event) -> bool {
        fn item(o: &Option<ObjectId>) -> Option<&Id> {
            match o {
                Some(ObjectId::Item(id)) => Some(id),
                _ => None,
            }
        }
        fn folder(o: &Option<ObjectId>) -> Option<&Id> {
            match o {
                Some(ObjectId::Folder(id)) => Some(id),
                _ => None,
            }
        }
        let got = [
            item(&ev.object),
            folder(&ev.object),
            ev.parent_folder_id.as_ref(),
            item(&ev.old_object),
            folder(&ev.old_object),
            ev.old_parent_folder_id.as_ref(),
        ];
        ev.kind == self.kind
            && self.ids.iter().zip(got).all(|(want, got)| {
                want.as_ref()
                    .is_none_or(|w| got.is_some_and(|g| &g.id == w))
            })
            && self.unread_count.is_none_or(|n| ev.unread_count == Some(n))
    }
}

impl std::fmt::Display for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind)?;
        let mut parts: Vec<String> = ID_NAMES
            .iter()
            .zip(&self.ids)
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
        if let Some(n) = self.unread_count {
            parts.push(format!("unread_count={n}"));
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ews_proto::ews::{Id, ObjectId};

    fn id(s: &str) -> Id {
        Id {
            id: s.into(),
            change_key: None,
        }
    }

    fn ev(kind: EventKind, item: Option<&str>, folder: Option<&str>) -> Event {
        Event {
            kind,
            object: item
                .map(|i| ObjectId::Item(id(i)))
                .or_else(|| folder.map(|f| ObjectId::Folder(id(f)))),
            ..Event::status(None)
        }
    }

    fn pat(kind: EventKind, item: Option<&str>, folder: Option<&str>) -> Rendered {
        Rendered::for_test(kind, item, folder)
    }

    use EventKind::{Created, Modified, Moved, NewMail};

    #[test]
    fn a_delivery_and_its_folder_change_form_one_burst() {
        let p = [
            pat(Created, Some("A"), None),
            pat(NewMail, Some("A"), None),
            pat(Modified, None, Some("inbox")),
            pat(Created, Some("B"), None),
        ];
        assert_eq!(bursts(&p), vec![0..3, 3..4]);
        // Two folder changes of different folders join a move.
        let p = [
            pat(Moved, None, None),
            pat(Modified, None, Some("from")),
            pat(Modified, None, Some("to")),
            pat(Modified, None, Some("to")),
        ];
        assert_eq!(bursts(&p), vec![0..3, 3..4]);
        // Folder changes with no item event before them are operations of their own.
        let p = [
            pat(Modified, None, Some("f")),
            pat(Modified, None, Some("f")),
        ];
        assert_eq!(bursts(&p), vec![0..1, 1..2]);
        // Two deliveries' NewMailEvents are two operations.
        let p = [pat(NewMail, Some("A"), None), pat(NewMail, Some("B"), None)];
        assert_eq!(bursts(&p), vec![0..1, 1..2]);
    }

    #[test]
    fn events_of_one_operation_match_in_any_order() {
        let p = [
            pat(Created, None, None),
            pat(NewMail, None, None),
            pat(Modified, None, None),
        ];
        let got = [
            ev(Created, Some("A"), None),
            ev(Modified, None, Some("inbox")),
            ev(NewMail, Some("A"), None),
        ];
        let refs: Vec<&Event> = got.iter().collect();
        assert_eq!(in_order(&p, &refs), Ok(()));
        assert_eq!(exact(&p, &refs), Ok(()));
    }

    #[test]
    fn the_order_of_operations_stays_strict() {
        let p = [pat(Created, Some("A"), None), pat(Created, Some("B"), None)];
        let got = [ev(Created, Some("B"), None), ev(Created, Some("A"), None)];
        let refs: Vec<&Event> = got.iter().collect();
        assert_eq!(
            in_order(&p, &refs),
            Err(Mismatch::Missing {
                pattern: 1,
                earlier: true
            })
        );
        assert_eq!(
            exact(&p, &refs),
            Err(Mismatch::NotExact { burst: 0..1, at: 0 })
        );
        // A burst's events may not straddle the next operation's.
        let p = [
            pat(Created, Some("A"), None),
            pat(Modified, None, Some("f")),
            pat(Created, Some("B"), None),
        ];
        let got = [
            ev(Created, Some("A"), None),
            ev(Created, Some("B"), None),
            ev(Modified, None, Some("f")),
        ];
        let refs: Vec<&Event> = got.iter().collect();
        assert!(in_order(&p, &refs).is_err());
    }

    #[test]
    fn a_status_event_counts_only_when_expected() {
        let status = Event::status(Some("W".into()));
        let created = ev(Created, Some("A"), None);
        let got = [&status, &created];
        let p = [pat(Created, Some("A"), None)];
        assert_eq!(exact(&p, &counted(&p, &got)), Ok(()));
        let p = [pat(EventKind::Status, None, None)];
        assert!(exact(&p, &counted(&p, &got)).is_err());
    }

    #[test]
    fn the_least_specific_pattern_does_not_steal_an_event() {
        let p = [
            pat(Moved, None, None),
            pat(Modified, None, None),
            pat(Modified, None, Some("to")),
        ];
        let got = [
            ev(Moved, Some("A"), None),
            ev(Modified, None, Some("to")),
            ev(Modified, None, Some("from")),
        ];
        let refs: Vec<&Event> = got.iter().collect();
        assert_eq!(in_order(&p, &refs), Ok(()));
        assert_eq!(exact(&p, &refs), Ok(()));
        let short = &refs[..2];
        assert_eq!(
            exact(&p, short),
            Err(Mismatch::Count {
                expected: 3,
                got: 2
            })
        );
    }
}
