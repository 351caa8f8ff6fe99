//! Where a violation is: the path of the element it is about, written as
//! a reader would find it in the document.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use roxmltree::Node;

use super::model::*;
use crate::xml::{element_children, ns};

/// One step of a path: a schema name in its conventional prefix, or a
/// document element's own name (spelled as [`display_name`] spells it).
#[derive(Clone, Copy)]
pub(super) enum Seg<'p> {
    Schema(Ns, &'static str),
    Node(Option<&'p str>, &'p str),
}

impl fmt::Display for Seg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Seg::Schema(n, local) => write!(f, "{}{local}", n.prefix()),
            Seg::Node(None, local) => f.write_str(local),
            Seg::Node(Some(uri), local) => match ns::prefix_of(uri) {
                Some(p) => write!(f, "{p}:{local}"),
                None => write!(f, "{{{uri}}}{local}"),
            },
        }
    }
}

pub(super) fn node_seg<'p>(node: Node<'p, '_>) -> Seg<'p> {
    let tag = node.tag_name();
    Seg::Node(tag.namespace(), tag.name())
}

/// Where a finding is, described by borrowing and rendered to the
/// [`Violation::path`] text only when there is a finding: the walk over a
/// correct document builds no strings.
#[derive(Clone, Copy)]
pub(super) enum At<'p> {
    /// A path given as text (the frame's root, "/").
    Text(&'p str),
    /// The element ancestors of a node, for an operation validated alone.
    Ancestry(Node<'p, 'p>),
    /// `{parent}/{seg}`, with `[index]` when `index` is not 0.
    Element {
        parent: &'p At<'p>,
        seg: Seg<'p>,
        index: usize,
    },
    /// `{parent}/@name` or `{parent}/@{uri}name`.
    Attribute {
        parent: &'p At<'p>,
        uri: Option<&'p str>,
        name: &'p str,
    },
}

impl<'p> At<'p> {
    pub(super) fn element(parent: &'p At<'p>, seg: Seg<'p>, index: usize) -> At<'p> {
        At::Element { parent, seg, index }
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            At::Text(text) => f.write_str(text),
            At::Ancestry(node) => {
                let names: Vec<Node<'_, '_>> = node
                    .ancestors()
                    .skip(1)
                    .filter(|n| n.is_element())
                    .collect();
                for n in names.into_iter().rev() {
                    write!(f, "/{}", node_seg(n))?;
                }
                Ok(())
            }
            At::Element { parent, seg, index } => {
                write!(f, "{parent}/{seg}")?;
                if index != 0 {
                    write!(f, "[{index}]")?;
                }
                Ok(())
            }
            At::Attribute {
                parent,
                uri: Some(uri),
                name,
            } => write!(f, "{parent}/@{{{uri}}}{name}"),
            At::Attribute {
                parent,
                uri: None,
                name,
            } => write!(f, "{parent}/@{name}"),
        }
    }
}

/// Distinct sibling names kept in a plain array before switching to a map.
pub(super) const FEW_NAMES: usize = 16;

pub(super) type Key<'a> = (Option<&'a str>, &'a str);

pub(super) fn key<'a>(node: Node<'a, '_>) -> Key<'a> {
    let tag = node.tag_name();
    (tag.namespace(), tag.name())
}

/// `a == b`, by the local names first (they usually differ) and by the
/// namespaces' addresses before their text (a document's elements usually
/// share one copy of each namespace name).
pub(super) fn same_key(a: Key<'_>, b: Key<'_>) -> bool {
    a.1 == b.1
        && match (a.0, b.0) {
            (Some(x), Some(y)) => std::ptr::eq(x, y) || x == y,
            (x, y) => x == y,
        }
}

/// Each element child's 1-based position among its same-named siblings, or
/// 0 when its name is unique there. [`SiblingIndex::new`] counts the names
/// in one pass; [`SiblingIndex::next`] is then called with each element
/// child in document order. A handful of distinct names (the usual case)
/// are compared in place, without hashing; many switch to a map, so wide
/// documents stay linear.
pub(super) struct SiblingIndex<'a> {
    /// (name, total, seen so far), the first `len` entries in use.
    pub(super) few: [(Key<'a>, usize, usize); FEW_NAMES],
    pub(super) len: usize,
    pub(super) many: Option<HashMap<Key<'a>, (usize, usize)>>,
}

impl<'a> SiblingIndex<'a> {
    pub(super) fn new(parent: Node<'a, '_>) -> Self {
        let mut this = SiblingIndex {
            few: [((None, ""), 0, 0); FEW_NAMES],
            len: 0,
            many: None,
        };
        for kid in element_children(parent) {
            let k = key(kid);
            if let Some(map) = &mut this.many {
                map.entry(k).or_default().0 += 1;
            } else if let Some(entry) = this.few[..this.len].iter_mut().find(|e| same_key(e.0, k)) {
                entry.1 += 1;
            } else if this.len < FEW_NAMES {
                this.few[this.len] = (k, 1, 0);
                this.len += 1;
            } else {
                let mut map: HashMap<Key<'a>, (usize, usize)> = this
                    .few
                    .iter()
                    .map(|&(k, total, seen)| (k, (total, seen)))
                    .collect();
                map.insert(k, (1, 0));
                this.many = Some(map);
            }
        }
        this
    }

    pub(super) fn next(&mut self, kid: Node<'a, '_>) -> usize {
        let k = key(kid);
        let entry = match &mut self.many {
            Some(map) => map.get_mut(&k).map(|(total, seen)| (total, seen)),
            None => self.few[..self.len]
                .iter_mut()
                .find(|e| same_key(e.0, k))
                .map(|(_, total, seen)| (total, seen)),
        };
        match entry {
            Some((total, seen)) => {
                *seen += 1;
                if *total > 1 { *seen } else { 0 }
            }
            None => 0,
        }
    }
}

/// The text content of a simple-valued element (every text child, in
/// order), borrowed when there is a single text child.
pub(super) fn simple_text<'a>(node: Node<'a, '_>) -> Cow<'a, str> {
    let mut texts = node.children().filter(|n| n.is_text());
    let Some(first) = texts.next() else {
        return Cow::Borrowed("");
    };
    let first = first.text().unwrap_or_default();
    match texts.next() {
        None => Cow::Borrowed(first),
        Some(second) => {
            let mut all = String::from(first);
            all.push_str(second.text().unwrap_or_default());
            for t in texts {
                all.push_str(t.text().unwrap_or_default());
            }
            Cow::Owned(all)
        }
    }
}

pub(super) fn shorten(text: &str) -> String {
    const LIMIT: usize = 40;
    match text.char_indices().nth(LIMIT) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}
