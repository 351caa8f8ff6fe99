//! A mailbox's append-only event log. Watermarks are cursors into it and
//! subscriptions are cursors plus a [`Filter`], so batching, resume and
//! replay are all "read the entries after position N".

use std::collections::{HashMap, HashSet, VecDeque};

use super::ids::{decode_watermark, encode_refreshed_watermark, encode_watermark};
use ews_proto::ews::{Event, EventKind, Id, ObjectId};

/// How many entries a log keeps before dropping the oldest; older
/// watermarks then answer ErrorInvalidWatermark, as Exchange does for
/// watermarks past its retention window.
pub const RETAINED_EVENTS: usize = 100_000;

/// One logged event, with the internal folder numbers used for filtering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    pub seq: u64,
    pub kind: EventKind,
    pub timestamp: String,
    pub object: ObjectId,
    pub parent: Id,
    pub old_object: Option<ObjectId>,
    pub old_parent: Option<Id>,
    pub unread_count: Option<i64>,
    /// The folder itself, for folder events.
    pub folder_key: Option<u64>,
    pub parent_key: u64,
    pub old_parent_key: Option<u64>,
}

impl LoggedEvent {
    /// The wire form; `watermark` is the event's own, or `None` on streaming.
    pub fn to_event(&self, watermark: Option<String>) -> Event {
        Event {
            kind: self.kind,
            watermark,
            timestamp: Some(self.timestamp.clone()),
            object: Some(self.object.clone()),
            parent_folder_id: Some(self.parent.clone()),
            old_object: self.old_object.clone(),
            old_parent_folder_id: self.old_parent.clone(),
            unread_count: self.unread_count,
        }
    }
}

/// What a subscription sees: folders (by internal number) and event kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub all_folders: bool,
    pub folders: HashSet<u64>,
    pub kinds: HashSet<EventKind>,
}

impl Filter {
    pub fn admits(&self, e: &LoggedEvent) -> bool {
        if !self.kinds.contains(&e.kind) {
            return false;
        }
        self.all_folders
            || self.folders.contains(&e.parent_key)
            || e.old_parent_key.is_some_and(|k| self.folders.contains(&k))
            || e.folder_key.is_some_and(|k| self.folders.contains(&k))
    }
}

/// The log itself. Sequence numbers start at 1; position 0 is "before everything".
#[derive(Debug)]
pub struct EventLog {
    nonce: u64,
    entries: VecDeque<LoggedEvent>,
    head: u64,
    /// Fault `drop-event`: every n-th item event of a folder is never logged.
    drop_every: Option<u64>,
    item_events_per_folder: HashMap<u64, u64>,
}

impl EventLog {
    pub fn new(nonce: u64) -> Self {
        EventLog {
            nonce,
            entries: VecDeque::new(),
            head: 0,
            drop_every: None,
            item_events_per_folder: HashMap::new(),
        }
    }

    /// Loses every `n`-th item event of each folder from now on (a fault).
    pub fn drop_one_in(&mut self, n: u64) {
        self.drop_every = Some(n.max(1));
    }

    /// The sequence number of the newest entry (0 when empty).
    pub fn head(&self) -> u64 {
        self.head
    }

    pub fn watermark(&self, seq: u64) -> String {
        encode_watermark(self.nonce, seq)
    }

    /// A refreshed watermark: another string naming the same position.
    pub fn refreshed_watermark(&self, seq: u64) -> String {
        encode_refreshed_watermark(self.nonce, seq)
    }

    /// The position a watermark names, if it is one of this log's and still retained.
    pub fn position(&self, watermark: &str) -> Option<u64> {
        let (nonce, seq) = decode_watermark(watermark)?;
        let oldest = self.entries.front().map_or(self.head, |e| e.seq - 1);
        (nonce == self.nonce && seq >= oldest && seq <= self.head).then_some(seq)
    }

    /// Appends an event; its `seq` is assigned here.
    pub fn append(&mut self, mut e: LoggedEvent) {
        if let Some(n) = self.drop_every
            && !e.object.is_folder()
        {
            let count = self.item_events_per_folder.entry(e.parent_key).or_default();
            *count += 1;
            if count.is_multiple_of(n) {
                return;
            }
        }
        self.head += 1;
        e.seq = self.head;
        self.entries.push_back(e);
        while self.entries.len() > RETAINED_EVENTS {
            self.entries.pop_front();
        }
    }

    /// The first `limit` admitted events after position `after`, and whether more remain.
    pub fn read_after(
        &self,
        after: u64,
        filter: &Filter,
        limit: usize,
    ) -> (Vec<LoggedEvent>, bool) {
        let start = match self.entries.front() {
            Some(first) if after >= first.seq => (after - first.seq + 1) as usize,
            _ => 0,
        };
        let mut found = Vec::new();
        for e in self.entries.iter().skip(start) {
            if e.seq <= after || !filter.admits(e) {
                continue;
            }
            if found.len() == limit {
                return (found, true);
            }
            found.push(e.clone());
        }
        (found, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(parent: u64) -> LoggedEvent {
        LoggedEvent {
            seq: 0,
            kind: EventKind::Created,
            timestamp: "2026-01-01T00:00:00Z".into(),
            object: ObjectId::Item(Id::new("i")),
            parent: Id::new("p"),
            old_object: None,
            old_parent: None,
            unread_count: None,
            folder_key: None,
            parent_key: parent,
            old_parent_key: None,
        }
    }

    fn filter(folders: &[u64]) -> Filter {
        Filter {
            all_folders: false,
            folders: folders.iter().copied().collect(),
            kinds: [EventKind::Created].into_iter().collect(),
        }
    }

    #[test]
    fn reads_in_batches_with_more_flag() {
        let mut log = EventLog::new(5);
        for i in 0..120 {
            log.append(created(if i % 2 == 0 { 1 } else { 2 }));
        }
        let f = filter(&[1]);
        let (a, more) = log.read_after(0, &f, 50);
        assert_eq!((a.len(), more), (50, true));
        let (b, more) = log.read_after(a[49].seq, &f, 50);
        assert_eq!((b.len(), more), (10, false));
        assert!(b.iter().all(|e| e.parent_key == 1));
        let (exact, more) = log.read_after(0, &filter(&[2]), 60);
        assert_eq!((exact.len(), more), (60, false));
    }

    #[test]
    fn a_lossy_log_drops_every_nth_item_event_per_folder() {
        let mut log = EventLog::new(5);
        log.drop_one_in(3);
        for i in 0..9 {
            log.append(created(if i < 6 { 1 } else { 2 }));
        }
        let all = |f| log.read_after(0, &filter(&[f]), 100).0.len();
        assert_eq!((all(1), all(2)), (4, 2), "counted per folder");
        assert_eq!(log.head(), 6, "lost events take no sequence number");
    }

    #[test]
    fn watermarks_are_checked_against_the_log() {
        let mut log = EventLog::new(5);
        log.append(created(1));
        assert_eq!(log.position(&log.watermark(1)), Some(1));
        assert_eq!(log.position(&log.watermark(0)), Some(0));
        assert_eq!(log.position(&log.watermark(2)), None, "future");
        assert_eq!(
            log.position(&EventLog::new(6).watermark(0)),
            None,
            "foreign"
        );
        assert_eq!(log.position("junk"), None);
    }
}
