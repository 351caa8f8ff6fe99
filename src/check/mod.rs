//! Checks: code that judges a step's exchanges against the case's
//! expectations. Each kind has a stable name that case files use in
//! `checks = [...]`; the registry holds the kinds a run knows.
//!
//! Built in: `codes`, `asserts`, `events`, `notify`, `structure`, `shape`,
//! `batching`, `watermark`, `golden` (and `xsd` with the `xsd` feature, when
//! the settings name schema files). A kind judges one step at a time
//! ([`Check::check`]), the whole case once it has run ([`Check::check_case`]),
//! or both.

pub mod asserts;
pub mod batching;
pub mod codes;
mod event_match;
pub mod events;
pub mod expected_shape;
pub mod golden;
pub mod normalize;
pub mod notify;
pub mod shape;
pub mod structure;
pub mod watermark;
pub mod wire;
#[cfg(feature = "xsd")]
pub mod xsd;
#[cfg(feature = "xsd")]
pub mod xsd_check;

use std::sync::Arc;

use serde::Serialize;

use crate::suite::case::{Case, Step};
use crate::suite::exec::Exchange;
use crate::suite::template::Vars;
use ews_proto::ews::envelope::{Opened, open};
use ews_proto::ews::{Notification, ResponseClass, SoapFault};
use ews_proto::xml::{ElementExt, child, element_children, ns};

/// How much a finding weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A broken expectation: fails an `assert` case.
    Fail,
    /// An observation worth reporting (what form a rejection took, a recorded value).
    Note,
}

/// One verdict with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The check's stable name (`codes`, `events`, …, or `setup`, `transport`).
    pub check: String,
    pub severity: Severity,
    /// The requirement ids of the case.
    pub requirements: Vec<String>,
    pub step: String,
    /// The line of the step (or of the expectation) in the case file.
    pub line: usize,
    pub message: String,
    /// What came back, when the message alone does not show it.
    pub evidence: Option<String>,
    /// The index of the exchange within its step that this is about, if one.
    #[serde(skip)]
    pub exchange: Option<usize>,
}

impl Finding {
    /// A finding about `step` of `case`: the case's requirement ids, the
    /// step's name and line, no evidence, about no one exchange.
    pub fn new(
        check: &str,
        severity: Severity,
        case: &Case,
        step: &Step,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            check: check.to_string(),
            severity,
            requirements: case.requirements.clone(),
            step: step.name.clone(),
            line: step.line,
            message: message.into(),
            evidence: None,
            exchange: None,
        }
    }

    /// The same finding, about exchange `index` of its step.
    pub fn about(mut self, index: usize) -> Finding {
        self.exchange = Some(index);
        self
    }

    /// The same finding, with `evidence`.
    pub fn with_evidence(mut self, evidence: impl Into<String>) -> Finding {
        self.evidence = Some(evidence.into());
        self
    }

    /// The message followed by the case's requirement ids in parentheses,
    /// leaving out the ids the message already ends with: `… (R32)` stays
    /// `… (R32)` rather than `… (R32) (R32)`.
    pub fn headline(&self) -> String {
        let named = trailing_ids(&self.message);
        let rest: Vec<&str> = self
            .requirements
            .iter()
            .map(String::as_str)
            .filter(|r| !named.contains(r))
            .collect();
        if rest.is_empty() && !named.is_empty() {
            self.message.clone()
        } else {
            format!("{} ({})", self.message, rest.join(", "))
        }
    }
}

/// The requirement ids (`R` and digits) named in the parenthesis a message
/// ends with, if it ends with one.
fn trailing_ids(message: &str) -> Vec<&str> {
    let Some(inner) = message
        .trim_end()
        .strip_suffix(')')
        .and_then(|m| m.rfind('(').map(|open| &m[open + 1..]))
    else {
        return Vec::new();
    };
    inner
        .split(|c: char| !(c.is_ascii_alphanumeric()))
        .filter(|w| w.len() > 1 && w.starts_with('R') && w[1..].chars().all(|c| c.is_ascii_digit()))
        .collect()
}

/// ` (call 2 of 3)` for the second of a step's three exchanges; nothing
/// when the step made one.
pub(crate) fn call_label(index: usize, total: usize) -> String {
    if total > 1 {
        format!(" (call {} of {total})", index + 1)
    } else {
        String::new()
    }
}

/// What a check sees: one step and the exchanges it made.
pub struct StepInput<'a> {
    pub case: &'a Case,
    pub step: &'a Step,
    pub exchanges: &'a [Exchange],
    /// The variables as they were when the step was sent (before its own captures).
    pub vars: &'a Vars,
    /// The response bodies parsed once and shared by the step's checks.
    /// Private, so an input built from another never inherits its parses:
    /// build one with [`StepInput::new`].
    parsed: Parsed<'a>,
    /// The request bodies, likewise.
    requests: Parsed<'a>,
    /// Each response read as the case-level checks read it ([`StepInput::reply`]).
    replies: std::sync::OnceLock<Vec<Option<wire::Reply>>>,
}

/// Each exchange's response (or request) body parsed as one XML document, on first use.
#[derive(Default)]
pub struct Parsed<'a>(std::sync::OnceLock<Vec<ParseResult<'a>>>);

impl<'a> StepInput<'a> {
    pub fn new(case: &'a Case, step: &'a Step, exchanges: &'a [Exchange], vars: &'a Vars) -> Self {
        StepInput {
            case,
            step,
            exchanges,
            vars,
            parsed: Parsed::default(),
            requests: Parsed::default(),
            replies: std::sync::OnceLock::new(),
        }
    }

    /// The response body of exchange `index` parsed as one document.
    pub fn document(
        &self,
        index: usize,
    ) -> Option<Result<&roxmltree::Document<'a>, &ews_proto::xml::XmlError>> {
        self.parsed
            .get(self.exchanges, index, |ex| &ex.response_text)
    }

    /// Every exchange of the step with its index and its response body
    /// parsed as one document (the parse the step's checks share).
    pub fn responses(
        &self,
    ) -> impl Iterator<
        Item = (
            usize,
            &'a Exchange,
            Result<&roxmltree::Document<'a>, &ews_proto::xml::XmlError>,
        ),
    > + '_ {
        let exchanges: &'a [Exchange] = self.exchanges;
        self.parsed
            .all(exchanges, |ex| &ex.response_text)
            .iter()
            .zip(exchanges)
            .enumerate()
            .map(|(i, (parsed, ex))| (i, ex, parsed.as_ref()))
    }

    /// The request body of exchange `index` parsed as one document.
    pub fn request_document(
        &self,
        index: usize,
    ) -> Option<Result<&roxmltree::Document<'a>, &ews_proto::xml::XmlError>> {
        self.requests.get(self.exchanges, index, |ex| &ex.request)
    }

    /// The response of exchange `index` read as the case-level checks read
    /// it ([`wire::read_reply`]; `None` when nothing was received or it
    /// holds no readable envelope), read once for the step's checks.
    pub fn reply(&self, index: usize) -> Option<&wire::Reply> {
        self.replies
            .get_or_init(|| {
                (0..self.exchanges.len())
                    .map(|i| self.read_reply_of(i))
                    .collect()
            })
            .get(index)?
            .as_ref()
    }

    fn read_reply_of(&self, index: usize) -> Option<wire::Reply> {
        let ex = self.exchanges.get(index)?;
        wire::received(ex)?;
        wire::read_reply_parsed(&ex.response_text, self.document(index)?)
    }

    /// What the request of exchange `index` asked for: as the executor read
    /// it while the request was in flight, or from the shared parse.
    fn request_of(&self, index: usize) -> Option<wire::Request> {
        let ex = self.exchanges.get(index)?;
        Some(match &ex.asked {
            Some(asked) => {
                debug_assert_eq!(asked.request, wire::read_request(&ex.request));
                asked.request.clone()
            }
            None => wire::read_request_parsed(self.request_document(index)?),
        })
    }

    /// Exchange `index` read the way the case-level checks read it
    /// ([`wire::read_exchange`]), from what the executor read of its request
    /// and the parses this step's checks shared.
    pub fn reading(&self, index: usize) -> Option<wire::Reading> {
        Some(wire::Reading {
            request: self.request_of(index)?,
            reply: self.reply(index).cloned(),
        })
    }

    /// Every exchange read as [`StepInput::reading`] reads it, handing over
    /// the replies the step's checks already read rather than copying them.
    pub fn into_readings(self) -> Vec<Option<wire::Reading>> {
        let requests: Vec<Option<wire::Request>> = (0..self.exchanges.len())
            .map(|i| self.request_of(i))
            .collect();
        let _ = self.reply(0); // reads every reply a check has not read yet
        let mut replies = self.replies.into_inner().unwrap_or_default();
        requests
            .into_iter()
            .enumerate()
            .map(|(i, request)| {
                Some(wire::Reading {
                    request: request?,
                    reply: replies.get_mut(i).and_then(Option::take),
                })
            })
            .collect()
    }

    /// The RequestServerVersion the request of exchange `index` names.
    pub fn requested_version(&self, index: usize) -> Option<String> {
        let ex = self.exchanges.get(index)?;
        match &ex.asked {
            Some(asked) => {
                debug_assert_eq!(asked.version, wire::requested_version(&ex.request));
                asked.version.clone()
            }
            None => wire::requested_version_parsed(self.request_document(index)?),
        }
    }
}

type ParseResult<'a> = Result<roxmltree::Document<'a>, ews_proto::xml::XmlError>;

impl<'a> Parsed<'a> {
    fn all(
        &self,
        exchanges: &'a [Exchange],
        body: impl Fn(&'a Exchange) -> &'a str,
    ) -> &[ParseResult<'a>] {
        self.0.get_or_init(|| {
            exchanges
                .iter()
                .map(|ex| ews_proto::xml::parse_document(body(ex)))
                .collect()
        })
    }

    fn get(
        &self,
        exchanges: &'a [Exchange],
        index: usize,
        body: impl Fn(&'a Exchange) -> &'a str,
    ) -> Option<Result<&roxmltree::Document<'a>, &ews_proto::xml::XmlError>> {
        self.all(exchanges, body).get(index).map(Result::as_ref)
    }
}

impl StepInput<'_> {
    /// A failing finding about this step.
    pub fn fail(&self, check: &str, message: impl Into<String>) -> Finding {
        self.finding(check, Severity::Fail, message)
    }

    pub fn note(&self, check: &str, message: impl Into<String>) -> Finding {
        self.finding(check, Severity::Note, message)
    }

    fn finding(&self, check: &str, severity: Severity, message: impl Into<String>) -> Finding {
        Finding::new(check, severity, self.case, self.step, message)
    }

    /// Substitutes `${…}` in an expected value; the error is already a finding.
    pub fn render(&self, check: &str, template: &str) -> Result<String, Box<Finding>> {
        self.vars.render(template).map_err(|e| {
            Box::new(self.fail(
                check,
                format!(
                    "step \"{}\": cannot evaluate the expectation: {e}",
                    self.step.name
                ),
            ))
        })
    }
}

/// What a case-level check sees: every exchange of the case, in the order
/// they were made (setup and cleanup included), once the case has run.
pub struct CaseInput<'a> {
    pub case: &'a Case,
    pub exchanges: &'a [Exchange],
    /// The variables as they were at the end of the case.
    pub vars: &'a Vars,
    /// The exchanges as read ([`wire::entries`]), read once and shared by
    /// the case-level checks. Private for the same reason as
    /// `StepInput::parsed`: build one with [`CaseInput::new`].
    readings: wire::Readings,
}

impl<'a> CaseInput<'a> {
    pub fn new(case: &'a Case, exchanges: &'a [Exchange], vars: &'a Vars) -> Self {
        CaseInput {
            case,
            exchanges,
            vars,
            readings: wire::Readings::default(),
        }
    }

    /// An input whose readings start from those made while each step was
    /// judged ([`StepInput::reading`]), by exchange index; the rest are read
    /// on first use. Each must be what [`wire::read_exchange`] reads from
    /// the same exchange (debug builds verify it).
    pub fn with_readings(
        case: &'a Case,
        exchanges: &'a [Exchange],
        vars: &'a Vars,
        early: Vec<Option<wire::Reading>>,
    ) -> Self {
        CaseInput {
            case,
            exchanges,
            vars,
            readings: wire::Readings::prefilled(early),
        }
    }

    /// Every exchange of the case as read, in order (read on first use).
    pub fn entries(&self) -> &[wire::Entry] {
        self.readings.get_or_read(self.exchanges)
    }

    /// A failing finding about exchange `index` (an index into `exchanges`).
    pub fn fail_at(&self, check: &str, index: usize, message: impl Into<String>) -> Finding {
        self.finding_at(check, Severity::Fail, index, message)
    }

    /// An observation about exchange `index`.
    pub fn note_at(&self, check: &str, index: usize, message: impl Into<String>) -> Finding {
        self.finding_at(check, Severity::Note, index, message)
    }

    fn finding_at(
        &self,
        check: &str,
        severity: Severity,
        index: usize,
        message: impl Into<String>,
    ) -> Finding {
        let (step, line) = self
            .exchanges
            .get(index)
            .map(|e| (e.step.clone(), e.line))
            .unwrap_or_default();
        Finding {
            check: check.to_string(),
            severity,
            requirements: self.case.requirements.clone(),
            step,
            line: line.max(1),
            message: message.into(),
            evidence: None,
            exchange: Some(index),
        }
    }

    /// Whether exchange `index` belongs to one of the case's own steps (not
    /// the setup or cleanup the executor adds).
    pub fn is_case_step(&self, index: usize) -> bool {
        self.exchanges
            .get(index)
            .is_some_and(|e| self.case.steps.iter().any(|s| s.name == e.step))
    }
}

/// A kind of check.
pub trait Check: Send + Sync {
    /// The stable name case files use.
    fn name(&self) -> &'static str;
    /// Judges one step.
    fn check(&self, input: &StepInput<'_>) -> Vec<Finding>;
    /// Judges the whole case once every step has run (relations between
    /// exchanges of different steps). A finding's `exchange` is an index
    /// into [`CaseInput::exchanges`].
    fn check_case(&self, _input: &CaseInput<'_>) -> Vec<Finding> {
        Vec::new()
    }
    /// Whether [`Check::check_case`] reads [`CaseInput::entries`]: if a
    /// selected kind does, the executor reads each exchange while its step
    /// is judged, from the parses the step's checks share. Only a matter of
    /// speed: entries not read early are read when first asked for.
    fn reads_entries(&self) -> bool {
        false
    }
}

/// The check kinds a run knows, in the order they run.
#[derive(Clone, Default)]
pub struct CheckRegistry {
    checks: Vec<Arc<dyn Check>>,
}

impl CheckRegistry {
    pub fn empty() -> Self {
        Self::default()
    }

    /// `codes`, `asserts`, `events`, `notify`, `structure`, `shape`,
    /// `batching`, `watermark`, and `golden` comparing with the snapshots
    /// under `golden/` (see [`golden::Golden::new`] to place them elsewhere
    /// or record them).
    pub fn builtin() -> Self {
        let mut r = Self::empty();
        r.register(Arc::new(codes::Codes));
        r.register(Arc::new(asserts::Asserts));
        r.register(Arc::new(events::Events));
        r.register(Arc::new(notify::Notify));
        r.register(Arc::new(structure::Structure));
        r.register(Arc::new(expected_shape::ExpectedShape));
        r.register(Arc::new(batching::Batching));
        r.register(Arc::new(watermark::Watermark));
        r.register(Arc::new(golden::Golden::default()));
        r
    }

    /// Adds a kind; a later kind with the same name replaces the earlier one.
    pub fn register(&mut self, check: Arc<dyn Check>) {
        self.checks.retain(|c| c.name() != check.name());
        self.checks.push(check);
    }

    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.checks.iter().map(|c| c.name()).collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.checks.iter().any(|c| c.name() == name)
    }

    /// Runs every check the case allows on one step.
    pub fn run(&self, input: &StepInput<'_>) -> Vec<Finding> {
        self.checks
            .iter()
            .filter(|c| input.case.runs_check(c.name()))
            .flat_map(|c| c.check(input))
            .collect()
    }

    /// Whether a kind the case allows reads [`CaseInput::entries`].
    pub fn reads_entries(&self, case: &Case) -> bool {
        self.checks
            .iter()
            .any(|c| c.reads_entries() && case.runs_check(c.name()))
    }

    /// Runs every check the case allows on the whole case.
    pub fn run_case(&self, input: &CaseInput<'_>) -> Vec<Finding> {
        self.checks
            .iter()
            .filter(|c| input.case.runs_check(c.name()))
            .flat_map(|c| c.check_case(input))
            .collect()
    }
}

/// The check kinds of a run configured by `settings` against `target`: the
/// built-in kinds, `golden` bound to `EWS_GOLDEN_DIR` and the target's
/// profile in `mode`, and `xsd` when `EWS_XSD_DIR` or `EWS_XSD_FETCH` asks
/// for schema validation (which needs the `xsd` cargo feature).
pub async fn registry_for(
    settings: &crate::settings::Settings,
    target: &crate::suite::target::TargetConfig,
    mode: golden::GoldenMode,
) -> Result<CheckRegistry, String> {
    let mut r = CheckRegistry::builtin();
    r.register(Arc::new(golden::Golden::new(
        settings.golden.clone(),
        mode,
        target.profile.clone(),
    )));
    #[cfg(feature = "xsd")]
    if let Some(x) = xsd_check::XsdCheck::from_settings(settings, target).await? {
        r.register(Arc::new(x));
    }
    #[cfg(not(feature = "xsd"))]
    if settings.xsd_dir.is_some() || settings.xsd_fetch {
        return Err(
            "EWS_XSD_DIR / EWS_XSD_FETCH need schema validation, which this build lacks (build with `--features xsd`)"
                .into(),
        );
    }
    Ok(r)
}

impl std::fmt::Debug for CheckRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

// ------------------------------------------------- reading a response body

/// The code a server gives when it cannot deliver events it lost (GS6).
pub const MISSED_EVENTS: &str = "ErrorMissedNotificationEvents";

/// Whether the step accepts a report of lost events and `answer` is one.
pub fn reports_missed_events(expect: &crate::suite::case::Expect, answer: &Answer) -> bool {
    expect.missed_events_ok
        && matches!(answer, Answer::Message { code: Some(c), .. } if c == MISSED_EVENTS)
}

/// What the first response message (or fault) of a body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `soap:Fault`.
    Fault(SoapFault),
    /// The first `*ResponseMessage` under `m:ResponseMessages`.
    Message {
        class: Option<ResponseClass>,
        /// The raw ResponseClass text, when it is not a valid class.
        class_text: Option<String>,
        code: Option<String>,
        message_text: Option<String>,
    },
    /// A SOAP envelope without either.
    NoMessage { payload: String },
    /// Not a SOAP envelope at all.
    NotSoap { problem: String },
}

impl Answer {
    pub fn read(body: &str) -> Answer {
        if body.trim().is_empty() {
            return Answer::NotSoap {
                problem: "the body is empty".into(),
            };
        }
        Answer::read_parsed(body, ews_proto::xml::parse_document(body).as_ref())
    }

    /// [`Answer::read`] on a body already parsed.
    pub fn read_parsed(
        body: &str,
        parsed: Result<&roxmltree::Document<'_>, &ews_proto::xml::XmlError>,
    ) -> Answer {
        if body.trim().is_empty() {
            return Answer::NotSoap {
                problem: "the body is empty".into(),
            };
        }
        let doc = match parsed {
            Ok(d) => d,
            Err(e) => {
                return Answer::NotSoap {
                    problem: format!("the body is not well-formed XML: {e}"),
                };
            }
        };
        let opened = match open(doc) {
            Ok(o) => o,
            Err(e) => {
                return Answer::NotSoap {
                    problem: e.to_string(),
                };
            }
        };
        if let Some(fault) = opened.fault() {
            return Answer::Fault(fault);
        }
        match first_response_message(&opened) {
            Some(msg) => {
                let class_text = msg.attribute("ResponseClass").map(str::to_string);
                Answer::Message {
                    class: class_text.as_deref().and_then(ResponseClass::parse),
                    class_text,
                    code: child(msg, ns::MESSAGES, "ResponseCode").map(|c| c.text_trimmed()),
                    message_text: child(msg, ns::MESSAGES, "MessageText").map(|c| c.text_trimmed()),
                }
            }
            None => Answer::NoMessage {
                payload: ews_proto::xml::display_name(opened.payload),
            },
        }
    }

    /// The ResponseCode this answer carries: the message's, or the fault's `e:ResponseCode`.
    pub fn code(&self) -> Option<&str> {
        match self {
            Answer::Fault(f) => f.response_code.as_ref().map(|c| c.as_str()),
            Answer::Message { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The server's own words: MessageText or faultstring.
    pub fn server_text(&self) -> Option<&str> {
        match self {
            Answer::Fault(f) => Some(f.fault_string.as_str()).filter(|s| !s.is_empty()),
            Answer::Message { message_text, .. } => message_text.as_deref(),
            _ => None,
        }
    }

    /// A short description for messages: `a SOAP fault (ErrorSchemaValidation)`.
    pub fn describe(&self) -> String {
        match self {
            Answer::Fault(f) => match &f.response_code {
                Some(c) => format!("a SOAP fault ({c})"),
                None => format!("a SOAP fault ({})", f.fault_code),
            },
            Answer::Message {
                class_text, code, ..
            } => format!(
                "ResponseClass {} with ResponseCode {}",
                class_text.as_deref().unwrap_or("(none)"),
                code.as_deref().unwrap_or("(none)")
            ),
            Answer::NoMessage { payload } => format!("{payload} without a response message"),
            Answer::NotSoap { problem } => format!("no SOAP envelope ({problem})"),
        }
    }
}

fn first_response_message<'a, 'i>(opened: &Opened<'a, 'i>) -> Option<roxmltree::Node<'a, 'i>> {
    child(opened.payload, ns::MESSAGES, "ResponseMessages")
        .and_then(|msgs| element_children(msgs).next())
}

/// Every notification in a body (GetEvents, push and streaming forms; `m:` or `t:`).
pub fn notifications(body: &str) -> Result<Vec<Notification>, String> {
    notifications_parsed(ews_proto::xml::parse_document(body).as_ref())
}

/// [`notifications`] on a body already parsed.
pub fn notifications_parsed(
    parsed: Result<&roxmltree::Document<'_>, &ews_proto::xml::XmlError>,
) -> Result<Vec<Notification>, String> {
    let doc = parsed.map_err(|e| format!("the body is not well-formed XML: {e}"))?;
    let opened = open(doc).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for node in opened
        .payload
        .descendants()
        .filter(|n| n.is(ns::MESSAGES, "Notification") || n.is(ns::TYPES, "Notification"))
    {
        out.push(Notification::parse(node, "").map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// The first `max` characters of a body, for evidence.
pub fn excerpt(text: &str, max: usize) -> String {
    let trimmed = text.trim();
    if trimmed.chars().count() <= max {
        trimmed.to_string()
    } else {
        let cut: String = trimmed.chars().take(max).collect();
        format!("{cut}… ({} bytes in all)", trimmed.len())
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Builders shared by the check tests.

    use std::path::PathBuf;
    use std::time::Duration;

    use super::{Finding, Severity};
    use crate::suite::case::{Action, Args, Case, CaseGrade, Expect, Step, UserRole};
    use crate::suite::exec::Exchange;

    /// The messages of the failing findings, in order.
    pub fn fails(found: &[Finding]) -> Vec<&str> {
        found
            .iter()
            .filter(|f| f.severity == Severity::Fail)
            .map(|f| f.message.as_str())
            .collect()
    }

    pub fn case(checks: Option<Vec<String>>) -> Case {
        Case {
            id: "x/y".into(),
            file: PathBuf::from("cases/x/y.toml"),
            title: "t".into(),
            requirements: vec!["R29".into()],
            grade: CaseGrade::Assert,
            serial: false,
            needs: vec![],
            isolate: false,
            source: None,
            defect: None,
            profiles: vec![],
            checks,
            golden: false,
            pending: None,
            vars: vec![],
            steps: vec![],
        }
    }

    pub fn step(name: &str, expect: Expect) -> Step {
        Step {
            index: 0,
            name: name.into(),
            line: 12,
            user: UserRole::User,
            action: Action::Op {
                name: "GetEvents".into(),
                args: Args::default(),
            },
            headers: vec![],
            expect,
            captures: vec![],
            asserts: vec![],
        }
    }

    pub fn exchange(status: u16, body: &str) -> Exchange {
        Exchange {
            step: "s".into(),
            line: 12,
            request: "<request/>".into(),
            status: Some(status),
            response_text: body.to_string(),
            duration: Duration::from_millis(3),
            error: None,
            findings: vec![],
            asked: None,
            at: std::time::Duration::ZERO,
            deadline: None,
        }
    }

    pub const GET_EVENTS_OK: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<m:GetEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
<m:ResponseMessages><m:GetEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>
<m:Notification><t:SubscriptionId>S1</t:SubscriptionId><t:PreviousWatermark>W0</t:PreviousWatermark><t:MoreEvents>false</t:MoreEvents>
<t:CreatedEvent><t:Watermark>W1</t:Watermark><t:TimeStamp>2026-01-01T00:00:00Z</t:TimeStamp><t:ItemId Id="I1"/><t:ParentFolderId Id="F1"/></t:CreatedEvent>
<t:ModifiedEvent><t:Watermark>W2</t:Watermark><t:TimeStamp>2026-01-01T00:00:00Z</t:TimeStamp><t:FolderId Id="F1"/><t:ParentFolderId Id="ROOT"/><t:UnreadCount>1</t:UnreadCount></t:ModifiedEvent>
<t:MovedEvent><t:Watermark>W3</t:Watermark><t:TimeStamp>2026-01-01T00:00:00Z</t:TimeStamp><t:ItemId Id="I2"/><t:ParentFolderId Id="F2"/><t:OldItemId Id="I1"/><t:OldParentFolderId Id="F1"/></t:MovedEvent>
</m:Notification></m:GetEventsResponseMessage></m:ResponseMessages></m:GetEventsResponse></s:Body></s:Envelope>"#;

    pub const NOT_FOUND: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<m:GetEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">
<m:ResponseMessages><m:GetEventsResponseMessage ResponseClass="Error"><m:MessageText>nope</m:MessageText><m:ResponseCode>ErrorSubscriptionNotFound</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:GetEventsResponseMessage></m:ResponseMessages>
</m:GetEventsResponse></s:Body></s:Envelope>"#;

    /// A pull Subscribe request on folder F with CreatedEvent.
    pub const SUBSCRIBE_REQUEST: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Header><t:RequestServerVersion Version="Exchange2013"/></s:Header><s:Body><m:Subscribe><m:PullSubscriptionRequest><t:FolderIds><t:FolderId Id="F"/></t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes><t:Timeout>10</t:Timeout></m:PullSubscriptionRequest></m:Subscribe></s:Body></s:Envelope>"#;

    /// Its answer: subscription S1, watermark W0.
    pub const SUBSCRIBE_OK: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:SubscribeResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:ResponseMessages><m:SubscribeResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:SubscriptionId>S1</m:SubscriptionId><m:Watermark>W0</m:Watermark></m:SubscribeResponseMessage></m:ResponseMessages></m:SubscribeResponse></s:Body></s:Envelope>"#;

    pub fn get_events_request(sub: &str, watermark: &str) -> String {
        format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><s:Body><m:GetEvents><m:SubscriptionId>{sub}</m:SubscriptionId><m:Watermark>{watermark}</m:Watermark></m:GetEvents></s:Body></s:Envelope>"#
        )
    }

    pub const FAULT: &str = r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>a:ErrorSchemaValidation</faultcode><faultstring>bad</faultstring><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorSchemaValidation</e:ResponseCode></detail></s:Fault></s:Body></s:Envelope>"#;
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn answers_are_read_in_every_form() {
        assert_eq!(Answer::read(GET_EVENTS_OK).code(), Some("NoError"));
        assert!(matches!(
            Answer::read(GET_EVENTS_OK),
            Answer::Message {
                class: Some(ResponseClass::Success),
                ..
            }
        ));
        assert_eq!(
            Answer::read(NOT_FOUND).code(),
            Some("ErrorSubscriptionNotFound")
        );
        let fault = Answer::read(FAULT);
        assert!(matches!(fault, Answer::Fault(_)));
        assert_eq!(fault.code(), Some("ErrorSchemaValidation"));
        assert!(matches!(Answer::read("oops"), Answer::NotSoap { .. }));
        assert!(matches!(Answer::read(""), Answer::NotSoap { .. }));
    }

    #[test]
    fn notifications_are_found() {
        let n = notifications(GET_EVENTS_OK).expect("parses");
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].events.len(), 3);
        assert_eq!(n[0].more_events, Some(false));
        assert!(notifications(NOT_FOUND).expect("parses").is_empty());
    }

    #[test]
    fn registry_filters_by_case_checks() {
        let r = CheckRegistry::builtin();
        assert_eq!(
            r.names(),
            [
                "codes",
                "asserts",
                "events",
                "notify",
                "structure",
                "shape",
                "batching",
                "watermark",
                "golden"
            ]
        );
        let expect = crate::suite::case::Expect {
            codes: vec!["NoError".into()],
            ..Default::default()
        };
        let ex = [exchange(200, NOT_FOUND)];
        let vars = Vars::new();
        let all = case(None);
        let s = step("poll", expect);
        let input = StepInput::new(&all, &s, &ex, &vars);
        assert!(r.run(&input).iter().any(|f| f.check == "codes"));
        let only_events = case(Some(vec!["events".into()]));
        let input = StepInput::new(&only_events, input.step, input.exchanges, input.vars);
        assert!(r.run(&input).is_empty(), "codes is not selected");
    }

    #[test]
    fn early_readings_are_what_the_case_checks_would_read() {
        let streamed = format!("{GET_EVENTS_OK}{NOT_FOUND}");
        let mut unanswered = exchange(200, "");
        unanswered.status = None;
        let mut exchanges = vec![
            exchange(200, GET_EVENTS_OK),
            exchange(500, FAULT),
            exchange(200, &streamed),
            exchange(200, "<not xml"),
            unanswered,
        ];
        exchanges[0].request = get_events_request("S1", "W0");
        exchanges[1].request = SUBSCRIBE_REQUEST.into();
        let vars = Vars::new();
        let c = case(None);
        let s = step("poll", Default::default());
        for with_asked in [false, true] {
            let mut exchanges = exchanges.clone();
            if with_asked {
                for ex in &mut exchanges {
                    ex.asked = Some(wire::Asked::read(&ex.request));
                }
            }
            let input = StepInput::new(&c, &s, &exchanges, &vars);
            let early: Vec<Option<wire::Reading>> =
                (0..exchanges.len()).map(|i| input.reading(i)).collect();
            // Handing the replies over reads the same, whether or not a
            // check read them first.
            let handed = StepInput::new(&c, &s, &exchanges, &vars);
            let _ = handed.reply(2);
            assert_eq!(handed.into_readings(), early);
            assert_eq!(
                StepInput::new(&c, &s, &exchanges, &vars).into_readings(),
                early
            );
            for (i, ex) in exchanges.iter().enumerate() {
                assert_eq!(
                    early[i].as_ref(),
                    Some(&wire::read_exchange(ex)),
                    "exchange {i}"
                );
                assert_eq!(
                    input.requested_version(i),
                    wire::requested_version(&ex.request)
                );
            }
            assert_eq!(
                early[0]
                    .as_ref()
                    .and_then(|r| r.reply.as_ref())
                    .map(|r| r.notifications.len()),
                Some(1)
            );
            assert_eq!(
                early[2]
                    .as_ref()
                    .and_then(|r| r.reply.as_ref())
                    .map(|r| r.notifications.len()),
                Some(1),
                "both envelopes of a stream are read"
            );
            assert_eq!(input.requested_version(1).as_deref(), Some("Exchange2013"));
            // A case input built from them lists the same entries as one that reads afresh.
            let prefilled = CaseInput::with_readings(&c, &exchanges, &vars, early);
            let fresh = CaseInput::new(&c, &exchanges, &vars);
            let strip =
                |e: &wire::Entry| (e.index, e.step.clone(), e.request.clone(), e.reply.clone());
            assert_eq!(
                prefilled.entries().iter().map(strip).collect::<Vec<_>>(),
                fresh.entries().iter().map(strip).collect::<Vec<_>>()
            );
        }
        // Gaps (and a short list) are read on demand.
        let prefilled = CaseInput::with_readings(&c, &exchanges, &vars, vec![None]);
        assert_eq!(prefilled.entries().len(), exchanges.len());
    }

    #[test]
    fn a_headline_names_each_requirement_once() {
        let with = |message: &str, reqs: &[&str]| Finding {
            check: "batching".into(),
            severity: Severity::Fail,
            requirements: reqs.iter().map(|r| r.to_string()).collect(),
            step: "drain".into(),
            line: 3,
            message: message.into(),
            evidence: None,
            exchange: None,
        };
        assert_eq!(
            with("too many (R32)", &["R32"]).headline(),
            "too many (R32)"
        );
        assert_eq!(
            with("lost (events lost, R32)", &["R32", "R33"]).headline(),
            "lost (events lost, R32) (R33)"
        );
        assert_eq!(with("no id", &["R29"]).headline(), "no id (R29)");
        assert_eq!(
            with("said (call 1 of 2)", &["R29"]).headline(),
            "said (call 1 of 2) (R29)"
        );
    }
}
