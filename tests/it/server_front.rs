//! The reference server's HTTP front over real HTTP: auth, routing, SOAP
//! framing, version checks, schema faults, and garbage that must never
//! crash it.

use crate::support::server as server_support;

use ews_proto::xml::ns;
use server_support::*;

const TYPES: &str = "<t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes>";

fn pull(inner: &str) -> String {
    format!(
        "<m:Subscribe><m:PullSubscriptionRequest>{inner}</m:PullSubscriptionRequest></m:Subscribe>"
    )
}

#[tokio::test]
async fn basic_auth_is_required_and_accepts_three_name_forms() {
    let s = server().await;
    let http = reqwest::Client::new();
    let body = Client::alice(&s).envelope(|w| {
        w.raw("<m:Unsubscribe><m:SubscriptionId>x</m:SubscriptionId></m:Unsubscribe>");
    });
    let none = http
        .post(s.url())
        .body(body.clone())
        .send()
        .await
        .expect("answered");
    assert_eq!(none.status().as_u16(), 401);
    // Both schemes on-premises Exchange offers, one header line each.
    let offered: Vec<&str> = none
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(offered, ["NTLM", "Basic realm=\"ews\""]);
    for (user, pw, status) in [
        ("alice@example.com", "wrong", 401),
        ("mallory", "alice-Secret-1", 401),
        ("alice@example.com", "alice-Secret-1", 200),
        ("alice", "alice-Secret-1", 200),
        ("EXAMPLE\\alice", "alice-Secret-1", 200),
    ] {
        let r = http
            .post(s.url())
            .basic_auth(user, Some(pw))
            .body(body.clone())
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status().as_u16(), status, "{user}");
    }
}

#[tokio::test]
async fn routing_methods_and_body_limit() {
    let s = server().await;
    let http = reqwest::Client::new();
    let get = http
        .get(s.url())
        .basic_auth("alice", Some("alice-Secret-1"))
        .send()
        .await
        .expect("answered");
    assert_eq!(get.status().as_u16(), 405);
    let elsewhere = format!("http://{}/EWS/Other.asmx", s.addr());
    let post = http
        .post(elsewhere)
        .basic_auth("alice", Some("alice-Secret-1"))
        .body("x")
        .send()
        .await
        .expect("answered");
    assert_eq!(post.status().as_u16(), 404);
    let huge = vec![b' '; 16 * 1024 * 1024 + 1];
    let big = http
        .post(s.url())
        .basic_auth("alice", Some("alice-Secret-1"))
        .body(huge)
        .send()
        .await
        .expect("an oversized body is answered");
    assert_eq!(big.status().as_u16(), 413);
    // Still serving afterwards.
    let ok = Client::alice(&s)
        .op("<m:Unsubscribe><m:SubscriptionId>x</m:SubscriptionId></m:Unsubscribe>")
        .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn faults_look_like_exchange() {
    let s = server().await;
    let c = Client::alice(&s);
    let malformed = c
        .raw("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>")
        .await;
    assert_eq!(malformed.status, 500);
    assert!(
        malformed.body.starts_with("<?xml"),
        "exchangelib parses 500s only with a declaration"
    );
    assert_eq!(malformed.fault_code(), "ErrorSchemaValidation");
    assert_eq!(malformed.one("//faultcode"), "a:ErrorSchemaValidation");
    let doc = malformed.doc();
    let fc = doc
        .descendants()
        .find(|n| n.has_tag_name("faultcode"))
        .expect("faultcode");
    assert_eq!(fc.lookup_namespace_uri(Some("a")), Some(ns::TYPES));

    let https = c
        .raw(
            c.envelope(|_| {})
                .replace("<soap:Body>", "<soap:Body><m:GetEvents/>")
                .replace("http://schemas.xmlsoap.org", "https://schemas.xmlsoap.org"),
        )
        .await;
    assert_eq!(
        (https.status, https.fault_code()),
        (500, "ErrorSchemaValidation".to_string())
    );

    let foreign = c.op("<x:GetEvents xmlns:x=\"https://schemas.microsoft.com/exchange/services/2006/messages\"/>").await;
    assert_eq!(foreign.fault_code(), "ErrorSchemaValidation");

    let empty = c.raw(c.envelope(|_| {})).await;
    assert_eq!(
        (empty.status, empty.fault_code()),
        (500, "ErrorInvalidRequest".to_string())
    );

    let mut old = c.clone();
    old.version = Some("ExchangeFoo".into());
    let bad_version = old
        .op("<m:Unsubscribe><m:SubscriptionId>x</m:SubscriptionId></m:Unsubscribe>")
        .await;
    assert_eq!(
        (bad_version.status, bad_version.fault_code()),
        (500, "ErrorInvalidServerVersion".to_string())
    );

    let unknown = c.op("<m:NoSuchOperation/>").await;
    assert_eq!(unknown.fault_code(), "ErrorSchemaValidation");
    let text = unknown.one("//e:Message");
    assert!(text.contains("NoSuchOperation"), "{text}");
}

#[tokio::test]
async fn notification_requests_are_schema_checked() {
    let s = server().await;
    let c = Client::alice(&s);
    let rejected = [
        pull(&format!("{TYPES}<t:Timeout>0</t:Timeout>")),
        pull(&format!("{TYPES}<t:Timeout>1441</t:Timeout>")),
        pull(&format!("{TYPES}<t:Timeout>abc</t:Timeout>")),
        pull(TYPES),
        pull(&format!("<t:Timeout>5</t:Timeout>{TYPES}")),
        pull("<t:EventTypes><t:EventType>StatusEvent</t:EventType></t:EventTypes><t:Timeout>5</t:Timeout>"),
        pull("<t:EventTypes><t:EventType>Bogus</t:EventType></t:EventTypes><t:Timeout>5</t:Timeout>"),
        pull("<t:Timeout>5</t:Timeout>"),
        format!("<m:Subscribe><m:PullSubscriptionRequest>{TYPES}<t:Timeout>5</t:Timeout></m:PullSubscriptionRequest><m:PushSubscriptionRequest>{TYPES}<t:URL>http://x</t:URL></m:PushSubscriptionRequest></m:Subscribe>"),
        format!("<m:Subscribe><m:PushSubscriptionRequest>{TYPES}<t:StatusFrequency>0</t:StatusFrequency><t:URL>http://x</t:URL></m:PushSubscriptionRequest></m:Subscribe>"),
        format!("<m:Subscribe><m:PushSubscriptionRequest>{TYPES}<t:StatusFrequency>1441</t:StatusFrequency><t:URL>http://x</t:URL></m:PushSubscriptionRequest></m:Subscribe>"),
        format!("<m:Subscribe><m:StreamingSubscriptionRequest>{TYPES}<t:Watermark>w</t:Watermark></m:StreamingSubscriptionRequest></m:Subscribe>"),
        "<m:GetEvents><m:SubscriptionId>x</m:SubscriptionId></m:GetEvents>".into(),
        "<m:GetEvents><m:Watermark>w</m:Watermark><m:SubscriptionId>x</m:SubscriptionId></m:GetEvents>".into(),
        "<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>a</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>31</m:ConnectionTimeout></m:GetStreamingEvents>".into(),
        "<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>a</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>0</m:ConnectionTimeout></m:GetStreamingEvents>".into(),
        "<m:GetStreamingEvents><m:SubscriptionId>a</m:SubscriptionId><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>".into(),
        "<m:Unsubscribe/>".into(),
        "<m:Unsubscribe><m:SubscriptionId>a</m:SubscriptionId><m:Extra/></m:Unsubscribe>".into(),
    ];
    for body in &rejected {
        let a = c.op(body).await;
        assert_eq!(a.status, 500, "{body}\n{}", a.body);
        assert_eq!(a.fault_code(), "ErrorSchemaValidation", "{body}");
        let message = a.one("//e:Message");
        assert!(message.contains('/'), "the message says where: {message}");
    }
    for timeout in [1, 1440] {
        let a = c
            .op(&pull(&format!("{TYPES}<t:Timeout>{timeout}</t:Timeout>")))
            .await;
        assert_eq!(a.code(), "NoError", "{}", a.body);
    }
}

#[tokio::test]
async fn version_gates_for_streaming_and_free_busy() {
    let s = server().await;
    let mut c = Client::alice(&s);
    let streaming = format!(
        "<m:Subscribe><m:StreamingSubscriptionRequest>{TYPES}</m:StreamingSubscriptionRequest></m:Subscribe>"
    );
    let fb = pull(
        "<t:EventTypes><t:EventType>FreeBusyChangedEvent</t:EventType></t:EventTypes><t:Timeout>5</t:Timeout>",
    );
    for version in [Some("Exchange2007_SP1"), Some("Exchange2010"), None] {
        c.version = version.map(str::to_string);
        assert_eq!(
            c.op(&streaming).await.fault_code(),
            "ErrorSchemaValidation",
            "{version:?}"
        );
        assert_eq!(
            c.op(&fb).await.fault_code(),
            "ErrorSchemaValidation",
            "{version:?}"
        );
    }
    c.version = Some("Exchange2010_SP1".into());
    let ok = c.op(&streaming).await;
    assert_eq!(ok.code(), "NoError");
    assert!(
        ok.all("//m:Watermark").is_empty(),
        "streaming Subscribe has no Watermark"
    );
    assert_eq!(c.op(&fb).await.code(), "NoError");
}

#[tokio::test]
async fn client_quirks_are_tolerated() {
    let s = server().await;
    let c = Client::alice(&s);
    // exchangelib: declaration, s: prefix, TimeZoneContext, extra HTTP headers.
    let exchangelib = format!(
        "<?xml version='1.0' encoding='utf-8'?><s:Envelope xmlns:s=\"{}\" xmlns:m=\"{}\" xmlns:t=\"{}\"><s:Header><t:RequestServerVersion Version=\"Exchange2013\"/><t:TimeZoneContext><t:TimeZoneDefinition Id=\"UTC\"/></t:TimeZoneContext></s:Header><s:Body>{}</s:Body></s:Envelope>",
        ns::SOAP,
        ns::MESSAGES,
        ns::TYPES,
        pull(&format!(
            "<t:FolderIds><t:DistinguishedFolderId Id=\"inbox\"><t:Mailbox><t:EmailAddress>alice@example.com</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType></t:Mailbox></t:DistinguishedFolderId></t:FolderIds>{TYPES}<t:Timeout>10</t:Timeout>"
        ))
    );
    let r = c
        .http
        .post(&c.url)
        .basic_auth(&c.user, Some(&c.password))
        .header("X-AnchorMailbox", "alice@example.com")
        .header("X-PreferServerAffinity", "True")
        .body(exchangelib)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status().as_u16(), 200);
    let body = r.text().await.expect("body");
    assert!(body.contains("ResponseClass=\"Success\""), "{body}");
    assert!(
        body.starts_with("<?xml") && body.contains("<s:Envelope"),
        "{body}"
    );
    // ews-javascript-api: no declaration, soap: prefix, non-self-closing header, xsi declared.
    let streaming_all = format!(
        "<m:Subscribe><m:StreamingSubscriptionRequest SubscribeToAllFolders=\"true\">{TYPES}</m:StreamingSubscriptionRequest></m:Subscribe>"
    );
    let js = format!(
        "<soap:Envelope xmlns:soap=\"{}\" xmlns:xsi=\"{}\" xmlns:m=\"{}\" xmlns:t=\"{}\"><soap:Header><t:RequestServerVersion Version=\"Exchange2013\"></t:RequestServerVersion></soap:Header><soap:Body>{}</soap:Body></soap:Envelope>",
        ns::SOAP,
        ns::XSI,
        ns::MESSAGES,
        ns::TYPES,
        streaming_all
    );
    let a = c.raw(js).await;
    assert_eq!(a.code(), "NoError", "{}", a.body);
}

/// A tiny deterministic generator so failures reproduce.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() as usize) % n.max(1)
    }
}

fn garble(seed: &str, rng: &mut Lcg) -> Vec<u8> {
    let mut b = seed.as_bytes().to_vec();
    match rng.below(6) {
        0 => b.truncate(rng.below(b.len())),
        1 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
        }
        2 => {
            let i = rng.below(b.len());
            let j = rng.below(b.len());
            let (lo, hi) = (i.min(j), i.max(j));
            let chunk = b[lo..hi].to_vec();
            b.splice(hi..hi, chunk);
        }
        3 => {
            let i = rng.below(b.len());
            let j = rng.below(b.len());
            b.drain(i.min(j)..i.max(j));
        }
        4 => b = (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
        _ => {
            let tags = [
                "<a>",
                "</m:Watermark>",
                "<!DOCTYPE x [<!ENTITY e \"e\">]>",
                "&e;",
                "<t:FolderId Id=\"\"/>",
                "]]>",
                "<?pi?>",
                "\u{0}",
            ];
            let i = rng.below(b.len());
            let t = tags[rng.below(tags.len())];
            b.splice(i..i, t.bytes());
        }
    }
    b
}

#[tokio::test]
async fn garbage_never_crashes_the_server() {
    let s = server().await;
    let c = Client::alice(&s);
    let (id, wm) = c.pull(inbox_scope(), ALL_KINDS, 10).await;
    let seeds = [
        c.envelope(|w| {
            w.raw(&pull(&format!("<t:FolderIds><t:DistinguishedFolderId Id=\"inbox\"/></t:FolderIds>{TYPES}<t:Timeout>5</t:Timeout>")));
        }),
        c.envelope(|w| {
            w.raw(&format!("<m:GetEvents><m:SubscriptionId>{id}</m:SubscriptionId><m:Watermark>{wm}</m:Watermark></m:GetEvents>"));
        }),
        c.envelope(|w| {
            w.raw("<m:CreateItem MessageDisposition=\"SendAndSaveCopy\"><m:Items><t:Message><t:Subject>s</t:Subject><t:ToRecipients><t:Mailbox><t:EmailAddress>alice@example.com</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem>");
        }),
        c.envelope(|w| {
            w.raw(&format!("<m:Unsubscribe><m:SubscriptionId>{id}x</m:SubscriptionId></m:Unsubscribe>"));
        }),
        c.envelope(|w| {
            w.raw("<m:UpdateItem><m:ItemChanges><t:ItemChange><t:ItemId Id=\"AAMkSQAAAAAAAAAAAAAAAAAAAAA=\"/><t:Updates><t:SetItemField><t:FieldURI FieldURI=\"message:IsRead\"/><t:Message><t:IsRead>true</t:IsRead></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>");
        }),
    ];
    let mut rng = Lcg(0x5eed);
    let mut statuses = std::collections::BTreeMap::new();
    for round in 0..300 {
        let seed = &seeds[round % seeds.len()];
        let body = garble(seed, &mut rng);
        let r = c
            .http
            .post(&c.url)
            .basic_auth(&c.user, Some(&c.password))
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "round {round}: no answer ({e}) to {:?}",
                    String::from_utf8_lossy(&body)
                )
            });
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        assert!(
            status == 200 || status == 500,
            "round {round}: HTTP {status}"
        );
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("round {round}: answer not XML ({e})"));
        assert!(
            doc.root_element().has_tag_name((ns::SOAP, "Envelope")),
            "round {round}"
        );
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert!(
        statuses.get(&500).copied().unwrap_or(0) > 50,
        "most garbage is rejected: {statuses:?}"
    );
    // The subscription and the server are intact.
    let r = c.get_events(&id, &wm).await;
    assert!(r.message.is_success(), "{r:?}");
}
