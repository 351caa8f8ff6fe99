use roxmltree::{Document, Node, ParsingOptions};

/// Most attributes (namespace declarations included) one element may
/// carry. The XML parser compares each attribute with the element's
/// earlier ones, so its time grows with the square of this number per
/// element: with the bound, a whole parse stays linear in the input. No
/// EWS element has more than a handful.
pub const MAX_ATTRIBUTES: usize = 256;

/// Why a text is not a document this crate reads.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum XmlError {
    #[error(transparent)]
    Syntax(#[from] roxmltree::Error),
    #[error("the element at line {line}, column {col} has more than {MAX_ATTRIBUTES} attributes")]
    CrowdedElement { line: u32, col: u32 },
}

impl XmlError {
    /// Line and column (1-based) of the problem.
    pub fn pos(&self) -> (u32, u32) {
        match self {
            XmlError::Syntax(e) => (e.pos().row, e.pos().col),
            XmlError::CrowdedElement { line, col } => (*line, *col),
        }
    }
}

/// Parses a document with limits suitable for untrusted input.
///
/// roxmltree does not expand external entities; nested entity expansion is
/// bounded by its own `nodes_limit`, which we keep far below the default so a
/// hostile "billion laughs" body fails fast instead of eating memory.
pub fn parse_document(text: &str) -> Result<Document<'_>, XmlError> {
    parse_bounded(text, true, 2_000_000)
}

/// Parses untrusted text with a node budget, refusing elements with more
/// than [`MAX_ATTRIBUTES`] attributes before the parser sees them.
pub fn parse_bounded(text: &str, allow_dtd: bool, nodes: u32) -> Result<Document<'_>, XmlError> {
    if let Some(at) = crowded_element(text) {
        let (line, col) = line_col(text, at);
        return Err(XmlError::CrowdedElement { line, col });
    }
    let opts = ParsingOptions {
        allow_dtd,
        nodes_limit: nodes,
        ..ParsingOptions::default()
    };
    Ok(Document::parse_with_options(text, opts)?)
}

/// The byte offset of the first start tag with more than
/// [`MAX_ATTRIBUTES`] attributes, found in one pass. Each attribute of a
/// start tag has one `=` outside quotes; comments, CDATA sections,
/// processing instructions and declarations are skipped. Text that is not
/// well-formed may be miscounted, which only matters for a tag the parser
/// would refuse anyway.
pub fn crowded_element(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(off) = b[i..].iter().position(|&c| c == b'<') {
        let start = i + off;
        let rest = &b[start..];
        let skip_to = |end: &[u8]| {
            rest.windows(end.len())
                .position(|w| w == end)
                .map_or(b.len(), |p| start + p + end.len())
        };
        i = if rest.starts_with(b"<!--") {
            skip_to(b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            skip_to(b"]]>")
        } else if rest.starts_with(b"<?") {
            skip_to(b"?>")
        } else if rest.starts_with(b"<!") {
            declaration_end(b, start)
        } else if rest.starts_with(b"</") {
            start + 2
        } else {
            let mut quote = None;
            let mut equals = 0usize;
            let mut j = start + 1;
            while j < b.len() {
                let c = b[j];
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if c == b'"' || c == b'\'' => quote = Some(c),
                    None if c == b'=' => equals += 1,
                    None if c == b'>' || c == b'<' => break,
                    None => {}
                }
                j += 1;
            }
            if equals > MAX_ATTRIBUTES {
                return Some(start);
            }
            j
        };
        if i >= b.len() {
            break;
        }
    }
    None
}

/// The end of a `<!DOCTYPE …>` or other declaration, past its internal
/// subset (`[…]`) if it has one.
fn declaration_end(b: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut quote = None;
    for (j, &c) in b.iter().enumerate().skip(start + 2) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b'[' => depth += 1,
            None if c == b']' => depth = depth.saturating_sub(1),
            None if c == b'>' && depth == 0 => return j + 1,
            None => {}
        }
    }
    b.len()
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, at: usize) -> (u32, u32) {
    let before = &text[..at.min(text.len())];
    let line = before.bytes().filter(|&c| c == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    let col = before[line_start..].chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(n: usize) -> String {
        let attrs: String = (0..n).map(|i| format!(" a{i}='v'")).collect();
        format!("<r{attrs}/>")
    }

    #[test]
    fn the_bound_counts_attributes_per_element() {
        assert_eq!(crowded_element(&tag(MAX_ATTRIBUTES)), None);
        assert_eq!(crowded_element(&tag(MAX_ATTRIBUTES + 1)), Some(0));
        // Spread over many elements, any number is fine.
        let many = format!("<root>{}</root>", tag(200).repeat(50));
        assert_eq!(crowded_element(&many), None);
        assert!(parse_document(&many).is_ok());
    }

    #[test]
    fn quoted_text_comments_and_cdata_are_not_counted() {
        let eq = "=".repeat(1000);
        let doc = format!(
            "<?xml version='1.0'?><!-- {eq} --><r a=\"{eq}\" b='{eq} > <'><![CDATA[<x {eq}>]]>{}</r>",
            "a=b ".repeat(10)
        );
        assert_eq!(crowded_element(&doc), None, "{doc}");
        let dtd = format!("<!DOCTYPE r [<!ENTITY e \"{eq}\">]><r/>");
        assert_eq!(crowded_element(&dtd), None);
    }

    #[test]
    fn a_crowded_element_is_named_with_its_position() {
        let text = format!("<root>\n  {}</root>", tag(300));
        let e = parse_document(&text).expect_err("too many attributes");
        assert_eq!(e, XmlError::CrowdedElement { line: 2, col: 3 });
        assert_eq!(e.pos(), (2, 3));
        assert!(e.to_string().contains("more than 256 attributes"), "{e}");
        // Namespace declarations count too.
        let decls: String = (0..300).map(|i| format!(" xmlns:p{i}='urn:{i}'")).collect();
        assert!(crowded_element(&format!("<r{decls}/>")).is_some());
    }
}
