//! Operation-level minimisation. Proptest shrinks the drawn numbers, and a
//! removed number changes how the later ones read, so its result often
//! keeps operations that do not matter. This pass removes operations
//! directly: first in halving chunks (cheap on long sequences), then one at
//! a time, each together with the later operations that need what it made,
//! keeping each removal after which the failure remains. Then it merges
//! neighbouring item creations into one folder into one CreateItems, lowers
//! the count of every CreateItems by bisection, and if either changed
//! something tries removing single operations again.
//!
//! [`Minimizer`] is the same search as a state machine (ask for a
//! candidate, report whether it failed), so a driver can run each candidate
//! against a target asynchronously; [`minimize`] drives it with a closure.

use std::ops::Range;

use super::mailbox::Model;
use super::ops::Op;

/// The smallest sequence this pass finds for which `fails` still holds.
/// `fails` is called with valid sequences only, at most about
/// `ops.len()²` times; `ops` itself is assumed to fail.
pub fn minimize(ops: &[Op], mut fails: impl FnMut(&[Op]) -> bool) -> Vec<Op> {
    let mut m = Minimizer::new(ops);
    while let Some(candidate) = m.candidate() {
        let failed = fails(&candidate);
        m.report(failed);
    }
    m.into_current()
}

/// The minimisation search, one candidate at a time.
///
/// ```text
/// let mut m = Minimizer::new(&failing);
/// while let Some(candidate) = m.candidate() {
///     m.report(run(&candidate).is_failure());
/// }
/// let small = m.into_current();
/// ```
#[derive(Debug, Clone)]
pub struct Minimizer {
    current: Vec<Op>,
    /// Size of the chunk removed next.
    chunk: usize,
    /// Start of the chunk removed next.
    at: usize,
    /// Whether the current single-operation pass removed something.
    progress: bool,
    /// The candidate handed out and not yet reported.
    pending: Option<Vec<Op>>,
    /// Lowering counts: the next operation to look at, and whether a count went down.
    counts: Option<CountPhase>,
    tried: usize,
    done: bool,
}

#[derive(Debug, Clone)]
struct CountPhase {
    /// Merging neighbours (before bisecting counts).
    merging: bool,
    /// The operation being bisected, or the next one to look at.
    index: usize,
    /// The bisection on `index`: the lowest count not yet ruled out, and
    /// the lowest known to fail (the current one).
    range: Option<(u32, u32)>,
    lowered: bool,
}

impl Minimizer {
    /// Starts from `ops` (assumed to fail), without the operations the model rejects.
    pub fn new(ops: &[Op]) -> Self {
        let current = without(ops, 0..0);
        let chunk = (current.len() / 2).max(1);
        Minimizer {
            done: current.is_empty(),
            current,
            chunk,
            at: 0,
            progress: false,
            pending: None,
            counts: None,
            tried: 0,
        }
    }

    /// The next sequence to try, or `None` when the search is over. Asking
    /// again before [`Minimizer::report`] returns the same candidate.
    pub fn candidate(&mut self) -> Option<Vec<Op>> {
        if let Some(p) = &self.pending {
            return Some(p.clone());
        }
        while !self.done {
            if self.counts.is_some() {
                if let Some(candidate) = self.count_candidate() {
                    self.pending = Some(candidate.clone());
                    return Some(candidate);
                }
                continue;
            }
            if self.at >= self.current.len() {
                self.next_pass();
                continue;
            }
            let end = (self.at + self.chunk).min(self.current.len());
            let candidate = without(&self.current, self.at..end);
            if candidate.len() < self.current.len() && !candidate.is_empty() {
                self.pending = Some(candidate.clone());
                return Some(candidate);
            }
            self.at += self.chunk;
        }
        None
    }

    /// Whether the last candidate still fails.
    pub fn report(&mut self, fails: bool) {
        let Some(candidate) = self.pending.take() else {
            return;
        };
        self.tried += 1;
        if let Some(phase) = &mut self.counts {
            if phase.merging {
                if fails {
                    phase.lowered = true;
                    self.current = candidate;
                } else {
                    phase.index += 1;
                }
                return;
            }
            if let Some((lo, hi)) = phase.range {
                let mid = lo + (hi - lo) / 2;
                phase.range = Some(if fails {
                    phase.lowered = true;
                    self.current = candidate;
                    (lo, mid)
                } else {
                    (mid + 1, hi)
                });
            }
            return;
        }
        if fails {
            self.current = candidate;
            self.progress = true;
            // The chunk at `at` is new now: try it before moving on.
        } else {
            self.at += self.chunk;
        }
    }

    fn next_pass(&mut self) {
        self.at = 0;
        if self.chunk > 1 {
            self.chunk = (self.chunk / 2).max(1);
            self.progress = false;
        } else if self.progress {
            self.progress = false;
        } else {
            self.counts = Some(CountPhase {
                merging: true,
                index: 0,
                range: None,
                lowered: false,
            });
        }
    }

    /// The next candidate of the count phase; `None` when the phase moved
    /// on (ask again) or ended (then `done`, or back to removing operations).
    fn count_candidate(&mut self) -> Option<Vec<Op>> {
        let phase = self.counts.as_mut()?;
        if phase.merging {
            while phase.index + 1 < self.current.len() {
                let k = phase.index;
                if let Some(merged) = merge(&self.current[k], &self.current[k + 1]) {
                    let mut candidate = self.current.clone();
                    candidate.splice(k..k + 2, [merged]);
                    let candidate = without(&candidate, 0..0);
                    if !candidate.is_empty() && candidate.len() < self.current.len() {
                        return Some(candidate);
                    }
                }
                phase.index += 1;
            }
            phase.merging = false;
            phase.index = 0;
            return None;
        }
        match phase.range {
            Some((lo, hi)) if lo < hi => {
                let mid = lo + (hi - lo) / 2;
                let mut candidate = self.current.clone();
                if let Some(Op::CreateItems { count, .. }) = candidate.get_mut(phase.index) {
                    *count = mid;
                }
                let candidate = without(&candidate, 0..0);
                if candidate.len() == self.current.len() {
                    return Some(candidate);
                }
                // The model rejects the lower count: treat it as passing.
                phase.range = Some((mid + 1, hi));
                None
            }
            Some(_) => {
                phase.range = None;
                phase.index += 1;
                None
            }
            None => {
                let next = self.current[phase.index.min(self.current.len())..]
                    .iter()
                    .position(|op| matches!(op, Op::CreateItems { count, .. } if *count > 1));
                match next {
                    Some(k) => {
                        phase.index += k;
                        if let Some(Op::CreateItems { count, .. }) = self.current.get(phase.index) {
                            phase.range = Some((1, *count));
                        }
                    }
                    None => {
                        let lowered = phase.lowered;
                        self.counts = None;
                        if lowered {
                            // Fewer messages may leave other operations unneeded.
                            self.chunk = 1;
                            self.at = 0;
                            self.progress = false;
                        } else {
                            self.done = true;
                        }
                    }
                }
                None
            }
        }
    }

    /// The smallest failing sequence found so far.
    pub fn current(&self) -> &[Op] {
        &self.current
    }

    pub fn into_current(self) -> Vec<Op> {
        self.current
    }

    /// Candidates reported so far.
    pub fn tried(&self) -> usize {
        self.tried
    }

    pub fn is_done(&self) -> bool {
        self.done && self.pending.is_none()
    }
}

/// One CreateItems for two neighbouring item creations into one folder
/// (the first one's handle and read state).
fn merge(a: &Op, b: &Op) -> Option<Op> {
    let creation = |op: &Op| match op {
        Op::CreateItem { item, folder, read } => Some((*item, 1, *folder, *read)),
        Op::CreateItems {
            first,
            count,
            folder,
            read,
        } => Some((*first, *count, *folder, *read)),
        _ => None,
    };
    let (first, n, folder, read) = creation(a)?;
    let (_, m, other, _) = creation(b)?;
    let count = n.checked_add(m)?;
    (folder == other && count <= Op::MAX_BULK).then_some(Op::CreateItems {
        first,
        count,
        folder,
        read,
    })
}

/// `ops` without the operations in `skip`, and without every operation
/// the model then rejects (those that used what the skipped ones made).
fn without(ops: &[Op], skip: Range<usize>) -> Vec<Op> {
    let mut model = Model::new();
    ops.iter()
        .enumerate()
        .filter(|(k, _)| !skip.contains(k))
        .filter(|(_, op)| model.apply(op).is_ok())
        .map(|(_, op)| op.clone())
        .collect()
}
