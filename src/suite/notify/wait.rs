//! What the waiting operations share: protocol time windows and their
//! slack, judging the documents that arrived against the step's
//! expectations, and the text of their findings.

use std::time::{Duration, Instant};

use crate::case::{Args, EventsMode, Step};
use crate::check::codes::Codes;
use crate::check::events::Events;
use crate::check::exchange::Exchange;
use crate::check::notify::Notify;
use crate::check::{Answer, Check, Finding, Severity, StepInput, asserts::Asserts, notifications};
use crate::client::stream::parse_envelope;
use crate::suite::operation::{Param, ParamKind};
use crate::suite::step::{StepContext, StepError};

/// The slack added to a wait, as a fraction of it.
pub const SLACK_FRACTION: f64 = 0.5;
/// The smallest slack added to a wait.
pub const SLACK_MIN: Duration = Duration::from_secs(2);
/// `arrivals_minutes` tolerance, as a fraction of the expected offset.
pub const ARRIVAL_TOLERANCE_FRACTION: f64 = 0.35;
/// `arrivals_minutes` smallest tolerance, in protocol minutes.
pub const ARRIVAL_TOLERANCE_MIN_MINUTES: f64 = 0.25;
/// Documents one waiting step takes at most (a flooding target cannot
/// make a step run, or judge, without end).
pub const MAX_DOCUMENTS: usize = 500;
/// Arrivals listed in a failure or note.
pub(super) const LISTED: usize = 20;
/// The check name of findings the operations make themselves.
pub(super) const CHECK: &str = "notify";

pub(super) const fn param(name: &'static str, kind: ParamKind, required: bool) -> Param {
    Param {
        name,
        kind,
        required,
    }
}

pub(super) const WITHIN_MINUTES: Param = param("within_minutes", ParamKind::Text, false);
pub(super) const WITHIN_SECONDS: Param = param("within_seconds", ParamKind::Text, false);
pub(super) const COUNT: Param = param("count", ParamKind::Int, false);

// ------------------------------------------------------------------- time

/// A bounded wait: the nominal time the protocol allows plus slack.
#[derive(Debug, Clone)]
pub(super) struct Wait {
    pub(super) limit: Duration,
    pub(super) text: String,
}

impl Wait {
    pub(super) fn new(nominal: Duration, described: String) -> Self {
        let slack = nominal.mul_f64(SLACK_FRACTION).max(SLACK_MIN);
        Wait {
            limit: nominal + slack,
            text: format!("{described} = {} + {} slack", secs(nominal), secs(slack)),
        }
    }
}

pub(super) fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

pub(super) fn number(
    ctx: &StepContext<'_>,
    args: &Args,
    key: &str,
) -> Result<Option<f64>, StepError> {
    let Some(text) = args.text(ctx, key)? else {
        return Ok(None);
    };
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1440.0 * 60.0 => Ok(Some(v)),
        _ => Err(StepError::Case(format!(
            "`with.{key}` = {text:?} is not a positive number of protocol time"
        ))),
    }
}

/// A length of protocol time given as `<prefix>_minutes` or `<prefix>_seconds`.
pub(super) fn protocol_time(
    ctx: &StepContext<'_>,
    args: &Args,
    prefix: &str,
) -> Result<Option<(Duration, String)>, StepError> {
    let minute = ctx.target().protocol_minute;
    let m = number(ctx, args, &format!("{prefix}_minutes"))?;
    let s = number(ctx, args, &format!("{prefix}_seconds"))?;
    match (m, s) {
        (Some(_), Some(_)) => Err(StepError::Case(format!(
            "give `{prefix}_minutes` or `{prefix}_seconds`, not both"
        ))),
        (Some(m), None) => Ok(Some((
            minute.mul_f64(m),
            format!("{m} protocol minute{}", if m == 1.0 { "" } else { "s" }),
        ))),
        (None, Some(s)) => Ok(Some((
            minute.mul_f64(s / 60.0),
            format!("{s} protocol second{}", if s == 1.0 { "" } else { "s" }),
        ))),
        (None, None) => Ok(None),
    }
}

/// The step's `within_*` wait, or `default_minutes`.
pub(super) fn wait(
    ctx: &StepContext<'_>,
    args: &Args,
    default_minutes: f64,
) -> Result<Wait, StepError> {
    let (nominal, text) = match protocol_time(ctx, args, "within")? {
        Some(t) => t,
        None => (
            ctx.target().protocol_minute.mul_f64(default_minutes),
            format!("{default_minutes} protocol minute(s), the default"),
        ),
    };
    let wait = Wait::new(nominal, text);
    ctx.wait_until(wait.limit);
    Ok(wait)
}

pub(super) fn count(ctx: &StepContext<'_>, args: &Args) -> Result<usize, StepError> {
    let n = args.int(ctx, "count")?.unwrap_or(1);
    if (1..=1000).contains(&n) {
        Ok(n as usize)
    } else {
        Err(StepError::Case(format!(
            "`with.count` {n} is outside 1..1000"
        )))
    }
}

// ---------------------------------------------------------------- judging

/// Fail findings of the expectation checks for `step` on `docs`.
pub(super) fn unmet(ctx: &StepContext<'_>, step: &Step, docs: &[Exchange]) -> Vec<Finding> {
    let input = StepInput::new(ctx.case(), step, docs, ctx.vars());
    let checks: [&dyn Check; 4] = [&Codes, &Asserts, &Events, &Notify];
    checks
        .iter()
        .flat_map(|c| c.check(&input))
        .filter(|f| f.severity == Severity::Fail)
        .collect()
}

/// How a waiting step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WaitEnd {
    /// `count` documents met the expectations on their own.
    Alone,
    /// The documents received so far meet them together.
    Together,
    /// Not met (deadline, end of stream, broken body).
    Unmet,
}

/// Decides, document by document, whether a waiting step may stop, and
/// which of its exchanges it is judged on.
pub(super) struct Judging {
    /// The step as used to decide: `no_events` cleared (not a reason to
    /// wait), `events = "exact"` read as in-order (the expected events have
    /// come; whether nothing else came is judged on everything received).
    pub(super) selection: Step,
    /// `events = "exact"`: every document received is judged, so an
    /// unexpected event in an earlier envelope or push is not passed over.
    pub(super) exact: bool,
    pub(super) per_document: bool,
    pub(super) count: usize,
    /// Exchange index where this wait's documents begin.
    pub(super) since: usize,
    pub(super) met: Vec<usize>,
    pub(super) received: usize,
    pub(super) gave_up: bool,
}

impl Judging {
    pub(super) fn new(ctx: &StepContext<'_>, count: usize) -> Self {
        let mut selection = ctx.step().clone();
        selection.expect.no_events.clear();
        let exact = selection.expect.events_mode == EventsMode::Exact;
        selection.expect.events_mode = EventsMode::InOrder;
        let mut judging = Self::with_selection(ctx, selection, count);
        judging.exact = exact;
        judging
    }

    pub(super) fn with_selection(ctx: &StepContext<'_>, selection: Step, count: usize) -> Self {
        Judging {
            per_document: selection.expect.has_document_expectation() || count > 1,
            exact: false,
            selection,
            count,
            since: ctx.exchanges().len(),
            met: Vec::new(),
            received: 0,
            gave_up: false,
        }
    }

    /// Judges the newly recorded exchange `idx`; `Some` when the wait may stop.
    pub(super) fn offer(&mut self, ctx: &StepContext<'_>, idx: usize) -> Option<WaitEnd> {
        self.received += 1;
        let docs = ctx.exchanges();
        if unmet(ctx, &self.selection, std::slice::from_ref(&docs[idx])).is_empty() {
            self.met.push(idx);
            if self.met.len() >= self.count {
                return Some(WaitEnd::Alone);
            }
            return None;
        }
        // Judging the documents together again only helps when the new one
        // adds notifications (or the step has asserts, which may count anything).
        let adds = !self.selection.asserts.is_empty()
            || notifications(&docs[idx].response_text).is_ok_and(|n| !n.is_empty());
        if !self.per_document
            && adds
            && unmet(ctx, &self.selection, &docs[self.since..=idx]).is_empty()
        {
            return Some(WaitEnd::Together);
        }
        if self.received >= MAX_DOCUMENTS {
            self.gave_up = true;
            return Some(WaitEnd::Unmet);
        }
        None
    }

    /// Why the wait stopped early, if it did: too many documents.
    pub(super) fn gave_up_text(&self) -> Option<String> {
        self.gave_up.then(|| {
            format!("{MAX_DOCUMENTS} documents arrived without meeting the expectations, and a step takes no more")
        })
    }

    /// Marks which exchanges the step is judged on.
    pub(super) fn finish(&self, ctx: &mut StepContext<'_>, verdict: WaitEnd) {
        let end = ctx.exchanges().len();
        let keep_all = self.exact
            || match verdict {
                WaitEnd::Together => true,
                WaitEnd::Alone => false,
                WaitEnd::Unmet => !self.per_document,
            };
        if keep_all {
            return;
        }
        let last = end.checked_sub(1).filter(|l| *l >= self.since);
        for i in self.since..end {
            let judged = self.met.contains(&i) || (verdict == WaitEnd::Unmet && Some(i) == last);
            if !judged {
                ctx.pass_over(i);
            }
        }
    }

    /// Why the last document did not do: the first unmet expectation.
    pub(super) fn last_problem(&self, ctx: &StepContext<'_>) -> Option<String> {
        let docs = ctx.exchanges();
        let last = docs.len().checked_sub(1).filter(|l| *l >= self.since)?;
        let range = if self.per_document {
            last..=last
        } else {
            self.since..=last
        };
        unmet(ctx, &self.selection, &docs[range])
            .into_iter()
            .next()
            .map(|f| f.message)
    }

    /// The indices of the documents the step is judged on.
    pub(super) fn judged(&self, ctx: &StepContext<'_>) -> Vec<usize> {
        (self.since..ctx.exchanges().len())
            .filter(|i| !ctx.is_passed_over(*i))
            .collect()
    }
}

/// What a step waits for, in words: "an envelope with ResponseCode X and ConnectionStatus Closed".
pub(super) fn awaited(ctx: &StepContext<'_>, step: &Step, noun: &str, count: usize) -> String {
    let e = &step.expect;
    let r = |t: &str| ctx.render(t).unwrap_or_else(|_| t.to_string());
    let mut parts = Vec::new();
    if let Some(s) = e.status {
        parts.push(format!("HTTP status {s}"));
    }
    if let Some(c) = e.class {
        parts.push(format!("ResponseClass {c}"));
    }
    if !e.codes.is_empty() {
        parts.push(format!("ResponseCode {}", e.codes.join(" or ")));
    }
    if let Some(f) = e.fault {
        parts.push(if f { "a SOAP fault" } else { "no SOAP fault" }.to_string());
    }
    if e.rejected == Some(true) {
        parts.push("a rejection".into());
    }
    if let Some(s) = e.connection_status {
        parts.push(format!("ConnectionStatus {}", s.as_str()));
    }
    if let Some(ids) = &e.error_subscription_ids {
        let ids: Vec<String> = ids.iter().map(|i| r(i)).collect();
        parts.push(format!("ErrorSubscriptionIds [{}]", ids.join(", ")));
    }
    if let Some(w) = &e.previous_watermark {
        parts.push(format!("PreviousWatermark {:?}", r(w)));
    }
    if !e.events.is_empty() {
        let events: Vec<String> = e
            .events
            .iter()
            .zip(e.event_subscriptions.iter().chain(std::iter::repeat(&None)))
            .map(|(p, sub)| {
                let mut fields = Vec::new();
                for (k, v) in [
                    ("item", &p.item),
                    ("folder", &p.folder),
                    ("parent", &p.parent),
                    ("old_item", &p.old_item),
                    ("old_folder", &p.old_folder),
                    ("old_parent", &p.old_parent),
                    ("subscription", sub),
                ] {
                    if let Some(v) = v {
                        fields.push(format!("{k}={}", r(v)));
                    }
                }
                if let Some(n) = p.unread_count {
                    fields.push(format!("unread_count={n}"));
                }
                if fields.is_empty() {
                    p.kind.to_string()
                } else {
                    format!("{} ({})", p.kind, fields.join(", "))
                }
            })
            .collect();
        parts.push(format!("events {}", events.join(", ")));
    }
    if let Some(m) = e.more_events {
        parts.push(format!("MoreEvents {m}"));
    }
    if !step.asserts.is_empty() {
        parts.push(format!("{} assert(s) holding", step.asserts.len()));
    }
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    let plural = if noun.ends_with('h') || noun.ends_with('s') {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    };
    let head = if count > 1 {
        format!("{count} {plural}")
    } else if parts.is_empty() {
        format!("the next {noun}")
    } else {
        format!("{article} {noun}")
    };
    if parts.is_empty() {
        head
    } else {
        format!("{head} with {}", parts.join(", "))
    }
}

/// One line about a document: class and code, ConnectionStatus, events.
pub(super) fn summarize(text: &str) -> String {
    let mut parts = Vec::new();
    match Answer::read(text) {
        Answer::Message {
            class_text, code, ..
        } => parts.push(format!(
            "{}/{}",
            class_text.as_deref().unwrap_or("(no class)"),
            code.as_deref().unwrap_or("(no code)")
        )),
        other => parts.push(other.describe()),
    }
    if let Ok(r) = parse_envelope(text) {
        if !r.error_subscription_ids.is_empty() {
            parts.push(format!(
                "ErrorSubscriptionIds [{}]",
                r.error_subscription_ids.join(", ")
            ));
        }
        if let Some(s) = r.connection_status {
            parts.push(format!("ConnectionStatus {}", s.as_str()));
        }
    }
    if let Ok(list) = notifications(text) {
        if list.is_empty() && parts.iter().any(|p| p.starts_with("ConnectionStatus OK")) {
            parts.push("heartbeat".into());
        }
        for n in list {
            let mut kinds: Vec<String> = Vec::new();
            let mut last: Option<(&str, usize)> = None;
            for ev in &n.events {
                let k = ev.kind.element_name();
                match &mut last {
                    Some((name, count)) if *name == k => *count += 1,
                    _ => {
                        if let Some((name, count)) = last.take() {
                            kinds.push(run_text(name, count));
                        }
                        last = Some((k, 1));
                    }
                }
            }
            if let Some((name, count)) = last {
                kinds.push(run_text(name, count));
            }
            let mut extra = String::new();
            if let Some(m) = n.more_events {
                extra.push_str(&format!(", MoreEvents {m}"));
            }
            if let Some(p) = &n.previous_watermark {
                extra.push_str(&format!(", PreviousWatermark {p:?}"));
            }
            parts.push(format!(
                "subscription {}: {} event(s) [{}]{extra}",
                n.subscription_id,
                n.events.len(),
                kinds.join(", ")
            ));
        }
    }
    parts.join(", ")
}

/// The reader's state at a deadline: whether part of an envelope is pending.
pub(super) fn pending(partial: Option<&crate::client::stream::Incomplete>) -> String {
    match partial {
        None => "nothing was pending on the connection".into(),
        Some(p) => format!(
            "{} bytes of an unfinished envelope were pending: {}",
            p.len, p.evidence
        ),
    }
}

/// "; the last one did not do: <why>" (without the step prefix of the finding).
pub(super) fn closest(problem: Option<String>) -> String {
    match problem {
        None => String::new(),
        Some(p) => {
            let why = match p.split_once("\": ") {
                Some((head, rest)) if head.starts_with("step \"") => rest.to_string(),
                _ => p,
            };
            format!("; the last one did not do: {why}")
        }
    }
}

pub(super) fn run_text(name: &str, count: usize) -> String {
    if count == 1 {
        name.to_string()
    } else {
        format!("{count}×{name}")
    }
}

/// A bounded listing of arrivals: `(label, text)` pairs, the most recent kept.
pub(super) fn listing(items: &[(String, &str)]) -> String {
    if items.is_empty() {
        return " none".into();
    }
    // The first few and the most recent ones.
    let head = LISTED / 4;
    let skip = items.len().saturating_sub(LISTED);
    let mut s = String::new();
    for (i, (label, text)) in items.iter().enumerate() {
        if skip > 0 && (head..head + skip).contains(&i) {
            if i == head {
                s.push_str(&format!("\n  … {skip} more not shown"));
            }
            continue;
        }
        s.push_str(&format!("\n  {label}: {}", summarize(text)));
    }
    s
}

/// Judges `arrivals_minutes` on the arrival times of the judged documents.
pub(super) fn check_arrivals(ctx: &mut StepContext<'_>, arrivals: &[Instant]) {
    let Some(want) = ctx.step().expect.arrivals_minutes.clone() else {
        return;
    };
    let minute = ctx.target().protocol_minute.as_secs_f64();
    let step = ctx.step().name.clone();
    let got: Vec<f64> = match arrivals.first() {
        None => Vec::new(),
        Some(first) => arrivals
            .iter()
            .map(|a| a.saturating_duration_since(*first).as_secs_f64() / minute)
            .collect(),
    };
    let shown = |v: &[f64]| {
        v.iter()
            .map(|m| format!("{m:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let problem = if got.len() != want.len() {
        Some(format!(
            "expected {} arrival(s), got {}",
            want.len(),
            got.len()
        ))
    } else {
        got.iter().zip(&want).enumerate().find_map(|(i, (g, w))| {
            let tolerance = (w * ARRIVAL_TOLERANCE_FRACTION).max(ARRIVAL_TOLERANCE_MIN_MINUTES);
            ((g - w).abs() > tolerance).then(|| {
                format!(
                    "arrival {} came {g:.2} protocol minutes after the first, expected {w:.2} ± {tolerance:.2}",
                    i + 1
                )
            })
        })
    };
    match problem {
        Some(p) => ctx.report(
            CHECK,
            Severity::Fail,
            format!(
                "step \"{step}\": {p} (arrivals_minutes [{}], measured [{}]; one protocol minute = {})",
                shown(&want),
                shown(&got),
                secs(ctx.target().protocol_minute)
            ),
            None,
        ),
        None => ctx.note(
            CHECK,
            format!(
                "step \"{step}\": arrivals [{}] protocol minutes after the first, as expected [{}]",
                shown(&got),
                shown(&want)
            ),
        ),
    }
}

/// An exchange for a document received while a step waits.
pub(super) fn received(
    ctx: &StepContext<'_>,
    request: String,
    text: String,
    after: Duration,
) -> Exchange {
    Exchange {
        step: ctx.step().name.clone(),
        line: ctx.step().line,
        request,
        status: Some(200),
        response_text: text,
        duration: after,
        error: None,
        findings: Vec::new(),
        asked: None,
        at: std::time::Duration::ZERO,
        deadline: None,
    }
}
