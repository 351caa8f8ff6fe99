//! The one rewriting layer of the wire-form dialects: every XML document the
//! server sends (responses, faults, each streaming envelope, push POST
//! bodies) passes through [`Rewriter::apply`], which re-emits it with other
//! prefixes, default namespaces, extra declarations, without the XML
//! declaration, and so on. Only the *form* changes: every element keeps its
//! namespace and local name (except where a dialect documents the other
//! namespace Exchange uses), attributes and text are copied byte for byte,
//! and the original prefixed declarations stay (QName values such as
//! `a:ErrorSchemaValidation` in faultcode keep resolving).

use std::borrow::Cow;

use quick_xml::Writer;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::{QName, ResolveResult};
use quick_xml::reader::NsReader;

use super::dialects::{Dialect, DialectSet};
use ews_proto::xml::ns;

/// Prefixes the `other-prefixes` dialect uses (distinct from every prefix
/// the server writes, so no original declaration is ever shadowed).
const OTHER_MESSAGES: &str = "msg";
const OTHER_TYPES: &str = "typ";
const SOAP_PREFIX: &str = "soap";

/// The text `success-message-text` adds to success messages.
pub const SUCCESS_TEXT: &str = "The operation completed successfully.";

/// What the rewriting layer does, decided once per server from its dialects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rewriter {
    no_declaration: bool,
    soap_prefix: bool,
    other_prefixes: bool,
    h_prefix: bool,
    extra_namespaces: bool,
    default_namespace: bool,
    success_text: bool,
    error_ids_m: bool,
}

impl Rewriter {
    pub fn new(d: &DialectSet) -> Self {
        Rewriter {
            no_declaration: d.has(Dialect::NoXmlDeclaration),
            soap_prefix: d.has(Dialect::SoapPrefix),
            other_prefixes: d.has(Dialect::OtherPrefixes),
            h_prefix: d.has(Dialect::ServerVersionHPrefix),
            extra_namespaces: d.has(Dialect::ExtraNamespaces),
            default_namespace: d.has(Dialect::DefaultNamespace),
            success_text: d.has(Dialect::SuccessMessageText),
            error_ids_m: d.has(Dialect::ErrorSubscriptionIdM),
        }
    }

    /// The form for streaming envelopes: Exchange writes those as
    /// `<Envelope xmlns="…soap/envelope/">` whatever else it does, and
    /// clients scan for that, so the SOAP prefix stays as it is there.
    pub fn for_stream(&self) -> Rewriter {
        Rewriter {
            soap_prefix: false,
            ..*self
        }
    }

    /// Whether documents change at all (the faithful server is never re-parsed).
    pub fn is_active(&self) -> bool {
        *self != Rewriter::default()
    }

    /// The document in this server's wire form. A document that does not
    /// parse (never the case for the server's own output) is sent unchanged.
    pub fn apply(&self, xml: String) -> String {
        if !self.is_active() {
            return xml;
        }
        match self.rewrite(&xml) {
            Ok(out) => out,
            Err(e) => {
                tracing::warn!(error = %e, "a document could not be rewritten; sent as it was");
                xml
            }
        }
    }

    fn rewrite(&self, xml: &str) -> Result<String, quick_xml::Error> {
        let mut reader = NsReader::from_str(xml);
        let mut out = Emitter {
            rw: *self,
            writer: Writer::new(Vec::with_capacity(xml.len() + 256)),
            scopes: Vec::new(),
            names: Vec::new(),
            parents: Vec::new(),
            root_done: false,
        };
        loop {
            let (resolved, event) = reader.read_resolved_event()?;
            let ns_uri = match &resolved {
                ResolveResult::Bound(n) => Some(String::from_utf8_lossy(n.as_ref()).into_owned()),
                _ => None,
            };
            match event {
                Event::Eof => break,
                Event::Decl(_) if self.no_declaration => {}
                Event::Start(e) => out.open(ns_uri, &e, false)?,
                Event::Empty(e) => out.open(ns_uri, &e, true)?,
                Event::End(_) => out.close()?,
                other => out.writer.write_event(other)?,
            }
        }
        Ok(String::from_utf8_lossy(&out.writer.into_inner()).into_owned())
    }
}

struct Emitter {
    rw: Rewriter,
    writer: Writer<Vec<u8>>,
    /// Per open element: the declarations written on it, `(prefix, uri)`
    /// with `""` for the default namespace.
    scopes: Vec<Vec<(String, String)>>,
    /// Per open element: the name written.
    names: Vec<String>,
    /// Per open element: `(namespace, local name)` as read.
    parents: Vec<(Option<String>, String)>,
    root_done: bool,
}

impl Emitter {
    fn bound(&self, prefix: &str) -> Option<&str> {
        self.scopes
            .iter()
            .rev()
            .flat_map(|s| s.iter().rev())
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_str())
    }

    /// The prefix an element in `uri` gets (`""`: unprefixed).
    fn prefix_for(&self, uri: Option<&str>, original: &str, local: &str) -> String {
        let Some(uri) = uri else {
            return String::new();
        };
        if self.rw.default_namespace {
            return String::new();
        }
        if uri == ns::TYPES && local == "ServerVersionInfo" && self.rw.h_prefix {
            return "h".into();
        }
        if uri == ns::SOAP && self.rw.soap_prefix {
            return SOAP_PREFIX.into();
        }
        if self.rw.other_prefixes {
            if uri == ns::MESSAGES {
                return OTHER_MESSAGES.into();
            }
            if uri == ns::TYPES {
                return OTHER_TYPES.into();
            }
        }
        original.to_string()
    }

    fn open(
        &mut self,
        uri: Option<String>,
        e: &BytesStart<'_>,
        empty: bool,
    ) -> Result<(), quick_xml::Error> {
        let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        let original_prefix = e
            .name()
            .prefix()
            .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
            .unwrap_or_default();
        let mut uri = uri;
        // ErrorSubscriptionIds/SubscriptionId in the messages namespace.
        if self.rw.error_ids_m
            && uri.as_deref() == Some(ns::TYPES)
            && local == "SubscriptionId"
            && self.parents.last().is_some_and(|(n, l)| {
                n.as_deref() == Some(ns::MESSAGES) && l == "ErrorSubscriptionIds"
            })
        {
            uri = Some(ns::MESSAGES.to_string());
        }
        let mut attrs: Vec<(String, Vec<u8>)> = Vec::new();
        let mut kept_decls: Vec<(String, String)> = Vec::new();
        for a in e.attributes().with_checks(false) {
            let a = a.map_err(quick_xml::Error::InvalidAttr)?;
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            if key == "xmlns" {
                // Default namespaces are decided below.
                continue;
            }
            if let Some(p) = key.strip_prefix("xmlns:") {
                kept_decls.push((
                    p.to_string(),
                    String::from_utf8_lossy(&a.value).into_owned(),
                ));
            }
            attrs.push((key, a.value.into_owned()));
        }
        let prefix = self.prefix_for(uri.as_deref(), &original_prefix, &local);
        let mut decls: Vec<(String, String)> = kept_decls;
        let mut new_attrs: Vec<(String, String)> = Vec::new();
        let mut declare = |decls: &mut Vec<(String, String)>, p: &str, u: &str| {
            if !decls.iter().any(|(q, _)| q == p) {
                decls.push((p.to_string(), u.to_string()));
                let key = if p.is_empty() {
                    "xmlns".to_string()
                } else {
                    format!("xmlns:{p}")
                };
                new_attrs.push((key, u.to_string()));
            }
        };
        if !self.root_done {
            // Declared once on the root, so children need none.
            if self.rw.other_prefixes {
                declare(&mut decls, OTHER_MESSAGES, ns::MESSAGES);
                declare(&mut decls, OTHER_TYPES, ns::TYPES);
            }
            if self.rw.extra_namespaces {
                for (p, u) in [
                    ("m", ns::MESSAGES),
                    ("t", ns::TYPES),
                    ("xsi", ns::XSI),
                    ("xsd", ns::XSD),
                ] {
                    if self.bound(p).is_none() {
                        declare(&mut decls, p, u);
                    }
                }
            }
        }
        if prefix == "h" {
            declare(&mut decls, "h", ns::TYPES);
            declare(&mut decls, "", ns::TYPES);
            declare(&mut decls, "xsd", ns::XSD);
            declare(&mut decls, "xsi", ns::XSI);
        }
        // The element's own binding, declared here when not in scope.
        let want = uri.clone().unwrap_or_default();
        let in_scope = decls
            .iter()
            .rev()
            .find(|(p, _)| *p == prefix)
            .map(|(_, u)| u.clone())
            .or_else(|| self.bound(&prefix).map(str::to_string))
            .unwrap_or_default();
        if in_scope != want {
            declare(&mut decls, &prefix, &want);
        }
        let name = if prefix.is_empty() {
            local.clone()
        } else {
            format!("{prefix}:{local}")
        };
        let mut start = BytesStart::new(name.clone());
        for (k, v) in &attrs {
            start.push_attribute(Attribute {
                key: QName(k.as_bytes()),
                value: Cow::Borrowed(v),
            });
        }
        for (k, v) in &new_attrs {
            start.push_attribute((k.as_str(), v.as_str()));
        }
        self.root_done = true;
        let success_message = self.rw.success_text
            && uri.as_deref() == Some(ns::MESSAGES)
            && local.ends_with("ResponseMessage")
            && attrs
                .iter()
                .any(|(k, v)| k == "ResponseClass" && v.as_slice() == b"Success");
        if empty && !success_message {
            self.writer.write_event(Event::Empty(start))?;
            return Ok(());
        }
        self.writer.write_event(Event::Start(start))?;
        self.scopes.push(decls);
        self.names.push(name);
        self.parents.push((uri, local));
        if success_message {
            let text = BytesStart::new("MessageText");
            self.open(Some(ns::MESSAGES.to_string()), &text, false)?;
            self.writer
                .write_event(Event::Text(BytesText::new(SUCCESS_TEXT)))?;
            self.close()?;
        }
        if empty {
            self.close()?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), quick_xml::Error> {
        self.scopes.pop();
        self.parents.pop();
        if let Some(name) = self.names.pop() {
            self.writer.write_event(Event::End(BytesEnd::new(name)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::exchange_fault;
    use ews_proto::ews::envelope::{EnvelopeStyle, response};
    use ews_proto::ews::{
        ConnectionStatus, GetStreamingEventsResponse, ResponseCode, ResponseMessage,
        UnsubscribeResponse,
    };
    use roxmltree::Document;

    fn ok_doc() -> String {
        response(EnvelopeStyle::Prefixed, &Default::default(), |w| {
            UnsubscribeResponse {
                message: ResponseMessage::success(),
            }
            .render(w)
        })
    }

    fn stream_doc() -> String {
        response(EnvelopeStyle::Unprefixed, &Default::default(), |w| {
            GetStreamingEventsResponse {
                message: ResponseMessage::error(ResponseCode::ErrorInvalidSubscription, "bad"),
                notifications: Vec::new(),
                error_subscription_ids: vec!["AAA+/=".into()],
                connection_status: Some(ConnectionStatus::Closed),
            }
            .render(w, "t:Notification")
        })
    }

    fn fault_doc() -> String {
        exchange_fault(ResponseCode::ErrorSchemaValidation, "bad & worse").render()
    }

    /// (namespace, local name) of every element, and every text node, in order.
    fn shape(xml: &str) -> Vec<(String, String)> {
        let doc = Document::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
        doc.descendants()
            .filter_map(|n| {
                if n.is_element() {
                    Some((
                        n.tag_name().namespace().unwrap_or_default().to_string(),
                        n.tag_name().name().to_string(),
                    ))
                } else if n.is_text() {
                    Some(("#text".into(), n.text().unwrap_or_default().to_string()))
                } else {
                    None
                }
            })
            .collect()
    }

    fn rw(d: &[Dialect]) -> Rewriter {
        Rewriter::new(&DialectSet::of(d.iter().copied()))
    }

    #[test]
    fn the_faithful_server_is_not_rewritten() {
        let r = Rewriter::new(&DialectSet::none());
        assert!(!r.is_active());
        let doc = ok_doc();
        assert_eq!(r.apply(doc.clone()), doc);
        // Dialects outside the wire form leave documents alone too.
        assert!(!rw(&[Dialect::Gzip, Dialect::LateDelivery]).is_active());
    }

    #[test]
    fn prefix_dialects_keep_every_element_and_text() {
        for d in [
            Dialect::SoapPrefix,
            Dialect::OtherPrefixes,
            Dialect::DefaultNamespace,
            Dialect::ExtraNamespaces,
            Dialect::ServerVersionHPrefix,
            Dialect::NoXmlDeclaration,
        ] {
            for doc in [ok_doc(), stream_doc(), fault_doc()] {
                let out = rw(&[d]).apply(doc.clone());
                assert_eq!(shape(&out), shape(&doc), "{d}: {out}");
                let fault = Document::parse(&out).ok().and_then(|x| {
                    x.descendants()
                        .find(|n| n.tag_name().name() == "faultcode")
                        .and_then(|n| {
                            let t = n.text().unwrap_or_default().to_string();
                            let (p, _) = t.split_once(':')?;
                            n.lookup_namespace_uri(Some(p)).map(str::to_string)
                        })
                });
                if doc.contains("faultcode") {
                    assert_eq!(fault.as_deref(), Some(ns::TYPES), "{d}: QName lost: {out}");
                }
            }
        }
    }

    #[test]
    fn each_form_is_what_it_says() {
        let doc = ok_doc();
        let soap = rw(&[Dialect::SoapPrefix]).apply(doc.clone());
        assert!(
            soap.contains("<soap:Envelope") && soap.contains("</soap:Body>"),
            "{soap}"
        );
        let other = rw(&[Dialect::OtherPrefixes]).apply(doc.clone());
        assert!(
            other.contains("<msg:UnsubscribeResponse") && !other.contains("<m:"),
            "{other}"
        );
        let default = rw(&[Dialect::DefaultNamespace]).apply(fault_doc());
        assert!(
            !default.contains("<s:") && !default.contains("<e:"),
            "{default}"
        );
        let faultcode = default
            .split("<faultcode")
            .nth(1)
            .and_then(|t| t.split('>').next())
            .unwrap_or_default();
        assert!(faultcode.contains(r#"xmlns="""#), "{default}");
        let h = rw(&[Dialect::ServerVersionHPrefix]).apply(doc.clone());
        assert!(
            h.contains("<h:ServerVersionInfo") && h.contains(r#"xmlns:h=""#),
            "{h}"
        );
        let bare = rw(&[Dialect::NoXmlDeclaration]).apply(doc.clone());
        assert!(bare.starts_with("<s:Envelope"), "{bare}");
        let extra = rw(&[Dialect::ExtraNamespaces]).apply(doc.clone());
        let root = extra.split('>').nth(1).unwrap_or_default();
        assert!(
            root.contains("xmlns:m=") && root.contains("xmlns:xsi="),
            "{extra}"
        );
    }

    #[test]
    fn success_messages_get_a_message_text_first() {
        let out = rw(&[Dialect::SuccessMessageText]).apply(ok_doc());
        let doc = Document::parse(&out).expect("well-formed");
        let msg = doc
            .descendants()
            .find(|n| n.tag_name().name() == "UnsubscribeResponseMessage")
            .expect("message");
        let first = msg.children().find(|n| n.is_element()).expect("a child");
        assert_eq!(first.tag_name().name(), "MessageText");
        assert_eq!(first.tag_name().namespace(), Some(ns::MESSAGES));
        // Error messages are left alone.
        let err = rw(&[Dialect::SuccessMessageText]).apply(stream_doc());
        assert!(!err.contains(SUCCESS_TEXT), "{err}");
    }

    #[test]
    fn error_subscription_ids_move_to_the_messages_namespace() {
        let out = rw(&[Dialect::ErrorSubscriptionIdM]).apply(stream_doc());
        let doc = Document::parse(&out).expect("well-formed");
        let id = doc
            .descendants()
            .find(|n| n.tag_name().name() == "SubscriptionId")
            .expect("id");
        assert_eq!(id.tag_name().namespace(), Some(ns::MESSAGES), "{out}");
        assert_eq!(id.text(), Some("AAA+/="));
    }

    #[test]
    fn every_wire_dialect_at_once_stays_well_formed() {
        let all = DialectSet::all_compatible();
        let r = Rewriter::new(&all);
        for doc in [ok_doc(), stream_doc(), fault_doc()] {
            let out = r.apply(doc.clone());
            assert!(Document::parse(&out).is_ok(), "{out}");
            assert_ne!(out, doc);
        }
    }
}
