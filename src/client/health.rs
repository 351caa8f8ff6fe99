//! Whether the target is still there. Every request of a run reports here
//! how it went; once the target has failed too many requests in a row at
//! transport level (refused, reset, or no answer by the deadline), with no
//! answer in between, it is taken for dead: every later request fails at
//! once as unreachable, so a run against a dead target ends in seconds
//! instead of waiting out each case's deadlines. Any HTTP answer at all,
//! however slow or wrong, proves the target alive and resets the count.

use std::sync::Mutex;

use super::error::TransportError;

/// Failures in a row that declare a target that never answered dead: the
/// first cases all wait out their request deadline at once, so a dead
/// target is known after one deadline, not after one per case.
pub const NEVER_ANSWERED_LIMIT: u32 = 3;

/// Failures in a row that declare a target that did answer before dead
/// (it died mid-run); higher, since one stalled case must not end a run.
pub const STOPPED_ANSWERING_LIMIT: u32 = 6;

#[derive(Debug, Default)]
pub struct TargetHealth {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    answered: bool,
    failures_in_a_row: u32,
    last_failure: Option<String>,
    dead: Option<String>,
}

impl TargetHealth {
    /// Why the target is taken for dead, once it is.
    pub fn dead(&self) -> Option<String> {
        self.lock().dead.clone()
    }

    /// A request got an HTTP answer (any status, any body).
    pub fn answered(&self) {
        let mut s = self.lock();
        s.answered = true;
        s.failures_in_a_row = 0;
    }

    /// A request failed; only transport-level failures count.
    pub fn failed(&self, error: &TransportError) {
        if !matches!(
            error,
            TransportError::Unreachable { .. } | TransportError::Timeout { .. }
        ) {
            // A broken or foreign answer is still an answer.
            if matches!(
                error,
                TransportError::Protocol { .. } | TransportError::MisAnswered { .. }
            ) {
                self.answered();
            }
            return;
        }
        let mut s = self.lock();
        s.failures_in_a_row += 1;
        s.last_failure = Some(error.to_string());
        let limit = if s.answered {
            STOPPED_ANSWERING_LIMIT
        } else {
            NEVER_ANSWERED_LIMIT
        };
        if s.dead.is_none() && s.failures_in_a_row >= limit {
            let how = if s.answered {
                "stopped answering"
            } else {
                "never answered"
            };
            s.dead = Some(format!(
                "the target {how}: {} requests in a row failed without an answer (last: {}); the remaining requests of this run are not sent",
                s.failures_in_a_row,
                s.last_failure.as_deref().unwrap_or("-")
            ));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn timeout() -> TransportError {
        TransportError::Timeout {
            after: Duration::from_secs(30),
        }
    }

    #[test]
    fn a_target_that_never_answers_is_dead_after_three_failures() {
        let h = TargetHealth::default();
        h.failed(&timeout());
        h.failed(&timeout());
        assert_eq!(h.dead(), None);
        h.failed(&timeout());
        let why = h.dead().expect("dead");
        assert!(
            why.contains("never answered") && why.contains("3 requests"),
            "{why}"
        );
    }

    #[test]
    fn any_answer_resets_the_count_and_raises_the_limit() {
        let h = TargetHealth::default();
        h.failed(&timeout());
        h.failed(&timeout());
        h.answered();
        for _ in 0..STOPPED_ANSWERING_LIMIT - 1 {
            h.failed(&timeout());
        }
        assert_eq!(h.dead(), None);
        // A garbage answer is an answer.
        h.failed(&TransportError::Protocol {
            detail: "garbage".into(),
        });
        for _ in 0..STOPPED_ANSWERING_LIMIT - 1 {
            h.failed(&TransportError::Unreachable {
                detail: "connection refused".into(),
            });
        }
        assert_eq!(h.dead(), None);
        h.failed(&timeout());
        assert!(h.dead().expect("dead").contains("stopped answering"));
    }
}
