//! The walk: matches a document against the element tables, child by
//! child, and collects violations.

use roxmltree::Node;

use super::model::*;
use super::path::*;
use super::tables::*;
use super::violation::*;
use crate::ews::SERVER_VERSIONS;
use crate::ews::time::is_xs_datetime;
use crate::xml::{element_children, ns};

pub(super) struct Checker<'v> {
    pub(super) level: Level,
    /// The version judged by: the caller's, or a request's own
    /// `RequestServerVersion` (always one of [`SERVER_VERSIONS`]).
    pub(super) version: &'v str,
    pub(super) direction: Direction,
    /// A response whose messages say Error: it may answer a request that is
    /// outside its own version's schema, and can only do so with the
    /// operation's response element (or a fault). Version gating is then a note.
    pub(super) error_answer: bool,
    pub(super) out: Vec<Violation>,
    pub(super) truncated: bool,
}

impl<'v> Checker<'v> {
    pub(super) fn new(version: &'v str, direction: Direction) -> Self {
        Checker {
            level: Level::of(version),
            version,
            direction,
            error_answer: false,
            out: Vec::new(),
            truncated: false,
        }
    }

    pub(super) fn finish(mut self) -> Vec<Violation> {
        if self.truncated {
            self.out.push(Violation {
                path: "/".into(),
                rule: Rule::Unexpected,
                message: format!("more than {MAX_VIOLATIONS} findings; the rest are omitted"),
                severity: ViolationLevel::Note,
            });
        }
        self.out
    }

    pub(super) fn push(
        &mut self,
        path: &At<'_>,
        rule: Rule,
        severity: ViolationLevel,
        message: String,
    ) {
        if self.out.len() >= MAX_VIOLATIONS {
            self.truncated = true;
            return;
        }
        self.out.push(Violation {
            path: path.to_string(),
            rule,
            message,
            severity,
        });
    }

    pub(super) fn error(&mut self, path: &At<'_>, rule: Rule, message: String) {
        self.push(path, rule, ViolationLevel::Error, message);
    }

    pub(super) fn note(&mut self, path: &At<'_>, rule: Rule, message: String) {
        self.push(path, rule, ViolationLevel::Note, message);
    }

    /// Dispatches an operation element (the Body's child) to its grammar.
    /// `strict` makes an unknown messages-namespace operation a finding.
    pub(super) fn operation(&mut self, op: Node<'_, '_>, parent: &At<'_>, strict: bool) {
        let local = op.tag_name().name();
        let (own, other, own_word, other_word) = match self.direction {
            Direction::Request => (&REQUESTS, &RESPONSES, "request", "response"),
            Direction::Response => (&RESPONSES, &REQUESTS, "response", "request"),
        };
        if self.direction == Direction::Response {
            self.error_answer = op
                .descendants()
                .any(|n| n.is_element() && n.attribute("ResponseClass") == Some("Error"));
        }
        if local == "Fault" && self.direction == Direction::Response {
            self.matched(op, &FAULT, parent, 0, 1);
        } else if let Some(def) = own.iter().find(|e| e.name == local) {
            self.matched(op, def, parent, 0, 1);
        } else if let Some(def) = other.iter().find(|e| e.name == local) {
            let path = At::element(parent, Seg::Schema(def.ns.schema(), def.name), 0);
            self.error(
                &path,
                Rule::Unexpected,
                format!("{} is a {other_word} body, not a {own_word}", def.qname()),
            );
        } else if strict || op.tag_name().namespace() != Some(ns::MESSAGES) {
            let known: Vec<String> = own.iter().map(|e| e.qname()).collect();
            self.error(
                &At::element(parent, node_seg(op), 0),
                Rule::Unexpected,
                format!(
                    "{} is not a notification {own_word} (expected one of {})",
                    spelled(op),
                    known.join(", ")
                ),
            );
        }
    }

    /// Checks `node`, already matched to `def` by local name: its namespace,
    /// its version, its attributes and its content. `index` is the node's
    /// 1-based position among same-named siblings, 0 when it has none.
    pub(super) fn matched(
        &mut self,
        node: Node<'_, '_>,
        def: &'static Elem,
        parent: &At<'_>,
        index: usize,
        depth: usize,
    ) {
        let segment = match def.ns {
            NsRule::Exact(n) => n,
            NsRule::Either { schema, wire } => {
                if wire.holds(node) {
                    wire
                } else {
                    schema
                }
            }
        };
        let path = At::element(parent, Seg::Schema(segment, def.name), index);
        self.namespace(node, def, &path);
        if def.since > self.level {
            let message = format!(
                "{} is not in the {} schema (it was added in {})",
                def.qname(),
                self.version,
                def.since.introduced_in()
            );
            if self.error_answer {
                self.note(
                    &path,
                    Rule::Unexpected,
                    format!("{message}; legal in an Error answer to a request outside that schema"),
                );
            } else {
                self.error(&path, Rule::Unexpected, message);
            }
        }
        if depth > MAX_DEPTH {
            self.error(
                &path,
                Rule::Unexpected,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            );
            return;
        }
        self.attributes(node, def, &path);
        match &def.content {
            Content::Empty => {
                self.no_text(node, &path);
                for kid in element_children(node) {
                    self.error(
                        &At::element(&path, node_seg(kid), 0),
                        Rule::Unexpected,
                        format!("{} has no child elements", def.qname()),
                    );
                }
            }
            Content::Simple(value) => {
                for kid in element_children(node) {
                    self.error(
                        &At::element(&path, node_seg(kid), 0),
                        Rule::Unexpected,
                        format!("{} holds a value, not elements", def.qname()),
                    );
                }
                let text = simple_text(node);
                self.value(&path, &text, *value);
            }
            Content::Seq(particles) => self.sequence(node, particles, &path, depth),
            Content::Any => {}
            Content::Header => self.header(node, &path, depth),
            Content::Payload => self.payload(node, &path),
        }
    }

    pub(super) fn namespace(&mut self, node: Node<'_, '_>, def: &Elem, path: &At<'_>) {
        match def.ns {
            NsRule::Exact(n) if n.holds(node) => {}
            NsRule::Exact(n) => {
                let expected = match n.uri() {
                    Some(uri) => format!("did you mean {uri}?"),
                    None => "it must be in no namespace".to_string(),
                };
                self.error(
                    path,
                    Rule::Namespace,
                    format!(
                        "element {} is in the wrong namespace ({expected})",
                        spelled(node)
                    ),
                );
            }
            NsRule::Either { schema, wire } => {
                let (s, w) = (schema.qualify(def.name), wire.qualify(def.name));
                if schema.holds(node) {
                    self.note(
                        path,
                        Rule::Namespace,
                        format!(
                            "{s} follows the schema; Exchange sends {w} here (both are accepted)"
                        ),
                    );
                } else if wire.holds(node) {
                    self.note(
                        path,
                        Rule::Namespace,
                        format!(
                            "{w} is what Exchange sends; the schema says {s} (both are accepted)"
                        ),
                    );
                } else {
                    self.error(
                        path,
                        Rule::Namespace,
                        format!(
                            "element {} is in the wrong namespace (expected {s} or {w})",
                            spelled(node)
                        ),
                    );
                }
            }
        }
    }

    pub(super) fn attributes(&mut self, node: Node<'_, '_>, def: &Elem, path: &At<'_>) {
        for a in node.attributes() {
            match a.namespace() {
                // xsi:type/nil and soap:mustUnderstand/encodingStyle are
                // allowed by the frameworks, whatever the element.
                Some(ns::XSI) | Some(ns::SOAP) => continue,
                // Exchange writes `<faultstring xml:lang="en-US">` on every
                // fault, and `detail` takes any attribute: the XML
                // namespace's own attributes are legal on the fault's parts.
                Some(ns::XML) if def.ns.schema() == Ns::Plain => continue,
                Some(uri) => {
                    self.error(
                        &At::Attribute {
                            parent: path,
                            uri: Some(uri),
                            name: a.name(),
                        },
                        Rule::Attribute,
                        format!(
                            "attribute {{{uri}}}{} is not allowed on {}",
                            a.name(),
                            def.qname()
                        ),
                    );
                    continue;
                }
                None => {}
            }
            let at = At::Attribute {
                parent: path,
                uri: None,
                name: a.name(),
            };
            match def.attrs.iter().find(|d| d.name == a.name()) {
                None => self.error(
                    &at,
                    Rule::Attribute,
                    format!("attribute {} is not allowed on {}", a.name(), def.qname()),
                ),
                Some(d) => {
                    if d.since > self.level {
                        self.error(
                            &at,
                            Rule::Attribute,
                            format!(
                                "attribute {} is not in the {} schema (it was added in {})",
                                d.name,
                                self.version,
                                d.since.introduced_in()
                            ),
                        );
                    }
                    self.value(&at, a.value(), d.value);
                }
            }
        }
        for d in def.attrs.iter().filter(|d| d.required) {
            if node.attribute(d.name).is_none() {
                self.error(
                    path,
                    Rule::Attribute,
                    format!("required attribute {} is missing", d.name),
                );
            }
        }
    }

    pub(super) fn no_text(&mut self, node: Node<'_, '_>, path: &At<'_>) {
        for t in node.children().filter(|n| n.is_text()) {
            let text = t.text().unwrap_or_default().trim();
            if !text.is_empty() {
                self.error(
                    path,
                    Rule::Unexpected,
                    format!("text `{}` is not allowed here", shorten(text)),
                );
            }
        }
    }

    /// Matches the element children against a sequence of particles. The
    /// schema's content models are deterministic and their local names are
    /// unique within a sequence, so matching by name is exact. An element
    /// out of order still counts as present: one defect, one finding.
    pub(super) fn sequence(
        &mut self,
        node: Node<'_, '_>,
        particles: &'static [Particle],
        path: &At<'_>,
        depth: usize,
    ) {
        self.no_text(node, path);
        let mut few = [0u32; 8];
        let mut many = Vec::new();
        let counts: &mut [u32] = match few.get_mut(..particles.len()) {
            Some(counts) => counts,
            None => {
                many.resize(particles.len(), 0);
                &mut many
            }
        };
        let mut furthest = 0usize;
        let mut furthest_name = "";
        let mut indexes = SiblingIndex::new(node);
        for kid in element_children(node) {
            let index = indexes.next(kid);
            let local = kid.tag_name().name();
            let by_name = particles
                .iter()
                .enumerate()
                .find_map(|(i, p)| member(p, local).map(|e| (i, Some(e))));
            let found = by_name.or_else(|| {
                let other = particles
                    .iter()
                    .position(|p| matches!(p.term, Term::OtherNs));
                other.filter(|_| !Ns::Soap.holds(kid)).map(|i| (i, None))
            });
            let Some((k, def)) = found else {
                self.error(
                    &At::element(path, node_seg(kid), index),
                    Rule::Unexpected,
                    format!("element {} is not allowed here", spelled(kid)),
                );
                continue;
            };
            if k < furthest {
                self.error(
                    path,
                    Rule::Order,
                    format!("{local} must come before {furthest_name}"),
                );
            } else {
                furthest = k;
                furthest_name = local;
            }
            counts[k] += 1;
            let p = &particles[k];
            if counts[k] == p.max.saturating_add(1) {
                let message = match p.term {
                    Term::Choice(_) if p.max == 1 => {
                        format!("only one of {} is allowed", self.alternatives(p))
                    }
                    _ => format!(
                        "{} occurs more than {} time{}",
                        def.map(|d| d.qname()).unwrap_or_else(|| local.to_string()),
                        p.max,
                        if p.max == 1 { "" } else { "s" }
                    ),
                };
                self.error(path, Rule::Cardinality, message);
            }
            if let Some(def) = def {
                self.matched(kid, def, path, index, depth + 1);
            }
        }
        for (p, &count) in particles.iter().zip(counts.iter()) {
            self.close(p, count, path);
        }
    }

    /// The element names a particle accepts in this version.
    pub(super) fn alternatives(&self, p: &Particle) -> String {
        match p.term {
            Term::One(e) => e.qname(),
            Term::Choice(es) => {
                let names: Vec<String> = es
                    .iter()
                    .filter(|e| e.since <= self.level)
                    .map(|e| e.qname())
                    .collect();
                names.join(", ")
            }
            Term::OtherNs => "any element".into(),
        }
    }

    /// Reports a particle that ended with fewer than its minimum occurrences.
    pub(super) fn close(&mut self, p: &Particle, count: u32, path: &At<'_>) {
        let min = if p.required_in_2007 && self.level == Level::Ex2007 {
            p.min.max(1)
        } else {
            p.min
        };
        if count >= min {
            return;
        }
        let name = match p.term {
            Term::One(e) => e.qname(),
            Term::Choice(_) => format!("one of {}", self.alternatives(p)),
            Term::OtherNs => return,
        };
        if count == 0 {
            let why = if p.required_in_2007 && p.min == 0 {
                format!(" (required by the {} schema)", self.version)
            } else {
                String::new()
            };
            self.error(path, Rule::Missing, format!("{name} is missing{why}"));
        } else {
            self.error(
                path,
                Rule::Cardinality,
                format!("{name} occurs {count} times; at least {min} are required"),
            );
        }
    }

    /// soap:Header is lax: unknown blocks pass; the EWS version headers are
    /// checked, and a request's RequestServerVersion sets the schema version.
    pub(super) fn header(&mut self, node: Node<'_, '_>, path: &At<'_>, depth: usize) {
        self.no_text(node, path);
        for kid in element_children(node) {
            match kid.tag_name().name() {
                "RequestServerVersion" => {
                    self.matched(kid, &REQUEST_SERVER_VERSION, path, 0, depth + 1);
                    let requested = kid.attribute("Version").unwrap_or_default();
                    if self.direction == Direction::Request
                        && Ns::T.holds(kid)
                        && let Some(&known) = SERVER_VERSIONS.iter().find(|v| **v == requested)
                    {
                        self.level = Level::of(known);
                        self.version = known;
                    }
                }
                "ServerVersionInfo" => self.matched(kid, &SERVER_VERSION_INFO, path, 0, depth + 1),
                _ => {}
            }
        }
    }

    /// soap:Body: exactly one element, an operation of this direction.
    pub(super) fn payload(&mut self, node: Node<'_, '_>, path: &At<'_>) {
        self.no_text(node, path);
        match element_children(node).count() {
            0 => self.error(
                path,
                Rule::Missing,
                "soap:Body is empty; it must hold one operation element".into(),
            ),
            1 => {}
            n => self.error(
                path,
                Rule::Cardinality,
                format!("soap:Body holds {n} elements; exactly one is allowed"),
            ),
        }
        for kid in element_children(node) {
            self.operation(kid, path, false);
        }
    }

    pub(super) fn value(&mut self, path: &At<'_>, raw: &str, value: Value) {
        let t = raw.trim();
        match value {
            Value::Text => {}
            Value::NonEmpty => {
                if raw.is_empty() {
                    self.error(path, Rule::ValueType, "the value must not be empty".into());
                }
            }
            Value::Int(min, max) => match parse_xs_int(t) {
                None => self.error(path, Rule::ValueType, format!("`{t}` is not an xs:int")),
                Some(n) if n < min || n > max => {
                    self.error(path, Rule::Range, format!("{n} is outside {min}..{max}"))
                }
                Some(_) => {}
            },
            Value::Bool => match t {
                "true" | "false" => {}
                "1" | "0" => self.note(
                    path,
                    Rule::ValueType,
                    format!("`{t}` is a valid xs:boolean, but exchangelib reads only true/false (it sees no value)"),
                ),
                _ => self.error(path, Rule::ValueType, format!("`{t}` is not an xs:boolean")),
            },
            Value::DateTime => {
                if !is_xs_datetime(t) {
                    self.error(path, Rule::ValueType, format!("`{t}` is not an xs:dateTime"));
                }
            }
            Value::Enum(values) => self.enumeration(path, raw, values, ""),
            Value::ResponseCode => {
                let named = raw == "NoError"
                    || raw.strip_prefix("Error").is_some_and(|rest| {
                        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric())
                    });
                if !named {
                    self.error(
                        path,
                        Rule::Enumeration,
                        format!("`{raw}` is not a ResponseCodeType value (NoError or Error…)"),
                    );
                }
            }
            Value::EventType => {
                if raw == "StatusEvent" {
                    self.error(
                        path,
                        Rule::Enumeration,
                        "StatusEvent cannot be subscribed to (it is not a NotificationEventTypeType value)"
                            .into(),
                    );
                } else if raw == "FreeBusyChangedEvent" && self.level < Level::Ex2010Sp1 {
                    let message = format!(
                        "FreeBusyChangedEvent is not in the {} schema (it was added in Exchange2010_SP1)",
                        self.version
                    );
                    self.error(path, Rule::Enumeration, message);
                } else {
                    self.enumeration(path, raw, SUBSCRIBABLE_EVENTS, "");
                }
            }
            Value::FolderName => {
                self.enumeration(path, raw, DISTINGUISHED_FOLDERS, " distinguished folder name")
            }
            Value::Version => self.enumeration(path, raw, SERVER_VERSIONS, "n ExchangeVersionType value"),
        }
    }

    /// `what` names the type for long lists (" distinguished folder name");
    /// short lists are spelled out.
    pub(super) fn enumeration(&mut self, path: &At<'_>, raw: &str, values: &[&str], what: &str) {
        if values.contains(&raw) {
            return;
        }
        let hint = values
            .iter()
            .find(|v| v.eq_ignore_ascii_case(raw.trim()))
            .map(|v| format!(" (did you mean `{v}`?)"))
            .unwrap_or_default();
        let message = if what.is_empty() {
            format!("`{raw}` is not one of {}{hint}", values.join(", "))
        } else {
            format!("`{raw}` is not a{what}{hint}")
        };
        self.error(path, Rule::Enumeration, message);
    }
}

/// The element of a particle with this local name, if any.
pub(super) fn member(p: &Particle, local: &str) -> Option<&'static Elem> {
    match p.term {
        Term::One(e) => (e.name == local).then_some(e),
        Term::Choice(es) => es.iter().copied().find(|e| e.name == local),
        Term::OtherNs => None,
    }
}

/// xs:int lexical form: optional sign, digits, 32-bit range.
pub(super) fn parse_xs_int(t: &str) -> Option<i64> {
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = t.parse().ok()?;
    (i64::from(i32::MIN)..=i64::from(i32::MAX))
        .contains(&n)
        .then_some(n)
}

/// `{uri}Local`, or `Local (in no namespace)`: exact, for namespace messages.
pub(super) fn spelled(node: Node<'_, '_>) -> String {
    let tag = node.tag_name();
    match tag.namespace() {
        Some(uri) => format!("{{{uri}}}{}", tag.name()),
        None => format!("{} (in no namespace)", tag.name()),
    }
}
