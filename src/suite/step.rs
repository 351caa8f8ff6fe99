//! What an operation gets to run one step: the target, the case's
//! variables and resources, and a place to record its exchanges
//! (`StepContext`), and how a step fails (`StepError`).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::target::TargetConfig;
use crate::case::template::{TemplateError, Vars};
use crate::case::{Case, Step};
use crate::check::exchange::Exchange;
use crate::check::request::Asked;
use crate::check::{Finding, Severity};
use crate::client::error::TransportError;
use crate::client::push::PushListener;
use crate::client::session::Session;
use crate::client::transport::{OpenResponse, Transport};
use ews_proto::ews::envelope::RequestHeader;
/// Why a step could not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The case file is at fault (unknown variable, bad parameter value).
    #[error("{0}")]
    Case(String),
    /// A variable is unbound because an earlier capture found nothing.
    #[error("{0}")]
    Missing(String),
    /// The target is unreachable or refuses the credentials.
    #[error("{0}")]
    Fatal(TransportError),
    /// This exchange got no usable response (already recorded as a finding).
    #[error("{0}")]
    NoResponse(String),
}

impl From<TemplateError> for StepError {
    fn from(e: TemplateError) -> Self {
        StepError::Case(e.to_string())
    }
}

/// State an operation keeps from one step of a case to the next (open
/// streams, push cursors), one value per type. It is dropped when the case
/// ends, which closes whatever it holds.
#[derive(Default)]
pub struct Resources {
    // The mutex only makes the map `Sync` (a step context is shared across
    // awaits); access is through `&mut`, so it is never locked.
    pub(crate) values: HashMap<TypeId, std::sync::Mutex<Box<dyn Any + Send>>>,
}

impl Resources {
    /// The case's value of type `T`, created on first use.
    pub fn get<T: Default + Send + 'static>(&mut self) -> &mut T {
        self.values
            .entry(TypeId::of::<T>())
            .or_insert_with(|| std::sync::Mutex::new(Box::new(T::default())))
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .downcast_mut::<T>()
            .expect("values are stored under their own type id")
    }
}

/// What an operation works with while it runs one step.
pub struct StepContext<'r> {
    pub(crate) case: &'r Case,
    pub(crate) step: &'r Step,
    pub(crate) target: &'r TargetConfig,
    pub(crate) transport: &'r Arc<Transport>,
    pub(crate) push: Option<&'r PushListener>,
    pub(crate) resources: &'r mut Resources,
    pub(crate) vars: &'r mut Vars,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) exchanges: Vec<Exchange>,
    /// Exchanges judged without the step's expectations (see [`StepContext::pass_over`]).
    pub(crate) passed_over: Vec<usize>,
    pub(crate) findings: Vec<Finding>,
    /// Whether checks will judge the step, so its requests are worth reading.
    pub(crate) judged: bool,
    /// When the case began (the timeline's origin).
    pub(crate) case_started: Instant,
    /// The end of the wait the step is in, from `case_started` (see [`StepContext::wait_until`]).
    pub(crate) deadline: std::sync::Mutex<Option<Duration>>,
}

impl<'r> StepContext<'r> {
    pub fn step(&self) -> &Step {
        self.step
    }

    pub fn case(&self) -> &Case {
        self.case
    }

    /// The harness's push listener, when the target has one.
    pub fn push_listener(&self) -> Option<&'r PushListener> {
        self.push
    }

    /// State kept across the steps of this case.
    pub fn resources(&mut self) -> &mut Resources {
        self.resources
    }

    /// Records a document the operation obtained itself (a streaming
    /// envelope, a push) as an exchange of this step; returns its index.
    pub fn record(&mut self, mut exchange: Exchange) -> usize {
        self.stamp(&mut exchange);
        self.exchanges.push(exchange);
        self.exchanges.len() - 1
    }

    /// The step now waits until `limit` from now; documents that arrive
    /// carry that deadline into the report's timeline.
    pub fn wait_until(&self, limit: Duration) {
        let at = self.case_started.elapsed().saturating_add(limit);
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
    }

    pub(crate) fn stamp(&self, exchange: &mut Exchange) {
        exchange.at = self.case_started.elapsed();
        exchange.deadline = *self.deadline.lock().unwrap_or_else(|e| e.into_inner());
    }

    /// Judges exchange `index` without the step's expectations: it arrived
    /// while the step waited for another document, so only the general
    /// checks (a named operation's implicit success, structure) apply.
    pub fn pass_over(&mut self, index: usize) {
        if !self.passed_over.contains(&index) {
            self.passed_over.push(index);
        }
    }

    /// Whether exchange `index` is passed over.
    pub fn is_passed_over(&self, index: usize) -> bool {
        self.passed_over.contains(&index)
    }

    /// POSTs `body` as the step's user and returns once the response
    /// headers have arrived (within `deadline`); the body is the caller's to read.
    /// The outer error is the case's (no second user); the inner one the target's.
    pub async fn open(
        &self,
        body: &str,
        deadline: Duration,
    ) -> Result<Result<OpenResponse, TransportError>, StepError> {
        Ok(self.session()?.open(body, deadline).await)
    }

    /// The step's user's session: its credentials, the case's headers, and
    /// 401/403 as answers when the step expects one.
    fn session(&self) -> Result<Session, StepError> {
        let user = self.step_user()?;
        let expects_auth_status = matches!(self.step.expect.status, Some(401 | 403));
        Ok(
            Session::new(Arc::clone(self.transport), user.auth.clone(), None)
                .with_headers(self.headers.clone())
                .accepting_auth_failure(expects_auth_status),
        )
    }

    /// Records an observation about this step (shown for recorded cases).
    pub fn note(&mut self, check: &str, message: impl Into<String>) {
        self.report(check, Severity::Note, message, None);
    }

    /// Records a finding about this step with optional evidence.
    pub fn report(
        &mut self,
        check: &str,
        severity: Severity,
        message: impl Into<String>,
        evidence: Option<String>,
    ) {
        self.findings.push(Finding {
            evidence,
            ..Finding::new(check, severity, self.case, self.step, message)
        });
    }

    pub fn target(&self) -> &TargetConfig {
        self.target
    }

    pub fn vars(&self) -> &Vars {
        self.vars
    }

    pub fn set_var(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.set(name, value);
    }

    /// Substitutes `${…}`, telling a case defect from a failed earlier capture.
    pub fn render(&self, template: &str) -> Result<String, StepError> {
        render_with(self.vars, template, Vars::render)
    }

    /// [`Self::render`] for a raw XML body: values are escaped as XML text.
    pub fn render_xml(&self, template: &str) -> Result<String, StepError> {
        render_with(self.vars, template, Vars::render_xml)
    }

    /// The SOAP header every named operation sends.
    pub fn request_header(&self) -> RequestHeader {
        RequestHeader {
            version: Some(self.target.version.clone()),
            impersonate: self.target.impersonate.clone(),
        }
    }

    /// The exchanges made so far in this step.
    pub fn exchanges(&self) -> &[Exchange] {
        &self.exchanges
    }

    /// Records a finding about this step (for example "DrainEvents never drained").
    pub fn fail(&mut self, check: &str, message: impl Into<String>) {
        self.findings.push(Finding::new(
            check,
            Severity::Fail,
            self.case,
            self.step,
            message,
        ));
    }

    /// The user the step runs as; a case error when the target lacks it.
    pub(crate) fn step_user(&self) -> Result<&'r crate::suite::target::User, StepError> {
        self.target.user(self.step.user).ok_or_else(|| {
            StepError::Case(format!(
                "step \"{}\" runs as user2, but the target has no second user",
                self.step.name
            ))
        })
    }

    /// POSTs `body` as the step's user and records the exchange; returns its index.
    pub async fn exchange(&mut self, body: String) -> Result<usize, StepError> {
        let session = self.session()?;
        let started = Instant::now();
        // Read the request while the target works on it: the checks need
        // it afterwards, and the wait costs nothing. The yield lets the
        // request go out first.
        let judged = self.judged;
        let (result, asked) = tokio::join!(session.post(&body), async {
            if !judged {
                return None;
            }
            tokio::task::yield_now().await;
            Some(Asked::read(&body))
        });
        let mut ex = Exchange {
            step: self.step.name.clone(),
            line: self.step.line,
            request: body,
            status: None,
            response_text: String::new(),
            duration: started.elapsed(),
            error: None,
            findings: Vec::new(),
            asked,
            at: std::time::Duration::ZERO,
            deadline: None,
        };
        let step = &self.step.name;
        let finding = |severity: Severity, message: String, evidence: Option<String>| Finding {
            evidence,
            ..Finding::new("transport", severity, self.case, self.step, message)
        };
        let outcome = match result {
            Ok(resp) => {
                ex.status = Some(resp.status);
                ex.duration = resp.elapsed;
                if let Some(problem) = resp.encoding_problem {
                    ex.findings.push(finding(
                        Severity::Fail,
                        format!("step \"{step}\": {problem}"),
                        None,
                    ));
                }
                // Legal connection handling the transport coped with.
                for note in resp.notes {
                    ex.findings.push(finding(
                        Severity::Note,
                        format!("step \"{step}\": {note}"),
                        None,
                    ));
                }
                // The answer itself is this request's and is judged as
                // usual; the extra one is said once, here.
                if let Some(more) = resp.second_response {
                    ex.findings.push(finding(
                        Severity::Fail,
                        format!(
                            "step \"{step}\": the target sent two responses to one request: after its HTTP {} answer, more arrived on the same connection (which was not used again)",
                            resp.status
                        ),
                        Some(more),
                    ));
                }
                ex.response_text = resp.body;
                Ok(self.exchanges.len())
            }
            Err(e) => {
                ex.error = Some(e.to_string());
                if e.is_fatal() {
                    Err(StepError::Fatal(e))
                } else {
                    // No usable answer (another request's answer included:
                    // it is kept as evidence, never judged as this one's).
                    ex.findings.push(finding(
                        Severity::Fail,
                        format!("step \"{step}\": {e}"),
                        e.evidence(),
                    ));
                    Err(StepError::NoResponse(e.to_string()))
                }
            }
        };
        self.stamp(&mut ex);
        self.exchanges.push(ex);
        outcome
    }
}

pub(crate) fn render_with(
    vars: &Vars,
    template: &str,
    render: impl Fn(&Vars, &str) -> Result<String, TemplateError>,
) -> Result<String, StepError> {
    render(vars, template).map_err(|e| match &e {
        TemplateError::Unknown { name, .. } if vars.missing_reason(name).is_some() => {
            StepError::Missing(e.to_string())
        }
        _ => StepError::Case(e.to_string()),
    })
}
