//! Entry points for fuzzers and property tests: each takes arbitrary bytes,
//! runs one input-facing part of the crate on them, and panics only when
//! that part is wrong (a panic inside it, or a broken invariant). The
//! cargo-fuzz targets in `fuzz/` call these, and the tests below push a few
//! thousand generated inputs through them on every `cargo test`.
//!
//! - [`server_request`]: the reference server's request handling (parse,
//!   validate, dispatch) on an in-memory server, as two users.
//! - [`grammar`]: the structural grammar on arbitrary XML, both directions.
//! - [`response`]: what the harness does with an answer: envelope opening,
//!   the typed parsers, the checks' readers, normalisation, pretty printing.
//! - [`stream_splitter`]: the streaming envelope splitter, which must give
//!   the same result however the bytes are chunked.
//! - [`case_file`]: the case loader (and the template engine behind it).

use std::path::Path;
use std::sync::OnceLock;

use crate::check::{Answer, notifications};
use crate::client::stream::{EnvelopeSplitter, parse_envelope, split_all};
use crate::suite::operation::OpRegistry;
use ews_proto::ews::envelope::open;
use ews_proto::ews::grammar::{Direction, validate_envelope};
use ews_proto::ews::{
    GetEventsResponse, GetStreamingEventsResponse, SendNotification, SubscribeResponse,
    UnsubscribeResponse,
};
use ews_proto::xml::parse_document;
use ews_server::{OfflineServer, ServerConfig};

/// One runtime for the whole process: server answers may start tasks.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime for the fuzzing entry points")
    })
}

/// Feeds a request body to an in-memory reference server: first as a fresh
/// request, then again after a valid pull subscription exists, so ids in
/// the input can meet real state. The server must answer HTTP 200 or 500
/// with a SOAP envelope, never panic.
pub fn server_request(data: &[u8]) {
    let _guard = runtime().enter();
    let server = OfflineServer::new(ServerConfig::default());
    for user in [0, 1] {
        judge_answer(server.handle(user, data), data);
    }
    let subscribe = ews_proto::ews::envelope::request(
        &ews_proto::ews::RequestHeader {
            version: Some("Exchange2013".into()),
            impersonate: None,
        },
        |w| {
            w.raw(
                "<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id=\"inbox\"/></t:FolderIds>\
                 <t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes><t:Timeout>10</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>",
            );
        },
    );
    judge_answer(server.handle(0, subscribe.as_bytes()), subscribe.as_bytes());
    judge_answer(server.handle(0, data), data);
    server.sweep();
}

fn judge_answer((status, body): (u16, Option<String>), input: &[u8]) {
    assert!(
        status == 200 || status == 500,
        "HTTP {status} for {:?}",
        String::from_utf8_lossy(input)
    );
    if let Some(body) = body {
        let doc = parse_document(&body).unwrap_or_else(|e| {
            panic!("the server answered something that is not XML ({e}): {body}")
        });
        if let Err(e) = open(&doc) {
            panic!("the server answered something that is not SOAP ({e}): {body}");
        }
        if status == 500 {
            assert!(
                open(&doc).is_ok_and(|o| o.fault().is_some()),
                "HTTP 500 without a fault: {body}"
            );
        }
    }
}

/// The structural grammar on arbitrary XML, as a request and as a response,
/// for two versions.
pub fn grammar(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = parse_document(text) else {
        return;
    };
    for direction in [Direction::Request, Direction::Response] {
        for version in ["Exchange2007_SP1", "Exchange2013"] {
            for v in validate_envelope(&doc, direction, version) {
                // Every violation is presentable.
                let _ = v.to_string();
            }
        }
    }
}

/// Everything the harness does with a response body.
pub fn response(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::client::body::encoding_problem(data);
    let answer = Answer::read(&text);
    let _ = (answer.describe(), answer.code(), answer.server_text());
    let _ = notifications(&text);
    let _ = parse_envelope(&text);
    let _ = crate::check::normalize::Normalizer::new().normalize(&text);
    let pretty = crate::report::pretty_xml(&text);
    assert!(
        pretty.len() <= text.len() * 64 + crate::report::PRETTY_MAX_BYTES + 1024,
        "pretty printing grew without bound"
    );
    let _ = crate::client::excerpt::excerpt(&text, 300);
    let Ok(doc) = parse_document(&text) else {
        return;
    };
    let _ = crate::check::shape::shape_of(doc.root_element());
    for path in PATHS.get_or_init(paths) {
        let _ = path.select(&doc).strings();
    }
    let Ok(opened) = open(&doc) else {
        return;
    };
    let _ = opened.fault();
    let _ = (opened.requested_version(), opened.server_version());
    let op = opened.payload;
    match op.tag_name().name() {
        "SubscribeResponse" => drop(SubscribeResponse::parse(op)),
        "GetEventsResponse" => drop(GetEventsResponse::parse(op)),
        "GetStreamingEventsResponse" => drop(GetStreamingEventsResponse::parse(op)),
        "UnsubscribeResponse" => drop(UnsubscribeResponse::parse(op)),
        "SendNotification" => drop(SendNotification::parse(op)),
        _ => {
            // Any parser on any element: none may panic.
            drop(SubscribeResponse::parse(op));
            drop(GetEventsResponse::parse(op));
            drop(GetStreamingEventsResponse::parse(op));
            drop(UnsubscribeResponse::parse(op));
            drop(SendNotification::parse(op));
        }
    }
}

static PATHS: OnceLock<Vec<ews_proto::xml::path::XPath>> = OnceLock::new();

fn paths() -> Vec<ews_proto::xml::path::XPath> {
    [
        "//m:SubscriptionId",
        "//m:ResponseCode",
        "//t:CreatedEvent/*[1]",
        "/soap:Envelope/*",
        "//m:Notification/*[last()]",
        "//t:ItemId/@Id",
        "//*:Watermark",
    ]
    .iter()
    .filter_map(|p| ews_proto::xml::path::XPath::parse(p).ok())
    .collect()
}

/// The splitter must cut the same envelopes however the stream is chunked.
/// The first byte chooses the chunk size (1..=64); the rest is the stream.
pub fn stream_splitter(data: &[u8]) {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 64) + 1;
    let (whole, whole_tail) = split_all(bytes);
    let mut s = EnvelopeSplitter::new();
    let mut pieces = Vec::new();
    for part in bytes.chunks(chunk) {
        s.push(part);
        pieces.extend(s.by_ref());
    }
    let tail = s.finish();
    pieces.extend(s.by_ref());
    assert_eq!(
        whole, pieces,
        "chunks of {chunk} bytes changed the envelopes"
    );
    assert_eq!(whole_tail, tail, "chunks of {chunk} bytes changed the tail");
    for env in whole.iter().flatten() {
        assert!(
            bytes
                .get(env.offset as usize..)
                .is_some_and(|rest| rest.starts_with(env.text.as_bytes())),
            "an envelope's text is not the stream's bytes at its offset"
        );
        let _ = parse_envelope(&env.text);
    }
}

/// The case loader on arbitrary text: a load error names a position inside the text.
pub fn case_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    static REGISTRIES: OnceLock<(OpRegistry, crate::check::CheckRegistry)> = OnceLock::new();
    let (ops, checks) = REGISTRIES.get_or_init(|| {
        (
            OpRegistry::builtin(),
            crate::check::CheckRegistry::builtin(),
        )
    });
    let loader = crate::suite::Loader::new(ops, checks);
    match loader.parse(text, Path::new("cases/fuzz/case.toml"), "fuzz/case") {
        Ok(case) => {
            for step in &case.steps {
                let _ = format!("{:?}", step.action);
            }
        }
        Err(e) => {
            let lines = text.lines().count().max(1);
            assert!(
                e.line <= lines + 1,
                "error line {} past the end ({lines} lines): {e}",
                e.line
            );
            let _ = e.to_string();
        }
    }
}

/// Seeds: realistic inputs the generated ones start from.
pub mod seeds {
    /// Requests the server must handle.
    pub const REQUESTS: &[&str] = &[
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body><m:Subscribe><m:PullSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="inbox"/></t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType><t:EventType>NewMailEvent</t:EventType></t:EventTypes><t:Timeout>10</t:Timeout></m:PullSubscriptionRequest></m:Subscribe></soap:Body></soap:Envelope>"#,
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2010_SP1"/></soap:Header><soap:Body><m:GetEvents><m:SubscriptionId>AQAAAA==</m:SubscriptionId><m:Watermark>AQAAAA==</m:Watermark></m:GetEvents></soap:Body></soap:Envelope>"#,
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body><m:Subscribe><m:StreamingSubscriptionRequest SubscribeToAllFolders="true"><t:EventTypes><t:EventType>ModifiedEvent</t:EventType></t:EventTypes></m:StreamingSubscriptionRequest></m:Subscribe></soap:Body></soap:Envelope>"#,
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body><m:Subscribe><m:PushSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="inbox"/></t:FolderIds><t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes><t:StatusFrequency>1</t:StatusFrequency><t:URL>http://127.0.0.1:9/push</t:URL></m:PushSubscriptionRequest></m:Subscribe></soap:Body></soap:Envelope>"#,
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body><m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>x</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents></soap:Body></soap:Envelope>"#,
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body><m:Unsubscribe><m:SubscriptionId>x</m:SubscriptionId></m:Unsubscribe></soap:Body></soap:Envelope>"#,
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body><m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId><t:DistinguishedFolderId Id="inbox"/></m:SavedItemFolderId><m:Items><t:Message><t:Subject>s</t:Subject></t:Message></m:Items></m:CreateItem></soap:Body></soap:Envelope>"#,
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body><m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="msgfolderroot"/></m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>f</t:DisplayName></t:Folder></m:Folders></m:CreateFolder></soap:Body></soap:Envelope>"#,
    ];

    /// Responses the harness must read.
    pub const RESPONSES: &[&str] = &[
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h:ServerVersionInfo MajorVersion="15" MinorVersion="0" MajorBuildNumber="1497" MinorBuildNumber="2" Version="V2_23" xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types"/></s:Header><s:Body><m:GetEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notification><t:SubscriptionId>S1</t:SubscriptionId><t:PreviousWatermark>W0</t:PreviousWatermark><t:MoreEvents>false</t:MoreEvents><t:CreatedEvent><t:Watermark>W1</t:Watermark><t:TimeStamp>2026-01-01T00:00:00Z</t:TimeStamp><t:ItemId Id="I1" ChangeKey="c"/><t:ParentFolderId Id="F1"/></t:CreatedEvent><t:MovedEvent><t:Watermark>W2</t:Watermark><t:TimeStamp>2026-01-01T00:00:00Z</t:TimeStamp><t:ItemId Id="I2"/><t:ParentFolderId Id="F2"/><t:OldItemId Id="I1"/><t:OldParentFolderId Id="F1"/></t:MovedEvent></m:Notification></m:GetEventsResponseMessage></m:ResponseMessages></m:GetEventsResponse></s:Body></s:Envelope>"#,
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:SubscribeResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:ResponseMessages><m:SubscribeResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:SubscriptionId>S1</m:SubscriptionId><m:Watermark>W0</m:Watermark></m:SubscribeResponseMessage></m:ResponseMessages></m:SubscribeResponse></s:Body></s:Envelope>"#,
        r#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><m:GetStreamingEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notifications><m:Notification><t:SubscriptionId>S1</t:SubscriptionId><t:NewMailEvent><t:Watermark>W3</t:Watermark><t:TimeStamp>2026-01-01T00:00:00Z</t:TimeStamp><t:ItemId Id="I3"/><t:ParentFolderId Id="F1"/></t:NewMailEvent></m:Notification></m:Notifications><m:ConnectionStatus>OK</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></Body></Envelope>"#,
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorSchemaValidation</faultcode><faultstring>bad</faultstring><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorSchemaValidation</e:ResponseCode><e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">bad</e:Message></detail></s:Fault></s:Body></s:Envelope>"#,
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><m:SendNotification xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:SendNotificationResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notification><t:SubscriptionId>P1</t:SubscriptionId><t:PreviousWatermark>W0</t:PreviousWatermark><t:MoreEvents>false</t:MoreEvents><t:StatusEvent><t:Watermark>W0</t:Watermark></t:StatusEvent></m:Notification></m:SendNotificationResponseMessage></m:ResponseMessages></m:SendNotification></soap:Body></soap:Envelope>"#,
    ];

    /// Case files the loader must read or refuse with a position.
    pub const CASES: &[&str] = &[
        "title = \"t\"\nrequirements = [\"R29\"]\n\n[[step]]\nname = \"subscribe\"\nop = \"Subscribe\"\nwith = { mode = \"pull\", folders = [\"${folder}\"], event_types = [\"CreatedEvent\"], timeout = 10 }\nexpect = { code = \"NoError\" }\ncapture = { sub = \"//m:SubscriptionId\", wm = \"//m:Watermark\" }\n\n[[step]]\nname = \"poll\"\nop = \"GetEvents\"\nwith = { subscription = \"${sub}\", watermark = \"${wm}\" }\nexpect = { class = \"Success\", more_events = false, events = \"exact\", event = [{ kind = \"StatusEvent\" }] }\nassert = [ { path = \"//t:StatusEvent/t:TimeStamp\", exists = false } ]\n",
        "title = \"raw\"\nrequirements = [\"R1\"]\ngrade = \"record\"\n[vars]\nx = \"${unique}\"\n[[step]]\nsend = '''<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>${x}</soap:Body></soap:Envelope>'''\nheaders = { X-A = \"b\" }\nexpect = { rejected = true }\n[[step]]\nsleep_minutes = 0.5\n",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A seed with a few byte-level edits: cut a range, repeat a range,
    /// insert bytes, flip a byte. Most results are near-valid, which is
    /// where parsers and validators have their corners.
    fn mutated(seeds: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
        let edit = (
            0u8..4,
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 0..8),
        );
        (
            prop::sample::select(seeds),
            prop::collection::vec(edit, 0..6),
        )
            .prop_map(|(seed, edits)| {
                let mut b = seed.as_bytes().to_vec();
                for (kind, i, j, bytes) in edits {
                    if b.is_empty() {
                        b.extend(&bytes);
                        continue;
                    }
                    let (x, y) = (i.index(b.len()), j.index(b.len()));
                    let (lo, hi) = (x.min(y), x.max(y));
                    match kind {
                        0 => {
                            b.drain(lo..hi.min(lo + 64));
                        }
                        1 => {
                            let part = b[lo..hi.min(lo + 64)].to_vec();
                            b.splice(lo..lo, part);
                        }
                        2 => {
                            b.splice(lo..lo, bytes);
                        }
                        _ => b[lo] ^= bytes.first().copied().unwrap_or(0x20),
                    }
                }
                b
            })
    }

    fn cases(n: u32) -> ProptestConfig {
        ProptestConfig {
            cases: n,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(cases(1500))]

        #[test]
        fn server_requests_never_break_the_server(data in mutated(seeds::REQUESTS)) {
            server_request(&data);
        }

        #[test]
        fn grammar_takes_any_xml(data in mutated(seeds::REQUESTS)) {
            grammar(&data);
        }

        #[test]
        fn responses_never_break_the_harness(data in mutated(seeds::RESPONSES)) {
            response(&data);
        }

        #[test]
        fn the_splitter_ignores_chunking(
            first in any::<u8>(),
            data in prop::collection::vec(mutated(seeds::RESPONSES), 1..4),
        ) {
            let mut stream = vec![first];
            for d in data {
                stream.extend(d);
                stream.extend(b"\r\n");
            }
            stream_splitter(&stream);
        }

        #[test]
        fn case_files_load_or_point_at_the_problem(data in mutated(seeds::CASES)) {
            case_file(&data);
        }
    }

    proptest! {
        #![proptest_config(cases(500))]

        #[test]
        fn arbitrary_bytes_everywhere(data in prop::collection::vec(any::<u8>(), 0..512)) {
            server_request(&data);
            grammar(&data);
            response(&data);
            stream_splitter(&data);
            case_file(&data);
        }
    }

    #[test]
    fn seeds_are_what_they_claim() {
        let _guard = runtime().enter();
        let server = OfflineServer::new(ServerConfig::default());
        for (i, seed) in seeds::REQUESTS.iter().enumerate() {
            let (status, body) = server.handle(0, seed.as_bytes());
            assert_eq!(status, 200, "request seed {i}: {body:?}");
        }
        for (i, seed) in seeds::RESPONSES.iter().enumerate() {
            let doc = parse_document(seed).expect("a response seed parses");
            assert!(open(&doc).is_ok(), "response seed {i}");
        }
        let ops = OpRegistry::builtin();
        let checks = crate::check::CheckRegistry::builtin();
        for (i, seed) in seeds::CASES.iter().enumerate() {
            let loaded = crate::suite::Loader::new(&ops, &checks).parse(
                seed,
                Path::new("cases/fuzz/case.toml"),
                "fuzz/case",
            );
            assert!(loaded.is_ok(), "case seed {i}: {loaded:?}");
        }
    }
}
