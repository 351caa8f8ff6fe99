//! What a named operation is: its parameters, the `Operation` trait, the
//! registry a run knows them by, and reading a step's `with` arguments.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::step::{StepContext, StepError};
use crate::case::Args;

/// The type of a `with` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A string (a template); numbers are taken as their text.
    Text,
    /// An integer, or a string that renders to one.
    Int,
    /// A boolean, or a string that renders to `true`/`false`.
    Bool,
    /// An array of strings, or one string.
    List,
}

impl ParamKind {
    fn accepts(self, v: &toml::Value) -> bool {
        use toml::Value as V;
        match self {
            ParamKind::Text => matches!(v, V::String(_) | V::Integer(_) | V::Float(_)),
            ParamKind::Int => matches!(v, V::Integer(_) | V::String(_)),
            ParamKind::Bool => matches!(v, V::Boolean(_) | V::String(_)),
            ParamKind::List => match v {
                V::String(_) => true,
                V::Array(items) => items.iter().all(|i| matches!(i, V::String(_))),
                _ => false,
            },
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ParamKind::Text => "a string",
            ParamKind::Int => "an integer",
            ParamKind::Bool => "a boolean",
            ParamKind::List => "a list of strings",
        }
    }
}

/// One `with` parameter of an operation.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub kind: ParamKind,
    pub required: bool,
}

pub(crate) const fn opt(name: &'static str, kind: ParamKind) -> Param {
    Param {
        name,
        kind,
        required: false,
    }
}

pub(crate) const fn req(name: &'static str, kind: ParamKind) -> Param {
    Param {
        name,
        kind,
        required: true,
    }
}

/// A named operation.
pub trait Operation: Send + Sync {
    fn name(&self) -> &'static str;
    fn params(&self) -> &'static [Param];
    /// Variables a run binds as `${<step name>.<suffix>}`.
    fn outputs(&self) -> &'static [&'static str] {
        &[]
    }
    fn run<'a>(
        &'a self,
        ctx: &'a mut StepContext<'_>,
        args: &'a Args,
    ) -> BoxFuture<'a, Result<(), StepError>>;
}

/// The operations a run knows.
#[derive(Clone, Default)]
pub struct OpRegistry {
    ops: BTreeMap<&'static str, Arc<dyn Operation>>,
}

impl std::fmt::Debug for OpRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.ops.keys()).finish()
    }
}

impl OpRegistry {
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn register(&mut self, op: Arc<dyn Operation>) {
        self.ops.insert(op.name(), op);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Operation>> {
        self.ops.get(name)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.ops.keys().copied().collect()
    }
}

/// Checks `with` against an operation's parameters: unknown keys, wrong types, missing required ones.
pub fn validate_args(
    op: &dyn Operation,
    args: &BTreeMap<String, toml::Value>,
) -> Result<(), String> {
    let params = op.params();
    for (key, value) in args {
        let Some(p) = params.iter().find(|p| p.name == key) else {
            let known: Vec<&str> = params.iter().map(|p| p.name).collect();
            return Err(format!(
                "{} has no parameter `{key}` (it takes: {})",
                op.name(),
                known.join(", ")
            ));
        };
        if !p.kind.accepts(value) {
            return Err(format!(
                "{}: `{key}` must be {}, not {}",
                op.name(),
                p.kind.describe(),
                value.type_str()
            ));
        }
    }
    if let Some(p) = params
        .iter()
        .find(|p| p.required && !args.contains_key(p.name))
    {
        return Err(format!("{} needs `with.{}`", op.name(), p.name));
    }
    Ok(())
}

// ------------------------------------------------------- reading arguments

impl Args {
    fn raw(&self, key: &str) -> Option<&toml::Value> {
        self.0.get(key)
    }

    /// A text parameter, rendered.
    pub fn text(&self, ctx: &StepContext<'_>, key: &str) -> Result<Option<String>, StepError> {
        match self.raw(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => ctx.render(s).map(Some),
            Some(toml::Value::Integer(i)) => Ok(Some(i.to_string())),
            Some(toml::Value::Float(f)) => Ok(Some(f.to_string())),
            Some(other) => Err(bad(key, "a string", other)),
        }
    }

    pub fn text_or(
        &self,
        ctx: &StepContext<'_>,
        key: &str,
        default: &str,
    ) -> Result<String, StepError> {
        match self.text(ctx, key)? {
            Some(v) => Ok(v),
            None => ctx.render(default),
        }
    }

    pub fn required_text(&self, ctx: &StepContext<'_>, key: &str) -> Result<String, StepError> {
        self.text(ctx, key)?
            .ok_or_else(|| StepError::Case(format!("`with.{key}` is required")))
    }

    pub fn int(&self, ctx: &StepContext<'_>, key: &str) -> Result<Option<i64>, StepError> {
        match self.raw(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => Ok(Some(*i)),
            Some(toml::Value::String(s)) => {
                let text = ctx.render(s)?;
                text.trim().parse::<i64>().map(Some).map_err(|_| {
                    StepError::Case(format!("`with.{key}` = {text:?} is not an integer"))
                })
            }
            Some(other) => Err(bad(key, "an integer", other)),
        }
    }

    pub fn boolean(&self, ctx: &StepContext<'_>, key: &str) -> Result<Option<bool>, StepError> {
        match self.raw(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(toml::Value::String(s)) => match ctx.render(s)?.trim() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                other => Err(StepError::Case(format!(
                    "`with.{key}` = {other:?} is not true or false"
                ))),
            },
            Some(other) => Err(bad(key, "a boolean", other)),
        }
    }

    pub fn list(&self, ctx: &StepContext<'_>, key: &str) -> Result<Option<Vec<String>>, StepError> {
        match self.raw(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(vec![ctx.render(s)?])),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => ctx.render(s),
                    other => Err(bad(key, "a list of strings", other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(bad(key, "a list of strings", other)),
        }
    }
}

pub(crate) fn bad(key: &str, want: &str, got: &toml::Value) -> StepError {
    StepError::Case(format!(
        "`with.{key}` must be {want}, not {}",
        got.type_str()
    ))
}
