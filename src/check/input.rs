//! What a check reads: one step with its exchanges (`StepInput`), or the
//! whole case once it ran (`CaseInput`), with the bodies parsed once.

use super::exchange::Exchange;
use super::finding::*;
use super::request;
use super::wire;
use crate::case::template::Vars;
use crate::case::{Case, Step};

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
    fn request_of(&self, index: usize) -> Option<request::Request> {
        let ex = self.exchanges.get(index)?;
        Some(match &ex.asked {
            Some(asked) => {
                debug_assert_eq!(asked.request, request::read_request(&ex.request));
                asked.request.clone()
            }
            None => request::read_request_parsed(self.request_document(index)?),
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
        let requests: Vec<Option<request::Request>> = (0..self.exchanges.len())
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
                debug_assert_eq!(asked.version, request::requested_version(&ex.request));
                asked.version.clone()
            }
            None => request::requested_version_parsed(self.request_document(index)?),
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
