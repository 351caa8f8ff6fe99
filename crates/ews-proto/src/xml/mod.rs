//! XML plumbing shared by the harness and the reference server: namespace
//! names, a small writer over quick-xml, and reading helpers over roxmltree.

pub mod path;
mod read;
mod write;

pub use read::{
    ElementExt, MAX_ATTRIBUTES, XmlError, child, children, crowded_element, element_children,
    parse_bounded, parse_document, text_of,
};
pub use write::XmlWriter;

/// Namespace names, exactly as the protocol fixes them (`http`, never `https`).
pub mod ns {
    pub const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
    pub const MESSAGES: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
    pub const TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
    pub const ERRORS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";
    pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
    pub const XSD: &str = "http://www.w3.org/2001/XMLSchema";
    /// The namespace of `xml:lang` and `xml:space`, bound by XML itself.
    pub const XML: &str = "http://www.w3.org/XML/1998/namespace";

    /// The conventional prefix for a namespace, used in messages and paths.
    pub fn prefix_of(uri: &str) -> Option<&'static str> {
        match uri {
            SOAP => Some("soap"),
            MESSAGES => Some("m"),
            TYPES => Some("t"),
            ERRORS => Some("e"),
            XSI => Some("xsi"),
            XSD => Some("xsd"),
            _ => None,
        }
    }

    /// The namespace bound to a conventional prefix (the ones case files may use).
    pub fn uri_of(prefix: &str) -> Option<&'static str> {
        match prefix {
            "soap" | "s" => Some(SOAP),
            "m" => Some(MESSAGES),
            "t" => Some(TYPES),
            "e" => Some(ERRORS),
            "xsi" => Some(XSI),
            "xsd" => Some(XSD),
            _ => None,
        }
    }
}

/// A readable qualified name for messages: `m:ResponseCode`, or
/// `{urn:other}Name` for a namespace with no conventional prefix.
pub fn display_name(node: roxmltree::Node<'_, '_>) -> String {
    let tag = node.tag_name();
    match tag.namespace() {
        None => tag.name().to_string(),
        Some(uri) => match ns::prefix_of(uri) {
            Some(p) => format!("{p}:{}", tag.name()),
            None => format!("{{{uri}}}{}", tag.name()),
        },
    }
}
