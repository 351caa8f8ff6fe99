//! Which later steps of an assert case still run after a step fails.
//!
//! One failure must not hide another: a step that does not depend on a
//! failed step still runs and is judged. A step depends on an earlier one
//! when one of its templates uses a variable that step binds (a capture —
//! `${sub}`, `${sub.count}`, `${sub.2}` — or an operation's output such as
//! `${drain.watermark}`), or when it uses a named stream that step opens
//! (`OpenStream` → `AwaitStream`, `AwaitStreamClosed`, `CloseStream`). Only
//! steps that depend on a failed (or itself skipped) step are skipped, each
//! with the reason. A later step that binds the same name successfully
//! makes it usable again.

use std::collections::BTreeMap;

use super::operation::OpRegistry;
use crate::case::template::{Vars, referenced};
use crate::case::{Action, Predicate, Step};

/// The check name of the note a skipped step leaves in the report.
pub const SKIPPED_STEP: &str = "skipped-step";

/// The stream operations and the default stream name (see `notify::stream`).
const STREAM_OPENER: &str = "OpenStream";
const STREAM_USERS: &[&str] = &["AwaitStream", "AwaitStreamClosed", "CloseStream"];
const DEFAULT_STREAM: &str = "s1";

/// Why a name cannot be trusted.
#[derive(Debug, Clone)]
struct Origin {
    step: String,
    skipped: bool,
}

/// The names (variables and streams) that failed or skipped steps should have provided.
#[derive(Debug, Default)]
pub struct Dependencies {
    /// Capture names: `${name}`, `${name.count}`, `${name.<n>}` depend on them.
    captures: BTreeMap<String, Origin>,
    /// Exact variable names (operation outputs `<step>.<suffix>`).
    exact: BTreeMap<String, Origin>,
    streams: BTreeMap<String, Origin>,
}

impl Dependencies {
    /// Why `step` cannot run, if it uses what a failed or skipped step should have provided.
    pub fn blocker(&self, step: &Step, vars: &Vars) -> Option<String> {
        if self.captures.is_empty() && self.exact.is_empty() && self.streams.is_empty() {
            return None;
        }
        for name in step_variables(step) {
            let found = self.exact.get(&name).or_else(|| {
                let base = match name.rsplit_once('.') {
                    Some((base, suffix))
                        if suffix == "count" || suffix.bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        base
                    }
                    _ => name.as_str(),
                };
                self.captures
                    .get(base)
                    .or_else(|| self.captures.get(name.as_str()))
            });
            if let Some(origin) = found {
                let how = if origin.skipped {
                    "did not bind because it was skipped".to_string()
                } else if vars.get(&name).is_some() {
                    "bound from a response that failed its expectations".to_string()
                } else {
                    "did not capture because it failed".to_string()
                };
                return Some(format!(
                    "needs ${{{name}}}, which step \"{}\" {how}",
                    origin.step
                ));
            }
        }
        if let Some(stream) = used_stream(step, vars)
            && let Some(origin) = self.streams.get(&stream)
        {
            let how = if origin.skipped {
                "was skipped"
            } else {
                "failed"
            };
            return Some(format!(
                "needs stream `{stream}`, which step \"{}\" opens, and that step {how}",
                origin.step
            ));
        }
        None
    }

    /// `step` ran and failed: what it binds cannot be trusted.
    pub fn failed(&mut self, step: &Step, ops: &OpRegistry, vars: &Vars) {
        self.mark(step, ops, vars, false);
    }

    /// `step` was skipped: what it binds is missing.
    pub fn skipped(&mut self, step: &Step, ops: &OpRegistry, vars: &Vars) {
        self.mark(step, ops, vars, true);
    }

    /// `step` ran and passed: what it binds is usable again.
    pub fn passed(&mut self, step: &Step, ops: &OpRegistry, vars: &Vars) {
        if self.captures.is_empty() && self.exact.is_empty() && self.streams.is_empty() {
            return;
        }
        for c in &step.captures {
            self.captures.remove(&c.name);
        }
        for name in outputs(step, ops) {
            self.exact.remove(&name);
        }
        if let Some(stream) = opened_stream(step, vars) {
            self.streams.remove(&stream);
        }
    }

    fn mark(&mut self, step: &Step, ops: &OpRegistry, vars: &Vars, skipped: bool) {
        let origin = Origin {
            step: step.name.clone(),
            skipped,
        };
        for c in &step.captures {
            self.captures.insert(c.name.clone(), origin.clone());
        }
        for name in outputs(step, ops) {
            self.exact.insert(name, origin.clone());
        }
        if let Some(stream) = opened_stream(step, vars) {
            self.streams.insert(stream, origin);
        }
    }
}

/// The variables an operation binds as `<step>.<suffix>`.
fn outputs(step: &Step, ops: &OpRegistry) -> Vec<String> {
    match &step.action {
        Action::Op { name, .. } => ops
            .get(name)
            .map(|op| {
                op.outputs()
                    .iter()
                    .map(|s| format!("{}.{s}", step.name))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The `stream` a stream operation names (a template; its raw text when it cannot be rendered).
fn stream_arg(step: &Step, vars: &Vars, ops: &[&str]) -> Option<String> {
    let Action::Op { name, args } = &step.action else {
        return None;
    };
    if !ops.contains(&name.as_str()) {
        return None;
    }
    Some(match args.0.get("stream") {
        Some(toml::Value::String(s)) => vars.render(s).unwrap_or_else(|_| s.clone()),
        Some(other) => other.to_string(),
        None => DEFAULT_STREAM.to_string(),
    })
}

fn opened_stream(step: &Step, vars: &Vars) -> Option<String> {
    stream_arg(step, vars, &[STREAM_OPENER])
}

fn used_stream(step: &Step, vars: &Vars) -> Option<String> {
    stream_arg(step, vars, STREAM_USERS)
}

/// Every variable any template of `step` uses: parameters, the raw body,
/// headers, expected events and their subscriptions, asserts.
pub fn step_variables(step: &Step) -> Vec<String> {
    let mut templates: Vec<&str> = Vec::new();
    match &step.action {
        Action::Op { args, .. } => {
            for v in args.0.values() {
                collect_value(v, &mut templates);
            }
        }
        Action::Send { body } => templates.push(body),
        Action::Sleep { .. } => {}
    }
    templates.extend(step.headers.iter().map(|(_, v)| v.as_str()));
    let e = &step.expect;
    for p in &e.events {
        templates.extend(
            [
                &p.item,
                &p.folder,
                &p.parent,
                &p.old_item,
                &p.old_folder,
                &p.old_parent,
            ]
            .into_iter()
            .flatten()
            .map(String::as_str),
        );
    }
    templates.extend(e.event_subscriptions.iter().flatten().map(String::as_str));
    templates.extend(
        e.error_subscription_ids
            .iter()
            .flatten()
            .map(String::as_str),
    );
    templates.extend(e.previous_watermark.as_deref());
    for a in &step.asserts {
        for p in &a.predicates {
            match p {
                Predicate::Equals(s) | Predicate::NotEquals(s) => templates.push(s),
                Predicate::OneOf(options) => templates.extend(options.iter().map(String::as_str)),
                _ => {}
            }
        }
    }
    let mut names = Vec::new();
    for t in templates {
        // A malformed template was refused when the case was loaded.
        for name in referenced(t).unwrap_or_default() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

fn collect_value<'a>(v: &'a toml::Value, out: &mut Vec<&'a str>) {
    match v {
        toml::Value::String(s) => out.push(s),
        toml::Value::Array(items) => items.iter().for_each(|i| collect_value(i, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::CheckRegistry;
    use crate::suite::Loader;

    fn case(text: &str) -> crate::case::Case {
        let ops = OpRegistry::builtin();
        let checks = CheckRegistry::builtin();
        Loader::new(&ops, &checks)
            .parse(text, std::path::Path::new("t/dep.toml"), "t/dep")
            .expect("the case loads")
    }

    const CASE: &str = r#"
title = "t"
requirements = ["R1"]

[[step]]
name = "subscribe"
op = "Subscribe"
with = { folders = ["${folder}"] }
capture = { sub = "//m:SubscriptionId", wm = "//m:Watermark" }

[[step]]
name = "independent"
op = "CreateItem"

[[step]]
name = "poll"
op = "GetEvents"
with = { subscription = "${sub}", watermark = "${wm}" }
capture = { wm = "//t:Watermark" }

[[step]]
name = "drain"
op = "DrainEvents"
with = { subscription = "${sub.1}", watermark = "${wm}" }
assert = [{ path = "//t:Watermark", equals = "${poll-count}" }]

[[step]]
name = "after drain"
op = "GetEvents"
with = { subscription = "x", watermark = "${drain.watermark}" }

[[step]]
name = "connect"
op = "OpenStream"
with = { subscriptions = ["x"] }

[[step]]
name = "await"
op = "AwaitStream"

[[step]]
name = "other stream"
op = "AwaitStream"
with = { stream = "s2" }

[vars]
poll-count = "1"
"#;

    #[test]
    fn templates_of_every_part_of_a_step_are_found() {
        let c = case(CASE);
        assert_eq!(step_variables(&c.steps[2]), ["sub", "wm"]);
        assert_eq!(step_variables(&c.steps[3]), ["sub.1", "wm", "poll-count"]);
        assert_eq!(step_variables(&c.steps[4]), ["drain.watermark"]);
    }

    #[test]
    fn only_steps_using_what_a_failed_step_binds_are_blocked() {
        let c = case(CASE);
        let ops = OpRegistry::builtin();
        let vars = Vars::new();
        let mut d = Dependencies::default();
        assert_eq!(d.blocker(&c.steps[2], &vars), None);
        d.failed(&c.steps[0], &ops, &vars);
        assert_eq!(d.blocker(&c.steps[1], &vars), None, "uses nothing of it");
        let why = d.blocker(&c.steps[2], &vars).expect("needs ${sub}");
        assert_eq!(
            why,
            "needs ${sub}, which step \"subscribe\" did not capture because it failed"
        );
        let why = d.blocker(&c.steps[3], &vars).expect("needs ${sub.1}");
        assert!(why.starts_with("needs ${sub.1}"), "{why}");
        d.skipped(&c.steps[2], &ops, &vars);
        d.skipped(&c.steps[3], &ops, &vars);
        let why = d
            .blocker(&c.steps[4], &vars)
            .expect("needs the drain's output");
        assert_eq!(
            why,
            "needs ${drain.watermark}, which step \"drain\" did not bind because it was skipped"
        );
        // A value a failed step did bind is named as such.
        let mut bound = Vars::new();
        bound.set("wm", "W1");
        let mut d = Dependencies::default();
        d.failed(&c.steps[2], &ops, &bound);
        let why = d.blocker(&c.steps[3], &bound).expect("needs ${wm}");
        assert!(why.contains("bound from a response that failed"), "{why}");
        // A later successful capture of the same name lifts it.
        d.passed(&c.steps[2], &ops, &bound);
        assert_eq!(d.blocker(&c.steps[3], &bound), None);
    }

    #[test]
    fn a_stream_of_a_failed_opening_blocks_only_its_users() {
        let c = case(CASE);
        let ops = OpRegistry::builtin();
        let vars = Vars::new();
        let mut d = Dependencies::default();
        d.failed(&c.steps[5], &ops, &vars);
        let why = d.blocker(&c.steps[6], &vars).expect("uses s1");
        assert_eq!(
            why,
            "needs stream `s1`, which step \"connect\" opens, and that step failed"
        );
        assert_eq!(d.blocker(&c.steps[7], &vars), None, "stream s2 is another");
    }
}
