//! A built-in structural grammar of the notification protocol (digest
//! sections 0.2–0.4, 1.1–1.5, 2.1 and 4), kept as compact data.
//!
//! It is used twice: the reference server judges the requests it receives
//! the way Exchange's schema validation would, and the harness's `structure`
//! check judges what a target sends back. It is not a general XSD validator:
//! it knows only the notification operations, matches children by local name
//! first so that a wrong namespace is reported as a namespace problem (not as
//! a baffling "unexpected element"), and it follows the schema changes
//! between Exchange versions where the digest lists them.
//!
//! Everything is bounded: the grammar is finite, the walk stops at
//! [`MAX_DEPTH`], and at most [`MAX_VIOLATIONS`] findings are reported.

mod checker;
mod model;
mod path;
mod tables;
mod violation;

use roxmltree::{Document, Node};

use crate::xml::display_name;
use checker::Checker;
use path::At;
use tables::ENVELOPE;

pub use tables::DISTINGUISHED_FOLDERS;
pub use violation::{Direction, MAX_DEPTH, MAX_VIOLATIONS, Rule, Violation, ViolationLevel};

/// Validates an operation element received by a server (see [`Direction::Request`])
/// against the schema of `version` (a `RequestServerVersion` value; an
/// unknown value is judged by the newest schema).
pub fn validate_request(op: Node<'_, '_>, version: &str) -> Vec<Violation> {
    let mut c = Checker::new(version, Direction::Request);
    c.operation(op, &At::Ancestry(op), true);
    c.finish()
}

/// Validates an operation element sent by a server (see [`Direction::Response`]).
pub fn validate_response(op: Node<'_, '_>, version: &str) -> Vec<Violation> {
    let mut c = Checker::new(version, Direction::Response);
    c.operation(op, &At::Ancestry(op), true);
    c.finish()
}

/// Validates a whole SOAP 1.1 document: the frame, the version headers, and
/// the operation in the Body. For a request carrying a valid
/// `t:RequestServerVersion`, that header's version wins over `version`
/// (which is then the server's default). Operations in the messages
/// namespace that this grammar does not cover (CreateItem, …) are outside
/// its scope and pass.
pub fn validate_envelope(doc: &Document<'_>, kind: Direction, version: &str) -> Vec<Violation> {
    let mut c = Checker::new(version, kind);
    let root = doc.root_element();
    if root.tag_name().name() != "Envelope" {
        c.error(
            &At::Text("/"),
            Rule::Unexpected,
            format!(
                "the root element is {}, not soap:Envelope",
                display_name(root)
            ),
        );
    } else {
        c.matched(root, &ENVELOPE, &At::Text(""), 0, 0);
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::model::*;
    use super::path::*;
    use super::*;
    use crate::xml::element_children;

    /// The definition: position among same-named siblings, 0 when unique.
    fn naive(parent: Node<'_, '_>) -> Vec<usize> {
        let kids: Vec<Node<'_, '_>> = element_children(parent).collect();
        kids.iter()
            .enumerate()
            .map(|(i, k)| {
                let same = |o: &&Node<'_, '_>| key(**o) == key(*k);
                if kids.iter().filter(same).count() > 1 {
                    kids[..=i].iter().filter(same).count()
                } else {
                    0
                }
            })
            .collect()
    }

    #[test]
    fn sibling_indexes_match_their_definition_below_and_above_the_map_threshold() {
        for distinct in [1, 2, 5, FEW_NAMES, FEW_NAMES + 1, 40] {
            for width in [0, 1, 3, FEW_NAMES, FEW_NAMES + 1, 100] {
                let mut xml = String::from("<r xmlns:a='urn:a' xmlns:b='urn:b'>");
                for i in 0..width {
                    let prefix = if i % 3 == 0 { "a" } else { "b" };
                    xml.push_str(&format!("<{prefix}:n{}/>text", (i * 7) % distinct));
                }
                xml.push_str("</r>");
                let doc = Document::parse(&xml).expect("generated document parses");
                let root = doc.root_element();
                let mut index = SiblingIndex::new(root);
                let fast: Vec<usize> = element_children(root).map(|k| index.next(k)).collect();
                assert_eq!(fast, naive(root), "{distinct} names, {width} children");
            }
        }
    }

    #[test]
    fn paths_render_like_the_documented_spelling() {
        let doc = Document::parse("<x:a xmlns:x='urn:x'><b/></x:a>").expect("parses");
        let root = doc.root_element();
        let top = At::Text("");
        let env = At::element(&top, Seg::Schema(Ns::Soap, "Envelope"), 0);
        let op = At::element(&env, node_seg(root), 3);
        let attr = At::Attribute {
            parent: &op,
            uri: Some("urn:q"),
            name: "f",
        };
        assert_eq!(attr.to_string(), "/soap:Envelope/{urn:x}a[3]/@{urn:q}f");
        let kid = element_children(root).next().expect("a child");
        assert_eq!(At::Ancestry(kid).to_string(), "/{urn:x}a");
        assert_eq!(simple_text(root), "");
    }
}
