use roxmltree::{Document, Node, ParsingOptions};

/// Parses a document with limits suitable for untrusted input.
///
/// roxmltree does not expand external entities; nested entity expansion is
/// bounded by its own `nodes_limit`, which we keep far below the default so a
/// hostile "billion laughs" body fails fast instead of eating memory.
pub fn parse_document(text: &str) -> Result<Document<'_>, roxmltree::Error> {
    let opts = ParsingOptions {
        allow_dtd: true,
        nodes_limit: 2_000_000,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(text, opts)
}

/// The element children of `node`, skipping text, comments and PIs.
pub fn element_children<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(|n| n.is_element())
}

/// The first element child with namespace `ns` and local name `local`.
pub fn child<'a, 'i>(node: Node<'a, 'i>, ns: &str, local: &str) -> Option<Node<'a, 'i>> {
    element_children(node)
        .find(|n| n.tag_name().name() == local && n.tag_name().namespace() == Some(ns))
}

/// Every element child with namespace `ns` and local name `local`.
pub fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    ns: &'a str,
    local: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    element_children(node)
        .filter(move |n| n.tag_name().name() == local && n.tag_name().namespace() == Some(ns))
}

/// The concatenated text content of an element (its direct text children).
pub fn text_of(node: Node<'_, '_>) -> String {
    node.children()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

/// Method forms of the helpers above, for chaining.
pub trait ElementExt<'a, 'i> {
    fn child_ns(self, ns: &str, local: &str) -> Option<Node<'a, 'i>>;
    fn is(self, ns: &str, local: &str) -> bool;
    fn text_trimmed(self) -> String;
}

impl<'a, 'i> ElementExt<'a, 'i> for Node<'a, 'i> {
    fn child_ns(self, ns: &str, local: &str) -> Option<Node<'a, 'i>> {
        child(self, ns, local)
    }
    fn is(self, ns: &str, local: &str) -> bool {
        self.is_element()
            && self.tag_name().name() == local
            && self.tag_name().namespace() == Some(ns)
    }
    fn text_trimmed(self) -> String {
        text_of(self).trim().to_string()
    }
}
