//! The case file format: the raw TOML shape (with source spans, for error
//! messages) and the validated [`Case`] the executor runs.

pub mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use ews_proto::ews::{ConnectionStatus, EventKind, ResponseClass};
use ews_proto::xml::path::XPath;

// ------------------------------------------------------------------ raw form

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCase {
    pub title: Spanned<String>,
    pub requirements: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub grade: CaseGrade,
    #[serde(default)]
    pub serial: bool,
    #[serde(default)]
    pub needs: Vec<Spanned<String>>,
    #[serde(default = "default_true")]
    pub isolate: bool,
    pub source: Option<String>,
    pub defect: Option<String>,
    #[serde(default)]
    pub profiles: Vec<String>,
    pub checks: Option<Vec<Spanned<String>>>,
    /// Compare every step's responses with its golden snapshot.
    #[serde(default)]
    pub golden: bool,
    /// Why the case cannot run yet (an operation it needs is not built):
    /// it is listed and reported as skipped with this reason.
    pub pending: Option<Spanned<String>>,
    #[serde(default)]
    pub vars: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default, rename = "step")]
    pub steps: Vec<Spanned<RawStep>>,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    pub name: Option<Spanned<String>>,
    #[serde(rename = "as", default)]
    pub user: UserRole,
    pub op: Option<Spanned<String>>,
    pub send: Option<Spanned<String>>,
    pub sleep_minutes: Option<Spanned<f64>>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub with: Option<Spanned<BTreeMap<String, toml::Value>>>,
    pub expect: Option<Spanned<RawExpect>>,
    #[serde(default)]
    pub capture: BTreeMap<String, Spanned<String>>,
    #[serde(rename = "assert", default)]
    pub asserts: Vec<Spanned<RawAssert>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExpect {
    pub status: Option<u16>,
    pub class: Option<Spanned<String>>,
    pub code: Option<Spanned<OneOrMany>>,
    pub record_code: Option<Spanned<OneOrMany>>,
    pub fault: Option<bool>,
    pub rejected: Option<bool>,
    pub events: Option<EventsMode>,
    #[serde(default)]
    pub no_events: Vec<Spanned<String>>,
    pub more_events: Option<bool>,
    pub batches: Option<Spanned<Vec<usize>>>,
    #[serde(default)]
    pub event: Vec<Spanned<RawEvent>>,
    pub shape: Option<Spanned<String>>,
    #[serde(default)]
    pub shape_optional: Vec<String>,
    pub golden: Option<bool>,
    // Streaming and push expectations (see `suite::notify`).
    pub connection_status: Option<Spanned<String>>,
    pub error_subscription_ids: Option<Spanned<Vec<String>>>,
    pub previous_watermark: Option<String>,
    pub watermark_chain: Option<bool>,
    pub more_events_until_last: Option<bool>,
    pub arrivals_minutes: Option<Spanned<Vec<f64>>>,
    pub missed_events_ok: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEvent {
    pub kind: Spanned<String>,
    pub item: Option<String>,
    pub folder: Option<String>,
    pub parent: Option<String>,
    pub old_parent: Option<String>,
    pub old_item: Option<String>,
    pub old_folder: Option<String>,
    pub unread_count: Option<i64>,
    /// The subscription the event must arrive under (streaming, push).
    pub subscription: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAssert {
    pub path: Spanned<String>,
    pub count: Option<usize>,
    pub exists: Option<bool>,
    pub equals: Option<String>,
    pub not_equals: Option<String>,
    pub matches: Option<Spanned<String>>,
    pub one_of: Option<Vec<String>>,
    pub is_datetime: Option<bool>,
}

// ------------------------------------------------------------ validated form

/// `grade`: whether expectations can fail the case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseGrade {
    /// Expectations are assertions.
    #[default]
    Assert,
    /// The documentation is silent or conflicting: report what came back, never fail.
    Record,
}

/// `as`: which configured user sends the step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    #[default]
    User,
    User2,
}

/// `events`: how expected events are matched against what arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventsMode {
    /// Each expected event appears, in this order; other events are tolerated.
    #[default]
    InOrder,
    /// The events are exactly the expected ones, in this order.
    Exact,
}

/// What a target must offer for a case to run (`needs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    SecondUser,
    Push,
    Streaming,
    Slow,
}

impl Capability {
    pub const ALL: [Capability; 4] = [
        Capability::SecondUser,
        Capability::Push,
        Capability::Streaming,
        Capability::Slow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::SecondUser => "second-user",
            Capability::Push => "push",
            Capability::Streaming => "streaming",
            Capability::Slow => "slow",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validated case file.
#[derive(Debug, Clone)]
pub struct Case {
    /// The path under the case folder without extension: `getevents/idle-status-event`.
    pub id: String,
    /// The file as it is shown in messages (`cases/getevents/idle-status-event.toml`).
    pub file: PathBuf,
    pub title: String,
    pub requirements: Vec<String>,
    pub grade: CaseGrade,
    pub serial: bool,
    pub needs: Vec<Capability>,
    pub isolate: bool,
    pub source: Option<String>,
    pub defect: Option<String>,
    pub profiles: Vec<String>,
    /// `None`: every registered check.
    pub checks: Option<Vec<String>>,
    /// `golden = true`: every step is compared with its golden snapshot
    /// (a step's `expect.golden` overrides it).
    pub golden: bool,
    /// `pending = "…"`: the case cannot run yet; it is skipped with this reason.
    pub pending: Option<String>,
    pub vars: Vec<(String, String)>,
    pub steps: Vec<Step>,
}

impl Case {
    /// Whether the check named `name` applies to this case.
    pub fn runs_check(&self, name: &str) -> bool {
        self.checks
            .as_ref()
            .is_none_or(|list| list.iter().any(|c| c == name))
    }

    /// Whether `step`'s responses are compared with a golden snapshot.
    pub fn golden_step(&self, step: &Step) -> bool {
        step.expect.golden.unwrap_or(self.golden)
    }

    /// How many protocol minutes the case may spend waiting, from what its
    /// steps declare (sleeps, `within_minutes`, `for_minutes`, …): the
    /// runner starts the longest cases first so none is left to run alone
    /// at the end. An estimate for ordering only, never a deadline.
    pub fn declared_minutes(&self) -> f64 {
        self.steps
            .iter()
            .map(|s| match &s.action {
                Action::Sleep { minutes } => *minutes,
                Action::Op { args, .. } => args
                    .0
                    .iter()
                    .filter(|(k, _)| k.ends_with("minutes"))
                    .filter_map(|(_, v)| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)))
                    .sum(),
                Action::Send { .. } => 0.0,
            })
            .sum()
    }

    /// Whether any step is compared with a golden snapshot.
    pub fn uses_golden(&self) -> bool {
        self.steps.iter().any(|s| self.golden_step(s))
    }

    /// Why the case may not run under `profile`, if it may not.
    pub fn profile_exclusion(&self, profile: Option<&str>) -> Option<String> {
        let (excluded, only): (Vec<&String>, Vec<&String>) =
            self.profiles.iter().partition(|p| p.starts_with('!'));
        match profile {
            Some(p) if excluded.iter().any(|e| &e[1..] == p) => {
                Some(format!("the case never runs under profile `{p}`"))
            }
            Some(p) if !only.is_empty() && !only.iter().any(|o| o.as_str() == p) => Some(format!(
                "the case runs only under profile {}",
                join_quoted(&only)
            )),
            None if !only.is_empty() => Some(format!(
                "the case runs only under profile {} (none is selected)",
                join_quoted(&only)
            )),
            _ => None,
        }
    }
}

fn join_quoted(items: &[&String]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// One step of a case.
#[derive(Debug, Clone)]
pub struct Step {
    /// 0-based position in the case.
    pub index: usize,
    pub name: String,
    /// 1-based line of the step in its file.
    pub line: usize,
    pub user: UserRole,
    pub action: Action,
    /// Extra HTTP headers (values are templates).
    pub headers: Vec<(String, String)>,
    pub expect: Expect,
    pub captures: Vec<Capture>,
    pub asserts: Vec<Assert>,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// A named operation with its `with` parameters.
    Op { name: String, args: Args },
    /// A raw request body (a template).
    Send { body: String },
    /// A pause in protocol minutes.
    Sleep { minutes: f64 },
}

/// `with` parameters, checked against the operation's parameter list at load time.
#[derive(Debug, Clone, Default)]
pub struct Args(pub BTreeMap<String, toml::Value>);

/// `[step.expect]`.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub status: Option<u16>,
    pub class: Option<ResponseClass>,
    /// Any of these codes (empty: no code expectation).
    pub codes: Vec<String>,
    /// `record_code`: the codes the documentation suggests where it is
    /// unsure; another code is recorded as a note, never a failure.
    pub record_codes: Vec<String>,
    pub fault: Option<bool>,
    pub rejected: Option<bool>,
    pub events_mode: EventsMode,
    pub events: Vec<EventPattern>,
    pub no_events: Vec<EventKind>,
    pub more_events: Option<bool>,
    pub batches: Option<Vec<usize>>,
    /// A documented response the answer must have the shape of (`shape` check).
    pub shape: Option<String>,
    /// Element (`t:PreviousWatermark`) and attribute (`@ChangeKey`) names
    /// either side may lack, beyond the defaults.
    pub shape_optional: Vec<String>,
    /// Compare this step with its golden snapshot (overrides the case's `golden`).
    pub golden: Option<bool>,
    /// Aligned with `events`: the subscription each expected event must
    /// arrive under (`subscription = …` in the pattern; a template).
    pub event_subscriptions: Vec<Option<String>>,
    /// `connection_status`: a GetStreamingEvents envelope's ConnectionStatus.
    pub connection_status: Option<ConnectionStatus>,
    /// `error_subscription_ids`: exactly these ids (templates, any order) in ErrorSubscriptionIds.
    pub error_subscription_ids: Option<Vec<String>>,
    /// `previous_watermark`: every notification's PreviousWatermark (a template).
    pub previous_watermark: Option<String>,
    /// `watermark_chain = true`: each notification's PreviousWatermark is
    /// the last event watermark of the one before it (per subscription).
    pub watermark_chain: Option<bool>,
    /// `missed_events_ok = true`: instead of the events, the server may say
    /// it lost them (ResponseCode ErrorMissedNotificationEvents, GS6); the
    /// event and code expectations then give way to a note.
    pub missed_events_ok: bool,
    /// `more_events_until_last = true`: MoreEvents is true on every
    /// notification but the last, false on the last.
    pub more_events_until_last: Option<bool>,
    /// `arrivals_minutes`: when the documents a waiting step is judged on
    /// arrived, in protocol minutes after the first of them.
    pub arrivals_minutes: Option<Vec<f64>>,
}

impl Expect {
    /// Whether the step states an expectation that one document must meet
    /// on its own: any outcome expectation, or `connection_status`,
    /// `error_subscription_ids`, `previous_watermark`.
    pub fn has_document_expectation(&self) -> bool {
        self.has_outcome_expectation()
            || self.connection_status.is_some()
            || self.error_subscription_ids.is_some()
            || self.previous_watermark.is_some()
    }

    /// Whether the step states any expectation about status, class, code, fault or rejection.
    pub fn has_outcome_expectation(&self) -> bool {
        self.status.is_some()
            || self.class.is_some()
            || !self.codes.is_empty()
            || !self.record_codes.is_empty()
            || self.fault.is_some()
            || self.rejected.is_some()
    }
}

/// `[[step.expect.event]]`: one expected event; string values are templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPattern {
    pub line: usize,
    pub kind: EventKind,
    pub item: Option<String>,
    pub folder: Option<String>,
    pub parent: Option<String>,
    pub old_parent: Option<String>,
    pub old_item: Option<String>,
    pub old_folder: Option<String>,
    pub unread_count: Option<i64>,
}

/// `[step.capture]`: `name = path`.
#[derive(Debug, Clone)]
pub struct Capture {
    pub name: String,
    pub path: XPath,
}

/// `[[step.assert]]`.
#[derive(Debug, Clone)]
pub struct Assert {
    pub line: usize,
    pub path: XPath,
    pub predicates: Vec<Predicate>,
}

/// One test of an assert; string operands are templates.
#[derive(Debug, Clone)]
pub enum Predicate {
    Count(usize),
    Exists(bool),
    Equals(String),
    NotEquals(String),
    Matches(Regex),
    OneOf(Vec<String>),
    IsDatetime(bool),
}

impl std::fmt::Display for Predicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Predicate::Count(n) => write!(f, "count = {n}"),
            Predicate::Exists(b) => write!(f, "exists = {b}"),
            Predicate::Equals(s) => write!(f, "equals = {s:?}"),
            Predicate::NotEquals(s) => write!(f, "not_equals = {s:?}"),
            Predicate::Matches(r) => write!(f, "matches = {:?}", r.as_str()),
            Predicate::OneOf(v) => write!(f, "one_of = {v:?}"),
            Predicate::IsDatetime(b) => write!(f, "is_datetime = {b}"),
        }
    }
}
