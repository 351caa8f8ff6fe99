//! Operation-level minimisation. Proptest shrinks the drawn numbers, and a
//! removed number changes how the later ones read, so its result often
//! keeps operations that do not matter. This pass removes operations
//! directly: one at a time, together with the later operations that need
//! what it made, keeping each removal after which the failure remains.

use super::mailbox::Model;
use super::ops::Op;

/// The smallest sequence this pass finds for which `fails` still holds.
/// `fails` is called with valid sequences only, at most
/// `ops.len()²` times; `ops` itself is assumed to fail.
pub fn minimize(ops: &[Op], mut fails: impl FnMut(&[Op]) -> bool) -> Vec<Op> {
    let mut current = valid_prefix_filter(ops, None);
    loop {
        let mut progress = false;
        let mut i = 0;
        while i < current.len() {
            let candidate = valid_prefix_filter(&current, Some(i));
            if candidate.len() < current.len() && fails(&candidate) {
                current = candidate;
                progress = true;
            } else {
                i += 1;
            }
        }
        if !progress {
            return current;
        }
    }
}

/// `ops` without the operation at `skip`, and without every operation the
/// model then rejects (those that used what the skipped one made).
fn valid_prefix_filter(ops: &[Op], skip: Option<usize>) -> Vec<Op> {
    let mut model = Model::new();
    ops.iter()
        .enumerate()
        .filter(|(k, _)| Some(*k) != skip)
        .filter(|(_, op)| model.apply(op).is_ok())
        .map(|(_, op)| op.clone())
        .collect()
}
