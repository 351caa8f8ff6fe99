//! Full validation of documents against the EWS schema files with libxml2
//! (cargo feature `xsd`).
//!
//! The schema files are the target's own (`messages.xsd`, `types.xsd`, from
//! a folder or fetched from `<scheme>://<host>/EWS/`); the harness never
//! ships them. libxml2 refuses the published files as they are, so two
//! repairs are made to a copy before compiling (see [`Repair`]); the copy
//! lives in a temporary folder that is removed once the schema is compiled.
//!
//! libxml2's schema contexts must stay on one thread, so a validator owns a
//! dedicated worker thread and talks to it over a channel: the handle is
//! `Send + Sync + Clone` and usable from blocking and async code alike.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use libxml::error::{StructuredError, XmlErrorLevel};
use libxml::parser::{Parser, ParserOptions, XmlParseFailure};
use libxml::schemas::{SchemaParserContext, SchemaValidationContext};
use regex::Regex;

use ews_proto::xml::ns;

/// Larger documents are not handed to libxml2 at all (a finding says so).
pub const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;
/// The published `types.xsd` is about 0.5 MB; anything far larger is not a schema we expect.
pub const MAX_SCHEMA_BYTES: usize = 8 * 1024 * 1024;
/// At most this many findings are reported for one document; a last one counts the rest.
pub const MAX_FINDINGS: usize = 100;

/// The deadline [`XsdValidator::fetch`] callers usually want.
pub const DEFAULT_FETCH_DEADLINE: Duration = Duration::from_secs(30);

/// One complaint of libxml2 about a document: where, and its own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XsdFinding {
    /// 1-based line in the validated text, when libxml2 knows it.
    pub line: Option<u32>,
    /// 1-based column, when libxml2 knows it (parse errors only, in practice).
    pub column: Option<u32>,
    pub message: String,
}

impl XsdFinding {
    fn general(message: impl Into<String>) -> Self {
        XsdFinding {
            line: None,
            column: None,
            message: message.into(),
        }
    }

    fn from_libxml(e: &StructuredError) -> Self {
        let text = e
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .unwrap_or("libxml2 reported an error without a message");
        let message = match e.level {
            XmlErrorLevel::Warning => format!("warning: {text}"),
            _ => text.to_string(),
        };
        XsdFinding {
            line: e
                .line
                .and_then(|l| u32::try_from(l).ok())
                .filter(|l| *l > 0),
            column: e.col.and_then(|c| u32::try_from(c).ok()).filter(|c| *c > 0),
            message,
        }
    }
}

impl fmt::Display for XsdFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.message),
            (Some(l), None) => write!(f, "line {l}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Why a validator could not be built.
#[derive(Debug, thiserror::Error)]
pub enum XsdError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} is larger than {limit} bytes")]
    TooLarge { what: String, limit: usize },
    #[error("{what} is not UTF-8 text")]
    NotUtf8 { what: String },
    #[error("{what} is refused: {reason}")]
    Refused { what: String, reason: String },
    #[error("`{url}` is not a usable endpoint URL: {reason}")]
    Endpoint { url: String, reason: String },
    #[error("GET {url} failed: {reason}")]
    Fetch { url: String, reason: String },
    #[error("cannot prepare a working folder for the schema: {0}")]
    WorkFolder(std::io::Error),
    #[error("libxml2 cannot compile the schema: {}", messages.join("; "))]
    Compile { messages: Vec<String> },
    #[error("the validator thread failed: {0}")]
    Worker(String),
}

/// A change made to the target's schema text so that libxml2 compiles it.
/// Neither changes anything the notification operations use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// `types.xsd` imports the `xml` namespace without a location; the import
    /// now points at a small local schema declaring `xml:lang`.
    XmlNamespaceLocated,
    /// `ArrayOfTransitionsType` lists `t:Transition` beside three members of
    /// its own substitution group, which breaks the unique-particle rule; the
    /// sequence becomes one repeatable `t:Transition`, which admits the same
    /// elements (in any order).
    TransitionsMadeDeterministic,
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Repair::XmlNamespaceLocated => "xml namespace import given a local location",
            Repair::TransitionsMadeDeterministic => {
                "ArrayOfTransitionsType reduced to one t:Transition particle"
            }
        })
    }
}

/// Credentials for fetching the schema files. `Debug` never shows secrets.
#[derive(Clone, Default)]
pub enum FetchAuth {
    #[default]
    Anonymous,
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
}

impl fmt::Debug for FetchAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchAuth::Anonymous => f.write_str("Anonymous"),
            FetchAuth::Basic { user, .. } => write!(f, "Basic({user}, <hidden>)"),
            FetchAuth::Bearer(_) => f.write_str("Bearer(<hidden>)"),
        }
    }
}

// ------------------------------------------------------------ stub schemas

const XML_LANG_FILE: &str = "xml-lang.xsd";
const SOAP_FILE: &str = "soap11-frame.xsd";
const DRIVER_FILE: &str = "driver.xsd";
const MESSAGES_FILE: &str = "messages.xsd";
const TYPES_FILE: &str = "types.xsd";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Just the `xml:` attributes the EWS types can refer to; the W3C schema
/// for that namespace cannot be fetched offline.
const XML_LANG_SCHEMA: &str = r#"<?xml version="1.0" encoding="utf-8"?>
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
const SOAP_SCHEMA: &str = r###"<?xml version="1.0" encoding="utf-8"?>
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
fn driver_schema() -> String {
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
fn check_schema_text(what: &str, text: &str) -> Result<(), XsdError> {
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

// ----------------------------------------------------------- working folder

/// A fresh folder under the system temporary directory, removed on drop.
struct WorkFolder(PathBuf);

impl WorkFolder {
    fn create() -> Result<Self, XsdError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        let mut last = None;
        for _ in 0..8 {
            let name = format!(
                "ews-conformance-xsd-{}-{}-{:08x}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed),
                rand::random::<u32>()
            );
            let dir = base.join(name);
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(WorkFolder(dir)),
                Err(e) => last = Some(e),
            }
        }
        Err(XsdError::WorkFolder(last.unwrap_or_else(|| {
            std::io::Error::other("no folder name was free")
        })))
    }

    fn write(&self, name: &str, text: &str) -> Result<(), XsdError> {
        std::fs::write(self.0.join(name), text).map_err(XsdError::WorkFolder)
    }
}

impl Drop for WorkFolder {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(folder = %self.0.display(), error = %e, "could not remove the schema working folder");
        }
    }
}

// ---------------------------------------------------------------- validator

enum Reply {
    Blocking(mpsc::SyncSender<Vec<XsdFinding>>),
    Async(tokio::sync::oneshot::Sender<Vec<XsdFinding>>),
}

impl Reply {
    fn send(self, findings: Vec<XsdFinding>) {
        // A caller that stopped waiting is no error of ours.
        match self {
            Reply::Blocking(tx) => {
                let _ = tx.send(findings);
            }
            Reply::Async(tx) => {
                let _ = tx.send(findings);
            }
        }
    }
}

struct Job {
    xml: String,
    reply: Reply,
}

/// A compiled EWS schema set, validating whole SOAP envelopes: the Body's
/// element strictly, header blocks laxly. Cheap to clone; all clones share
/// one worker thread, which ends when the last clone is dropped.
#[derive(Clone)]
pub struct XsdValidator {
    jobs: mpsc::Sender<Job>,
    repairs: Arc<[Repair]>,
}

impl fmt::Debug for XsdValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XsdValidator")
            .field("repairs", &self.repairs)
            .finish_non_exhaustive()
    }
}

impl XsdValidator {
    /// Compiles `messages.xsd` and `types.xsd` from a folder (the files are
    /// only read; repairs go to a temporary copy). Blocks while libxml2
    /// compiles (well under a second for the published files); from async
    /// code call it in `spawn_blocking`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, XsdError> {
        let dir = dir.as_ref();
        let messages = read_schema_file(&dir.join(MESSAGES_FILE))?;
        let types = read_schema_file(&dir.join(TYPES_FILE))?;
        Self::from_texts(&messages, &types)
    }

    /// Compiles the two schema texts (as served or read). Blocks like [`Self::from_dir`].
    pub fn from_texts(messages: &str, types: &str) -> Result<Self, XsdError> {
        for (what, text) in [(MESSAGES_FILE, messages), (TYPES_FILE, types)] {
            if text.len() > MAX_SCHEMA_BYTES {
                return Err(XsdError::TooLarge {
                    what: what.to_string(),
                    limit: MAX_SCHEMA_BYTES,
                });
            }
        }
        let repaired = repair_types(types);
        check_schema_text(MESSAGES_FILE, messages)?;
        check_schema_text(TYPES_FILE, &repaired.text)?;
        for r in &repaired.repairs {
            tracing::debug!(repair = %r, "repaired the types schema for libxml2");
        }

        let folder = WorkFolder::create()?;
        folder.write(XML_LANG_FILE, XML_LANG_SCHEMA)?;
        folder.write(SOAP_FILE, SOAP_SCHEMA)?;
        folder.write(DRIVER_FILE, &driver_schema())?;
        folder.write(MESSAGES_FILE, messages)?;
        folder.write(TYPES_FILE, &repaired.text)?;
        let driver = folder
            .0
            .join(DRIVER_FILE)
            .to_str()
            .filter(|p| !p.contains('\0'))
            .map(str::to_string)
            .ok_or_else(|| {
                XsdError::WorkFolder(std::io::Error::other(
                    "the temporary folder's path is not plain UTF-8",
                ))
            })?;

        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), XsdError>>(1);
        std::thread::Builder::new()
            .name("xsd-validator".into())
            .spawn(move || worker(folder, driver, ready_tx, inbox))
            .map_err(|e| XsdError::Worker(format!("cannot start: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(XsdValidator {
                jobs,
                repairs: repaired.repairs.into(),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(XsdError::Worker(
                "it stopped while compiling the schema".into(),
            )),
        }
    }

    /// Fetches `messages.xsd` and `types.xsd` from the target's `/EWS/` path
    /// (same scheme, host and port as `endpoint`) and compiles them. The
    /// whole fetch is bounded by `deadline`.
    pub async fn fetch(
        endpoint: &str,
        auth: &FetchAuth,
        deadline: Duration,
    ) -> Result<Self, XsdError> {
        let client = reqwest::Client::builder()
            .timeout(deadline)
            .build()
            .map_err(|e| XsdError::Fetch {
                url: endpoint.to_string(),
                reason: format!("cannot build an HTTP client: {e}"),
            })?;
        Self::fetch_with(&client, endpoint, auth, deadline).await
    }

    /// [`Self::fetch`] with the caller's HTTP client (TLS roots, proxies).
    pub async fn fetch_with(
        client: &reqwest::Client,
        endpoint: &str,
        auth: &FetchAuth,
        deadline: Duration,
    ) -> Result<Self, XsdError> {
        let [messages_url, types_url] = schema_urls(endpoint)?;
        let until = tokio::time::Instant::now() + deadline;
        let messages = get_text_by(client, &messages_url, auth, until, deadline).await?;
        let types = get_text_by(client, &types_url, auth, until, deadline).await?;
        tokio::task::spawn_blocking(move || Self::from_texts(&messages, &types))
            .await
            .map_err(|e| XsdError::Worker(e.to_string()))?
    }

    /// The repairs that were needed to compile the target's schema.
    pub fn repairs(&self) -> &[Repair] {
        &self.repairs
    }

    /// Validates one whole document (normally a SOAP envelope). An empty
    /// result means valid. The text is read as the UTF-8 it is; an encoding
    /// declaration in it is not consulted (decoding is the transport's job).
    /// Blocks until the worker answers; from async code use
    /// [`Self::validate_async`].
    pub fn validate(&self, xml_text: &str) -> Vec<XsdFinding> {
        if let Some(f) = too_large(xml_text) {
            return vec![f];
        }
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(xml_text, Reply::Blocking(tx));
        rx.recv().unwrap_or_else(|_| vec![worker_gone()])
    }

    /// [`Self::validate`] without blocking the async runtime.
    pub async fn validate_async(&self, xml_text: &str) -> Vec<XsdFinding> {
        if let Some(f) = too_large(xml_text) {
            return vec![f];
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(xml_text, Reply::Async(tx));
        rx.await.unwrap_or_else(|_| vec![worker_gone()])
    }

    fn submit(&self, xml: &str, reply: Reply) {
        let job = Job {
            xml: xml.to_string(),
            reply,
        };
        if let Err(mpsc::SendError(job)) = self.jobs.send(job) {
            job.reply.send(vec![worker_gone()]);
        }
    }
}

fn too_large(xml: &str) -> Option<XsdFinding> {
    (xml.len() > MAX_DOCUMENT_BYTES).then(|| {
        XsdFinding::general(format!(
            "the document ({} bytes) is larger than the {MAX_DOCUMENT_BYTES} bytes the validator accepts",
            xml.len()
        ))
    })
}

fn worker_gone() -> XsdFinding {
    XsdFinding::general("the schema validator stopped; the document was not validated")
}

fn read_schema_file(path: &Path) -> Result<String, XsdError> {
    let read = |source| XsdError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > MAX_SCHEMA_BYTES as u64 {
        return Err(XsdError::TooLarge {
            what: path.display().to_string(),
            limit: MAX_SCHEMA_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(read)?;
    String::from_utf8(bytes).map_err(|_| XsdError::NotUtf8 {
        what: path.display().to_string(),
    })
}

/// `<scheme>://<host>[:port]/EWS/messages.xsd` and `…/types.xsd`, without
/// any user info, query or fragment of the endpoint.
fn schema_urls(endpoint: &str) -> Result<[String; 2], XsdError> {
    let bad = |reason: &str| XsdError::Endpoint {
        url: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let mut base = reqwest::Url::parse(endpoint).map_err(|e| bad(&e.to_string()))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(bad("the scheme is neither http nor https"));
    }
    if base.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    base.set_username("")
        .and_then(|()| base.set_password(None))
        .map_err(|()| bad("its user info cannot be removed"))?;
    base.set_query(None);
    base.set_fragment(None);
    let at = |file: &str| {
        base.join(&format!("/EWS/{file}"))
            .map(String::from)
            .map_err(|e| bad(&e.to_string()))
    };
    Ok([at(MESSAGES_FILE)?, at(TYPES_FILE)?])
}

/// [`get_text`] that gives up at `until`, saying so.
async fn get_text_by(
    client: &reqwest::Client,
    url: &str,
    auth: &FetchAuth,
    until: tokio::time::Instant,
    deadline: Duration,
) -> Result<String, XsdError> {
    tokio::time::timeout_at(until, get_text(client, url, auth))
        .await
        .unwrap_or_else(|_| {
            Err(XsdError::Fetch {
                url: url.to_string(),
                reason: format!(
                    "timed out: the schema files did not arrive within {} ms",
                    deadline.as_millis()
                ),
            })
        })
}

async fn get_text(
    client: &reqwest::Client,
    url: &str,
    auth: &FetchAuth,
) -> Result<String, XsdError> {
    let fail = |reason: String| XsdError::Fetch {
        url: url.to_string(),
        reason,
    };
    let request = match auth {
        FetchAuth::Anonymous => client.get(url),
        FetchAuth::Basic { user, password } => client.get(url).basic_auth(user, Some(password)),
        FetchAuth::Bearer(token) => client.get(url).bearer_auth(token),
    };
    let mut response = request
        .send()
        .await
        .map_err(|e| fail(describe_reqwest(e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(fail(format!("HTTP {status}")));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_SCHEMA_BYTES as u64)
    {
        return Err(fail(format!(
            "the body is larger than {MAX_SCHEMA_BYTES} bytes"
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| fail(describe_reqwest(e)))?
    {
        if body.len() + chunk.len() > MAX_SCHEMA_BYTES {
            return Err(fail(format!(
                "the body is larger than {MAX_SCHEMA_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| fail("the body is not UTF-8 text".into()))
}

/// reqwest's own text plus the kind of failure, without the URL (the caller names it).
fn describe_reqwest(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the body could not be read"
    } else {
        "request failed"
    };
    let mut causes = String::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        causes.push_str(&format!(": {s}"));
        source = s.source();
    }
    format!("{kind}: {}{causes}", e.without_url())
}

// ------------------------------------------------------------ worker thread

/// Owns the libxml2 contexts: compiles once, then validates job after job
/// until every handle is gone. A panic inside libxml's wrapper is caught and
/// turned into an error or finding; it never reaches a caller.
fn worker(
    folder: WorkFolder,
    driver: String,
    ready: mpsc::SyncSender<Result<(), XsdError>>,
    inbox: mpsc::Receiver<Job>,
) {
    let compiled = std::panic::catch_unwind(|| compile(&driver))
        .unwrap_or_else(|_| Err(XsdError::Worker("libxml panicked while compiling".into())));
    // The compiled schema no longer needs the files.
    drop(folder);
    let mut context = match compiled {
        Ok(c) => {
            let _ = ready.send(Ok(()));
            c
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    drop(ready);
    while let Ok(job) = inbox.recv() {
        let findings = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            validate_text(&mut context, &job.xml)
        }))
        .unwrap_or_else(|_| {
            vec![XsdFinding::general(
                "libxml panicked while validating this document",
            )]
        });
        job.reply.send(findings);
    }
}

fn compile(driver: &str) -> Result<SchemaValidationContext, XsdError> {
    let mut parser = SchemaParserContext::from_file(driver);
    SchemaValidationContext::from_parser(&mut parser).map_err(|errors| {
        let mut messages: Vec<String> = errors
            .iter()
            .filter(|e| !matches!(e.level, XmlErrorLevel::Warning))
            .map(describe_schema_error)
            .collect();
        if messages.is_empty() {
            messages.push("libxml2 gave no reason".into());
        }
        XsdError::Compile { messages }
    })
}

/// `types.xsd:4722: message`, naming the file by its own name (not the temporary path).
fn describe_schema_error(e: &StructuredError) -> String {
    let file = e
        .filename
        .as_deref()
        .and_then(|f| Path::new(f).file_name())
        .map(|f| f.to_string_lossy().into_owned());
    let message = e.message.as_deref().unwrap_or("").trim();
    match (file, e.line) {
        (Some(f), Some(l)) => format!("{f}:{l}: {message}"),
        (Some(f), None) => format!("{f}: {message}"),
        _ => message.to_string(),
    }
}

fn validate_text(context: &mut SchemaValidationContext, xml: &str) -> Vec<XsdFinding> {
    let options = ParserOptions {
        recover: false,
        no_net: true,
        no_error: true,
        no_warning: true,
        // The text is already decoded; an encoding declaration in it is stale.
        encoding: Some("UTF-8"),
        ignore_enc: true,
        ..ParserOptions::default()
    };
    let mut findings = Vec::new();
    let document = match Parser::default().parse_string_with_diagnostics(xml, options) {
        Ok((document, diagnostics)) => {
            findings.extend(diagnostics.iter().map(XsdFinding::from_libxml));
            document
        }
        Err(XmlParseFailure::ParseFailed(diagnostics)) => {
            findings.extend(diagnostics.iter().map(XsdFinding::from_libxml));
            if findings.is_empty() {
                findings.push(XsdFinding::general("the document is not well-formed XML"));
            }
            return cap(findings);
        }
        Err(other) => return vec![XsdFinding::general(format!("cannot parse: {other}"))],
    };
    // Leftover warnings of an earlier document must not show up here.
    let _ = context.drain_errors();
    if let Err(errors) = context.validate_document(&document) {
        findings.extend(errors.iter().map(XsdFinding::from_libxml));
    }
    cap(findings)
}

fn cap(mut findings: Vec<XsdFinding>) -> Vec<XsdFinding> {
    if findings.len() > MAX_FINDINGS {
        let rest = findings.len() - MAX_FINDINGS;
        findings.truncate(MAX_FINDINGS);
        findings.push(XsdFinding::general(format!("… and {rest} more findings")));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRANSITIONS: &str = r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:t="urn:t">
    <xs:import namespace="http://www.w3.org/XML/1998/namespace"/>
    <xs:complexType name="ArrayOfTransitionsType">
        <xs:sequence>
            <xs:element ref="t:AbsoluteDateTransition" minOccurs="0" maxOccurs="unbounded" />
            <xs:element ref="t:Transition" minOccurs="0" maxOccurs="unbounded" />
        </xs:sequence>
        <xs:attribute name="Id" type="xs:string"/>
    </xs:complexType>
    <xs:complexType name="Other"><xs:sequence><xs:element name="A"/><xs:element name="B"/></xs:sequence></xs:complexType>
</xs:schema>"#;

    #[test]
    fn both_repairs_apply_to_the_published_shapes() {
        let r = repair_types(TRANSITIONS);
        assert_eq!(
            r.repairs,
            vec![
                Repair::XmlNamespaceLocated,
                Repair::TransitionsMadeDeterministic
            ]
        );
        assert!(r.text.contains(&format!(
            r#"<xs:import namespace="{XML_NS}" schemaLocation="{XML_LANG_FILE}"/>"#
        )));
        assert!(!r.text.contains("AbsoluteDateTransition"));
        assert!(r.text.contains(
            r#"<xs:sequence><xs:element ref="t:Transition" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>"#
        ));
        // The type's attribute and the other types are untouched.
        assert!(
            r.text
                .contains(r#"<xs:attribute name="Id" type="xs:string"/>"#)
        );
        assert!(
            r.text
                .contains(r#"<xs:element name="A"/><xs:element name="B"/>"#)
        );
    }

    #[test]
    fn repaired_text_needs_no_second_repair() {
        let once = repair_types(TRANSITIONS);
        let twice = repair_types(&once.text);
        assert!(twice.repairs.is_empty(), "{:?}", twice.repairs);
        assert_eq!(twice.text, once.text);
    }

    #[test]
    fn other_prefixes_are_kept() {
        let text = TRANSITIONS
            .replace("xs:", "xsd:")
            .replace("xmlns:xs=", "xmlns:xsd=")
            .replace("t:", "types:");
        let r = repair_types(&text);
        assert_eq!(r.repairs.len(), 2, "{:?}", r.repairs);
        assert!(r.text.contains(
            r#"<xsd:element ref="types:Transition" minOccurs="0" maxOccurs="unbounded"/>"#
        ));
        assert!(r.text.contains(&format!(
            r#"<xsd:import namespace="{XML_NS}" schemaLocation"#
        )));
    }

    #[test]
    fn schema_text_that_reaches_elsewhere_is_refused() {
        let remote =
            r#"<xs:import namespace="urn:x" schemaLocation="http://example.invalid/x.xsd"/>"#;
        assert!(matches!(
            check_schema_text("messages.xsd", remote),
            Err(XsdError::Refused { .. })
        ));
        assert!(matches!(
            check_schema_text(
                "types.xsd",
                "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///x\">]><x/>"
            ),
            Err(XsdError::Refused { .. })
        ));
        assert!(
            check_schema_text("messages.xsd", r#"<xs:import schemaLocation="types.xsd"/>"#).is_ok()
        );
    }

    #[test]
    fn schema_urls_keep_scheme_host_and_port_only() {
        let [m, t] =
            schema_urls("https://user:secret@mail.example.com:8443/EWS/Exchange.asmx?x=1#f")
                .expect("valid endpoint");
        assert_eq!(m, "https://mail.example.com:8443/EWS/messages.xsd");
        assert_eq!(t, "https://mail.example.com:8443/EWS/types.xsd");
        assert!(matches!(
            schema_urls("ftp://h/EWS/Exchange.asmx"),
            Err(XsdError::Endpoint { .. })
        ));
        assert!(matches!(
            schema_urls("not a url"),
            Err(XsdError::Endpoint { .. })
        ));
    }

    #[test]
    fn auth_debug_hides_secrets() {
        let basic = FetchAuth::Basic {
            user: "alice".into(),
            password: "hunter2".into(),
        };
        let shown = format!("{basic:?} {:?}", FetchAuth::Bearer("tok3n".into()));
        assert!(shown.contains("alice"));
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok3n"),
            "{shown}"
        );
    }

    #[test]
    fn findings_are_capped() {
        let many = (0..MAX_FINDINGS + 7)
            .map(|i| XsdFinding::general(i.to_string()))
            .collect();
        let capped = cap(many);
        assert_eq!(capped.len(), MAX_FINDINGS + 1);
        assert!(capped[MAX_FINDINGS].message.contains("7 more"));
    }

    #[test]
    fn stub_schemas_are_well_formed() {
        for text in [XML_LANG_SCHEMA, SOAP_SCHEMA, &driver_schema()] {
            ews_proto::xml::parse_document(text).expect("stub schema parses");
        }
    }
}
