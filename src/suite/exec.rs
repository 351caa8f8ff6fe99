//! The executor: runs one case against a target, step by step, and returns
//! an [`Outcome`] holding every exchange with its findings.
//!
//! Order within a step: send (the operation may make several exchanges),
//! run the checks with the variables as they were when the step was sent,
//! then bind the step's captures. So `equals = "${wm}"` compares with the
//! value captured by an *earlier* step even when this step re-captures `wm`.

use std::sync::Arc;
use std::time::Instant;

use super::depend::{Dependencies, SKIPPED_STEP};
use super::operation::OpRegistry;
use super::outcome::{Outcome, Verdict};
use super::profile::Profile;
use super::step::{Resources, StepContext, StepError, render_with};
use super::target::{Target, TargetConfig};
use crate::case::template::Vars;
use crate::case::{Action, Args, Capture, Case, CaseGrade, Expect, Step, UserRole};
use crate::check::codes::Codes;
use crate::check::exchange::Exchange;
use crate::check::wire::Reading;
use crate::check::{CaseInput, Check, CheckRegistry, Finding, Severity, StepInput};
use crate::client::error::TransportError;
use crate::client::transport::{Transport, TransportConfig};
use ews_proto::xml::path::XPath;

/// Runs cases against one target.
pub struct Executor {
    target: Arc<dyn Target>,
    transport: Arc<Transport>,
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
        let transport = Arc::new(Transport::new(tc)?);
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
