//! Identity-preserving normalisation for golden snapshots.
//!
//! A golden snapshot must not change when a server hands out new ids,
//! watermarks or timestamps, yet it must still show *which* value came back
//! where ("PreviousWatermark is the watermark returned two steps ago"). So
//! volatile values become aliases numbered by first appearance —
//! `[subscription#1]`, `[watermark#3]`, `[item#2]`, `[changekey#1]`,
//! `[folder#4]`, or a name the harness gave (`[folder#inbox]`) — and one
//! [`Normalizer`] serves a whole case run, so an alias means the same value
//! in every response of the case. Timestamps become `[time]` and
//! ServerVersionInfo attribute values `[version]`.
//!
//! The rendering is canonical: namespace-aware with the conventional
//! prefixes (`soap`, `m`, `t`, …; other namespaces `ns1`, `ns2`, … in order
//! of appearance), every used namespace declared once on the root,
//! attributes sorted, insignificant whitespace, comments and the XML
//! declaration dropped, two-space indentation. Normalising the output again
//! gives the same text.

use std::collections::HashMap;

use roxmltree::Node;

use ews_proto::ews::time::is_xs_datetime;
use ews_proto::xml::{ns, parse_document};

/// Deeper documents are refused rather than walked (the protocol needs ~12).
pub const MAX_DEPTH: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("not well-formed XML: {0}")]
    NotXml(#[from] ews_proto::xml::XmlError),
    #[error("elements nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// The kinds of volatile value, each numbered on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Subscription,
    Watermark,
    Item,
    ChangeKey,
    Folder,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Subscription => "subscription",
            Kind::Watermark => "watermark",
            Kind::Item => "item",
            Kind::ChangeKey => "changekey",
            Kind::Folder => "folder",
        }
    }

    /// The kind of an element's text, by the element's local name.
    fn of_text(local: &str) -> Option<Kind> {
        match local {
            "SubscriptionId" => Some(Kind::Subscription),
            "Watermark" | "PreviousWatermark" => Some(Kind::Watermark),
            _ => None,
        }
    }

    /// The kind of an attribute value, by the attribute and its element.
    fn of_attribute(element: &str, attribute: &str) -> Option<Kind> {
        match (element, attribute) {
            (_, "ChangeKey") => Some(Kind::ChangeKey),
            ("ItemId" | "OldItemId", "Id") => Some(Kind::Item),
            ("FolderId" | "ParentFolderId" | "OldFolderId" | "OldParentFolderId", "Id") => {
                Some(Kind::Folder)
            }
            _ => None,
        }
    }
}

/// Aliases for one case run. Create one per case and pass every response
/// of the case through it.
#[derive(Debug, Default, Clone)]
pub struct Normalizer {
    known: HashMap<String, String>,
    assigned: HashMap<(Kind, String), String>,
    counters: HashMap<Kind, usize>,
}

impl Normalizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Names a value the harness knows, e.g. `known(inbox_id, "folder#inbox")`;
    /// wherever the value appears (text or attribute) it becomes `[folder#inbox]`.
    pub fn known(&mut self, value: &str, alias: &str) {
        let alias = alias.trim_start_matches('[').trim_end_matches(']');
        self.known.insert(value.to_string(), format!("[{alias}]"));
    }

    /// The alias a value has received so far, if any (for evidence messages).
    pub fn alias_of(&self, value: &str) -> Option<&str> {
        if let Some(a) = self.known.get(value) {
            return Some(a);
        }
        self.assigned
            .iter()
            .find(|((_, v), _)| v == value)
            .map(|(_, a)| a.as_str())
    }

    /// The canonical, aliased rendering of an XML document.
    pub fn normalize(&mut self, text: &str) -> Result<String, NormalizeError> {
        let doc = parse_document(text)?;
        let root = doc.root_element();
        let prefixes = Prefixes::collect(root)?;
        let mut out = String::with_capacity(text.len());
        self.element(root, &prefixes, 0, &mut out);
        Ok(out)
    }

    fn alias(&mut self, kind: Kind, value: &str) -> String {
        if let Some(a) = self.known.get(value) {
            return a.clone();
        }
        if is_alias(value) {
            return value.to_string();
        }
        if let Some(a) = self.assigned.get(&(kind, value.to_string())) {
            return a.clone();
        }
        let n = self.counters.entry(kind).or_insert(0);
        *n += 1;
        let alias = format!("[{}#{}]", kind.label(), n);
        self.assigned
            .insert((kind, value.to_string()), alias.clone());
        alias
    }

    fn text_value(&mut self, element: Node<'_, '_>, text: &str) -> String {
        if let Some(a) = self.known.get(text) {
            return a.clone();
        }
        let local = element.tag_name().name();
        // MessageXml carries ids as <t:Value Name="SubscriptionId">.
        let named = (local == "Value")
            .then(|| element.attribute("Name"))
            .flatten()
            .unwrap_or(local);
        match Kind::of_text(named) {
            Some(kind) if !text.is_empty() => self.alias(kind, text),
            _ if is_xs_datetime(text) => "[time]".to_string(),
            _ => text.to_string(),
        }
    }

    fn attribute_value(&mut self, element: Node<'_, '_>, name: &str, value: &str) -> String {
        if let Some(a) = self.known.get(value) {
            return a.clone();
        }
        let local = element.tag_name().name();
        if local == "ServerVersionInfo" {
            return "[version]".to_string();
        }
        match Kind::of_attribute(local, name) {
            Some(kind) if !value.is_empty() => self.alias(kind, value),
            _ => value.to_string(),
        }
    }

    fn element(&mut self, node: Node<'_, '_>, prefixes: &Prefixes, depth: usize, out: &mut String) {
        let indent = "  ".repeat(depth);
        let name = prefixes.qualified(canonical_namespace(node), node.tag_name().name());
        out.push_str(&indent);
        out.push('<');
        out.push_str(&name);
        if depth == 0 {
            for (uri, prefix) in prefixes.sorted() {
                out.push_str(&format!(" xmlns:{prefix}=\"{}\"", escape(uri, true)));
            }
        }
        let mut attrs: Vec<(String, String)> = node
            .attributes()
            .map(|a| {
                let qname = prefixes.qualified(a.namespace(), a.name());
                (qname, a.name().to_string(), a.value().to_string())
            })
            .map(|(qname, local, value)| {
                let value = self.attribute_value(node, &local, &value);
                (qname, value)
            })
            .collect();
        attrs.sort();
        for (qname, value) in attrs {
            out.push_str(&format!(" {qname}=\"{}\"", escape(&value, true)));
        }
        let has_elements = node.children().any(|c| c.is_element());
        let texts: Vec<&str> = node
            .children()
            .filter(|c| c.is_text())
            .filter_map(|c| c.text())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if !has_elements {
            let text = texts.concat();
            if text.is_empty() {
                out.push_str("/>\n");
            } else {
                let value = match qname_value(node, &text) {
                    Some((uri, local)) => prefixes.qualified(Some(uri), local),
                    None => self.text_value(node, &text),
                };
                out.push_str(&format!(">{}</{name}>\n", escape(&value, false)));
            }
            return;
        }
        out.push_str(">\n");
        for child in node.children() {
            if child.is_element() {
                self.element(child, prefixes, depth + 1, out);
            } else if let Some(t) = child.text().map(str::trim).filter(|t| !t.is_empty()) {
                // Mixed content: rare in EWS, kept as its own line.
                let value = self.text_value(node, t);
                out.push_str(&format!("{indent}  {}\n", escape(&value, false)));
            }
        }
        out.push_str(&format!("{indent}</{name}>\n"));
    }
}

/// The namespace an element is rendered in. The documented schema/wire
/// conflicts (digest 0.3) render as the schema's `t:`: a Notification inside
/// m:Notifications and a SubscriptionId inside m:ErrorSubscriptionIds
/// (Exchange writes `m:` for both).
fn canonical_namespace<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    let parent = node.parent_element().map(|p| p.tag_name().name());
    match (parent, node.tag_name().name()) {
        (Some("Notifications"), "Notification")
        | (Some("ErrorSubscriptionIds"), "SubscriptionId")
            if matches!(node.tag_name().namespace(), Some(ns::MESSAGES | ns::TYPES)) =>
        {
            Some(ns::TYPES)
        }
        _ => node.tag_name().namespace(),
    }
}

/// A SOAP `faultcode` is an xs:QName: its prefix is the server's choice,
/// its namespace is not. `(namespace, local name)` when it resolves.
fn qname_value<'a, 'i>(node: Node<'a, 'i>, text: &'a str) -> Option<(&'a str, &'a str)> {
    if node.tag_name().name() != "faultcode" || node.tag_name().namespace().is_some() {
        return None;
    }
    let (prefix, local) = text.split_once(':')?;
    Some((node.lookup_namespace_uri(Some(prefix))?, local))
}

/// `[kind#n]`, `[kind#name]`, `[time]`, `[version]`: already normalised.
fn is_alias(value: &str) -> bool {
    let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) else {
        return false;
    };
    let (kind, label) = inner.split_once('#').unwrap_or((inner, "x"));
    let word = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    };
    word(kind, b"-") && word(label, b"-_.")
}

/// The prefix chosen for every namespace the document uses.
struct Prefixes {
    by_uri: HashMap<String, String>,
}

impl Prefixes {
    fn collect(root: Node<'_, '_>) -> Result<Self, NormalizeError> {
        let mut by_uri: HashMap<String, String> = HashMap::new();
        let mut others = 0usize;
        let mut note = |uri: &str| {
            if by_uri.contains_key(uri) {
                return;
            }
            let prefix = match ns::prefix_of(uri) {
                Some(p) => p.to_string(),
                None => {
                    others += 1;
                    format!("ns{others}")
                }
            };
            by_uri.insert(uri.to_string(), prefix);
        };
        for node in root.descendants().filter(|n| n.is_element()) {
            if node.ancestors().count() > MAX_DEPTH + 1 {
                return Err(NormalizeError::TooDeep);
            }
            if let Some(uri) = canonical_namespace(node) {
                note(uri);
            }
            if let Some(text) = node.text()
                && let Some((uri, _)) = qname_value(node, text.trim())
            {
                note(uri);
            }
            for a in node.attributes() {
                if let Some(uri) = a.namespace() {
                    note(uri);
                }
            }
        }
        Ok(Prefixes { by_uri })
    }

    fn qualified(&self, uri: Option<&str>, local: &str) -> String {
        match uri.and_then(|u| self.by_uri.get(u)) {
            Some(prefix) => format!("{prefix}:{local}"),
            None => local.to_string(),
        }
    }

    fn sorted(&self) -> Vec<(&str, &str)> {
        let mut all: Vec<(&str, &str)> = self
            .by_uri
            .iter()
            .map(|(u, p)| (u.as_str(), p.as_str()))
            .collect();
        all.sort_by(|a, b| a.1.cmp(b.1));
        all
    }
}

fn escape(text: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_syntax() {
        for yes in [
            "[item#1]",
            "[folder#inbox]",
            "[time]",
            "[version]",
            "[push-url]",
        ] {
            assert!(is_alias(yes), "{yes}");
        }
        for no in ["item#1", "[]", "[#1]", "[item#]", "[a b]", "AAMk[x]"] {
            assert!(!is_alias(no), "{no}");
        }
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("a<b&\"c\"", false), "a&lt;b&amp;\"c\"");
        assert_eq!(escape("a\"\nb", true), "a&quot;&#10;b");
    }
}
