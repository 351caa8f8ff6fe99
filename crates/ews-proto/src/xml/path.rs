//! A small, namespace-aware path language for captures and asserts in case
//! files. It is a strict subset of XPath 1.0 location paths, so anything a
//! case author writes reads the way XPath would:
//!
//! ```text
//! //m:SubscriptionId                     any descendant
//! /soap:Envelope/soap:Body/*             absolute, any element
//! //t:Notification/*[last()]/t:Watermark positional predicates: [1], [last()]
//! //t:ItemId/@Id                         attribute value
//! //m:ResponseMessages/*/@ResponseClass
//! //*:Envelope                           any namespace with this local name
//! ```
//!
//! Prefixes are the conventional ones (`soap`/`s`, `m`, `t`, `e`, `xsi`);
//! an unprefixed name matches the local name in no namespace.

use roxmltree::Node;
use thiserror::Error;

use super::ns;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid path `{path}`: {problem}")]
pub struct PathError {
    pub path: String,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NameTest {
    Any,
    /// `*:Local`: any namespace.
    AnyNs(String),
    Qualified {
        ns: Option<String>,
        local: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Predicate {
    Index(usize),
    Last,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Element {
        descendant: bool,
        name: NameTest,
        predicate: Option<Predicate>,
    },
    Attribute {
        descendant: bool,
        name: String,
    },
    Text,
}

/// A compiled path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XPath {
    source: String,
    absolute: bool,
    steps: Vec<Step>,
}

/// What a path selects: elements, or string values (attributes, text()).
#[derive(Debug, Clone)]
pub enum Selection<'a, 'i> {
    Nodes(Vec<Node<'a, 'i>>),
    Values(Vec<String>),
}

impl Selection<'_, '_> {
    pub fn len(&self) -> usize {
        match self {
            Selection::Nodes(n) => n.len(),
            Selection::Values(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// String values: an element's trimmed text, or the attribute value.
    pub fn strings(&self) -> Vec<String> {
        match self {
            Selection::Nodes(n) => n
                .iter()
                .map(|n| super::text_of(*n).trim().to_string())
                .collect(),
            Selection::Values(v) => v.clone(),
        }
    }

    pub fn first_string(&self) -> Option<String> {
        self.strings().into_iter().next()
    }
}

impl std::fmt::Display for XPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for XPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        XPath::parse(s)
    }
}

impl XPath {
    pub fn parse(source: &str) -> Result<Self, PathError> {
        let err = |problem: String| PathError {
            path: source.to_string(),
            problem,
        };
        let src = source.trim();
        if src.is_empty() {
            return Err(err("the path is empty".into()));
        }
        let absolute = src.starts_with('/');
        let mut steps = Vec::new();
        let mut rest = src;
        let mut first = true;
        while !rest.is_empty() {
            let descendant = if let Some(r) = rest.strip_prefix("//") {
                rest = r;
                true
            } else if let Some(r) = rest.strip_prefix('/') {
                rest = r;
                false
            } else if first {
                false
            } else {
                return Err(err(format!("expected `/` before `{rest}`")));
            };
            first = false;
            let end = step_end(rest);
            let raw = &rest[..end];
            rest = &rest[end..];
            if raw.is_empty() {
                return Err(err("a step is empty (`///` or a trailing `/`)".into()));
            }
            steps.push(parse_step(raw, descendant).map_err(err)?);
        }
        if let Some(pos) = steps
            .iter()
            .position(|s| !matches!(s, Step::Element { .. }))
            && pos + 1 != steps.len()
        {
            return Err(err(
                "an attribute or text() step must be the last step".into()
            ));
        }
        Ok(XPath {
            source: source.to_string(),
            absolute,
            steps,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Evaluates the path against a document (relative paths start at the root element's parent).
    pub fn select<'a, 'i>(&self, doc: &'a roxmltree::Document<'i>) -> Selection<'a, 'i> {
        self.select_from(doc.root())
    }

    /// Evaluates the path with `context` as the starting node.
    pub fn select_from<'a, 'i>(&self, context: Node<'a, 'i>) -> Selection<'a, 'i> {
        let start = if self.absolute {
            context.document().root()
        } else {
            context
        };
        let mut current = vec![start];
        for step in &self.steps {
            match step {
                Step::Element {
                    descendant,
                    name,
                    predicate,
                } => {
                    let mut next = Vec::new();
                    for node in &current {
                        let candidates: Vec<Node<'a, 'i>> = if *descendant {
                            node.descendants()
                                .filter(|d| d != node && d.is_element())
                                .collect()
                        } else {
                            node.children().filter(|c| c.is_element()).collect()
                        };
                        let matched: Vec<Node<'a, 'i>> = candidates
                            .into_iter()
                            .filter(|c| name_matches(name, *c))
                            .collect();
                        match predicate {
                            None => next.extend(matched),
                            Some(Predicate::Index(i)) => next.extend(matched.get(i - 1).copied()),
                            Some(Predicate::Last) => next.extend(matched.last().copied()),
                        }
                    }
                    dedup(&mut next);
                    current = next;
                }
                Step::Attribute { descendant, name } => {
                    let mut values = Vec::new();
                    for node in &current {
                        let holders: Vec<Node<'a, 'i>> = if *descendant {
                            node.descendants().filter(|d| d.is_element()).collect()
                        } else {
                            vec![*node]
                        };
                        for h in holders {
                            if let Some(v) =
                                h.attributes().find(|a| a.name() == name).map(|a| a.value())
                            {
                                values.push(v.to_string());
                            }
                        }
                    }
                    return Selection::Values(values);
                }
                Step::Text => {
                    return Selection::Values(current.iter().map(|n| super::text_of(*n)).collect());
                }
            }
        }
        Selection::Nodes(current)
    }
}

fn dedup(nodes: &mut Vec<Node<'_, '_>>) {
    let mut seen = std::collections::HashSet::new();
    nodes.retain(|n| seen.insert(n.id()));
}

fn name_matches(test: &NameTest, node: Node<'_, '_>) -> bool {
    let tag = node.tag_name();
    match test {
        NameTest::Any => true,
        NameTest::AnyNs(local) => tag.name() == local,
        NameTest::Qualified { ns, local } => {
            tag.name() == local && tag.namespace() == ns.as_deref()
        }
    }
}

/// The end of one step: the next `/` outside a predicate.
fn step_end(s: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => return i,
            _ => {}
        }
    }
    s.len()
}

fn parse_step(raw: &str, descendant: bool) -> Result<Step, String> {
    if raw == "text()" {
        if descendant {
            return Err("`//text()` is not supported; use `/text()`".into());
        }
        return Ok(Step::Text);
    }
    if let Some(attr) = raw.strip_prefix('@') {
        if attr.is_empty() || !attr.chars().all(is_name_char) {
            return Err(format!("`@{attr}` is not an attribute name"));
        }
        return Ok(Step::Attribute {
            descendant,
            name: attr.to_string(),
        });
    }
    let (name_part, predicate) = match raw.find('[') {
        Some(open) => {
            let Some(inner) = raw[open..]
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
            else {
                return Err(format!("unbalanced predicate in `{raw}`"));
            };
            let pred = match inner.trim() {
                "last()" => Predicate::Last,
                n => match n.parse::<usize>() {
                    Ok(i) if i >= 1 => Predicate::Index(i),
                    _ => {
                        return Err(format!(
                            "predicate `[{inner}]` must be a position from 1 or `last()`"
                        ));
                    }
                },
            };
            (&raw[..open], Some(pred))
        }
        None => (raw, None),
    };
    let name = if name_part == "*" {
        NameTest::Any
    } else if let Some((prefix, local)) = name_part.split_once(':') {
        check_local(local, raw)?;
        if prefix == "*" {
            NameTest::AnyNs(local.to_string())
        } else {
            let Some(uri) = ns::uri_of(prefix) else {
                return Err(format!(
                    "unknown prefix `{prefix}` (use soap, m, t, e, xsi or *)"
                ));
            };
            NameTest::Qualified {
                ns: Some(uri.to_string()),
                local: local.to_string(),
            }
        }
    } else {
        check_local(name_part, raw)?;
        NameTest::Qualified {
            ns: None,
            local: name_part.to_string(),
        }
    };
    Ok(Step::Element {
        descendant,
        name,
        predicate,
    })
}

fn check_local(local: &str, raw: &str) -> Result<(), String> {
    if local.is_empty() || !local.chars().all(is_name_char) {
        return Err(format!("`{raw}` is not an element name"));
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
      <GetEventsResponse xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"
        xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
        <ResponseMessages><GetEventsResponseMessage ResponseClass="Success"><ResponseCode>NoError</ResponseCode>
        <Notification><t:SubscriptionId>s1</t:SubscriptionId><t:PreviousWatermark>w0</t:PreviousWatermark>
        <t:MoreEvents>false</t:MoreEvents>
        <t:CreatedEvent><t:Watermark>w1</t:Watermark><t:ItemId Id="i1"/></t:CreatedEvent>
        <t:ModifiedEvent><t:Watermark>w2</t:Watermark><t:FolderId Id="f1"/></t:ModifiedEvent>
        </Notification></GetEventsResponseMessage></ResponseMessages></GetEventsResponse></s:Body></s:Envelope>"#;

    fn strings(path: &str) -> Vec<String> {
        let doc = roxmltree::Document::parse(DOC).expect("test document parses");
        XPath::parse(path)
            .expect("path parses")
            .select(&doc)
            .strings()
    }

    #[test]
    fn descendant_and_child_steps() {
        assert_eq!(strings("//m:Notification/t:SubscriptionId"), ["s1"]);
        assert_eq!(strings("//t:Watermark"), ["w1", "w2"]);
        assert_eq!(
            strings("/soap:Envelope/soap:Body/*/m:ResponseMessages/*/m:ResponseCode"),
            ["NoError"]
        );
    }

    #[test]
    fn predicates_attributes_and_wildcards() {
        assert_eq!(strings("//m:Notification/*[last()]/t:Watermark"), ["w2"]);
        assert_eq!(
            strings("//m:Notification/t:CreatedEvent[1]/t:ItemId/@Id"),
            ["i1"]
        );
        assert_eq!(
            strings("//m:ResponseMessages/*/@ResponseClass"),
            ["Success"]
        );
        assert_eq!(strings("//*:MoreEvents"), ["false"]);
        assert!(
            strings("//t:Notification").is_empty(),
            "t:Notification is not m:Notification"
        );
    }

    #[test]
    fn bad_paths_are_reported() {
        for bad in [
            "",
            "//",
            "//x:Foo",
            "//m:Foo[0]",
            "//m:Foo[",
            "//@Id/m:X",
            "a b",
        ] {
            assert!(XPath::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
