//! The fault catalogue: named ways to break the reference server on
//! purpose, so the self-test can prove that the suite notices each one.
//!
//! Every fault has a stable kebab-case name, a one-line description and the
//! requirements it breaks. [`CATALOGUE`] is the single table; `serve --fault
//! NAME` and [`ServerConfig::faults`] switch faults on, and the server asks
//! `faults.has(Fault::X)` at exactly one place per fault (a unit test below
//! counts them). Which cases catch a fault is the harness's knowledge, not
//! the server's: it lives with the self-test.
//!
//! [`ServerConfig::faults`]: super::ServerConfig::faults

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use regex::Regex;

use super::sync::lock;
use ews_proto::ews::{Event, EventKind};

/// One deliberate defect of the reference server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Fault {
    // Subscribe
    ResumeIgnoresWatermark,
    ResumeRefused,
    EventTypeFilterIgnored,
    FolderFilterIgnored,
    ChildFolderLeak,
    CrossMailboxLeak,
    DelegateSubscribeAllowed,
    PushUrlUnchecked,
    PullTimeoutUnchecked,
    StatusFrequencyUnchecked,
    FreeBusyAnyVersion,
    // GetEvents
    Batch51,
    DropEvent,
    RepeatEvent,
    ReorderEvents,
    MoreEventsFalse,
    StalePreviousWatermark,
    NoStatusEvent,
    NoOwnerCheck,
    NeverExpire,
    TimeoutNotReset,
    WrongNotFoundCode,
    TimestampInvalid,
    NewMailMissing,
    UnreadCountWrong,
    MovedOldParentWrong,
    NewMailOnSave,
    StatusEventTimestamp,
    // Unsubscribe
    UnsubscribeKeepsSubscription,
    UnsubscribeUnknownSucceeds,
    // Every response
    HttpsNamespaces,
    ResponseCodeAfterLinkKey,
    NoResponseClass,
    SuccessWithErrorCode,
    SkipRequestValidation,
    // GetStreamingEvents
    StreamFirstEnvelopeHeld,
    StreamNeverCloses,
    ConnectionStatusOkOnError,
    StreamDuplicateDeclaration,
    StreamNoHeartbeats,
    StreamingAnyVersion,
    ConnectionTimeoutUnchecked,
    StreamReconnectGap,
    SecondConnectionSilent,
    // Push
    PushNoStatusEvent,
    PushIgnoresUnsubscribe,
    PushNeverRetries,
    PushWrongSubscriptionId,
}

/// What the catalogue says about one fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultInfo {
    pub fault: Fault,
    /// The stable kebab-case name (`serve --fault NAME`).
    pub name: &'static str,
    /// The operation whose behaviour breaks.
    pub operation: &'static str,
    pub description: &'static str,
    /// The requirement ids (cases/requirements.toml) the fault breaks.
    pub rules: &'static [&'static str],
}

const fn f(
    fault: Fault,
    name: &'static str,
    operation: &'static str,
    description: &'static str,
    rules: &'static [&'static str],
) -> FaultInfo {
    FaultInfo {
        fault,
        name,
        operation,
        description,
        rules,
    }
}

/// Every fault, in [`Fault`] order.
pub const CATALOGUE: &[FaultInfo] = &[
    f(
        Fault::ResumeIgnoresWatermark,
        "resume-ignores-watermark",
        "Subscribe",
        "Subscribe ignores t:Watermark: delivery starts at the newest event and unknown watermarks are accepted",
        &["R21", "R22"],
    ),
    f(
        Fault::ResumeRefused,
        "resume-refused",
        "Subscribe",
        "Subscribe refuses every watermark, even one it issued, with ErrorInvalidWatermark",
        &["R21"],
    ),
    f(
        Fault::EventTypeFilterIgnored,
        "event-type-filter-ignored",
        "Subscribe",
        "subscriptions deliver every event type, not only the subscribed EventTypes",
        &["R42"],
    ),
    f(
        Fault::FolderFilterIgnored,
        "folder-filter-ignored",
        "Subscribe",
        "subscriptions deliver events from every folder, not only the subscribed FolderIds",
        &["R42"],
    ),
    f(
        Fault::ChildFolderLeak,
        "child-folder-leak",
        "Subscribe",
        "a subscription to a folder also delivers the events of the folders below it (and only R42 says they must stay out)",
        &["R42"],
    ),
    f(
        Fault::CrossMailboxLeak,
        "cross-mailbox-leak",
        "Subscribe",
        "a subscription to a distinguished folder also gets the events of every other mailbox's folder of that name (mail delivered to another user shows up in your Inbox subscription)",
        &["R42"],
    ),
    f(
        Fault::DelegateSubscribeAllowed,
        "delegate-subscribe-allowed",
        "Subscribe",
        "a subscription to another user's folder succeeds instead of ErrorSubscriptionDelegateAccessNotSupported",
        &["R23"],
    ),
    f(
        Fault::PushUrlUnchecked,
        "push-url-unchecked",
        "Subscribe",
        "a push Subscribe with an ftp: or unparsable URL succeeds instead of ErrorInvalidPushSubscriptionUrl",
        &["R14"],
    ),
    f(
        Fault::PullTimeoutUnchecked,
        "pull-timeout-unchecked",
        "Subscribe",
        "a pull Subscribe with Timeout 0 or 1441 (outside the schema's 1..1440) succeeds",
        &["R8"],
    ),
    f(
        Fault::StatusFrequencyUnchecked,
        "status-frequency-unchecked",
        "Subscribe",
        "a push Subscribe with StatusFrequency 0 or 1441 (outside the schema's 1..1440) succeeds",
        &["R12"],
    ),
    f(
        Fault::FreeBusyAnyVersion,
        "free-busy-any-version",
        "Subscribe",
        "FreeBusyChangedEvent is accepted under every RequestServerVersion (it came with Exchange2010_SP1)",
        &["R20"],
    ),
    f(
        Fault::Batch51,
        "batch-51",
        "GetEvents",
        "a notification carries up to 51 events instead of 50",
        &["R32", "R33"],
    ),
    f(
        Fault::DropEvent,
        "drop-event",
        "GetEvents",
        "the 100th item event of each folder is lost (one in a hundred, deterministic)",
        &["R32"],
    ),
    f(
        Fault::RepeatEvent,
        "repeat-event",
        "GetEvents",
        "the first event of every notification is sent twice",
        &["R32"],
    ),
    f(
        Fault::ReorderEvents,
        "reorder-events",
        "GetEvents",
        "the events of a notification come newest first (across operations too, not only inside one operation's burst, whose order is free)",
        &["R31", "R72"],
    ),
    f(
        Fault::MoreEventsFalse,
        "more-events-false",
        "GetEvents",
        "MoreEvents is false even when more events are queued",
        &["R32", "R33"],
    ),
    f(
        Fault::StalePreviousWatermark,
        "stale-previous-watermark",
        "GetEvents",
        "from the third GetEvents of a subscription on, PreviousWatermark repeats the one sent in the second",
        &["R31"],
    ),
    f(
        Fault::NoStatusEvent,
        "no-status-event",
        "GetEvents",
        "GetEvents on an empty queue returns a Notification with no StatusEvent",
        &["R29", "R31"],
    ),
    f(
        Fault::NoOwnerCheck,
        "no-owner-check",
        "GetEvents",
        "any user may poll a subscription; no ErrorSubscriptionAccessDenied",
        &["R36"],
    ),
    f(
        Fault::NeverExpire,
        "never-expire",
        "GetEvents",
        "subscriptions never expire, whatever their Timeout",
        &["R34"],
    ),
    f(
        Fault::TimeoutNotReset,
        "timeout-not-reset",
        "GetEvents",
        "GetEvents does not restart the subscription's Timeout",
        &["R35"],
    ),
    f(
        Fault::WrongNotFoundCode,
        "wrong-not-found-code",
        "GetEvents",
        "an unknown subscription gives ErrorInvalidPullSubscriptionId instead of ErrorSubscriptionNotFound",
        &["R37", "R61"],
    ),
    f(
        Fault::TimestampInvalid,
        "timestamp-invalid",
        "GetEvents",
        "event TimeStamps are not xs:dateTime (a space instead of the T)",
        &["R78"],
    ),
    f(
        Fault::NewMailMissing,
        "new-mail-missing",
        "GetEvents",
        "mail delivered to the Inbox raises no NewMailEvent",
        &["R71"],
    ),
    f(
        Fault::UnreadCountWrong,
        "unread-count-wrong",
        "GetEvents",
        "folder ModifiedEvents report UnreadCount one too high",
        &["R44", "R72"],
    ),
    f(
        Fault::MovedOldParentWrong,
        "moved-old-parent-wrong",
        "GetEvents",
        "MovedEvent and CopiedEvent give the new parent as OldParentFolderId",
        &["R43", "R73"],
    ),
    f(
        Fault::NewMailOnSave,
        "new-mail-on-save",
        "CreateItem",
        "a message merely saved into the Inbox (CreateItem SaveOnly) raises NewMailEvent, as if it had been delivered",
        &["R42", "R71"],
    ),
    f(
        Fault::StatusEventTimestamp,
        "status-event-timestamp",
        "GetEvents",
        "StatusEvents carry a TimeStamp, which their schema type does not have",
        &["R78"],
    ),
    f(
        Fault::UnsubscribeKeepsSubscription,
        "unsubscribe-keeps-subscription",
        "Unsubscribe",
        "Unsubscribe answers NoError but the subscription lives on and keeps delivering",
        &["R60", "R64"],
    ),
    f(
        Fault::UnsubscribeUnknownSucceeds,
        "unsubscribe-unknown-succeeds",
        "Unsubscribe",
        "Unsubscribe of an id the server never issued answers NoError",
        &["R61"],
    ),
    f(
        Fault::HttpsNamespaces,
        "https-namespaces",
        "every operation",
        "responses use https:// for the messages and types namespaces",
        &["R1"],
    ),
    f(
        Fault::ResponseCodeAfterLinkKey,
        "response-code-after-link-key",
        "every operation",
        "error messages put ResponseCode after DescriptiveLinkKey (the order of the defective seeds)",
        &["R2"],
    ),
    f(
        Fault::NoResponseClass,
        "no-response-class",
        "every operation",
        "response messages have no ResponseClass attribute",
        &["R2"],
    ),
    f(
        Fault::SuccessWithErrorCode,
        "success-with-error-code",
        "every operation",
        "error messages say ResponseClass Success next to their error ResponseCode",
        &["R3"],
    ),
    f(
        Fault::SkipRequestValidation,
        "skip-request-validation",
        "every operation",
        "notification requests are not checked against the schema (missing, misplaced and out-of-range children pass)",
        &["R8", "R9", "R10", "R27"],
    ),
    f(
        Fault::StreamFirstEnvelopeHeld,
        "stream-first-envelope-held",
        "GetStreamingEvents",
        "an idle connection sends its first envelope only after three protocol minutes (or with the first event), not at once",
        &["R45", "R49"],
    ),
    f(
        Fault::StreamNeverCloses,
        "stream-never-closes",
        "GetStreamingEvents",
        "the connection outlives ConnectionTimeout and never sends ConnectionStatus Closed",
        &["R45"],
    ),
    f(
        Fault::ConnectionStatusOkOnError,
        "connection-status-ok-on-error",
        "GetStreamingEvents",
        "an error answer that ends the connection says ConnectionStatus OK instead of Closed",
        &["R53"],
    ),
    f(
        Fault::StreamDuplicateDeclaration,
        "stream-duplicate-declaration",
        "GetStreamingEvents",
        "every envelope in the stream is preceded by two XML declarations",
        &["R1", "R45"],
    ),
    f(
        Fault::StreamNoHeartbeats,
        "stream-no-heartbeats",
        "GetStreamingEvents",
        "an idle connection gets its first envelope, then silence until ConnectionTimeout: no heartbeats",
        &["R49"],
    ),
    f(
        Fault::StreamingAnyVersion,
        "streaming-any-version",
        "Subscribe, GetStreamingEvents",
        "streaming is accepted under every RequestServerVersion, also Exchange2007_SP1 and Exchange2010 (it came with Exchange2010_SP1)",
        &["R17"],
    ),
    f(
        Fault::ConnectionTimeoutUnchecked,
        "connection-timeout-unchecked",
        "GetStreamingEvents",
        "ConnectionTimeout 0 or 31 (outside the schema's 1..30) opens a stream",
        &["R46"],
    ),
    f(
        Fault::StreamReconnectGap,
        "stream-reconnect-gap",
        "GetStreamingEvents",
        "events raised while a streaming subscription has no open connection are lost silently: a new connection starts at the newest event",
        &["GS6"],
    ),
    f(
        Fault::SecondConnectionSilent,
        "second-connection-silent",
        "GetStreamingEvents",
        "a second connection for a subscription takes it over without telling the first one (no ErrorNewEventStreamConnectionOpened)",
        &["R54"],
    ),
    f(
        Fault::PushNoStatusEvent,
        "push-no-status-event",
        "SendNotification",
        "an idle push subscription never sends a StatusEvent",
        &["R65"],
    ),
    f(
        Fault::PushIgnoresUnsubscribe,
        "push-ignores-unsubscribe",
        "SendNotification",
        "a listener answering SubscriptionStatus Unsubscribe keeps getting notifications",
        &["R67"],
    ),
    f(
        Fault::PushNeverRetries,
        "push-never-retries",
        "SendNotification",
        "an unanswered notification is never retried; the subscription is dropped at once",
        &["R68"],
    ),
    f(
        Fault::PushWrongSubscriptionId,
        "push-wrong-subscription-id",
        "SendNotification",
        "push notifications name a subscription id of their own instead of the subscribed one",
        &["R66"],
    ),
];

impl Fault {
    /// Every fault, in catalogue order.
    pub fn all() -> impl Iterator<Item = Fault> {
        CATALOGUE.iter().map(|i| i.fault)
    }

    pub fn info(self) -> &'static FaultInfo {
        &CATALOGUE[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The fault with this kebab-case name.
    pub fn from_name(name: &str) -> Option<Fault> {
        CATALOGUE
            .iter()
            .find(|i| i.name == name.trim())
            .map(|i| i.fault)
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault `{name}` (known: {})", known_names())]
pub struct UnknownFault {
    pub name: String,
}

fn known_names() -> String {
    CATALOGUE
        .iter()
        .map(|i| i.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::str::FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::from_name(s).ok_or_else(|| UnknownFault {
            name: s.to_string(),
        })
    }
}

/// The faults a server runs with (empty: the faithful reference server).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FaultSet(u64);

impl FaultSet {
    pub fn none() -> Self {
        FaultSet(0)
    }

    pub fn of(faults: impl IntoIterator<Item = Fault>) -> Self {
        let mut s = FaultSet::none();
        for f in faults {
            s.insert(f);
        }
        s
    }

    /// Reads kebab-case names (`serve --fault`, the config file).
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, UnknownFault> {
        let faults = names
            .iter()
            .map(|n| n.as_ref().parse::<Fault>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FaultSet::of(faults))
    }

    pub fn insert(&mut self, fault: Fault) {
        self.0 |= 1 << (fault as u8);
    }

    pub fn has(&self, fault: Fault) -> bool {
        self.0 & (1 << (fault as u8)) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = Fault> + '_ {
        Fault::all().filter(|f| self.has(*f))
    }
}

impl std::fmt::Debug for FaultSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter().map(Fault::name)).finish()
    }
}

/// State some faults keep between requests.
#[derive(Debug, Default)]
pub struct FaultMemory {
    /// Per subscription: GetEvents calls so far and the watermark of the second.
    polls: Mutex<HashMap<String, (u32, String)>>,
}

impl FaultMemory {
    /// The PreviousWatermark a stale server reports: the sent watermark for
    /// the first two calls, then forever the one sent in the second.
    pub fn stale_previous(&self, subscription: &str, sent: &str) -> String {
        let mut polls = lock(&self.polls);
        let entry = polls
            .entry(subscription.to_string())
            .or_insert((0, String::new()));
        entry.0 += 1;
        if entry.0 <= 2 {
            entry.1 = sent.to_string();
        }
        entry.1.clone()
    }
}

/// The events of one notification as a faulty server sends them (pull, push
/// and streaming all pass their events through here).
pub fn shape_events(faults: &FaultSet, mut events: Vec<Event>) -> Vec<Event> {
    if faults.has(Fault::NewMailMissing) {
        events.retain(|e| e.kind != EventKind::NewMail);
    }
    if faults.has(Fault::RepeatEvent)
        && let Some(first) = events.first().cloned()
    {
        events.insert(1, first);
    }
    if faults.has(Fault::ReorderEvents) {
        events.reverse();
    }
    let bad_time = faults.has(Fault::TimestampInvalid);
    let bad_unread = faults.has(Fault::UnreadCountWrong);
    let bad_old_parent = faults.has(Fault::MovedOldParentWrong);
    for e in &mut events {
        if bad_time && let Some(t) = &mut e.timestamp {
            *t = t.replacen('T', " ", 1);
        }
        if bad_unread && let Some(n) = &mut e.unread_count {
            *n += 1;
        }
        if bad_old_parent && e.old_parent_folder_id.is_some() {
            e.old_parent_folder_id = e.parent_folder_id.clone();
        }
    }
    events
}

static NAMESPACE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#""http://schemas\.microsoft\.com/exchange/services/2006/(messages|types)""#)
        .expect("a constant, valid pattern")
});
static CODE_THEN_LINK_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(<m:ResponseCode>[^<]*</m:ResponseCode>)(<m:DescriptiveLinkKey>[^<]*</m:DescriptiveLinkKey>)",
    )
    .expect("a constant, valid pattern")
});
static RESPONSE_CLASS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#" ResponseClass="[A-Za-z]*""#).expect("a constant, valid pattern")
});

/// A complete SOAP answer (not a stream, not a fault) as a faulty server writes it.
pub fn rewrite_response(faults: &FaultSet, xml: String) -> String {
    let mut xml = xml;
    if faults.has(Fault::SuccessWithErrorCode) {
        xml = xml.replace(r#"ResponseClass="Error""#, r#"ResponseClass="Success""#);
    }
    if faults.has(Fault::NoResponseClass) {
        xml = RESPONSE_CLASS.replace_all(&xml, "").into_owned();
    }
    if faults.has(Fault::ResponseCodeAfterLinkKey) {
        xml = CODE_THEN_LINK_KEY.replace_all(&xml, "$2$1").into_owned();
    }
    if faults.has(Fault::HttpsNamespaces) {
        xml = NAMESPACE
            .replace_all(
                &xml,
                r#""https://schemas.microsoft.com/exchange/services/2006/$1""#,
            )
            .into_owned();
    }
    xml
}

#[cfg(test)]
mod tests;
