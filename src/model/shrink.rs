//! Operation-level minimisation. Proptest shrinks the drawn numbers, and a
//! removed number changes how the later ones read, so its result often
//! keeps operations that do not matter. This pass removes operations
//! directly: first in halving chunks (cheap on long sequences), then one at
//! a time, each together with the later operations that need what it made,
//! keeping each removal after which the failure remains.
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
    tried: usize,
    done: bool,
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
            self.done = true;
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
