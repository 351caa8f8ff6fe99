//! Validating a parsed case: operations and their arguments, expectations,
//! templates, requirement ids, each mistake with its place in the file.

use std::collections::BTreeSet;
use std::ops::Range;

use regex::Regex;
use toml::Spanned;

use super::loader::*;
use super::source::*;
use crate::case::template::referenced;
use crate::case::*;
use crate::suite::operation::validate_args;
use ews_proto::ews::{ConnectionStatus, EventKind, ResponseClass};
use ews_proto::xml::path::XPath;

impl Loader<'_> {
    pub(super) fn validate(&self, src: &Source<'_>, raw: RawCase) -> Result<Case, LoadError> {
        if raw.title.get_ref().trim().is_empty() {
            return Err(src.error(raw.title.span(), "the title is empty"));
        }
        if raw.requirements.get_ref().is_empty() {
            return Err(src.error(
                raw.requirements.span(),
                "a case names at least one requirement (R1..R78)",
            ));
        }
        let mut requirements = Vec::new();
        for r in raw.requirements.get_ref() {
            if !is_requirement(r.get_ref()) {
                return Err(src.error(
                    r.span(),
                    format!(
                        "unknown requirement id `{}` (known: R1..R{MAX_REQUIREMENT}, {})",
                        r.get_ref(),
                        NOTE_REQUIREMENTS.join(", ")
                    ),
                ));
            }
            requirements.push(r.get_ref().clone());
        }
        let mut needs = Vec::new();
        for n in &raw.needs {
            match Capability::parse(n.get_ref()) {
                Some(c) => needs.push(c),
                None => {
                    return Err(src.error(
                        n.span(),
                        format!(
                            "unknown capability `{}` (known: {})",
                            n.get_ref(),
                            Capability::ALL.map(|c| c.as_str()).join(", ")
                        ),
                    ));
                }
            }
        }
        let checks = match &raw.checks {
            None => None,
            Some(list) => {
                for c in list {
                    if !self.checks.contains(c.get_ref()) {
                        return Err(src.error(
                            c.span(),
                            format!(
                                "unknown check `{}` (known: {})",
                                c.get_ref(),
                                self.checks.names().join(", ")
                            ),
                        ));
                    }
                }
                Some(list.iter().map(|c| c.get_ref().clone()).collect())
            }
        };
        let mut vars = Vec::new();
        for (name, value) in &raw.vars {
            let text = match value.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(src.error(
                        value.span(),
                        format!(
                            "[vars] {name} must be a string, number or boolean, not {}",
                            other.type_str()
                        ),
                    ));
                }
            };
            if !is_var_name(name) {
                return Err(src.error(
                    value.span(),
                    format!("`{name}` is not a variable name (letters, digits, `_`, `-`)"),
                ));
            }
            check_template(src, value.span(), &text, &Known::builtins_only())?;
            vars.push((name.clone(), text));
        }
        if raw.steps.is_empty() {
            return Err(src.error(0..0, "a case needs at least one [[step]]"));
        }

        let pending = match &raw.pending {
            Some(p) if p.get_ref().trim().is_empty() => {
                return Err(src.error(p.span(), "`pending` names why the case cannot run yet"));
            }
            Some(p) => Some(p.get_ref().trim().to_string()),
            None => None,
        };
        let mut known = Known::new(raw.isolate, vars.iter().map(|(n, _)| n.clone()));
        let mut names = BTreeSet::new();
        let mut steps = Vec::new();
        for (index, spanned) in raw.steps.iter().enumerate() {
            let step = self.validate_step(src, index, spanned, &known, pending.is_some())?;
            if !names.insert(step.name.clone()) {
                return Err(src.error(
                    step_anchor(spanned),
                    format!(
                        "two steps are named \"{}\"; names must be unique",
                        step.name
                    ),
                ));
            }
            if step.user == UserRole::User2 && !needs.contains(&Capability::SecondUser) {
                return Err(src.error(
                    step_anchor(spanned),
                    "the step runs as user2, so the case must list needs = [\"second-user\"]",
                ));
            }
            for c in &step.captures {
                known.captures.insert(c.name.clone());
            }
            if let Action::Op { name, .. } = &step.action
                && let Some(op) = self.ops.get(name)
            {
                for suffix in op.outputs() {
                    known.exact.insert(format!("{}.{suffix}", step.name));
                }
            }
            steps.push(step);
        }

        Ok(Case {
            id: src.id.to_string(),
            file: src.file.to_path_buf(),
            title: raw.title.into_inner(),
            requirements,
            grade: raw.grade,
            serial: raw.serial,
            needs,
            isolate: raw.isolate,
            source: raw.source,
            defect: raw.defect,
            profiles: raw.profiles,
            checks,
            golden: raw.golden,
            pending,
            vars,
            steps,
        })
    }

    pub(super) fn validate_step(
        &self,
        src: &Source<'_>,
        index: usize,
        spanned: &Spanned<RawStep>,
        known: &Known,
        pending: bool,
    ) -> Result<Step, LoadError> {
        let raw = spanned.get_ref();
        let anchor = step_anchor(spanned);
        // The `[[step]]` header: where a reader looks for the step.
        let line = src.line_of(spanned.span().start.min(anchor.start));
        let name = match &raw.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                return Err(src.error(n.span(), "a step name cannot be empty"));
            }
            Some(n) => n.get_ref().clone(),
            None => format!("step {}", index + 1),
        };
        let given: Vec<(&str, Range<usize>)> = [
            raw.op.as_ref().map(|o| ("op", o.span())),
            raw.send.as_ref().map(|s| ("send", s.span())),
            raw.sleep_minutes
                .as_ref()
                .map(|s| ("sleep_minutes", s.span())),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() > 1 {
            return Err(src.error(
                given[1].1.clone(),
                format!(
                    "a step takes only one of `op`, `send` and `sleep_minutes` (this one has {} and {})",
                    given[0].0, given[1].0
                ),
            ));
        }
        let action = if let Some(op) = &raw.op
            && pending
            && self.ops.get(op.get_ref()).is_none()
        {
            // A pending case may name an operation that is not built yet.
            let with = raw.with.as_ref().map(|w| w.get_ref().clone());
            Action::Op {
                name: op.get_ref().clone(),
                args: Args(with.unwrap_or_default()),
            }
        } else if let Some(op) = &raw.op {
            let Some(operation) = self.ops.get(op.get_ref()) else {
                return Err(src.error(
                    op.span(),
                    format!(
                        "unknown operation `{}` (known: {})",
                        op.get_ref(),
                        self.ops.names().join(", ")
                    ),
                ));
            };
            let empty = Default::default();
            let (with, with_span) = match &raw.with {
                Some(w) => (w.get_ref(), w.span()),
                None => (&empty, op.span()),
            };
            validate_args(operation.as_ref(), with).map_err(|p| src.error(with_span.clone(), p))?;
            for value in with.values() {
                check_value_templates(src, with_span.clone(), value, known)?;
            }
            Action::Op {
                name: op.get_ref().clone(),
                args: Args(with.clone()),
            }
        } else if let Some(send) = &raw.send {
            check_template(src, send.span(), send.get_ref(), known)?;
            Action::Send {
                body: send.get_ref().clone(),
            }
        } else if let Some(m) = &raw.sleep_minutes {
            let minutes = *m.get_ref();
            if !(minutes > 0.0 && minutes <= 1440.0) {
                return Err(src.error(
                    m.span(),
                    "sleep_minutes must be more than 0 and at most 1440",
                ));
            }
            if raw.expect.is_some() || !raw.capture.is_empty() || !raw.asserts.is_empty() {
                return Err(src.error(
                    m.span(),
                    "a sleep step sends nothing, so it takes no expect, capture or assert",
                ));
            }
            Action::Sleep { minutes }
        } else {
            return Err(src.error(
                anchor,
                "the step has no `op`, `send` or `sleep_minutes`: say what it does",
            ));
        };
        if raw.with.is_some() && raw.op.is_none() {
            let span = raw
                .with
                .as_ref()
                .map(|w| w.span())
                .unwrap_or(anchor.clone());
            return Err(src.error(span, "`with` belongs to a named operation (`op`)"));
        }
        let mut headers = Vec::new();
        for (k, v) in &raw.headers {
            if k.eq_ignore_ascii_case("authorization") {
                return Err(src.error(
                    anchor.clone(),
                    "credentials come from the target settings, never from a case file",
                ));
            }
            check_template(src, anchor.clone(), v, known)?;
            headers.push((k.clone(), v.clone()));
        }
        let expect = match &raw.expect {
            Some(e) => self.validate_expect(src, e, known)?,
            None => Expect::default(),
        };
        if let (Some(e), false) = (&raw.expect, takes_arrivals(&action))
            && let Some(a) = &e.get_ref().arrivals_minutes
        {
            return Err(src.error(
                a.span(),
                "arrivals_minutes is judged by the steps that wait for documents (AwaitStream, AwaitPush, CollectPushes)",
            ));
        }
        let mut captures = Vec::new();
        for (cname, path) in &raw.capture {
            if !is_var_name(cname) {
                return Err(src.error(
                    path.span(),
                    format!("`{cname}` is not a capture name (letters, digits, `_`, `-`)"),
                ));
            }
            let compiled =
                XPath::parse(path.get_ref()).map_err(|e| src.error(path.span(), e.to_string()))?;
            captures.push(Capture {
                name: cname.clone(),
                path: compiled,
            });
        }
        let mut asserts = Vec::new();
        for a in &raw.asserts {
            asserts.push(validate_assert(src, a, known)?);
        }
        Ok(Step {
            index,
            name,
            line,
            user: raw.user,
            action,
            headers,
            expect,
            captures,
            asserts,
        })
    }

    pub(super) fn validate_expect(
        &self,
        src: &Source<'_>,
        spanned: &Spanned<RawExpect>,
        known: &Known,
    ) -> Result<Expect, LoadError> {
        let raw = spanned.get_ref();
        let class = match &raw.class {
            None => None,
            Some(c) => Some(ResponseClass::parse(c.get_ref()).ok_or_else(|| {
                src.error(
                    c.span(),
                    format!(
                        "`{}` is not a ResponseClass (Success, Warning, Error)",
                        c.get_ref()
                    ),
                )
            })?),
        };
        let codes = code_list(src, raw.code.as_ref(), "code")?;
        let record_codes = code_list(src, raw.record_code.as_ref(), "record_code")?;
        if !codes.is_empty()
            && let Some(c) = &raw.record_code
        {
            return Err(src.error(
                c.span(),
                "`record_code` goes instead of `code`, not beside it: `code` fails on another code, `record_code` records it",
            ));
        }
        let event_kind = |s: &Spanned<String>| {
            EventKind::from_element_name(s.get_ref()).ok_or_else(|| {
                src.error(
                    s.span(),
                    format!(
                        "`{}` is not an event kind ({})",
                        s.get_ref(),
                        EventKind::ALL.map(|k| k.element_name()).join(", ")
                    ),
                )
            })
        };
        let no_events = raw
            .no_events
            .iter()
            .map(event_kind)
            .collect::<Result<Vec<_>, _>>()?;
        let mut events = Vec::new();
        let mut event_subscriptions = Vec::new();
        for e in &raw.event {
            let r = e.get_ref();
            for t in [
                &r.item,
                &r.folder,
                &r.parent,
                &r.old_parent,
                &r.old_item,
                &r.old_folder,
                &r.subscription,
            ]
            .into_iter()
            .flatten()
            {
                check_template(src, e.span(), t, known)?;
            }
            if r.item.is_some() && r.folder.is_some() {
                return Err(src.error(e.span(), "an event is about an item or a folder, not both"));
            }
            events.push(EventPattern {
                line: src.line_of(e.span().start),
                kind: event_kind(&r.kind)?,
                item: r.item.clone(),
                folder: r.folder.clone(),
                parent: r.parent.clone(),
                old_parent: r.old_parent.clone(),
                old_item: r.old_item.clone(),
                old_folder: r.old_folder.clone(),
                unread_count: r.unread_count,
            });
            event_subscriptions.push(r.subscription.clone());
        }
        let connection_status = match &raw.connection_status {
            None => None,
            Some(c) => Some(ConnectionStatus::parse(c.get_ref()).ok_or_else(|| {
                src.error(
                    c.span(),
                    format!("`{}` is not a ConnectionStatus (OK, Closed)", c.get_ref()),
                )
            })?),
        };
        if let Some(ids) = &raw.error_subscription_ids {
            for id in ids.get_ref() {
                check_template(src, ids.span(), id, known)?;
            }
        }
        if let Some(w) = &raw.previous_watermark {
            check_template(src, spanned.span(), w, known)?;
        }
        if let Some(a) = &raw.arrivals_minutes {
            let list = a.get_ref();
            if list.is_empty()
                || list.iter().any(|m| !m.is_finite() || *m < 0.0)
                || list.windows(2).any(|w| w[1] < w[0])
            {
                return Err(src.error(
                    a.span(),
                    "arrivals_minutes lists protocol minutes after the first arrival: non-negative and ascending",
                ));
            }
        }
        if let Some(shape) = &raw.shape
            && let Err(e) = ews_proto::xml::parse_document(shape.get_ref())
        {
            return Err(src.error(
                shape.span(),
                format!("the documented shape is not well-formed XML: {e}"),
            ));
        }
        Ok(Expect {
            status: raw.status,
            class,
            codes,
            record_codes,
            fault: raw.fault,
            rejected: raw.rejected,
            events_mode: raw.events.unwrap_or_default(),
            events,
            no_events,
            more_events: raw.more_events,
            batches: raw.batches.as_ref().map(|b| b.get_ref().clone()),
            shape: raw.shape.as_ref().map(|s| s.get_ref().clone()),
            shape_optional: raw.shape_optional.clone(),
            golden: raw.golden,
            event_subscriptions,
            connection_status,
            error_subscription_ids: raw
                .error_subscription_ids
                .as_ref()
                .map(|i| i.get_ref().clone()),
            previous_watermark: raw.previous_watermark.clone(),
            watermark_chain: raw.watermark_chain,
            more_events_until_last: raw.more_events_until_last,
            missed_events_ok: raw.missed_events_ok.unwrap_or(false),
            arrivals_minutes: raw.arrivals_minutes.as_ref().map(|a| a.get_ref().clone()),
        })
    }
}

/// A `code` or `record_code` value: one ResponseCode or a non-empty list.
pub(super) fn code_list(
    src: &Source<'_>,
    raw: Option<&Spanned<OneOrMany>>,
    key: &str,
) -> Result<Vec<String>, LoadError> {
    let Some(c) = raw else {
        return Ok(Vec::new());
    };
    let list = match c.get_ref() {
        OneOrMany::One(s) => vec![s.clone()],
        OneOrMany::Many(v) => v.clone(),
    };
    if list.is_empty() {
        return Err(src.error(c.span(), format!("`{key}` lists no ResponseCode")));
    }
    for code in &list {
        if !is_response_code(code) {
            return Err(src.error(
                c.span(),
                format!("`{code}` is not a ResponseCode (NoError or Error…)"),
            ));
        }
    }
    Ok(list)
}

pub(super) fn validate_assert(
    src: &Source<'_>,
    spanned: &Spanned<RawAssert>,
    known: &Known,
) -> Result<Assert, LoadError> {
    let raw = spanned.get_ref();
    let path =
        XPath::parse(raw.path.get_ref()).map_err(|e| src.error(raw.path.span(), e.to_string()))?;
    let mut predicates = Vec::new();
    if let Some(n) = raw.count {
        predicates.push(Predicate::Count(n));
    }
    if let Some(b) = raw.exists {
        predicates.push(Predicate::Exists(b));
    }
    for (value, make) in [
        (&raw.equals, Predicate::Equals as fn(String) -> Predicate),
        (&raw.not_equals, Predicate::NotEquals),
    ] {
        if let Some(v) = value {
            check_template(src, spanned.span(), v, known)?;
            predicates.push(make(v.clone()));
        }
    }
    if let Some(m) = &raw.matches {
        let re = Regex::new(m.get_ref())
            .map_err(|e| src.error(m.span(), format!("invalid regular expression: {e}")))?;
        predicates.push(Predicate::Matches(re));
    }
    if let Some(options) = &raw.one_of {
        for o in options {
            check_template(src, spanned.span(), o, known)?;
        }
        predicates.push(Predicate::OneOf(options.clone()));
    }
    if let Some(b) = raw.is_datetime {
        predicates.push(Predicate::IsDatetime(b));
    }
    if predicates.is_empty() {
        return Err(src.error(
            spanned.span(),
            "the assert tests nothing: add count, exists, equals, not_equals, matches, one_of or is_datetime",
        ));
    }
    Ok(Assert {
        line: src.line_of(spanned.span().start),
        path,
        predicates,
    })
}

/// The variables a step may use, known statically.
pub(super) struct Known {
    pub(super) exact: BTreeSet<String>,
    /// Capture names: `name`, `name.count` and `name.N` are all known.
    pub(super) captures: BTreeSet<String>,
}

impl Known {
    pub(super) fn builtins_only() -> Self {
        Known {
            exact: BUILTIN_VARS.iter().map(|s| s.to_string()).collect(),
            captures: BTreeSet::new(),
        }
    }

    pub(super) fn new(isolate: bool, vars: impl Iterator<Item = String>) -> Self {
        let mut k = Self::builtins_only();
        if isolate {
            k.exact.insert("folder".into());
        }
        k.exact.extend(vars);
        k
    }

    pub(super) fn contains(&self, name: &str) -> bool {
        if self.exact.contains(name) || self.captures.contains(name) {
            return true;
        }
        match name.rsplit_once('.') {
            Some((base, suffix)) => {
                self.captures.contains(base)
                    && (suffix == "count" || suffix.bytes().all(|b| b.is_ascii_digit()))
            }
            None => false,
        }
    }
}

pub(super) fn check_template(
    src: &Source<'_>,
    span: Range<usize>,
    text: &str,
    known: &Known,
) -> Result<(), LoadError> {
    let names = referenced(text).map_err(|e| src.error(span.clone(), e.to_string()))?;
    for name in names {
        if !known.contains(&name) {
            let hint = if name == "folder" {
                " (the case has isolate = false, so there is no case folder)"
            } else {
                " (not a built-in, a [vars] entry or a capture of an earlier step)"
            };
            return Err(src.error(span, format!("unknown variable `${{{name}}}`{hint}")));
        }
    }
    Ok(())
}

pub(super) fn check_value_templates(
    src: &Source<'_>,
    span: Range<usize>,
    value: &toml::Value,
    known: &Known,
) -> Result<(), LoadError> {
    match value {
        toml::Value::String(s) => check_template(src, span, s, known),
        toml::Value::Array(items) => items
            .iter()
            .try_for_each(|i| check_value_templates(src, span.clone(), i, known)),
        _ => Ok(()),
    }
}

/// Whether a step's operation judges `arrivals_minutes` (it knows when documents arrived).
pub(super) fn takes_arrivals(action: &Action) -> bool {
    matches!(action, Action::Op { name, .. } if crate::suite::notify::TIMED_OPS.contains(&name.as_str()))
}

/// Where a step's messages point: its `name`, else its first key.
pub(super) fn step_anchor(step: &Spanned<RawStep>) -> Range<usize> {
    let raw = step.get_ref();
    let candidates = [
        raw.name.as_ref().map(|n| n.span()),
        raw.op.as_ref().map(|o| o.span()),
        raw.send.as_ref().map(|s| s.span()),
        raw.sleep_minutes.as_ref().map(|s| s.span()),
    ];
    candidates
        .into_iter()
        .flatten()
        .min_by_key(|r| r.start)
        .unwrap_or_else(|| step.span())
}

pub(super) fn is_requirement(s: &str) -> bool {
    NOTE_REQUIREMENTS.contains(&s)
        || s.strip_prefix('R')
            .filter(|n| !n.starts_with('0'))
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| (1..=MAX_REQUIREMENT).contains(&n))
}

pub(super) fn is_response_code(s: &str) -> bool {
    s == "NoError"
        || s.strip_prefix("Error")
            .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric()))
}

pub(super) fn is_var_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}
