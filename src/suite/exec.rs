//! The executor: runs one case against a target, step by step, and returns
//! an [`Outcome`] holding every exchange with its findings.
//!
//! Order within a step: send (the operation may make several exchanges),
//! run the checks with the variables as they were when the step was sent,
//! then bind the step's captures. So `equals = "${wm}"` compares with the
//! value captured by an *earlier* step even when this step re-captures `wm`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::case::{Action, Args, Capture, Case, CaseGrade, Expect, Step, UserRole};
use super::depend::{Dependencies, SKIPPED_STEP};
use super::load::LoadError;
use super::ops::OpRegistry;
use super::profile::Profile;
use super::target::{Target, TargetConfig};
use super::template::{TemplateError, Vars};
use crate::check::codes::Codes;
use crate::check::wire::{Asked, Reading};
use crate::check::{CaseInput, Check, CheckRegistry, Finding, Severity, StepInput};
use crate::client::push::PushListener;
use crate::client::transport::{
    HttpRequest, OpenResponse, Transport, TransportConfig, TransportError,
};
use ews_proto::ews::envelope::RequestHeader;
use ews_proto::xml::path::XPath;

/// One HTTP request and what came back.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// The step's name.
    pub step: String,
    /// The step's line in the case file.
    pub line: usize,
    /// The request body as sent (credentials travel in headers and are never recorded).
    pub request: String,
    /// `None` when no response arrived (see `error`).
    pub status: Option<u16>,
    pub response_text: String,
    /// How long the response took; for a document a waiting step received
    /// (a streaming envelope, a push), how long after the step began it arrived.
    #[serde(rename = "duration_ms", serialize_with = "as_millis")]
    pub duration: Duration,
    /// Why there is no response.
    pub error: Option<String>,
    pub findings: Vec<Finding>,
    /// What the request says, when the executor read it while the target
    /// worked on it (`None`: read from `request` when a check needs it).
    /// It must be `Asked::read(&request)`.
    #[serde(skip)]
    pub asked: Option<Asked>,
    /// When the exchange ended (its response or document arrived, or it
    /// failed), counted from the start of its case: the report's timeline.
    #[serde(rename = "at_ms", serialize_with = "as_millis")]
    pub at: Duration,
    /// The end of the wait the step was in when this arrived, counted from
    /// the start of the case (a waiting step's deadline, slack included).
    #[serde(
        rename = "deadline_ms",
        serialize_with = "opt_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub deadline: Option<Duration>,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

fn opt_millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(d.as_millis() as u64),
        None => s.serialize_none(),
    }
}

/// The verdict on one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    /// An expectation broke (an `assert` case).
    Fail,
    /// A `record` case ran: what came back is reported, nothing is judged.
    Recorded,
    /// The case did not run.
    Skipped {
        reason: String,
    },
    /// The target could not be reached or refused the credentials.
    Unreachable {
        reason: String,
    },
    /// The case file or the harness is at fault.
    Error {
        reason: String,
    },
    /// The case failed, and the profile's baseline lists it as a known failure.
    #[serde(rename = "expected-failure")]
    ExpectedFailure {
        reason: String,
    },
    /// The case passed, yet the profile's baseline lists it as a known
    /// failure: a CI failure, so the baseline gets updated.
    #[serde(rename = "unexpected-pass")]
    UnexpectedPass {
        reason: String,
    },
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Recorded => "recorded",
            Verdict::Skipped { .. } => "skipped",
            Verdict::Unreachable { .. } => "unreachable",
            Verdict::Error { .. } => "error",
            Verdict::ExpectedFailure { .. } => "expected-failure",
            Verdict::UnexpectedPass { .. } => "unexpected-pass",
        }
    }

    /// Pass, recorded, skipped and expected failures count as passed for the exit code.
    pub fn is_ok(&self) -> bool {
        matches!(
            self,
            Verdict::Pass
                | Verdict::Recorded
                | Verdict::Skipped { .. }
                | Verdict::ExpectedFailure { .. }
        )
    }
}

/// Everything known about one case run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub id: String,
    pub file: PathBuf,
    pub title: String,
    pub requirements: Vec<String>,
    pub source: Option<String>,
    pub defect: Option<String>,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub exchanges: Vec<Exchange>,
    /// Findings not tied to one exchange (setup, cleanup, a step that sent nothing).
    pub findings: Vec<Finding>,
    #[serde(rename = "duration_ms", serialize_with = "as_millis")]
    pub duration: Duration,
    /// The exchanges as read while their steps were judged, for the
    /// case-level checks; emptied when those run.
    #[serde(skip)]
    readings: Vec<Option<Reading>>,
    /// When the case began: exchanges' `at` count from here.
    #[serde(skip)]
    started: Instant,
}

impl Outcome {
    fn start(case: &Case) -> Self {
        Outcome {
            id: case.id.clone(),
            file: case.file.clone(),
            title: case.title.clone(),
            requirements: case.requirements.clone(),
            source: case.source.clone(),
            defect: case.defect.clone(),
            verdict: Verdict::Pass,
            exchanges: Vec::new(),
            findings: Vec::new(),
            duration: Duration::ZERO,
            readings: Vec::new(),
            started: Instant::now(),
        }
    }

    /// The outcome of a case file that could not be loaded.
    pub fn from_load_error(err: &LoadError) -> Self {
        Outcome {
            id: err.case_id.clone(),
            file: err.file.clone(),
            title: String::new(),
            requirements: Vec::new(),
            source: None,
            defect: None,
            verdict: Verdict::Error {
                reason: err.to_string(),
            },
            exchanges: Vec::new(),
            findings: Vec::new(),
            duration: Duration::ZERO,
            readings: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Every finding, exchange-level first, in order.
    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        self.exchanges
            .iter()
            .flat_map(|e| e.findings.iter())
            .chain(self.findings.iter())
    }

    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.all_findings().filter(|f| f.severity == Severity::Fail)
    }
}

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
    values: HashMap<TypeId, std::sync::Mutex<Box<dyn Any + Send>>>,
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
    case: &'r Case,
    step: &'r Step,
    target: &'r TargetConfig,
    transport: &'r Transport,
    push: Option<&'r PushListener>,
    resources: &'r mut Resources,
    vars: &'r mut Vars,
    headers: Vec<(String, String)>,
    exchanges: Vec<Exchange>,
    /// Exchanges judged without the step's expectations (see [`StepContext::pass_over`]).
    passed_over: Vec<usize>,
    findings: Vec<Finding>,
    /// Whether checks will judge the step, so its requests are worth reading.
    judged: bool,
    /// When the case began (the timeline's origin).
    case_started: Instant,
    /// The end of the wait the step is in, from `case_started` (see [`StepContext::wait_until`]).
    deadline: std::sync::Mutex<Option<Duration>>,
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

    fn stamp(&self, exchange: &mut Exchange) {
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
        let user = self.step_user()?;
        let expects_auth_status = matches!(self.step.expect.status, Some(401 | 403));
        Ok(self
            .transport
            .open(
                &HttpRequest {
                    body,
                    auth: &user.auth,
                    headers: &self.headers,
                    accept_auth_failure: expects_auth_status,
                },
                deadline,
            )
            .await)
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
    fn step_user(&self) -> Result<&'r crate::suite::target::User, StepError> {
        self.target.user(self.step.user).ok_or_else(|| {
            StepError::Case(format!(
                "step \"{}\" runs as user2, but the target has no second user",
                self.step.name
            ))
        })
    }

    /// POSTs `body` as the step's user and records the exchange; returns its index.
    pub async fn exchange(&mut self, body: String) -> Result<usize, StepError> {
        let user = self.step_user()?;
        let expects_auth_status = matches!(self.step.expect.status, Some(401 | 403));
        let started = Instant::now();
        let request = HttpRequest {
            body: &body,
            auth: &user.auth,
            headers: &self.headers,
            accept_auth_failure: expects_auth_status,
        };
        // Read the request while the target works on it: the checks need
        // it afterwards, and the wait costs nothing. The yield lets the
        // request go out first.
        let judged = self.judged;
        let (result, asked) = tokio::join!(self.transport.post(&request), async {
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

fn render_with(
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

/// Runs cases against one target.
pub struct Executor {
    target: Arc<dyn Target>,
    transport: Transport,
    ops: Arc<OpRegistry>,
    checks: Arc<CheckRegistry>,
    profile: Option<Arc<Profile>>,
}

struct StepRun {
    exchanges: Vec<Exchange>,
    /// The exchanges as read for the case-level checks, when the step's
    /// checks read them (by index into `exchanges`).
    readings: Vec<Option<Reading>>,
    /// Findings that belong to no exchange.
    findings: Vec<Finding>,
    error: Option<StepError>,
}

impl Executor {
    /// An executor with the built-in operations and checks.
    pub fn new(target: Arc<dyn Target>) -> Result<Self, TransportError> {
        let cfg = target.config();
        let mut tc = TransportConfig::new(cfg.endpoint.clone());
        tc.deadline = cfg.request_timeout;
        tc.insecure_tls = cfg.insecure_tls;
        let transport = Transport::new(tc)?;
        Ok(Executor {
            target,
            transport,
            ops: Arc::new(OpRegistry::builtin()),
            checks: Arc::new(CheckRegistry::builtin()),
            profile: None,
        })
    }

    pub fn with_ops(mut self, ops: OpRegistry) -> Self {
        self.ops = Arc::new(ops);
        self
    }

    pub fn with_checks(mut self, checks: CheckRegistry) -> Self {
        self.checks = Arc::new(checks);
        self
    }

    /// The server profile: its skips and its expected-failure baseline apply.
    pub fn with_profile(mut self, profile: Option<Profile>) -> Self {
        self.profile = profile.map(Arc::new);
        self
    }

    pub fn profile(&self) -> Option<&Profile> {
        self.profile.as_deref()
    }

    pub fn ops(&self) -> &OpRegistry {
        &self.ops
    }

    pub fn checks(&self) -> &CheckRegistry {
        &self.checks
    }

    pub fn target(&self) -> &TargetConfig {
        self.target.config()
    }

    /// Why `case` cannot run on this target, if it cannot.
    pub fn skip_reason(&self, case: &Case) -> Option<String> {
        let cfg = self.target.config();
        if let Some(reason) = &case.pending {
            return Some(format!("pending: {reason}"));
        }
        if let Some(reason) = case.profile_exclusion(cfg.profile.as_deref()) {
            return Some(reason);
        }
        if let Some(p) = &self.profile
            && let Some(reason) = p.skip(&case.id)
        {
            return Some(format!("the profile `{}` skips it: {reason}", p.name));
        }
        let missing: Vec<&str> = case
            .needs
            .iter()
            .filter(|c| !cfg.has(**c))
            .map(|c| c.as_str())
            .collect();
        if missing.is_empty() {
            None
        } else {
            Some(format!(
                "the target lacks: {} (see the settings for second user, push URL, version and slow cases)",
                missing.join(", ")
            ))
        }
    }

    /// Runs one case. Never panics on target behaviour; every wait has a deadline.
    pub async fn run_case(&self, case: &Case) -> Outcome {
        let started = Instant::now();
        let mut outcome = Outcome::start(case);
        if let Some(reason) = self.skip_reason(case) {
            outcome.verdict = Verdict::Skipped { reason };
            return outcome;
        }
        outcome.verdict = self.run_steps(case, &mut outcome).await;
        outcome.readings = Vec::new(); // left over when the case stopped early
        outcome.duration = started.elapsed();
        if let Some(p) = &self.profile
            && let Some(reason) = p.expected_failure(&case.id)
        {
            outcome.verdict = match std::mem::replace(&mut outcome.verdict, Verdict::Pass) {
                Verdict::Fail => Verdict::ExpectedFailure {
                    reason: format!("listed by profile `{}`: {reason}", p.name),
                },
                Verdict::Pass => Verdict::UnexpectedPass {
                    reason: format!(
                        "profile `{}` lists it as an expected failure ({reason}), but it passed: update the baseline",
                        p.name
                    ),
                },
                other => other,
            };
        }
        outcome
    }

    async fn run_steps(&self, case: &Case, outcome: &mut Outcome) -> Verdict {
        let cfg = self.target.config();
        let mut vars = Vars::new();
        vars.set("user", cfg.user.smtp.clone());
        if let Some(u2) = &cfg.user2 {
            vars.set("user2", u2.smtp.clone());
        }
        if let Some(url) = &cfg.push_url {
            vars.set("push_url", url.clone());
        }
        vars.set("case", case.id.clone());
        vars.set("unique", format!("{:016x}", rand::random::<u64>()));
        let builtins = vars.clone();
        for (name, value) in &case.vars {
            match builtins.render(value) {
                Ok(v) => vars.set(name.clone(), v),
                Err(e) => {
                    return Verdict::Error {
                        reason: format!("{}: [vars] {name}: {e}", case.file.display()),
                    };
                }
            }
        }

        let mut resources = Resources::default();
        let mut setup_failed = false;
        let mut folder_created = false;
        let mut stop: Option<Verdict> = None;
        if case.isolate {
            let step = synthetic_step(
                "setup: create the case folder",
                "CreateFolder",
                &[
                    ("parent", "msgfolderroot"),
                    ("name", "ews-conformance ${case} ${unique}"),
                ],
                vec![Capture {
                    name: "folder".into(),
                    path: folder_id_path(),
                }],
            );
            let run = self
                .run_step(
                    case,
                    &step,
                    &mut vars,
                    &mut resources,
                    Some(&Codes),
                    outcome.started,
                )
                .await;
            let failed = run.error.is_some() || has_fail(&run);
            folder_created = vars.get("folder").is_some();
            stop = self.absorb(case, &step, run, outcome);
            if failed && stop.is_none() {
                setup_failed = true;
                outcome.findings.push(case_finding(
                    case,
                    "setup",
                    "setup: the case folder could not be created, so no step ran",
                ));
            }
        }

        if stop.is_none() && !setup_failed {
            // A failed step hides nothing: later steps run unless they use
            // what it (or a step skipped for it) should have provided.
            let mut deps = Dependencies::default();
            for step in &case.steps {
                if case.grade == CaseGrade::Assert
                    && let Some(why) = deps.blocker(step, &vars)
                {
                    outcome.findings.push(Finding {
                        severity: Severity::Note,
                        line: step.line,
                        step: step.name.clone(),
                        ..case_finding(
                            case,
                            SKIPPED_STEP,
                            format!("step \"{}\" skipped: {why}", step.name),
                        )
                    });
                    deps.skipped(step, &self.ops, &vars);
                    continue;
                }
                let run = self
                    .run_step(case, step, &mut vars, &mut resources, None, outcome.started)
                    .await;
                let failed = has_fail(&run) || matches!(run.error, Some(StepError::Missing(_)));
                if let Some(v) = self.absorb(case, step, run, outcome) {
                    stop = Some(v);
                    break;
                }
                if case.grade == CaseGrade::Assert {
                    if failed {
                        deps.failed(step, &self.ops, &vars);
                    } else {
                        deps.passed(step, &self.ops, &vars);
                    }
                }
            }
        }

        // Streams and other case state end with the steps, before clean-up.
        drop(resources);
        let fatal = matches!(stop, Some(Verdict::Unreachable { .. }));
        if folder_created && !fatal {
            let step = synthetic_step(
                "cleanup: delete the case folder",
                "DeleteFolder",
                &[("folder", "${folder}"), ("delete_type", "HardDelete")],
                vec![],
            );
            let mut run = self
                .run_step(
                    case,
                    &step,
                    &mut vars,
                    &mut Resources::default(),
                    Some(&Codes),
                    outcome.started,
                )
                .await;
            // A failed cleanup is worth knowing, but it does not judge the target.
            for f in run
                .exchanges
                .iter_mut()
                .flat_map(|e| e.findings.iter_mut())
                .chain(run.findings.iter_mut())
            {
                f.severity = Severity::Note;
            }
            run.error = None;
            let _ = self.absorb(case, &step, run, outcome);
        }

        if let Some(v) = stop {
            return v;
        }
        self.judge_case(case, &vars, outcome);
        let failed = outcome.failures().next().is_some();
        match (failed, case.grade) {
            (true, _) if setup_failed => Verdict::Fail,
            (_, CaseGrade::Record) => Verdict::Recorded,
            (true, CaseGrade::Assert) => Verdict::Fail,
            (false, CaseGrade::Assert) => Verdict::Pass,
        }
    }

    /// Runs the case-level checks over every exchange of the case; each
    /// finding goes to the exchange it is about (or to the case).
    fn judge_case(&self, case: &Case, vars: &Vars, outcome: &mut Outcome) {
        let early = std::mem::take(&mut outcome.readings);
        let found = self.checks.run_case(&CaseInput::with_readings(
            case,
            &outcome.exchanges,
            vars,
            early,
        ));
        for f in found {
            match f.exchange {
                Some(i) if i < outcome.exchanges.len() => outcome.exchanges[i].findings.push(f),
                _ => outcome.findings.push(f),
            }
        }
    }

    /// Moves a step's exchanges and findings into the outcome; returns the verdict that ends the case, if any.
    fn absorb(
        &self,
        case: &Case,
        step: &Step,
        run: StepRun,
        outcome: &mut Outcome,
    ) -> Option<Verdict> {
        // Keep the readings aligned with the exchanges, gaps and all.
        let base = outcome.exchanges.len();
        let mut readings = run.readings;
        readings.resize_with(run.exchanges.len(), || None);
        outcome.readings.resize_with(base, || None);
        outcome.readings.extend(readings);
        outcome.exchanges.extend(run.exchanges);
        outcome.findings.extend(run.findings);
        match run.error {
            None | Some(StepError::NoResponse(_)) => None,
            Some(StepError::Fatal(e)) => Some(Verdict::Unreachable {
                reason: format!("step \"{}\": {e}", step.name),
            }),
            Some(StepError::Case(msg)) => Some(Verdict::Error {
                reason: format!(
                    "{}:{}: step \"{}\": {msg}",
                    case.file.display(),
                    step.line,
                    step.name
                ),
            }),
            Some(StepError::Missing(msg)) => {
                outcome.findings.push(Finding {
                    line: step.line,
                    step: step.name.clone(),
                    ..case_finding(
                        case,
                        "capture",
                        format!("step \"{}\" cannot be sent: {msg}", step.name),
                    )
                });
                // A record case has nothing more to record; an assert case has failed.
                None
            }
        }
    }

    async fn run_step(
        &self,
        case: &Case,
        step: &Step,
        vars: &mut Vars,
        resources: &mut Resources,
        only_check: Option<&dyn Check>,
        case_started: Instant,
    ) -> StepRun {
        let cfg = self.target.config();
        let mut run = StepRun {
            exchanges: Vec::new(),
            readings: Vec::new(),
            findings: Vec::new(),
            error: None,
        };
        if let Action::Sleep { minutes } = step.action {
            tokio::time::sleep(cfg.protocol_minute.mul_f64(minutes.max(0.0))).await;
            return run;
        }
        let mut headers = Vec::new();
        if let Some(anchor) = &cfg.anchor_mailbox {
            headers.push(("X-AnchorMailbox".to_string(), anchor.clone()));
        }
        for (name, value) in &step.headers {
            match render_with(vars, value, Vars::render) {
                Ok(v) => headers.push((name.clone(), v)),
                Err(e) => {
                    run.error = Some(e);
                    return run;
                }
            }
        }
        let before = vars.clone();
        let mut ctx = StepContext {
            case,
            step,
            target: cfg,
            transport: &self.transport,
            push: self.target.push_listener(),
            resources,
            vars,
            headers,
            exchanges: Vec::new(),
            passed_over: Vec::new(),
            findings: Vec::new(),
            judged: only_check.is_some() || !self.checks.is_empty(),
            case_started,
            deadline: std::sync::Mutex::new(None),
        };
        let result = match &step.action {
            Action::Op { name, args } => match self.ops.get(name) {
                Some(op) => op.run(&mut ctx, args).await,
                None => Err(StepError::Case(format!("unknown operation `{name}`"))),
            },
            Action::Send { body } => match ctx.render_xml(body) {
                Ok(body) => ctx.exchange(body).await.map(|_| ()),
                Err(e) => Err(e),
            },
            Action::Sleep { .. } => Ok(()),
        };
        let StepContext {
            exchanges,
            findings,
            passed_over,
            vars,
            ..
        } = ctx;
        run.exchanges = exchanges;
        run.findings = findings;
        run.error = result.err();
        if matches!(
            run.error,
            Some(StepError::Case(_) | StepError::Fatal(_) | StepError::Missing(_))
        ) {
            return run;
        }

        let judge = |input: &StepInput<'_>| match only_check {
            Some(check) => check.check(input),
            None => self.checks.run(input),
        };
        let run_checks = |step: &Step, exchanges: &[Exchange]| {
            judge(&StepInput::new(case, step, exchanges, &before))
        };
        let (found, judged, captured, readings) = if passed_over.is_empty() {
            let input = StepInput::new(case, step, &run.exchanges, &before);
            let found = judge(&input);
            // Captures read the same parses; they are bound once the
            // step's starting variables are let go (so binding copies nothing).
            let selected = select_captures_parsed(&step.captures, &input);
            // Read each exchange for the case-level checks now, while the
            // step's parses are at hand, rather than parsing it again later.
            let readings = if only_check.is_none() && self.checks.reads_entries(case) {
                input.into_readings()
            } else {
                Vec::new()
            };
            (found, None, Some(selected), readings)
        } else {
            let (found, judged) = judge_split(step, &run.exchanges, &passed_over, run_checks);
            (found, judged, None, Vec::new())
        };
        drop(before);
        let captured =
            captured.map(|selected| bind_captures(&step.captures, selected, vars, &step.name));
        run.readings = readings;
        let step_failed = found.iter().any(|f| f.severity == Severity::Fail)
            || run
                .exchanges
                .iter()
                .any(|e| e.findings.iter().any(|f| f.severity == Severity::Fail));
        attach(&mut run, found);

        let captured = match (&judged, captured) {
            (_, Some(captured)) => captured,
            (None, None) => Vec::new(),
            (Some(indices), None) => {
                let judged: Vec<Exchange> =
                    indices.iter().map(|&i| run.exchanges[i].clone()).collect();
                capture(&step.captures, &judged, vars, &step.name)
            }
        };
        if !step_failed {
            for message in captured {
                let f = Finding {
                    line: step.line,
                    step: step.name.clone(),
                    ..case_finding(case, "capture", message)
                };
                attach(&mut run, vec![f]);
            }
        }
        run
    }
}

/// Checks a step whose operation passed over some exchanges: the others
/// with the step, each passed-over one on its own with a step that has no
/// expectations. Returns the findings (exchange indices into `exchanges`,
/// `None` when about no exchange) and the indices of the judged exchanges.
fn judge_split(
    step: &Step,
    exchanges: &[Exchange],
    passed_over: &[usize],
    run_checks: impl Fn(&Step, &[Exchange]) -> Vec<Finding>,
) -> (Vec<Finding>, Option<Vec<usize>>) {
    let judged: Vec<usize> = (0..exchanges.len())
        .filter(|i| !passed_over.contains(i))
        .collect();
    let subset: Vec<Exchange> = judged.iter().map(|&i| exchanges[i].clone()).collect();
    let mut found = run_checks(step, &subset);
    for f in &mut found {
        f.exchange = match f.exchange {
            Some(i) => judged.get(i).copied(),
            None => judged.last().copied(),
        };
    }
    let neutral = Step {
        expect: Expect::default(),
        captures: Vec::new(),
        asserts: Vec::new(),
        ..step.clone()
    };
    for &i in passed_over.iter().filter(|&&i| i < exchanges.len()) {
        for mut f in run_checks(&neutral, std::slice::from_ref(&exchanges[i])) {
            f.exchange = Some(i);
            found.push(f);
        }
    }
    (found, Some(judged))
}

fn has_fail(run: &StepRun) -> bool {
    run.findings
        .iter()
        .chain(run.exchanges.iter().flat_map(|e| e.findings.iter()))
        .any(|f| f.severity == Severity::Fail)
}

/// Puts each finding on the exchange it is about, or the step's last exchange.
fn attach(run: &mut StepRun, findings: Vec<Finding>) {
    for f in findings {
        let target = match f.exchange {
            Some(i) if i < run.exchanges.len() => Some(i),
            _ => run.exchanges.len().checked_sub(1),
        };
        match target {
            Some(i) => run.exchanges[i].findings.push(f),
            None => run.findings.push(f),
        }
    }
}

/// Binds the step's captures; returns a message for each capture that matched nothing.
fn capture(
    captures: &[Capture],
    exchanges: &[Exchange],
    vars: &mut Vars,
    step: &str,
) -> Vec<String> {
    if captures.is_empty() {
        return Vec::new();
    }
    let docs: Vec<roxmltree::Document<'_>> = exchanges
        .iter()
        .filter(|e| e.status.is_some())
        .filter_map(|e| ews_proto::xml::parse_document(&e.response_text).ok())
        .collect();
    let selected = select_captures(captures, &docs.iter().collect::<Vec<_>>());
    bind_captures(captures, selected, vars, step)
}

/// What each capture selects, from the parses a step's checks shared.
fn select_captures_parsed(captures: &[Capture], input: &StepInput<'_>) -> Vec<Vec<String>> {
    if captures.is_empty() {
        return Vec::new();
    }
    let docs: Vec<&roxmltree::Document<'_>> = input
        .responses()
        .filter(|(_, ex, _)| ex.status.is_some())
        .filter_map(|(_, _, parsed)| parsed.ok())
        .collect();
    select_captures(captures, &docs)
}

/// What each capture's path selects in `docs`, in order.
fn select_captures(captures: &[Capture], docs: &[&roxmltree::Document<'_>]) -> Vec<Vec<String>> {
    captures
        .iter()
        .map(|c| {
            docs.iter()
                .flat_map(|d| c.path.select(d).strings())
                .collect()
        })
        .collect()
}

/// Binds each capture to its selected values; returns a message for each
/// capture that matched nothing.
fn bind_captures(
    captures: &[Capture],
    selected: Vec<Vec<String>>,
    vars: &mut Vars,
    step: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (c, values) in captures.iter().zip(selected) {
        let why = if values.is_empty() {
            let why = format!(
                "capture `{}` ({}) in step \"{step}\" matched nothing",
                c.name, c.path
            );
            problems.push(format!("step \"{step}\": {why}"));
            why
        } else {
            String::new() // only a capture that matched nothing keeps its reason
        };
        vars.set_capture(&c.name, &values, &why);
    }
    problems
}

fn case_finding(case: &Case, check: &str, message: impl Into<String>) -> Finding {
    Finding {
        check: check.to_string(),
        severity: Severity::Fail,
        requirements: case.requirements.clone(),
        step: String::new(),
        line: 1,
        message: message.into(),
        evidence: None,
        exchange: None,
    }
}

fn folder_id_path() -> XPath {
    XPath::parse("//t:FolderId/@Id").expect("a constant, valid path")
}

fn synthetic_step(name: &str, op: &str, args: &[(&str, &str)], captures: Vec<Capture>) -> Step {
    Step {
        index: usize::MAX,
        name: name.to_string(),
        line: 1,
        user: UserRole::User,
        action: Action::Op {
            name: op.to_string(),
            args: Args(
                args.iter()
                    .map(|(k, v)| (k.to_string(), toml::Value::String(v.to_string())))
                    .collect(),
            ),
        },
        headers: Vec::new(),
        expect: Expect::default(),
        captures,
        asserts: Vec::new(),
    }
}
