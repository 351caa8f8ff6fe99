//! `${name}` substitution in case files.
//!
//! Values come from a case's `[vars]`, the built-ins (`${user}`, `${folder}`,
//! …) and captures. `$${` writes a literal `${`. A name that has no value is
//! an error naming it, never an empty string: a silent blank would send a
//! request the case author did not mean.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A problem with a template or a substitution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown variable `${{{name}}}`{hint}")]
    Unknown { name: String, hint: String },
    #[error("`${{` at byte {offset} is never closed with `}}`")]
    Unterminated { offset: usize },
    #[error("`${{{name}}}` is not a variable name (letters, digits, `_`, `-`, `.`)")]
    BadName { name: String },
}

/// The variables visible to a step. Cloning is cheap (the executor keeps a
/// copy of every step's starting variables): the maps are shared until one
/// side changes.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    values: Arc<BTreeMap<String, String>>,
    /// Names whose capture matched nothing, and where: used to explain a later unknown variable.
    missing: Arc<BTreeMap<String, String>>,
}

impl Vars {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        if self.missing.contains_key(&name) {
            Arc::make_mut(&mut self.missing).remove(&name);
        }
        Arc::make_mut(&mut self.values).insert(name, value.into());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Binds a capture: `name` = the first value, `name.count` = how many,
    /// `name.1`, `name.2`, … each value. With no values only `name.count` (0)
    /// is bound, and `name` is remembered as missing with `why`.
    pub fn set_capture(&mut self, name: &str, values: &[String], why_missing: &str) {
        // Forget an older capture of the same name, so `items.3` cannot survive a shorter re-capture.
        let prefix = format!("{name}.");
        Arc::make_mut(&mut self.values).retain(|k, _| {
            !(k == name
                || k.strip_prefix(&prefix)
                    .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit())))
        });
        self.set(format!("{name}.count"), values.len().to_string());
        match values.first() {
            Some(first) => {
                self.set(name, first.clone());
                for (i, v) in values.iter().enumerate() {
                    self.set(format!("{name}.{}", i + 1), v.clone());
                }
            }
            None => {
                Arc::make_mut(&mut self.missing).insert(name.to_string(), why_missing.to_string());
            }
        }
    }

    /// Whether `name` is unbound because a capture found nothing.
    pub fn missing_reason(&self, name: &str) -> Option<&str> {
        self.missing.get(name).map(String::as_str)
    }

    /// Substitutes every `${name}` in `template`.
    pub fn render(&self, template: &str) -> Result<String, TemplateError> {
        self.render_each(template, Cow::Borrowed)
    }

    /// Like [`Vars::render`] for an XML document (a raw `send` body): each
    /// value is escaped as XML text, so `&` or `<` in a subject, a password
    /// or a URL cannot break the document or add markup to it.
    pub fn render_xml(&self, template: &str) -> Result<String, TemplateError> {
        self.render_each(template, quick_xml::escape::escape)
    }

    fn render_each<'v>(
        &'v self,
        template: &str,
        value: impl Fn(&'v str) -> Cow<'v, str>,
    ) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(template.len());
        for piece in pieces(template)? {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(name) => match self.values.get(name) {
                    Some(v) => out.push_str(&value(v)),
                    None => {
                        let hint = match self.missing.get(name) {
                            Some(why) => format!(" ({why})"),
                            None => String::new(),
                        };
                        return Err(TemplateError::Unknown {
                            name: name.to_string(),
                            hint,
                        });
                    }
                },
            }
        }
        Ok(out)
    }
}

/// The variable names a template uses; checks the syntax without values.
pub fn referenced(template: &str) -> Result<Vec<String>, TemplateError> {
    Ok(pieces(template)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Var(v) => Some(v.to_string()),
            Piece::Text(_) => None,
        })
        .collect())
}

enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn pieces(template: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = template;
    let mut offset = 0;
    while let Some(pos) = rest.find('$') {
        let after = &rest[pos..];
        if after.starts_with("$${") {
            out.push(Piece::Text(&rest[..pos]));
            out.push(Piece::Text("${"));
            rest = &rest[pos + 3..];
            offset += pos + 3;
        } else if let Some(inner) = after.strip_prefix("${") {
            out.push(Piece::Text(&rest[..pos]));
            let Some(end) = inner.find('}') else {
                return Err(TemplateError::Unterminated {
                    offset: offset + pos,
                });
            };
            let name = &inner[..end];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(TemplateError::BadName {
                    name: name.to_string(),
                });
            }
            out.push(Piece::Var(name));
            let consumed = pos + 2 + end + 1;
            rest = &rest[consumed..];
            offset += consumed;
        } else {
            out.push(Piece::Text(&rest[..=pos]));
            rest = &rest[pos + 1..];
            offset += pos + 1;
        }
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::new();
        v.set("user", "a@example.test");
        v.set("folder", "AAMk=");
        v
    }

    #[test]
    fn a_copy_keeps_its_values_when_the_original_changes() {
        let mut vars = Vars::new();
        vars.set("a", "1");
        vars.set_capture("gone", &[], "step 1");
        let before = vars.clone();
        vars.set("a", "2");
        vars.set("gone", "here");
        vars.set_capture("ids", &["x".to_string()], "");
        assert_eq!(before.get("a"), Some("1"));
        assert_eq!(before.get("ids"), None);
        assert_eq!(before.missing_reason("gone"), Some("step 1"));
        assert_eq!(vars.get("a"), Some("2"));
        assert_eq!(vars.get("ids.count"), Some("1"));
        assert_eq!(vars.missing_reason("gone"), None);
    }

    #[test]
    fn substitutes_and_escapes() {
        let v = vars();
        assert_eq!(
            v.render("to ${user} in ${folder}!").expect("renders"),
            "to a@example.test in AAMk=!"
        );
        assert_eq!(
            v.render("literal $${user} and $5 and $").expect("renders"),
            "literal ${user} and $5 and $"
        );
        assert_eq!(v.render("").expect("renders"), "");
    }

    #[test]
    fn xml_bodies_get_escaped_values() {
        let mut v = vars();
        v.set("subject", "a < b & \"c\" </t:Subject><t:Evil/>");
        assert_eq!(
            v.render_xml("<t:Subject>${subject}</t:Subject><x a=\"${user}\"/>")
                .expect("renders"),
            "<t:Subject>a &lt; b &amp; &quot;c&quot; &lt;/t:Subject&gt;&lt;t:Evil/&gt;</t:Subject><x a=\"a@example.test\"/>"
        );
        // Plain rendering (named operations escape when they write XML) is unchanged.
        assert_eq!(
            v.render("${subject}").expect("renders"),
            "a < b & \"c\" </t:Subject><t:Evil/>"
        );
    }

    #[test]
    fn unknown_variables_are_named() {
        let err = vars().render("x ${nope} y").expect_err("unknown");
        assert_eq!(
            err,
            TemplateError::Unknown {
                name: "nope".into(),
                hint: String::new()
            }
        );
        assert!(err.to_string().contains("${nope}"), "{err}");
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            referenced("ab ${open").expect_err("unterminated"),
            TemplateError::Unterminated { offset: 3 }
        );
        assert!(matches!(
            referenced("${a b}"),
            Err(TemplateError::BadName { .. })
        ));
        assert!(matches!(
            referenced("${}"),
            Err(TemplateError::BadName { .. })
        ));
        assert_eq!(
            referenced("${a}-${b.count}-$${c}").expect("valid"),
            ["a", "b.count"]
        );
    }

    #[test]
    fn captures_bind_first_count_and_index() {
        let mut v = Vars::new();
        v.set_capture("items", &["i1".into(), "i2".into(), "i3".into()], "");
        assert_eq!(
            v.render("${items} ${items.count} ${items.1} ${items.3}")
                .expect("renders"),
            "i1 3 i1 i3"
        );
        v.set_capture("items", &["j1".into()], "");
        assert_eq!(
            v.get("items.3"),
            None,
            "a shorter re-capture clears old indexes"
        );
        v.set_capture(
            "sub",
            &[],
            "capture `sub` (//m:SubscriptionId) in step \"s\" matched nothing",
        );
        assert_eq!(v.get("sub.count"), Some("0"));
        let err = v.render("${sub}").expect_err("missing capture");
        assert!(err.to_string().contains("matched nothing"), "{err}");
    }
}
