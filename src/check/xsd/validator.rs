//! Validation: compiling the repaired schema in a worker thread of its own
//! (libxml2's contexts must stay on one thread), fetching the schema files
//! from a target, and validating documents.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use libxml::error::{StructuredError, XmlErrorLevel};
use libxml::parser::{Parser, ParserOptions, XmlParseFailure};
use libxml::schemas::{SchemaParserContext, SchemaValidationContext};

use super::finding::*;
use super::repair::*;

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
            .path()
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
