//! Schema repair: the target's `types.xsd` made compilable by libxml2, and
//! the small local schemas the published files leave out (the `xml`
//! namespace, the SOAP 1.1 frame, the driver that imports them all).

use std::path::Path;

use regex::Regex;

use super::finding::{Repair, XsdError};
use ews_proto::xml::ns;

// ------------------------------------------------------------ stub schemas

pub(super) const XML_LANG_FILE: &str = "xml-lang.xsd";
pub(super) const SOAP_FILE: &str = "soap11-frame.xsd";
pub(super) const DRIVER_FILE: &str = "driver.xsd";
pub(super) const MESSAGES_FILE: &str = "messages.xsd";
pub(super) const TYPES_FILE: &str = "types.xsd";
pub(super) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Just the `xml:` attributes the EWS types can refer to; the W3C schema
/// for that namespace cannot be fetched offline.
pub(super) const XML_LANG_SCHEMA: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema"
            targetNamespace="http://www.w3.org/XML/1998/namespace">
  <!-- a language tag, or the empty string ("no language") -->
  <xsd:attribute name="lang">
    <xsd:simpleType>
      <xsd:union memberTypes="xsd:language">
        <xsd:simpleType>
          <xsd:restriction base="xsd:string">
            <xsd:maxLength value="0"/>
          </xsd:restriction>
        </xsd:simpleType>
      </xsd:union>
    </xsd:simpleType>
  </xsd:attribute>
  <xsd:attribute name="space">
    <xsd:simpleType>
      <xsd:restriction base="xsd:NCName">
        <xsd:enumeration value="default"/>
        <xsd:enumeration value="preserve"/>
      </xsd:restriction>
    </xsd:simpleType>
  </xsd:attribute>
</xsd:schema>
"#;

/// A SOAP 1.1 frame: header blocks are checked only where a declaration is
/// known (lax), the Body's one element must be declared somewhere (strict),
/// unless it is a Fault.
pub(super) const SOAP_SCHEMA: &str = r###"<?xml version="1.0" encoding="utf-8"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema"
            xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"
            targetNamespace="http://schemas.xmlsoap.org/soap/envelope/"
            elementFormDefault="qualified">
  <xsd:element name="Envelope" type="env:EnvelopeType"/>
  <xsd:complexType name="EnvelopeType">
    <xsd:sequence>
      <xsd:element name="Header" type="env:HeaderType" minOccurs="0"/>
      <xsd:element name="Body" type="env:BodyType"/>
    </xsd:sequence>
    <xsd:anyAttribute namespace="##other" processContents="lax"/>
  </xsd:complexType>
  <xsd:complexType name="HeaderType">
    <xsd:sequence>
      <xsd:any namespace="##other" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
    <xsd:anyAttribute namespace="##other" processContents="lax"/>
  </xsd:complexType>
  <xsd:complexType name="BodyType">
    <xsd:choice>
      <xsd:element name="Fault" type="env:FaultType"/>
      <xsd:any namespace="##other" processContents="strict"/>
    </xsd:choice>
    <xsd:anyAttribute namespace="##other" processContents="lax"/>
  </xsd:complexType>
  <xsd:complexType name="FaultType">
    <xsd:sequence>
      <xsd:element name="faultcode" type="xsd:QName" form="unqualified"/>
      <xsd:element name="faultstring" type="xsd:string" form="unqualified"/>
      <xsd:element name="faultactor" type="xsd:anyURI" form="unqualified" minOccurs="0"/>
      <xsd:element name="detail" type="env:DetailType" form="unqualified" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="DetailType">
    <xsd:sequence>
      <xsd:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
    <xsd:anyAttribute namespace="##any" processContents="lax"/>
  </xsd:complexType>
</xsd:schema>
"###;

/// The schema libxml2 compiles: the xml stub first (so the location-less
/// import in types.xsd finds the namespace already known), then the frame,
/// then the target's messages schema (which brings in types.xsd).
pub(super) fn driver_schema() -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema"
            targetNamespace="urn:ews-conformance:xsd-driver">
  <xsd:import namespace="{XML_NS}" schemaLocation="{XML_LANG_FILE}"/>
  <xsd:import namespace="{soap}" schemaLocation="{SOAP_FILE}"/>
  <xsd:import namespace="{messages}" schemaLocation="{MESSAGES_FILE}"/>
</xsd:schema>
"#,
        soap = ns::SOAP,
        messages = ns::MESSAGES,
    )
}

// ------------------------------------------------------------------ repairs

/// The target's types schema after the repairs libxml2 needs, and which of
/// them were needed (a future schema may not need any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairedTypes {
    pub text: String,
    pub repairs: Vec<Repair>,
}

/// Applies the two repairs to the text of `types.xsd`.
pub fn repair_types(types: &str) -> RepairedTypes {
    let mut repairs = Vec::new();
    let mut text = types.to_string();

    // 1. `<xs:import namespace="…/XML/1998/namespace"/>` with no schemaLocation.
    let import = Regex::new(r#"<(?P<p>[A-Za-z_][\w.-]*:)?import(?P<attrs>\s[^>]*?)?\s*/>"#).ok();
    if let Some(import) = import {
        let located = import.replace_all(&text, |c: &regex::Captures<'_>| {
            let whole = c.get(0).map_or("", |m| m.as_str());
            let attrs = c.name("attrs").map_or("", |m| m.as_str());
            let about_xml =
                attrs.contains(&format!("\"{XML_NS}\"")) || attrs.contains(&format!("'{XML_NS}'"));
            if about_xml && !attrs.contains("schemaLocation") {
                let prefix = c.name("p").map_or("", |m| m.as_str());
                format!(
                    r#"<{prefix}import namespace="{XML_NS}" schemaLocation="{XML_LANG_FILE}"/>"#
                )
            } else {
                whole.to_string()
            }
        });
        if located != text {
            text = located.into_owned();
            repairs.push(Repair::XmlNamespaceLocated);
        }
    }

    // 2. ArrayOfTransitionsType: several particles, one of them the head of
    //    the others' substitution group.
    let transitions = Regex::new(
        r#"(?s)(?P<open><(?P<xs>[A-Za-z_][\w.-]*:)?complexType\s+name\s*=\s*["']ArrayOfTransitionsType["']\s*>\s*<(?:[A-Za-z_][\w.-]*:)?sequence\s*>)(?P<body>.*?)(?P<close></(?:[A-Za-z_][\w.-]*:)?sequence\s*>)"#,
    )
    .ok();
    let head_ref = Regex::new(r#"ref\s*=\s*["'](?P<t>[A-Za-z_][\w.-]*:)?Transition["']"#).ok();
    if let (Some(transitions), Some(head_ref)) = (transitions, head_ref) {
        let mut replacement = None;
        if let Some(c) = transitions.captures(&text) {
            let body = c.name("body").map_or("", |m| m.as_str());
            let particles = body.matches("element").count();
            if let Some(head) = head_ref.captures(body).filter(|_| particles > 1) {
                let xs = c.name("xs").map_or("", |m| m.as_str());
                let t = head.name("t").map_or("", |m| m.as_str());
                let open = c.name("open").map_or("", |m| m.as_str());
                let close = c.name("close").map_or("", |m| m.as_str());
                let range = c.get(0).map(|m| m.range());
                replacement = range.map(|r| {
                    (
                        r,
                        format!(
                            r#"{open}<{xs}element ref="{t}Transition" minOccurs="0" maxOccurs="unbounded"/>{close}"#
                        ),
                    )
                });
            }
        }
        if let Some((range, new)) = replacement {
            text.replace_range(range, &new);
            repairs.push(Repair::TransitionsMadeDeterministic);
        }
    }

    RepairedTypes { text, repairs }
}

/// Refuses schema text that could make libxml2 read anything but the files
/// the harness writes itself: a DOCTYPE (entities) or a schema location
/// other than the sibling files.
pub(super) fn check_schema_text(what: &str, text: &str) -> Result<(), XsdError> {
    if text.contains("<!DOCTYPE") {
        return Err(XsdError::Refused {
            what: what.to_string(),
            reason: "it declares a DOCTYPE".into(),
        });
    }
    let location = Regex::new(r#"schemaLocation\s*=\s*["'](?P<loc>[^"']*)["']"#)
        .map_err(|e| XsdError::Worker(e.to_string()))?;
    for c in location.captures_iter(text) {
        let loc = c.name("loc").map_or("", |m| m.as_str());
        if loc != TYPES_FILE && loc != XML_LANG_FILE {
            return Err(XsdError::Refused {
                what: what.to_string(),
                reason: format!(
                    "it refers to schemaLocation `{loc}`; only {TYPES_FILE} beside it is loaded"
                ),
            });
        }
    }
    Ok(())
}

/// A fresh folder under the system temporary directory, removed on drop
/// (a failed removal is tempfile's to ignore: the folder holds only copies
/// of public schema text).
pub(super) struct WorkFolder(tempfile::TempDir);

impl WorkFolder {
    pub(super) fn create() -> Result<Self, XsdError> {
        tempfile::Builder::new()
            .prefix("ews-conformance-xsd-")
            .tempdir()
            .map(WorkFolder)
            .map_err(XsdError::WorkFolder)
    }

    pub(super) fn path(&self) -> &Path {
        self.0.path()
    }

    pub(super) fn write(&self, name: &str, text: &str) -> Result<(), XsdError> {
        std::fs::write(self.0.path().join(name), text).map_err(XsdError::WorkFolder)
    }
}
