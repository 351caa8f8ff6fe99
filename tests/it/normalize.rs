//! Golden normalisation and shape comparison.

use ews_conformance::check::normalize::{NormalizeError, Normalizer};
use ews_conformance::check::shape::{ShapeDiff, ShapeDiffKind, compare_shapes, shape_of};
use ews_proto::xml::{ns, parse_document};

fn subscribe_response(id: &str, watermark: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="{soap}">
  <s:Header><ServerVersionInfo xmlns="{t}" MajorVersion="15" MinorVersion="0" Version="V2_23"/></s:Header>
  <s:Body>
    <m:SubscribeResponse xmlns:m="{m}">
      <m:ResponseMessages>
        <m:SubscribeResponseMessage ResponseClass="Success">
          <m:ResponseCode>NoError</m:ResponseCode>
          <m:SubscriptionId>{id}</m:SubscriptionId>
          <m:Watermark>{watermark}</m:Watermark>
        </m:SubscribeResponseMessage>
      </m:ResponseMessages>
    </m:SubscribeResponse>
  </s:Body>
</s:Envelope>"#,
        soap = ns::SOAP,
        m = ns::MESSAGES,
        t = ns::TYPES
    )
}

/// A GetEvents response with the default namespace style of other servers.
fn getevents_response(id: &str, previous: &str, events: &[(&str, &str, &str)]) -> String {
    let events: String = events
        .iter()
        .map(|(wm, item, folder)| {
            format!(
                r#"<NewMailEvent xmlns="{t}"><Watermark>{wm}</Watermark><TimeStamp>2026-03-01T10:00:0{n}Z</TimeStamp><ItemId Id="{item}" ChangeKey="CK-{item}"/><ParentFolderId Id="{folder}"/></NewMailEvent>"#,
                t = ns::TYPES,
                n = wm.len() % 10
            )
        })
        .collect();
    format!(
        r#"<Envelope xmlns="{soap}"><Body><GetEventsResponse xmlns="{m}"><ResponseMessages><GetEventsResponseMessage ResponseClass="Success"><MessageText>Events   follow</MessageText><ResponseCode>NoError</ResponseCode><Notification><SubscriptionId xmlns="{t}">{id}</SubscriptionId><PreviousWatermark xmlns="{t}">{previous}</PreviousWatermark><MoreEvents xmlns="{t}">false</MoreEvents>{events}</Notification></GetEventsResponseMessage></ResponseMessages></GetEventsResponse></Body></Envelope>"#,
        soap = ns::SOAP,
        m = ns::MESSAGES,
        t = ns::TYPES
    )
}

#[test]
fn renders_canonically_with_aliases() {
    let mut n = Normalizer::new();
    let out = n
        .normalize(&subscribe_response("AQMkSub==", "AAAAWm1"))
        .expect("normalises");
    let expected = format!(
        r#"<soap:Envelope xmlns:m="{m}" xmlns:soap="{soap}" xmlns:t="{t}">
  <soap:Header>
    <t:ServerVersionInfo MajorVersion="[version]" MinorVersion="[version]" Version="[version]"/>
  </soap:Header>
  <soap:Body>
    <m:SubscribeResponse>
      <m:ResponseMessages>
        <m:SubscribeResponseMessage ResponseClass="Success">
          <m:ResponseCode>NoError</m:ResponseCode>
          <m:SubscriptionId>[subscription#1]</m:SubscriptionId>
          <m:Watermark>[watermark#1]</m:Watermark>
        </m:SubscribeResponseMessage>
      </m:ResponseMessages>
    </m:SubscribeResponse>
  </soap:Body>
</soap:Envelope>
"#,
        soap = ns::SOAP,
        m = ns::MESSAGES,
        t = ns::TYPES
    );
    assert_eq!(out, expected);
}

#[test]
fn aliases_are_shared_across_documents_and_distinct_per_value() {
    let mut n = Normalizer::new();
    n.normalize(&subscribe_response("SUB-A", "WM-0"))
        .expect("first document");
    let second = n
        .normalize(&getevents_response(
            "SUB-A",
            "WM-0",
            &[
                ("WM-1", "ITEM-X", "FOLDER-IN"),
                ("WM-22", "ITEM-Y", "FOLDER-IN"),
            ],
        ))
        .expect("second document");
    // The subscription and the watermark from the first response keep their aliases.
    assert!(
        second.contains("<t:SubscriptionId>[subscription#1]</t:SubscriptionId>"),
        "{second}"
    );
    assert!(
        second.contains("<t:PreviousWatermark>[watermark#1]</t:PreviousWatermark>"),
        "{second}"
    );
    // New values get the next numbers, in order of appearance.
    assert!(
        second.contains("<t:Watermark>[watermark#2]</t:Watermark>"),
        "{second}"
    );
    assert!(
        second.contains("<t:Watermark>[watermark#3]</t:Watermark>"),
        "{second}"
    );
    assert!(
        second.contains(r#"<t:ItemId ChangeKey="[changekey#1]" Id="[item#1]"/>"#),
        "{second}"
    );
    assert!(
        second.contains(r#"<t:ItemId ChangeKey="[changekey#2]" Id="[item#2]"/>"#),
        "{second}"
    );
    // The same folder twice is one alias.
    assert_eq!(
        second
            .matches(r#"<t:ParentFolderId Id="[folder#1]"/>"#)
            .count(),
        2,
        "{second}"
    );
    // Times are masked; MessageText is kept (trimmed at the ends only).
    assert_eq!(
        second.matches("<t:TimeStamp>[time]</t:TimeStamp>").count(),
        2,
        "{second}"
    );
    assert!(
        second.contains("<m:MessageText>Events   follow</m:MessageText>"),
        "{second}"
    );
    assert_eq!(n.alias_of("WM-22"), Some("[watermark#3]"));
    assert_eq!(n.alias_of("never seen"), None);

    // A different subscription is a different alias.
    let third = n
        .normalize(&subscribe_response("SUB-B", "WM-1"))
        .expect("third document");
    assert!(third.contains("[subscription#2]"), "{third}");
    assert!(
        third.contains("<m:Watermark>[watermark#2]</m:Watermark>"),
        "{third}"
    );
}

#[test]
fn known_values_get_their_names() {
    let mut n = Normalizer::new();
    n.known("FOLDER-IN", "folder#inbox");
    n.known("http://127.0.0.1:40123/push", "[push-url]");
    let out = n
        .normalize(&getevents_response("S", "W0", &[("W1", "I1", "FOLDER-IN")]))
        .expect("normalises");
    assert!(
        out.contains(r#"<t:ParentFolderId Id="[folder#inbox]"/>"#),
        "{out}"
    );
    assert!(!out.contains("[folder#1]"), "{out}");
    let push = format!(
        r#"<m:Subscribe xmlns:m="{}" xmlns:t="{}"><m:PushSubscriptionRequest><t:URL>http://127.0.0.1:40123/push</t:URL></m:PushSubscriptionRequest></m:Subscribe>"#,
        ns::MESSAGES,
        ns::TYPES
    );
    let out = n.normalize(&push).expect("normalises");
    assert!(out.contains("<t:URL>[push-url]</t:URL>"), "{out}");
}

#[test]
fn prefixes_declarations_and_whitespace_do_not_matter() {
    let prefixed = subscribe_response("S1", "W1");
    let defaulted = format!(
        r#"<Envelope xmlns="{soap}"><Header><t:ServerVersionInfo xmlns:t="{t}" Version="V2_4" MinorVersion="1" MajorVersion="14"/></Header><Body><SubscribeResponse xmlns="{m}"><ResponseMessages><SubscribeResponseMessage ResponseClass="Success"><ResponseCode> NoError </ResponseCode><SubscriptionId>S1</SubscriptionId><Watermark>W1</Watermark></SubscribeResponseMessage></ResponseMessages></SubscribeResponse></Body></Envelope>"#,
        soap = ns::SOAP,
        m = ns::MESSAGES,
        t = ns::TYPES
    );
    let a = Normalizer::new().normalize(&prefixed).expect("prefixed");
    let b = Normalizer::new()
        .normalize(&defaulted)
        .expect("default namespaces");
    assert_eq!(a, b);
}

#[test]
fn foreign_namespaces_stay_visible() {
    let https = subscribe_response("S1", "W1").replace(
        ns::MESSAGES,
        "https://schemas.microsoft.com/exchange/services/2006/messages",
    );
    let out = Normalizer::new().normalize(&https).expect("normalises");
    assert!(
        out.contains(
            r#"xmlns:ns1="https://schemas.microsoft.com/exchange/services/2006/messages""#
        ),
        "{out}"
    );
    assert!(out.contains("<ns1:SubscribeResponse>"), "{out}");
}

#[test]
fn normalisation_is_idempotent() {
    let mut n = Normalizer::new();
    n.normalize(&subscribe_response("S0", "W0"))
        .expect("warm up");
    // Aliases in this output do not start at #1; a fresh normaliser must keep them.
    let once = n
        .normalize(&getevents_response(
            "S1",
            "W5",
            &[("W6", "I", "F"), ("W7", "J", "F")],
        ))
        .expect("once");
    assert!(once.contains("[subscription#2]"), "{once}");
    let again = Normalizer::new().normalize(&once).expect("again");
    assert_eq!(once, again);
    let same_run = n.normalize(&once).expect("again, same run");
    assert_eq!(once, same_run);
}

#[test]
fn message_xml_ids_are_aliased() {
    let mut n = Normalizer::new();
    n.normalize(&subscribe_response("SUB-9", "W"))
        .expect("subscribe");
    let push_error = format!(
        r#"<m:SendNotificationResponseMessage xmlns:m="{}" xmlns:t="{}" ResponseClass="Error"><m:ResponseCode>ErrorReadEventsFailed</m:ResponseCode><m:MessageXml><t:Value Name="SubscriptionId">SUB-9</t:Value></m:MessageXml></m:SendNotificationResponseMessage>"#,
        ns::MESSAGES,
        ns::TYPES
    );
    let out = n.normalize(&push_error).expect("normalises");
    assert!(
        out.contains(r#"<t:Value Name="SubscriptionId">[subscription#1]</t:Value>"#),
        "{out}"
    );
}

#[test]
fn non_xml_is_an_error() {
    let mut n = Normalizer::new();
    for bad in [
        "HTTP/1.1 500 oops",
        "",
        "<a><b></a>",
        "<soap:Header/><soap:Body/>",
    ] {
        assert!(
            matches!(n.normalize(bad), Err(NormalizeError::NotXml(_))),
            "`{bad}` was accepted"
        );
    }
    let deep = format!("{}{}", "<a>".repeat(300), "</a>".repeat(300));
    assert!(matches!(n.normalize(&deep), Err(NormalizeError::TooDeep)));
}

// ------------------------------------------------------------------ shapes

fn diffs(expected: &str, actual: &str, optional: &[&str]) -> Vec<ShapeDiff> {
    let e = parse_document(expected).expect("expected parses");
    let a = parse_document(actual).expect("actual parses");
    compare_shapes(
        &shape_of(e.root_element()),
        &shape_of(a.root_element()),
        optional,
    )
}

const T: &str = ns::TYPES;

fn notification(inner: &str) -> String {
    format!(r#"<t:Notification xmlns:t="{T}">{inner}</t:Notification>"#)
}

const SUB: &str = "<t:SubscriptionId>x</t:SubscriptionId>";
const PREV: &str = "<t:PreviousWatermark>x</t:PreviousWatermark>";
const MORE: &str = "<t:MoreEvents>false</t:MoreEvents>";
const MAIL: &str = r#"<t:NewMailEvent><t:Watermark>w</t:Watermark><t:ItemId Id="1" ChangeKey="2"/></t:NewMailEvent>"#;

#[test]
fn same_shape_with_other_values_and_prefixes_matches() {
    let expected = notification(&format!("{SUB}{PREV}{MORE}{MAIL}"));
    let actual = format!(
        r#"<Notification xmlns="{T}"><SubscriptionId>other</SubscriptionId><PreviousWatermark>y</PreviousWatermark><MoreEvents>true</MoreEvents><NewMailEvent><Watermark>z</Watermark><ItemId ChangeKey="9" Id="8"/></NewMailEvent></Notification>"#
    );
    assert_eq!(diffs(&expected, &actual, &[]), vec![]);
}

#[test]
fn finds_missing_extra_and_reordered() {
    let expected = notification(&format!("{SUB}{PREV}{MORE}{MAIL}"));
    let path = "/t:Notification";

    let missing = diffs(&expected, &notification(&format!("{SUB}{MORE}{MAIL}")), &[]);
    assert_eq!(
        missing,
        vec![ShapeDiff {
            path: path.into(),
            kind: ShapeDiffKind::Missing,
            name: "t:PreviousWatermark".into()
        }]
    );
    assert_eq!(
        missing[0].to_string(),
        "/t:Notification: t:PreviousWatermark is missing"
    );

    let extra = diffs(
        &expected,
        &notification(&format!("{SUB}{PREV}{MORE}<t:Surprise/>{MAIL}")),
        &[],
    );
    assert_eq!(
        extra,
        vec![ShapeDiff {
            path: path.into(),
            kind: ShapeDiffKind::Extra,
            name: "t:Surprise".into()
        }]
    );

    let reordered = diffs(
        &expected,
        &notification(&format!("{SUB}{MORE}{PREV}{MAIL}")),
        &[],
    );
    assert_eq!(reordered.len(), 1, "{reordered:#?}");
    assert_eq!(reordered[0].kind, ShapeDiffKind::Reordered);
    assert!(["t:PreviousWatermark", "t:MoreEvents"].contains(&reordered[0].name.as_str()));

    let nested = diffs(
        &expected,
        &notification(&format!(
            r#"{SUB}{PREV}{MORE}<t:NewMailEvent><t:ItemId Id="1" ChangeKey="2"/></t:NewMailEvent>"#
        )),
        &[],
    );
    assert_eq!(nested.len(), 1, "{nested:#?}");
    assert_eq!(
        nested[0].to_string(),
        "/t:Notification/t:NewMailEvent: t:Watermark is missing"
    );
}

#[test]
fn repeated_siblings_are_one_or_more() {
    let expected = notification(&format!("{SUB}{MAIL}{MAIL}"));
    for count in [1, 2, 5] {
        let actual = notification(&format!("{SUB}{}", MAIL.repeat(count)));
        assert_eq!(diffs(&expected, &actual, &[]), vec![], "{count} events");
    }
    assert_eq!(
        diffs(&expected, &notification(SUB), &[]),
        vec![ShapeDiff {
            path: "/t:Notification".into(),
            kind: ShapeDiffKind::Missing,
            name: "t:NewMailEvent".into()
        }]
    );
    // Every repeated instance is still compared inside.
    let broken = MAIL.replace("<t:Watermark>w</t:Watermark>", "");
    let found = diffs(
        &expected,
        &notification(&format!("{SUB}{MAIL}{broken}")),
        &[],
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].kind, ShapeDiffKind::Missing);
}

#[test]
fn optional_elements_and_attributes_may_be_absent_on_either_side() {
    let expected = notification(&format!("{SUB}{PREV}{MORE}{MAIL}"));
    let lean = notification(&format!(
        r#"{SUB}<t:NewMailEvent><t:Watermark>w</t:Watermark><t:ItemId Id="1"/></t:NewMailEvent>"#
    ));
    let optional = ["t:PreviousWatermark", "t:MoreEvents", "@ChangeKey"];
    assert_eq!(diffs(&expected, &lean, &optional), vec![]);
    assert_eq!(diffs(&lean, &expected, &optional), vec![]);
    let strict = diffs(&expected, &lean, &[]);
    let kinds: Vec<ShapeDiffKind> = strict.iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ShapeDiffKind::Missing,
            ShapeDiffKind::Missing,
            ShapeDiffKind::MissingAttribute
        ],
        "{strict:#?}"
    );
    assert_eq!(
        strict[2].to_string(),
        "/t:Notification/t:NewMailEvent/t:ItemId: attribute ChangeKey is missing"
    );
}

#[test]
fn different_roots_are_reported() {
    let found = diffs(
        &notification(SUB),
        &format!(r#"<t:Other xmlns:t="{T}"/>"#),
        &[],
    );
    let kinds: Vec<ShapeDiffKind> = found.iter().map(|d| d.kind).collect();
    assert_eq!(kinds, vec![ShapeDiffKind::Missing, ShapeDiffKind::Extra]);
}

#[test]
fn shape_outline_names_elements_and_attributes() {
    let text = notification(MAIL);
    let doc = parse_document(&text).expect("parses");
    let outline = shape_of(doc.root_element()).to_string();
    assert_eq!(
        outline,
        "t:Notification\n  t:NewMailEvent\n    t:Watermark\n    t:ItemId @ChangeKey @Id\n"
    );
}
