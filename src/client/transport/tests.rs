use super::*;
use crate::client::error::with_tls_hint;
use crate::client::reply::body_operation;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use reqwest::header::CONTENT_ENCODING;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}/EWS/Exchange.asmx")
}

fn transport(endpoint: String, deadline: Duration) -> Transport {
    let mut cfg = TransportConfig::new(endpoint);
    cfg.deadline = deadline;
    Transport::new(cfg).expect("transport builds")
}

#[tokio::test]
async fn posts_xml_with_auth_and_headers() {
    let router = Router::new().route(
        "/EWS/Exchange.asmx",
        post(|headers: HeaderMap, body: String| async move {
            let get = |n: &str| {
                headers
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_string()
            };
            format!(
                "{}|{}|{}|{}",
                get("content-type"),
                get("authorization"),
                get("x-anchormailbox"),
                body
            )
        }),
    );
    let t = transport(serve(router).await, Duration::from_secs(10));
    let auth = Auth::Basic {
        username: "u@example.test".into(),
        password: "pw".into(),
    };
    let headers = vec![("X-AnchorMailbox".to_string(), "u@example.test".to_string())];
    let resp = t
        .post(&HttpRequest {
            body: "<x/>",
            auth: &auth,
            headers: &headers,
            accept_auth_failure: false,
        })
        .await
        .expect("answer");
    assert_eq!(resp.status, 200);
    // The echoed credential (exactly `dUBleGFtcGxlLnRlc3Q6cHc=`, so it
    // was sent) comes back redacted.
    assert_eq!(
        resp.body,
        "text/xml; charset=utf-8|Basic <redacted>|u@example.test|<x/>"
    );
    assert_eq!(resp.encoding_problem, None);
}

#[test]
fn a_declared_encoding_other_than_utf8_is_named() {
    let xml = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>";
    let p = declared_encoding_problem(Some("text/xml; charset=utf-8"), xml).expect("named");
    assert!(
        p.contains("encoding=\"ISO-8859-1\"") && p.contains("UTF-8"),
        "{p}"
    );
    let p = declared_encoding_problem(Some("text/xml; Charset=\"windows-1252\""), b"<a/>")
        .expect("named");
    assert!(p.contains("charset=windows-1252"), "{p}");
    assert_eq!(
        declared_encoding_problem(
            Some("text/xml; charset=UTF-8"),
            b"\xEF\xBB\xBF<?xml version='1.0' encoding='utf-8'?><a/>"
        ),
        None
    );
    assert_eq!(declared_encoding_problem(None, b"<a/>"), None);
}

#[test]
fn certificate_errors_carry_the_insecure_tls_hint() {
    let hinted = with_tls_hint("invalid peer certificate: UnknownIssuer".into());
    assert!(hinted.contains("--insecure-tls") && hinted.contains("EWS_INSECURE_TLS=1"));
    assert_eq!(
        with_tls_hint("connection refused".into()),
        "connection refused"
    );
}

#[test]
fn encoding_problems_are_named() {
    assert_eq!(encoding_problem(b"<a>caf\xC3\xA9</a>"), None);
    assert_eq!(
        encoding_problem(b"\xEF\xBB\xBF<a/>"),
        None,
        "a UTF-8 BOM is fine"
    );
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain("<a>x</a>".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let p = encoding_problem(&utf16).expect("UTF-16");
    assert!(
        p.contains("UTF-16LE byte order mark (UTF-16 text follows)"),
        "{p}"
    );
    let p = encoding_problem(b"\xFF\xFE<a/>").expect("a lying BOM");
    assert!(p.contains("not UTF-16"), "{p}");
    let bare: Vec<u8> = "<a>x</a>"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    let p = encoding_problem(&bare).expect("UTF-16 without BOM");
    assert!(p.contains("looks like UTF-16"), "{p}");
    let p = encoding_problem(b"<a>\xC3\x28</a>").expect("invalid");
    assert!(p.contains("byte 0xC3 at offset 3"), "{p}");
}

#[test]
fn secrets_are_redacted() {
    let auth = Auth::Basic {
        username: "u".into(),
        password: "hunter2".into(),
    };
    let secrets = auth.secrets();
    assert_eq!(secrets, ["dTpodW50ZXIy", "hunter2"]);
    assert_eq!(
        redact("Basic dTpodW50ZXIy or hunter2", &secrets),
        "Basic <redacted> or <redacted>"
    );
    assert!(matches!(
        redact("clean", &secrets),
        std::borrow::Cow::Borrowed(_)
    ));
    assert!(Auth::None.secrets().is_empty());
    let short = Auth::Basic {
        username: "u".into(),
        password: "test".into(),
    };
    assert_eq!(
        short.secrets(),
        ["dTp0ZXN0"],
        "a short password is not searched for"
    );
}

#[tokio::test]
async fn classifies_failures() {
    let router = Router::new()
        .route(
            "/EWS/Exchange.asmx",
            post(|| async { StatusCode::UNAUTHORIZED }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    let endpoint = serve(router).await;
    let req = HttpRequest {
        body: "<x/>",
        auth: &Auth::None,
        headers: &[],
        accept_auth_failure: false,
    };
    let t = transport(endpoint.clone(), Duration::from_secs(10));
    assert_eq!(
        t.post(&req).await,
        Err(TransportError::AuthRefused { status: 401 })
    );
    let accepting = HttpRequest {
        accept_auth_failure: true,
        ..req.clone()
    };
    assert_eq!(t.post(&accepting).await.map(|r| r.status), Ok(401));

    let slow = transport(
        endpoint.replace("/EWS/Exchange.asmx", "/slow"),
        Duration::from_millis(200),
    );
    let err = slow.post(&req).await.expect_err("deadline passes");
    assert!(matches!(err, TransportError::Timeout { .. }), "{err:?}");
    assert!(!err.is_fatal());

    // A port nothing listens on: bind one, then drop the listener.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let gone = transport(format!("http://{dead}/EWS"), Duration::from_secs(5));
    let err = gone.post(&req).await.expect_err("refused");
    assert!(matches!(err, TransportError::Unreachable { .. }), "{err:?}");
    assert!(err.is_fatal());
    assert!(Transport::new(TransportConfig::new("not a url")).is_err());
}

#[test]
fn the_body_operation_is_found() {
    let env = |body: &str| {
        format!(
            "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Header><t:X xmlns:t=\"t\"/></s:Header><s:Body>{body}</s:Body></s:Envelope>"
        )
    };
    let m = "xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"";
    assert_eq!(
        body_operation(&env(&format!(
            "<m:Subscribe {m}><m:PullSubscriptionRequest/></m:Subscribe>"
        )))
        .as_deref(),
        Some("Subscribe")
    );
    assert_eq!(
        body_operation(&env(&format!("<m:GetEvents {m}/>"))).as_deref(),
        Some("GetEvents")
    );
    assert_eq!(body_operation(&env("")), None, "an empty Body");
    assert_eq!(
        body_operation("<s:Envelope xmlns:s=\"e\"><s:Body/></s:Envelope>"),
        None
    );
    assert_eq!(body_operation("<html><body><p/></body></html>"), None);
    assert_eq!(body_operation("not xml"), None);

    let sub = env(&format!("<m:Subscribe {m}/>"));
    let ok = env(&format!("<m:SubscribeResponse {m}/>"));
    let other = env(&format!("<m:CreateFolderResponse {m}/>"));
    let fault = env("<s:Fault><faultcode>s:Client</faultcode></s:Fault>");
    assert_eq!(reply(&sub, &ok), Reply::Answers);
    assert_eq!(reply(&sub, &fault), Reply::Fault);
    assert_eq!(
        reply(&sub, &other),
        Reply::Other("CreateFolderResponse".into())
    );
    assert_eq!(reply(&sub, &env("")), Reply::Unknown);
    assert_eq!(
        reply(&sub, &env("<a><a/></a>")),
        Reply::Unknown,
        "not a response element"
    );
    assert_eq!(
        reply("<broken", &ok),
        Reply::Unknown,
        "the request's operation is unknown"
    );
}

#[test]
fn content_codings() {
    use std::io::Write;
    let mut headers = HeaderMap::new();
    assert_eq!(
        decode(&headers, b"plain".to_vec(), 100),
        Ok(b"plain".to_vec())
    );
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"<a>packed</a>").expect("compress");
    let packed = gz.finish().expect("compress");
    assert_eq!(
        decode(&headers, packed.clone(), 100),
        Ok(b"<a>packed</a>".to_vec())
    );
    let err = decode(&headers, packed, 5).expect_err("above the cap");
    assert!(
        err.to_string()
            .contains("decodes to more than the limit of 5 bytes"),
        "{err}"
    );
    let err = decode(&headers, b"<a>plain</a>".to_vec(), 100).expect_err("a lie");
    assert!(err.to_string().contains("are not gzip data"), "{err}");
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
    let err = decode(&headers, b"x".to_vec(), 100).expect_err("not accepted");
    assert!(
        err.to_string()
            .contains("`Content-Encoding: br`, which the request did not accept"),
        "{err}"
    );
}

#[test]
fn debug_hides_secrets() {
    let shown = format!(
        "{:?} {:?}",
        Auth::Basic {
            username: "u".into(),
            password: "hunter2".into()
        },
        Auth::Bearer {
            token: "tok123".into()
        }
    );
    assert!(
        !shown.contains("hunter2") && !shown.contains("tok123"),
        "{shown}"
    );
}
