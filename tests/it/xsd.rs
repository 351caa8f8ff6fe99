//! Full schema validation (feature `xsd`) against the published EWS schema
//! files. The files are not part of this repository: the folder comes from
//! `EWS_XSD_DIR`, or is the `shared/xsd` folder beside the checkout; without
//! it each test prints why it skipped.
#![cfg(feature = "xsd")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use ews_conformance::check::xsd::{
    FetchAuth, MAX_DOCUMENT_BYTES, Repair, XsdError, XsdFinding, XsdValidator,
};
use ews_proto::ews::envelope::{self, EnvelopeStyle, RequestHeader, ServerVersionInfo};
use ews_proto::ews::{
    ConnectionStatus, Event, EventKind, FolderRef, FolderScope, GetEventsRequest,
    GetEventsResponse, GetStreamingEventsRequest, GetStreamingEventsResponse, Id, Notification,
    ObjectId, ResponseCode, ResponseMessage, SendNotification, SoapFault, SubscribeRequest,
    SubscribeResponse, SubscriptionKind, SubscriptionStatus, UnsubscribeRequest,
    UnsubscribeResponse,
};
use ews_proto::xml::{XmlWriter, ns};

// ------------------------------------------------------------------ set-up

fn schema_dir() -> Result<PathBuf, String> {
    let dir = match std::env::var_os("EWS_XSD_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or("the checkout has no parent folder")?
            .join("shared")
            .join("xsd"),
    };
    for file in ["messages.xsd", "types.xsd"] {
        if !dir.join(file).is_file() {
            return Err(format!("{} has no {file}", dir.display()));
        }
    }
    Ok(dir)
}

/// One compiled validator for the whole test binary (compiling takes a second).
fn validator() -> Option<&'static XsdValidator> {
    static SHARED: OnceLock<Result<XsdValidator, String>> = OnceLock::new();
    let made = SHARED.get_or_init(|| {
        let dir = schema_dir()?;
        Ok(XsdValidator::from_dir(&dir)
            .unwrap_or_else(|e| panic!("the schema in {} compiles: {e}", dir.display())))
    });
    match made {
        Ok(v) => Some(v),
        Err(why) => {
            println!("skipped: no EWS schema files ({why}); set EWS_XSD_DIR");
            None
        }
    }
}

macro_rules! validator_or_skip {
    () => {
        match validator() {
            Some(v) => v,
            None => return,
        }
    };
}

fn shown(findings: &[XsdFinding]) -> String {
    findings
        .iter()
        .map(|f| format!("  {f}\n"))
        .collect::<String>()
}

fn assert_valid(v: &XsdValidator, what: &str, xml: &str) {
    let findings = v.validate(xml);
    assert!(
        findings.is_empty(),
        "{what} should validate, libxml2 says:\n{}{xml}",
        shown(&findings)
    );
}

/// Puts every tag on its own line so findings can be located. Safe for the
/// crate's renderers: they write no mixed content, so `><` only ever sits
/// between two tags.
fn one_tag_per_line(xml: &str) -> String {
    xml.replace("><", ">\n<")
}

/// The 1-based line on which `needle` first appears.
fn line_of(xml: &str, needle: &str) -> u32 {
    let line = xml
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` is in the document"));
    u32::try_from(line + 1).expect("small document")
}

/// The one finding that mentions all of `words`, on `line`.
fn assert_finding(findings: &[XsdFinding], line: u32, words: &[&str]) {
    let hit = findings
        .iter()
        .find(|f| words.iter().all(|w| f.message.contains(w)));
    let Some(hit) = hit else {
        panic!(
            "no finding mentions {words:?}; libxml2 said:\n{}",
            shown(findings)
        );
    };
    assert_eq!(hit.line, Some(line), "wrong line for {hit}");
}

fn respond(style: EnvelopeStyle, body: impl FnOnce(&mut XmlWriter)) -> String {
    envelope::response(style, &ServerVersionInfo::default(), body)
}

fn notification_with_events() -> Notification {
    let item = |id: &str| Some(ObjectId::Item(Id::with_change_key(id, "CQAAAA==")));
    let event = |kind, watermark: &str| Event {
        kind,
        watermark: Some(watermark.into()),
        timestamp: Some("2026-03-01T10:00:00Z".into()),
        object: item("AAMkItem1"),
        parent_folder_id: Some(Id::with_change_key("AAMkInbox", "AQAAAA==")),
        old_object: None,
        old_parent_folder_id: None,
        unread_count: None,
    };
    let mut moved = event(EventKind::Moved, "wm-3");
    moved.old_object = item("AAMkItem0");
    moved.old_parent_folder_id = Some(Id::new("AAMkDrafts"));
    let mut folder_modified = event(EventKind::Modified, "wm-4");
    folder_modified.object = Some(ObjectId::Folder(Id::new("AAMkInbox")));
    folder_modified.parent_folder_id = Some(Id::new("AAMkRoot"));
    folder_modified.unread_count = Some(3);
    Notification {
        subscription_id: "f6bc657d-dde1-4f94-952d-143b95d6483d".into(),
        previous_watermark: Some("wm-1".into()),
        more_events: Some(false),
        events: vec![
            event(EventKind::NewMail, "wm-2"),
            event(EventKind::Created, "wm-2"),
            moved,
            folder_modified,
            Event::status(Some("wm-5".into())),
        ],
    }
}

fn getevents_error() -> String {
    let body = GetEventsResponse {
        message: ResponseMessage::error(
            ResponseCode::ErrorSubscriptionNotFound,
            "The specified subscription was not found.",
        ),
        notification: None,
    };
    one_tag_per_line(&respond(EnvelopeStyle::Prefixed, |w| body.render(w)))
}

// ------------------------------------------------------------------- tests

#[test]
fn the_published_files_compile_after_both_repairs() {
    let v = validator_or_skip!();
    assert_eq!(
        v.repairs(),
        &[
            Repair::XmlNamespaceLocated,
            Repair::TransitionsMadeDeterministic
        ]
    );
}

#[test]
fn the_schema_folder_is_left_untouched() {
    let Ok(dir) = schema_dir() else {
        println!("skipped: no EWS schema files");
        return;
    };
    let types = std::fs::read_to_string(dir.join("types.xsd")).expect("types.xsd is readable");
    let _ = validator_or_skip!();
    let after = std::fs::read_to_string(dir.join("types.xsd")).expect("types.xsd is readable");
    assert_eq!(types, after);
    // The published shape libxml2 refuses is still there; only the copy was changed.
    assert!(after.contains(r#"<xs:element ref="t:AbsoluteDateTransition""#));
}

#[test]
fn responses_rendered_by_the_crate_validate() {
    let v = validator_or_skip!();
    let subscribe = SubscribeResponse {
        message: ResponseMessage::success(),
        subscription_id: Some("f6bc657d-dde1-4f94-952d-143b95d6483d".into()),
        watermark: Some("AAAAAMAGAAAAAAAAAQ==".into()),
    };
    let subscribe_error = SubscribeResponse {
        message: ResponseMessage::error(
            ResponseCode::ErrorInvalidSubscriptionRequest,
            "The subscription request is invalid.",
        ),
        subscription_id: None,
        watermark: None,
    };
    let getevents = GetEventsResponse {
        message: ResponseMessage::success(),
        notification: Some(notification_with_events()),
    };
    let streaming = GetStreamingEventsResponse {
        message: ResponseMessage::success(),
        notifications: vec![notification_with_events()],
        error_subscription_ids: vec![],
        connection_status: Some(ConnectionStatus::Ok),
    };
    let streaming_error = GetStreamingEventsResponse {
        message: ResponseMessage::error(
            ResponseCode::ErrorSubscriptionNotFound,
            "The subscription was not found.",
        ),
        notifications: vec![],
        error_subscription_ids: vec!["f6bc657d-dde1-4f94-952d-143b95d6483d".into()],
        connection_status: Some(ConnectionStatus::Closed),
    };
    let unsubscribe = UnsubscribeResponse {
        message: ResponseMessage::success(),
    };
    let push = SendNotification {
        message: ResponseMessage::success(),
        notification: Some(notification_with_events()),
    };
    for style in [EnvelopeStyle::Prefixed, EnvelopeStyle::Unprefixed] {
        let cases = [
            ("Subscribe", respond(style, |w| subscribe.render(w))),
            (
                "Subscribe error",
                respond(style, |w| subscribe_error.render(w)),
            ),
            ("GetEvents", respond(style, |w| getevents.render(w))),
            (
                "GetStreamingEvents",
                respond(style, |w| streaming.render(w, "t:Notification")),
            ),
            (
                "GetStreamingEvents error",
                respond(style, |w| streaming_error.render(w, "t:Notification")),
            ),
            ("Unsubscribe", respond(style, |w| unsubscribe.render(w))),
            ("SendNotification", respond(style, |w| push.render(w))),
            (
                "SendNotificationResult",
                respond(style, |w| SubscriptionStatus::Unsubscribe.render_result(w)),
            ),
        ];
        for (what, xml) in &cases {
            assert_valid(v, &format!("{what} ({style:?})"), xml);
        }
    }
    assert_valid(v, "GetEvents error", &getevents_error());
    let fault = SoapFault::client(
        ResponseCode::ErrorSchemaValidation,
        "The request is invalid.",
    );
    assert_valid(v, "SOAP fault", &fault.render());
}

#[test]
fn requests_rendered_by_the_crate_validate() {
    let v = validator_or_skip!();
    let header = RequestHeader {
        version: Some("Exchange2013".into()),
        impersonate: Some("alice@example.com".into()),
    };
    let subscribe = SubscribeRequest {
        kind: SubscriptionKind::Push {
            status_frequency: Some(1),
            url: "http://127.0.0.1:9/push".into(),
            caller_data: Some("case-1".into()),
        },
        scope: FolderScope::Listed(vec![
            FolderRef::distinguished("inbox"),
            FolderRef::Id(Id::with_change_key("AAMkF", "AQAAAA==")),
        ]),
        event_types: vec![EventKind::NewMail, EventKind::Created, EventKind::Moved],
        watermark: None,
    };
    let getevents = GetEventsRequest {
        subscription_id: "sub-1".into(),
        watermark: "wm-1".into(),
    };
    let streaming = GetStreamingEventsRequest {
        subscription_ids: vec!["sub-1".into(), "sub-2".into()],
        connection_timeout: 30,
    };
    let unsubscribe = UnsubscribeRequest {
        subscription_id: "sub-1".into(),
    };
    assert_valid(
        v,
        "Subscribe",
        &envelope::request(&header, |w| subscribe.render(w)),
    );
    assert_valid(
        v,
        "GetEvents",
        &envelope::request(&header, |w| getevents.render(w)),
    );
    assert_valid(
        v,
        "GetStreamingEvents",
        &envelope::request(&header, |w| streaming.render(w)),
    );
    assert_valid(
        v,
        "Unsubscribe",
        &envelope::request(&RequestHeader::default(), |w| unsubscribe.render(w)),
    );
}

#[test]
fn response_code_after_descriptive_link_key_is_out_of_order() {
    let v = validator_or_skip!();
    let good = getevents_error();
    let code = "<m:ResponseCode>ErrorSubscriptionNotFound</m:ResponseCode>\n";
    let key = "<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>\n";
    assert!(good.contains(&format!("{code}{key}")), "{good}");
    let bad = good.replace(&format!("{code}{key}"), &format!("{key}{code}"));
    let findings = v.validate(&bad);
    assert_finding(
        &findings,
        line_of(&bad, "<m:ResponseCode>"),
        &["ResponseCode", "not expected"],
    );
}

#[test]
fn an_unknown_response_code_breaks_the_enumeration() {
    let v = validator_or_skip!();
    let body = UnsubscribeResponse {
        message: ResponseMessage::error(ResponseCode::Other("ErrorNoSuchThing".into()), "Made up."),
    };
    let xml = one_tag_per_line(&respond(EnvelopeStyle::Prefixed, |w| body.render(w)));
    let findings = v.validate(&xml);
    assert_finding(
        &findings,
        line_of(&xml, "<m:ResponseCode>"),
        &["enumeration", "ErrorNoSuchThing"],
    );
}

#[test]
fn a_bad_attribute_enumeration_is_found_too() {
    let v = validator_or_skip!();
    let xml = getevents_error().replace(r#"ResponseClass="Error""#, r#"ResponseClass="Failure""#);
    let findings = v.validate(&xml);
    assert_finding(
        &findings,
        line_of(&xml, "<m:GetEventsResponseMessage"),
        &["ResponseClass", "Failure"],
    );
}

#[test]
fn an_https_messages_namespace_is_not_the_ews_namespace() {
    let v = validator_or_skip!();
    let good = getevents_error();
    let bad = good.replace(
        "http://schemas.microsoft.com/exchange/services/2006/messages",
        "https://schemas.microsoft.com/exchange/services/2006/messages",
    );
    assert_ne!(good, bad);
    let findings = v.validate(&bad);
    assert_finding(
        &findings,
        line_of(&bad, "<m:GetEventsResponse "),
        &["https://schemas.microsoft.com", "No matching global"],
    );
}

#[test]
fn an_https_soap_namespace_has_no_envelope_declaration() {
    let v = validator_or_skip!();
    let bad = getevents_error().replace(ns::SOAP, "https://schemas.xmlsoap.org/soap/envelope/");
    let findings = v.validate(&bad);
    assert_finding(&findings, line_of(&bad, "<s:Envelope"), &["Envelope"]);
}

#[test]
fn header_blocks_are_checked_laxly() {
    let v = validator_or_skip!();
    let unsubscribe = UnsubscribeRequest {
        subscription_id: "sub-1".into(),
    };
    let with_version = |version: &str| {
        one_tag_per_line(&envelope::request(
            &RequestHeader {
                version: Some(version.into()),
                impersonate: None,
            },
            |w| unsubscribe.render(w),
        ))
    };
    // An unknown header block passes: nothing declares it.
    let foreign = with_version("Exchange2010_SP1").replace(
        "<soap:Header>",
        r#"<soap:Header><x:Trace xmlns:x="urn:x-test">1</x:Trace>"#,
    );
    assert_valid(v, "foreign header block", &foreign);
    // A declared one is checked.
    let bad = with_version("Exchange2099");
    let findings = v.validate(&bad);
    assert_finding(
        &findings,
        line_of(&bad, "<t:RequestServerVersion"),
        &["Version", "Exchange2099"],
    );
}

#[test]
fn text_is_validated_as_decoded_whatever_its_declaration_says() {
    let v = validator_or_skip!();
    let body = GetEventsResponse {
        message: ResponseMessage::error(
            ResponseCode::ErrorSubscriptionNotFound,
            "Überprüfung fehlgeschlagen – 購読が見つかりません",
        ),
        notification: None,
    };
    let xml = respond(EnvelopeStyle::Prefixed, |w| body.render(w));
    let relabelled = xml.replace(r#"encoding="utf-8""#, r#"encoding="utf-16""#);
    assert_ne!(xml, relabelled);
    assert_valid(v, "UTF-8 text", &xml);
    assert_valid(v, "UTF-8 text labelled UTF-16", &relabelled);
    assert_valid(v, "text with a byte order mark", &format!("\u{feff}{xml}"));
}

#[test]
fn malformed_and_oversized_documents_are_findings_not_crashes() {
    let v = validator_or_skip!();
    let broken = getevents_error().replace("</m:ResponseMessages>", "");
    let findings = v.validate(&broken);
    let first = findings.first().expect("a malformed document has findings");
    assert!(first.line.is_some() && first.column.is_some(), "{first}");

    let huge = format!("<a>{}</a>", " ".repeat(MAX_DOCUMENT_BYTES));
    let findings = v.validate(&huge);
    assert_eq!(findings.len(), 1, "{}", shown(&findings));
    assert!(
        findings[0].message.contains("larger than"),
        "{}",
        findings[0]
    );

    let bare = "<m:GetEventsResponse xmlns:m=\"urn:nowhere\"/>";
    assert!(
        !v.validate(bare).is_empty(),
        "a bare foreign element is not an envelope"
    );
    // The validator still answers after all that.
    assert_valid(v, "GetEvents error after failures", &getevents_error());
}

/// The documents of the structural-grammar corpus: schema validation agrees
/// with the grammar about every defective one, and about every valid one but
/// the streaming notification in Exchange's wire form (`m:Notification`),
/// which the schema does not allow (it declares `t:Notification`).
#[test]
fn the_grammar_corpus_gets_the_same_verdicts() {
    let v = validator_or_skip!();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/grammar");
    let read = |sub: &str| {
        let mut files: Vec<_> = std::fs::read_dir(root.join(sub))
            .expect("corpus folder")
            .map(|e| e.expect("corpus entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{sub} has documents");
        files
            .into_iter()
            .map(|p| (p.clone(), std::fs::read_to_string(&p).expect("corpus file")))
            .collect::<Vec<_>>()
    };
    for (path, xml) in read("valid") {
        let findings = v.validate(&xml);
        if path.ends_with("gse-response.xml") {
            assert_finding(
                &findings,
                line_of(&xml, "<m:Notification>"),
                &["Notification", "not expected"],
            );
        } else {
            assert!(
                findings.is_empty(),
                "{}:\n{}",
                path.display(),
                shown(&findings)
            );
        }
    }
    for (path, xml) in read("defective") {
        assert!(
            !v.validate(&xml).is_empty(),
            "{} should not validate",
            path.display()
        );
    }
}

#[test]
fn usable_from_async_tasks_and_threads_at_once() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<XsdValidator>();

    let v = validator_or_skip!().clone();
    let good = getevents_error();
    let bad = good.replace("ErrorSubscriptionNotFound", "ErrorNoSuchThing");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..16 {
            let v = v.clone();
            let xml = if i % 2 == 0 {
                good.clone()
            } else {
                bad.clone()
            };
            tasks.push(tokio::spawn(
                async move { (i, v.validate_async(&xml).await) },
            ));
        }
        let thread_v = v.clone();
        let thread_bad = bad.clone();
        let thread = std::thread::spawn(move || thread_v.validate(&thread_bad));
        for t in tasks {
            let (i, findings) = t.await.expect("task ran");
            assert_eq!(
                findings.is_empty(),
                i % 2 == 0,
                "task {i}: {}",
                shown(&findings)
            );
        }
        assert!(!thread.join().expect("thread ran").is_empty());
    });
}

#[test]
fn a_folder_without_the_files_names_the_missing_file() {
    let empty = std::env::temp_dir().join(format!("ews-xsd-none-{}", std::process::id()));
    let err = XsdValidator::from_dir(&empty).expect_err("no files, no validator");
    assert!(matches!(err, XsdError::Read { .. }), "{err}");
    assert!(err.to_string().contains("messages.xsd"), "{err}");
}

#[test]
fn a_schema_libxml2_cannot_compile_is_an_error_with_its_reason() {
    let messages = r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="http://schemas.microsoft.com/exchange/services/2006/messages">
  <xs:element name="Broken" type="xs:NoSuchType"/>
</xs:schema>"#;
    let types = r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="http://schemas.microsoft.com/exchange/services/2006/types"/>"#;
    let err = XsdValidator::from_texts(messages, types).expect_err("does not compile");
    let XsdError::Compile { messages } = &err else {
        panic!("expected a compile error, got {err}");
    };
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("messages.xsd:2:") && m.contains("NoSuchType")),
        "{messages:?}"
    );
}

// ------------------------------------------------------------------- fetch

struct SchemaServer {
    addr: SocketAddr,
}

/// Serves the schema files at `/EWS/`, behind Basic auth, from memory.
/// `types` is `None` to answer 404 for `types.xsd`; `hang` never answers.
async fn serve(messages: String, types: Option<String>, hang: bool) -> SchemaServer {
    let expected = format!("Basic {}", base64_of("alice:s3cret"));
    let gate = move |headers: HeaderMap, body: Option<String>| {
        let expected = expected.clone();
        async move {
            if hang {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            let authorised = headers
                .get(header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|h| h == expected);
            match (authorised, body) {
                (false, _) => StatusCode::UNAUTHORIZED.into_response(),
                (true, None) => StatusCode::NOT_FOUND.into_response(),
                (true, Some(b)) => ([(header::CONTENT_TYPE, "text/xml")], b).into_response(),
            }
        }
    };
    let g1 = gate.clone();
    let app = Router::new()
        .route(
            "/EWS/messages.xsd",
            get(move |h: HeaderMap| g1(h, Some(messages.clone()))),
        )
        .route(
            "/EWS/types.xsd",
            get(move |h: HeaderMap| gate(h, types.clone())),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    SchemaServer { addr }
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn alice() -> FetchAuth {
    FetchAuth::Basic {
        user: "alice".into(),
        password: "s3cret".into(),
    }
}

fn schema_texts() -> Option<(String, String)> {
    let dir = schema_dir().ok()?;
    Some((
        std::fs::read_to_string(dir.join("messages.xsd")).ok()?,
        std::fs::read_to_string(dir.join("types.xsd")).ok()?,
    ))
}

#[tokio::test]
async fn fetches_the_schema_from_the_targets_ews_path() {
    let Some((messages, types)) = schema_texts() else {
        println!("skipped: no EWS schema files");
        return;
    };
    let server = serve(messages, Some(types), false).await;
    let endpoint = format!("http://{}/EWS/Exchange.asmx", server.addr);
    let v = XsdValidator::fetch(&endpoint, &alice(), Duration::from_secs(60))
        .await
        .expect("fetched and compiled");
    assert_eq!(v.repairs().len(), 2);
    assert!(v.validate_async(&getevents_error()).await.is_empty());
    let bad = getevents_error().replace("ErrorSubscriptionNotFound", "ErrorNoSuchThing");
    assert!(!v.validate_async(&bad).await.is_empty());
}

#[tokio::test]
async fn fetch_errors_name_the_url_and_the_reason() {
    let server = serve("<x/>".into(), None, false).await;
    let endpoint = format!("http://{}/EWS/Exchange.asmx", server.addr);
    let deadline = Duration::from_secs(30);

    let err = XsdValidator::fetch(&endpoint, &FetchAuth::Anonymous, deadline)
        .await
        .expect_err("no credentials");
    let text = err.to_string();
    assert!(
        text.contains(&format!("http://{}/EWS/messages.xsd", server.addr)) && text.contains("401"),
        "{text}"
    );

    let err = XsdValidator::fetch(&endpoint, &alice(), deadline)
        .await
        .expect_err("types.xsd is missing");
    let text = err.to_string();
    assert!(
        text.contains(&format!("http://{}/EWS/types.xsd", server.addr)) && text.contains("404"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");

    let err = XsdValidator::fetch("mailto:alice@example.com", &alice(), deadline)
        .await
        .expect_err("not an http endpoint");
    assert!(matches!(err, XsdError::Endpoint { .. }), "{err}");
}

#[tokio::test]
async fn a_silent_target_is_bounded_by_the_deadline() {
    let server = serve("<x/>".into(), Some("<x/>".into()), true).await;
    let endpoint = format!("http://{}/EWS/Exchange.asmx", server.addr);
    let started = Instant::now();
    let err = XsdValidator::fetch(&endpoint, &alice(), Duration::from_millis(300))
        .await
        .expect_err("the target never answers");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(
        text.contains("/EWS/messages.xsd") && text.contains("timed out"),
        "{text}"
    );
}
