//! Which cases of the suite must catch each fault of the reference server,
//! and which check kinds show they caught it for the right reason. This is
//! knowledge about the suite, so it lives here and not in the server.
//!
//! A fault marked `pending` waits for a catcher another part of the suite
//! will add; the self-test reports it as "awaiting catcher" instead of failing.

use ews_server::Fault;

/// What the self-test expects of the suite while one fault is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Catchers {
    pub fault: Fault,
    /// Case ids that must fail while the fault is on.
    pub cases: &'static [&'static str],
    /// Check kinds whose findings show the right reason (besides a requirement id).
    pub checks: &'static [&'static str],
    /// The catchers (or their check kinds) are not in the suite yet.
    pub pending: bool,
}

const fn c(
    fault: Fault,
    cases: &'static [&'static str],
    checks: &'static [&'static str],
) -> Catchers {
    Catchers {
        fault,
        cases,
        checks,
        pending: false,
    }
}

/// One entry per fault, in [`Fault`] order.
const CATCHERS: &[Catchers] = &[
    c(
        Fault::ResumeIgnoresWatermark,
        &[
            "subscribe/resume-from-watermark",
            "subscribe/unknown-watermark",
        ],
        &["events", "codes"],
    ),
    c(
        Fault::ResumeRefused,
        &["subscribe/resume-from-watermark"],
        &["codes"],
    ),
    c(
        Fault::EventTypeFilterIgnored,
        &[
            "getevents/event-type-filter",
            "getevents/created-item-event",
        ],
        &["events"],
    ),
    c(
        Fault::FolderFilterIgnored,
        &["getevents/folder-filter"],
        &["events", "asserts"],
    ),
    c(
        Fault::ChildFolderLeak,
        &[
            "getevents/filter-exact-decoys",
            "streaming/filter-exact-decoys",
            "push/filter-exact-decoys",
        ],
        &["events"],
    ),
    c(
        Fault::CrossMailboxLeak,
        &[
            "getevents/other-mailbox-inbox",
            "streaming/other-mailbox-inbox",
            "push/other-mailbox-inbox",
        ],
        &["events"],
    ),
    c(
        Fault::DelegateSubscribeAllowed,
        &["subscribe/delegate-access"],
        &["codes"],
    ),
    c(
        Fault::PushUrlUnchecked,
        &["subscribe/push-url-invalid"],
        &["codes"],
    ),
    c(
        Fault::PullTimeoutUnchecked,
        &["subscribe/pull-timeout-bounds"],
        &["codes"],
    ),
    c(
        Fault::StatusFrequencyUnchecked,
        &["subscribe/push-status-frequency-bounds"],
        &["codes"],
    ),
    c(
        Fault::FreeBusyAnyVersion,
        &["subscribe/freebusy-version"],
        &["codes"],
    ),
    c(
        Fault::Batch51,
        &["getevents/batching-120", "getevents/batching-boundary-51"],
        &["events", "asserts", "batching"],
    ),
    c(
        Fault::DropEvent,
        &["getevents/batching-120"],
        &["events", "batching"],
    ),
    c(
        Fault::RepeatEvent,
        &[
            "getevents/created-item-event",
            "subscribe/resume-from-watermark",
        ],
        &["events", "watermark", "golden"],
    ),
    c(
        Fault::ReorderEvents,
        &["getevents/unread-count", "getevents/watermark-chain"],
        &["events", "watermark"],
    ),
    c(
        Fault::MoreEventsFalse,
        &["getevents/batching-120", "getevents/batching-boundary-51"],
        &["events", "batching"],
    ),
    c(
        Fault::StalePreviousWatermark,
        &["getevents/previous-watermark-chain"],
        &["asserts", "watermark"],
    ),
    c(
        Fault::NoStatusEvent,
        &["getevents/idle-status-event", "getevents/watermark-chain"],
        &["events"],
    ),
    c(
        Fault::NoOwnerCheck,
        &["getevents/other-user-denied"],
        &["codes"],
    ),
    c(Fault::NeverExpire, &["getevents/expiry"], &["codes"]),
    c(
        Fault::TimeoutNotReset,
        &["getevents/timeout-reset"],
        &["codes"],
    ),
    c(
        Fault::WrongNotFoundCode,
        &["getevents/unknown-subscription", "unsubscribe/unknown-id"],
        &["codes"],
    ),
    c(
        Fault::TimestampInvalid,
        &[
            "getevents/created-item-event",
            "getevents/new-mail-delivery",
        ],
        &["asserts"],
    ),
    c(
        Fault::NewMailMissing,
        &["getevents/new-mail-delivery"],
        &["events"],
    ),
    c(
        Fault::UnreadCountWrong,
        &["getevents/unread-count"],
        &["events"],
    ),
    c(
        Fault::MovedOldParentWrong,
        &["getevents/moved-event"],
        &["events"],
    ),
    c(
        Fault::NewMailOnSave,
        &[
            "getevents/save-is-not-new-mail",
            "streaming/save-is-not-new-mail",
            "push/save-is-not-new-mail",
        ],
        &["events"],
    ),
    c(
        Fault::StatusEventTimestamp,
        &["getevents/idle-status-event"],
        &["structure"],
    ),
    c(
        Fault::UnsubscribeKeepsSubscription,
        &["unsubscribe/then-getevents", "unsubscribe/twice"],
        &["codes"],
    ),
    c(
        Fault::UnsubscribeUnknownSucceeds,
        &["unsubscribe/unknown-id"],
        &["codes"],
    ),
    c(
        Fault::HttpsNamespaces,
        &[
            "subscribe/pull-inbox",
            "getevents/idle-status-event",
            "seeds/003-subscribe-pull",
        ],
        &["codes", "structure", "shape"],
    ),
    c(
        Fault::ResponseCodeAfterLinkKey,
        &[
            "getevents/unknown-subscription",
            "unsubscribe/unknown-id",
            "seeds/002-getevents-access-denied",
        ],
        &["structure", "shape"],
    ),
    c(
        Fault::NoResponseClass,
        &["subscribe/pull-inbox", "getevents/unknown-subscription"],
        &["codes", "structure"],
    ),
    c(
        Fault::SuccessWithErrorCode,
        &[
            "getevents/unknown-subscription",
            "getevents/garbage-watermark",
            "unsubscribe/unknown-id",
        ],
        &["codes"],
    ),
    c(
        Fault::SkipRequestValidation,
        &[
            "subscribe/pull-missing-timeout",
            "subscribe/pull-timeout-bounds",
            "subscribe/out-of-order",
            "subscribe/eventtypes-missing",
        ],
        &["codes"],
    ),
    c(
        Fault::StreamFirstEnvelopeHeld,
        &["streaming/first-envelope"],
        &["notify"],
    ),
    c(
        Fault::StreamNeverCloses,
        &["streaming/open-and-close"],
        &["notify"],
    ),
    c(
        Fault::ConnectionStatusOkOnError,
        &[
            "streaming/only-bad-id",
            "seeds/000-001-getstreamingevents-error",
        ],
        &["asserts", "notify"],
    ),
    c(
        Fault::StreamDuplicateDeclaration,
        &["streaming/open-and-close", "streaming/two-subscriptions"],
        &["notify", "structure"],
    ),
    c(
        Fault::StreamNoHeartbeats,
        &["streaming/idle-heartbeats"],
        &["notify"],
    ),
    c(
        Fault::StreamingAnyVersion,
        &["subscribe/streaming-old-version", "streaming/old-version"],
        &["codes"],
    ),
    c(
        Fault::ConnectionTimeoutUnchecked,
        &["streaming/connection-timeout-bounds"],
        &["codes"],
    ),
    c(
        Fault::StreamReconnectGap,
        &["streaming/reconnect-keeps-events"],
        &["events"],
    ),
    c(
        Fault::SecondConnectionSilent,
        &["streaming/second-connection"],
        &["codes"],
    ),
    c(
        Fault::PushNoStatusEvent,
        &["push/status-event", "push/answer-ok-continues"],
        &["notify"],
    ),
    c(
        Fault::PushIgnoresUnsubscribe,
        &["push/answer-unsubscribe-stops"],
        &["notify"],
    ),
    c(
        Fault::PushNeverRetries,
        &["push/retry-schedule"],
        &["notify"],
    ),
    c(
        Fault::PushWrongSubscriptionId,
        &["push/one-notification-per-push", "push/status-event"],
        &["notify"],
    ),
];

/// A fault as the self-test judges it: the server's description and broken
/// rules, with the suite's catchers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    pub fault: Fault,
    pub name: &'static str,
    pub rules: &'static [&'static str],
    pub catchers: &'static [&'static str],
    pub checks: &'static [&'static str],
    pub pending: bool,
}

/// What the self-test expects while `fault` is on.
pub fn expectation(fault: Fault) -> Expectation {
    let info = fault.info();
    let catchers = &CATCHERS[fault as usize];
    Expectation {
        fault,
        name: info.name,
        rules: info.rules,
        catchers: catchers.cases,
        checks: catchers.checks,
        pending: catchers.pending,
    }
}

/// Which cases run against each fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every case: the matrix shows every case that notices the fault.
    Full,
    /// Only the cases the catalogue names as the fault's catchers.
    Catalogue,
}

impl Scope {
    pub fn describe(self) -> &'static str {
        match self {
            Scope::Full => "the whole suite against every fault",
            Scope::Catalogue => "only the catalogue's named catchers against each fault",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ews_server::CATALOGUE;

    #[test]
    fn one_entry_per_fault_in_catalogue_order() {
        assert_eq!(CATCHERS.len(), CATALOGUE.len());
        for (i, (c, info)) in CATCHERS.iter().zip(CATALOGUE).enumerate() {
            assert_eq!(c.fault, info.fault, "entry {i}");
            assert_eq!(c.fault as usize, i, "entry {i}");
            assert!(
                !c.cases.is_empty() || c.pending,
                "{} has no catcher",
                info.name
            );
            assert!(!c.checks.is_empty(), "{} names no check", info.name);
        }
    }
}
