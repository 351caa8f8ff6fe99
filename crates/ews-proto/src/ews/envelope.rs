//! SOAP 1.1 envelopes: request and response rendering, faults, and opening a
//! received envelope down to its operation element.

use roxmltree::{Document, Node};

use super::codes::ResponseCode;
use super::error::ParseError;
use crate::xml::{ElementExt, XmlWriter, child, display_name, element_children, ns};

/// The request SOAP header blocks this project sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHeader {
    /// `t:RequestServerVersion/@Version`; `None` sends no header block.
    pub version: Option<String>,
    /// `t:ExchangeImpersonation` by primary SMTP address.
    pub impersonate: Option<String>,
}

/// Builds a request envelope (`soap:` / `m:` / `t:` prefixes declared on the root).
pub fn request(header: &RequestHeader, body: impl FnOnce(&mut XmlWriter)) -> String {
    let mut w = XmlWriter::new();
    w.declaration();
    w.start(
        "soap:Envelope",
        &[
            ("xmlns:soap", ns::SOAP),
            ("xmlns:m", ns::MESSAGES),
            ("xmlns:t", ns::TYPES),
        ],
    );
    if header.version.is_some() || header.impersonate.is_some() {
        w.start("soap:Header", &[]);
        if let Some(v) = &header.version {
            w.empty("t:RequestServerVersion", &[("Version", v)]);
        }
        if let Some(who) = &header.impersonate {
            w.start("t:ExchangeImpersonation", &[])
                .start("t:ConnectingSID", &[]);
            w.leaf("t:PrimarySmtpAddress", who);
            w.end("t:ConnectingSID").end("t:ExchangeImpersonation");
        }
        w.end("soap:Header");
    }
    w.start("soap:Body", &[]);
    body(&mut w);
    w.end("soap:Body").end("soap:Envelope");
    w.into_string()
}

/// `t:ServerVersionInfo` attributes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerVersionInfo {
    pub major: u32,
    pub minor: u32,
    pub major_build: u32,
    pub minor_build: u32,
    pub version: String,
}

impl Default for ServerVersionInfo {
    /// An Exchange 2013 build, matching the default requested version.
    fn default() -> Self {
        ServerVersionInfo {
            major: 15,
            minor: 0,
            major_build: 1497,
            minor_build: 2,
            version: "V2_23".into(),
        }
    }
}

impl ServerVersionInfo {
    /// The `ServerVersionInfo` of a response envelope's header, when it has
    /// one with numeric version attributes (`Version` may be absent).
    pub fn read(response: &str) -> Option<Self> {
        let doc = roxmltree::Document::parse(response).ok()?;
        let info = doc
            .root_element()
            .children()
            .filter(|n| n.tag_name().name() == "Header")
            .flat_map(|h| h.children())
            .find(|n| n.tag_name().name() == "ServerVersionInfo")?;
        let number = |name: &str| info.attribute(name)?.trim().parse::<u32>().ok();
        Some(ServerVersionInfo {
            major: number("MajorVersion")?,
            minor: number("MinorVersion")?,
            major_build: number("MajorBuildNumber")?,
            minor_build: number("MinorBuildNumber")?,
            version: info.attribute("Version").unwrap_or_default().to_string(),
        })
    }

    /// `15.0.1497.2 (V2_23)`.
    pub fn display(&self) -> String {
        let mut s = format!(
            "{}.{}.{}.{}",
            self.major, self.minor, self.major_build, self.minor_build
        );
        if !self.version.is_empty() {
            s.push_str(&format!(" ({})", self.version));
        }
        s
    }

    fn render(&self, w: &mut XmlWriter, element: &str) {
        w.empty(
            element,
            &[
                ("MajorVersion", &self.major.to_string()),
                ("MinorVersion", &self.minor.to_string()),
                ("MajorBuildNumber", &self.major_build.to_string()),
                ("MinorBuildNumber", &self.minor_build.to_string()),
                ("Version", &self.version),
                ("xmlns", ns::TYPES),
            ],
        );
    }
}

/// The style of a response envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeStyle {
    /// `<?xml …?><s:Envelope xmlns:s=…>`: what exchangelib requires on HTTP 500 bodies.
    Prefixed,
    /// `<Envelope xmlns="…soap/envelope/">` with no declaration: the streaming
    /// form real clients scan for (ews-javascript-api looks for `<Envelope`).
    Unprefixed,
}

/// Builds a response envelope with a ServerVersionInfo header. The body
/// closure writes the operation element, which must declare `m:` and `t:`
/// itself (see [`open_operation`]).
pub fn response(
    style: EnvelopeStyle,
    version: &ServerVersionInfo,
    body: impl FnOnce(&mut XmlWriter),
) -> String {
    let mut w = XmlWriter::new();
    let (env, hdr, bdy) = match style {
        EnvelopeStyle::Prefixed => {
            w.declaration();
            w.start("s:Envelope", &[("xmlns:s", ns::SOAP)]);
            ("s:Envelope", "s:Header", "s:Body")
        }
        EnvelopeStyle::Unprefixed => {
            w.start("Envelope", &[("xmlns", ns::SOAP)]);
            ("Envelope", "Header", "Body")
        }
    };
    w.start(hdr, &[]);
    version.render(&mut w, "ServerVersionInfo");
    w.end(hdr);
    w.start(bdy, &[("xmlns:xsi", ns::XSI), ("xmlns:xsd", ns::XSD)]);
    body(&mut w);
    w.end(bdy).end(env);
    w.into_string()
}

/// Starts an operation element in the messages namespace with `m:`/`t:` declared.
pub fn open_operation(w: &mut XmlWriter, name: &str) {
    w.start(name, &[("xmlns:m", ns::MESSAGES), ("xmlns:t", ns::TYPES)]);
}

/// Optional parts of a rendered fault: `faultstring/@xml:lang`, a
/// `faultactor`, and the `t:MessageXml` position detail Exchange gives
/// schema-validation faults. The default adds none of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultForm {
    pub lang: Option<String>,
    pub actor: Option<String>,
    pub position: Option<FaultPosition>,
}

/// Where in the request a schema violation was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultPosition {
    pub line: u32,
    pub column: u32,
    pub violation: String,
}

/// A SOAP 1.1 fault as Exchange writes it: `faultcode`, `faultstring`, and
/// a `detail` carrying the EWS `e:ResponseCode` and `e:Message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapFault {
    /// e.g. `a:ErrorSchemaValidation` or `s:Client`.
    pub fault_code: String,
    pub fault_string: String,
    pub response_code: Option<ResponseCode>,
    pub message: Option<String>,
}

impl SoapFault {
    pub fn client(code: ResponseCode, text: impl Into<String>) -> Self {
        let text = text.into();
        SoapFault {
            fault_code: "s:Client".into(),
            fault_string: text.clone(),
            response_code: Some(code),
            message: Some(text),
        }
    }

    pub fn render(&self) -> String {
        self.render_with(&FaultForm::default())
    }

    /// [`SoapFault::render`] with the optional parts some Exchange versions
    /// add (the reference server's dialects).
    pub fn render_with(&self, form: &FaultForm) -> String {
        let mut w = XmlWriter::new();
        w.declaration();
        w.start("s:Envelope", &[("xmlns:s", ns::SOAP)]);
        w.start("s:Body", &[]).start("s:Fault", &[]);
        // faultcode/faultstring/detail are unqualified by SOAP 1.1.
        if self.fault_code.starts_with("a:") {
            // Exchange's own fault codes are QNames in the types namespace.
            w.start("faultcode", &[("xmlns:a", ns::TYPES)])
                .text(&self.fault_code)
                .end("faultcode");
        } else {
            w.leaf("faultcode", &self.fault_code);
        }
        match &form.lang {
            Some(lang) => {
                w.start("faultstring", &[("xml:lang", lang)])
                    .text(&self.fault_string)
                    .end("faultstring");
            }
            None => {
                w.leaf("faultstring", &self.fault_string);
            }
        }
        if let Some(actor) = &form.actor {
            w.leaf("faultactor", actor);
        }
        if self.response_code.is_some() || self.message.is_some() || form.position.is_some() {
            w.start("detail", &[]);
            if let Some(code) = &self.response_code {
                w.start("e:ResponseCode", &[("xmlns:e", ns::ERRORS)])
                    .text(code.as_str())
                    .end("e:ResponseCode");
            }
            if let Some(m) = &self.message {
                w.start("e:Message", &[("xmlns:e", ns::ERRORS)])
                    .text(m)
                    .end("e:Message");
            }
            if let Some(p) = &form.position {
                w.start("t:MessageXml", &[("xmlns:t", ns::TYPES)]);
                w.leaf("t:LineNumber", &p.line.to_string());
                w.leaf("t:LinePosition", &p.column.to_string());
                w.leaf("t:Violation", &p.violation);
                w.end("t:MessageXml");
            }
            w.end("detail");
        }
        w.end("s:Fault").end("s:Body").end("s:Envelope");
        w.into_string()
    }

    /// Reads a fault element (`soap:Fault`).
    pub fn parse(fault: Node<'_, '_>) -> Self {
        let plain = |name: &str| {
            element_children(fault)
                .find(|c| {
                    c.tag_name().name() == name
                        && c.tag_name().namespace().is_none_or(str::is_empty)
                })
                .map(|c| c.text_trimmed())
        };
        let detail = element_children(fault).find(|c| c.tag_name().name() == "detail");
        let from_detail = |local: &str| {
            detail
                .and_then(|d| {
                    d.descendants()
                        .find(|n| n.is_element() && n.tag_name().name() == local)
                })
                .map(|n| n.text_trimmed())
        };
        SoapFault {
            fault_code: plain("faultcode").unwrap_or_default(),
            fault_string: plain("faultstring").unwrap_or_default(),
            response_code: from_detail("ResponseCode").map(|c| ResponseCode::parse(&c)),
            message: from_detail("Message"),
        }
    }
}

/// A received envelope opened down to the body's single child.
#[derive(Debug, Clone, Copy)]
pub struct Opened<'a, 'i> {
    pub envelope: Node<'a, 'i>,
    pub header: Option<Node<'a, 'i>>,
    pub body: Node<'a, 'i>,
    /// The one element inside the Body (an operation, a response, or a Fault).
    pub payload: Node<'a, 'i>,
}

impl<'a, 'i> Opened<'a, 'i> {
    pub fn fault(&self) -> Option<SoapFault> {
        self.payload
            .is(ns::SOAP, "Fault")
            .then(|| SoapFault::parse(self.payload))
    }

    /// The RequestServerVersion/@Version header value, when present.
    pub fn requested_version(&self) -> Option<&'a str> {
        self.header
            .and_then(|h| child(h, ns::TYPES, "RequestServerVersion"))
            .and_then(|n| n.attribute("Version"))
    }

    pub fn server_version(&self) -> Option<Node<'a, 'i>> {
        self.header
            .and_then(|h| child(h, ns::TYPES, "ServerVersionInfo"))
    }
}

/// Checks the SOAP frame: an `Envelope` in the SOAP 1.1 namespace, an optional
/// Header, then a Body with exactly one element child.
pub fn open<'a, 'i>(doc: &'a Document<'i>) -> Result<Opened<'a, 'i>, ParseError> {
    let env = doc.root_element();
    if !env.is(ns::SOAP, "Envelope") {
        return Err(ParseError::new(
            "/",
            format!(
                "the root element is {}, not soap:Envelope ({})",
                display_name(env),
                ns::SOAP
            ),
        ));
    }
    let mut header = None;
    let mut body = None;
    for c in element_children(env) {
        if c.is(ns::SOAP, "Header") && header.is_none() && body.is_none() {
            header = Some(c);
        } else if c.is(ns::SOAP, "Body") && body.is_none() {
            body = Some(c);
        } else {
            return Err(ParseError::new(
                "/soap:Envelope",
                format!(
                    "unexpected element {} (expected soap:Header then soap:Body)",
                    display_name(c)
                ),
            ));
        }
    }
    let Some(body) = body else {
        return Err(ParseError::new("/soap:Envelope", "soap:Body is missing"));
    };
    let mut kids = element_children(body);
    let Some(payload) = kids.next() else {
        return Err(ParseError::new(
            "/soap:Envelope/soap:Body",
            "the Body is empty",
        ));
    };
    if let Some(extra) = kids.next() {
        return Err(ParseError::new(
            "/soap:Envelope/soap:Body",
            format!(
                "more than one element in the Body ({} after {})",
                display_name(extra),
                display_name(payload)
            ),
        ));
    }
    Ok(Opened {
        envelope: env,
        header,
        body,
        payload,
    })
}
