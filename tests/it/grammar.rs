//! The structural grammar: one test per rule kind (a document breaking
//! exactly that rule, next to a correct one), the corrected seed examples,
//! the defective ones failing for the reason the digest documents, version
//! differences, and agreement with the crate's own renderers.

use std::path::PathBuf;

use ews_proto::ews::envelope::{self, EnvelopeStyle, RequestHeader, ServerVersionInfo};
use ews_proto::ews::grammar::{
    Direction, MAX_VIOLATIONS, Rule, Violation, ViolationLevel, validate_envelope,
    validate_request, validate_response,
};
use ews_proto::ews::{
    ConnectionStatus, Event, EventKind, FolderRef, FolderScope, GetEventsRequest,
    GetEventsResponse, GetStreamingEventsRequest, GetStreamingEventsResponse, Id, Notification,
    ObjectId, ResponseCode, ResponseMessage, SendNotification, SoapFault, SubscribeRequest,
    SubscribeResponse, SubscriptionKind, SubscriptionStatus, UnsubscribeRequest,
    UnsubscribeResponse,
};
use ews_proto::xml::{XmlWriter, ns, parse_document};

use Direction::{Request, Response};

fn check(xml: &str, kind: Direction, version: &str) -> Vec<Violation> {
    let doc = parse_document(xml).expect("test document is well-formed");
    validate_envelope(&doc, kind, version)
}

fn errors(found: &[Violation]) -> Vec<&Violation> {
    found.iter().filter(|v| v.is_error()).collect()
}

fn assert_clean(xml: &str, kind: Direction, version: &str) {
    let found = check(xml, kind, version);
    assert!(
        errors(&found).is_empty(),
        "unexpected errors: {found:#?}\n{xml}"
    );
}

/// Exactly one error, of `rule`, whose `path: message` contains `text`.
fn assert_single(xml: &str, kind: Direction, version: &str, rule: Rule, text: &str) {
    let found = check(xml, kind, version);
    let errs = errors(&found);
    assert_eq!(errs.len(), 1, "expected one error, got {found:#?}\n{xml}");
    assert_eq!(errs[0].rule, rule, "{}", errs[0]);
    let shown = errs[0].to_string();
    assert!(shown.contains(text), "`{shown}` does not contain `{text}`");
}

fn soap(header: &str, body: &str) -> String {
    format!(
        r#"<soap:Envelope xmlns:soap="{}" xmlns:m="{}" xmlns:t="{}"><soap:Header>{header}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"#,
        ns::SOAP,
        ns::MESSAGES,
        ns::TYPES
    )
}

fn req(body: &str) -> String {
    soap(r#"<t:RequestServerVersion Version="Exchange2013"/>"#, body)
}

fn pull(inner: &str) -> String {
    req(&format!(
        "<m:Subscribe><m:PullSubscriptionRequest>{inner}</m:PullSubscriptionRequest></m:Subscribe>"
    ))
}

const FOLDERS: &str = r#"<t:FolderIds><t:DistinguishedFolderId Id="inbox"/></t:FolderIds>"#;
const EVENTS: &str = "<t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes>";

fn getevents_response(message: &str) -> String {
    soap(
        "",
        &format!(
            "<m:GetEventsResponse><m:ResponseMessages>{message}</m:ResponseMessages></m:GetEventsResponse>"
        ),
    )
}

fn notification(inner: &str) -> String {
    getevents_response(&format!(
        r#"<m:GetEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notification><t:SubscriptionId>s1</t:SubscriptionId>{inner}</m:Notification></m:GetEventsResponseMessage>"#
    ))
}

const NEW_MAIL: &str = r#"<t:NewMailEvent><t:Watermark>w2</t:Watermark><t:TimeStamp>2026-01-01T12:00:00Z</t:TimeStamp><t:ItemId Id="i1" ChangeKey="c1"/><t:ParentFolderId Id="f1"/></t:NewMailEvent>"#;

// ------------------------------------------------------------ one rule each

#[test]
fn order_rule() {
    let good = getevents_response(
        r#"<m:GetEventsResponseMessage ResponseClass="Error"><m:MessageText>x</m:MessageText><m:ResponseCode>ErrorInvalidWatermark</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:GetEventsResponseMessage>"#,
    );
    assert_clean(&good, Response, "Exchange2013");
    let bad = good.replace(
        "<m:ResponseCode>ErrorInvalidWatermark</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>",
        "<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:ResponseCode>ErrorInvalidWatermark</m:ResponseCode>",
    );
    assert_single(
        &bad,
        Response,
        "Exchange2013",
        Rule::Order,
        "m:GetEventsResponseMessage: ResponseCode must come before DescriptiveLinkKey",
    );
    // R27: Timeout before EventTypes.
    let swapped = pull(&format!("{FOLDERS}<t:Timeout>10</t:Timeout>{EVENTS}"));
    assert_single(
        &swapped,
        Request,
        "Exchange2013",
        Rule::Order,
        "EventTypes must come before Timeout",
    );
}

#[test]
fn missing_rule() {
    assert_clean(
        &pull(&format!("{FOLDERS}{EVENTS}<t:Timeout>10</t:Timeout>")),
        Request,
        "Exchange2013",
    );
    // R9: no Timeout.
    assert_single(
        &pull(&format!("{FOLDERS}{EVENTS}")),
        Request,
        "Exchange2013",
        Rule::Missing,
        "m:PullSubscriptionRequest: t:Timeout is missing",
    );
    // R10: no EventTypes; an empty EventTypes.
    assert_single(
        &pull(&format!("{FOLDERS}<t:Timeout>10</t:Timeout>")),
        Request,
        "Exchange2013",
        Rule::Missing,
        "t:EventTypes is missing",
    );
    assert_single(
        &pull(&format!(
            "{FOLDERS}<t:EventTypes/><t:Timeout>10</t:Timeout>"
        )),
        Request,
        "Exchange2013",
        Rule::Missing,
        "t:EventTypes: t:EventType is missing",
    );
    // R41: GetEvents without a Watermark.
    assert_single(
        &req("<m:GetEvents><m:SubscriptionId>s1</m:SubscriptionId></m:GetEvents>"),
        Request,
        "Exchange2013",
        Rule::Missing,
        "m:Watermark is missing",
    );
    // A push notification must carry its Notification (1..1).
    let push = soap(
        "",
        r#"<m:SendNotification><m:ResponseMessages><m:SendNotificationResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode></m:SendNotificationResponseMessage></m:ResponseMessages></m:SendNotification>"#,
    );
    assert_single(
        &push,
        Response,
        "Exchange2013",
        Rule::Missing,
        "m:Notification is missing",
    );
}

#[test]
fn unexpected_rule() {
    let streaming = |inner: &str| {
        req(&format!(
            "<m:Subscribe><m:StreamingSubscriptionRequest>{inner}</m:StreamingSubscriptionRequest></m:Subscribe>"
        ))
    };
    assert_clean(
        &streaming(&format!("{FOLDERS}{EVENTS}")),
        Request,
        "Exchange2013",
    );
    // R16: a Watermark has no place in a streaming subscription.
    assert_single(
        &streaming(&format!("{FOLDERS}{EVENTS}<t:Watermark>w1</t:Watermark>")),
        Request,
        "Exchange2013",
        Rule::Unexpected,
        "m:StreamingSubscriptionRequest/t:Watermark: element {http://schemas.microsoft.com/exchange/services/2006/types}Watermark is not allowed here",
    );
    // Text inside element-only content.
    assert_single(
        &pull(&format!("{FOLDERS}{EVENTS}<t:Timeout>10</t:Timeout>stray")),
        Request,
        "Exchange2013",
        Rule::Unexpected,
        "text `stray` is not allowed here",
    );
}

#[test]
fn cardinality_rule() {
    assert_single(
        &req(
            "<m:GetEvents><m:SubscriptionId>s1</m:SubscriptionId><m:SubscriptionId>s2</m:SubscriptionId><m:Watermark>w</m:Watermark></m:GetEvents>",
        ),
        Request,
        "Exchange2013",
        Rule::Cardinality,
        "m:GetEvents: m:SubscriptionId occurs more than 1 time",
    );
    // R28: pull and push in one Subscribe.
    let both = req(&format!(
        "<m:Subscribe><m:PullSubscriptionRequest>{FOLDERS}{EVENTS}<t:Timeout>10</t:Timeout></m:PullSubscriptionRequest><m:PushSubscriptionRequest>{FOLDERS}{EVENTS}<t:StatusFrequency>1</t:StatusFrequency><t:URL>http://127.0.0.1:1/</t:URL></m:PushSubscriptionRequest></m:Subscribe>"
    ));
    assert_single(
        &both,
        Request,
        "Exchange2013",
        Rule::Cardinality,
        "only one of m:PullSubscriptionRequest, m:PushSubscriptionRequest, m:StreamingSubscriptionRequest is allowed",
    );
    // The soap:Body holds exactly one operation.
    let two = req(
        "<m:Unsubscribe><m:SubscriptionId>a</m:SubscriptionId></m:Unsubscribe><m:Unsubscribe><m:SubscriptionId>b</m:SubscriptionId></m:Unsubscribe>",
    );
    assert_single(
        &two,
        Request,
        "Exchange2013",
        Rule::Cardinality,
        "soap:Body holds 2 elements",
    );
}

#[test]
fn namespace_rule() {
    let good = req("<m:Unsubscribe><m:SubscriptionId>a</m:SubscriptionId></m:Unsubscribe>");
    assert_clean(&good, Request, "Exchange2013");
    let https = good.replace(
        "<m:Unsubscribe>",
        r#"<m:Unsubscribe xmlns:m="https://schemas.microsoft.com/exchange/services/2006/messages">"#,
    );
    let found = check(&https, Request, "Exchange2013");
    let first = errors(&found)[0].to_string();
    assert_eq!(
        first,
        "/soap:Envelope/soap:Body/m:Unsubscribe: element {https://schemas.microsoft.com/exchange/services/2006/messages}Unsubscribe is in the wrong namespace (did you mean http://schemas.microsoft.com/exchange/services/2006/messages?)"
    );
    assert!(errors(&found).iter().all(|v| v.rule == Rule::Namespace));
    // Exactly one wrong element: GetEvents/Watermark in the types namespace.
    assert_single(
        &req(
            "<m:GetEvents><m:SubscriptionId>s</m:SubscriptionId><t:Watermark>w</t:Watermark></m:GetEvents>",
        ),
        Request,
        "Exchange2013",
        Rule::Namespace,
        "m:GetEvents/m:Watermark: element {http://schemas.microsoft.com/exchange/services/2006/types}Watermark is in the wrong namespace (did you mean http://schemas.microsoft.com/exchange/services/2006/messages?)",
    );
    // exchangelib writes m:Watermark in Subscribe (clients digest 1a): schema-invalid.
    assert_single(
        &pull(&format!(
            "{FOLDERS}{EVENTS}<m:Watermark>w</m:Watermark><t:Timeout>10</t:Timeout>"
        )),
        Request,
        "Exchange2013",
        Rule::Namespace,
        "m:PullSubscriptionRequest/t:Watermark: element {http://schemas.microsoft.com/exchange/services/2006/messages}Watermark is in the wrong namespace",
    );
}

#[test]
fn enumeration_rule() {
    // R10: StatusEvent is not subscribable.
    assert_single(
        &pull(&format!(
            "{FOLDERS}<t:EventTypes><t:EventType>StatusEvent</t:EventType></t:EventTypes><t:Timeout>10</t:Timeout>"
        )),
        Request,
        "Exchange2013",
        Rule::Enumeration,
        "t:EventType: StatusEvent cannot be subscribed to",
    );
    assert_single(
        &pull(&format!(
            r#"<t:FolderIds><t:DistinguishedFolderId Id="Inbox"/></t:FolderIds>{EVENTS}<t:Timeout>10</t:Timeout>"#
        )),
        Request,
        "Exchange2013",
        Rule::Enumeration,
        "t:DistinguishedFolderId/@Id: `Inbox` is not a distinguished folder name (did you mean `inbox`?)",
    );
    let heartbeat = |status: &str| {
        soap(
            "",
            &format!(
                r#"<m:GetStreamingEventsResponse><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:ConnectionStatus>{status}</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse>"#
            ),
        )
    };
    assert_clean(&heartbeat("OK"), Response, "Exchange2013");
    assert_clean(&heartbeat("Closed"), Response, "Exchange2013");
    assert_single(
        &heartbeat("Open"),
        Response,
        "Exchange2013",
        Rule::Enumeration,
        "m:ConnectionStatus: `Open` is not one of OK, Closed",
    );
    assert_single(
        &heartbeat("OK").replace("NoError", "Fine"),
        Response,
        "Exchange2013",
        Rule::Enumeration,
        "`Fine` is not a ResponseCodeType value",
    );
    assert_single(
        &heartbeat("OK").replace(r#"ResponseClass="Success""#, r#"ResponseClass="Ok""#),
        Response,
        "Exchange2013",
        Rule::Enumeration,
        "@ResponseClass: `Ok` is not one of Success, Warning, Error",
    );
}

#[test]
fn value_type_rule() {
    assert_single(
        &pull(&format!("{FOLDERS}{EVENTS}<t:Timeout>abc</t:Timeout>")),
        Request,
        "Exchange2013",
        Rule::ValueType,
        "t:Timeout: `abc` is not an xs:int",
    );
    assert_clean(&notification(NEW_MAIL), Response, "Exchange2013");
    assert_single(
        &notification(&NEW_MAIL.replace("2026-01-01T12:00:00Z", "yesterday")),
        Response,
        "Exchange2013",
        Rule::ValueType,
        "t:NewMailEvent/t:TimeStamp: `yesterday` is not an xs:dateTime",
    );
    // A path names one element among same-named siblings.
    let second_bad = format!(
        "{NEW_MAIL}{}",
        NEW_MAIL.replace("2026-01-01T12:00:00Z", "noon")
    );
    assert_single(
        &notification(&second_bad),
        Response,
        "Exchange2013",
        Rule::ValueType,
        "m:Notification/t:NewMailEvent[2]/t:TimeStamp: `noon` is not an xs:dateTime",
    );
    assert_single(
        &notification(&format!("<t:MoreEvents>yes</t:MoreEvents>{NEW_MAIL}")),
        Response,
        "Exchange2013",
        Rule::ValueType,
        "t:MoreEvents: `yes` is not an xs:boolean",
    );
    assert_single(
        &notification(&format!(
            "<t:PreviousWatermark></t:PreviousWatermark>{NEW_MAIL}"
        )),
        Response,
        "Exchange2013",
        Rule::ValueType,
        "t:PreviousWatermark: the value must not be empty",
    );
}

#[test]
fn boolean_one_and_zero_are_notes_not_errors() {
    let found = check(
        &notification(&format!("<t:MoreEvents>1</t:MoreEvents>{NEW_MAIL}")),
        Response,
        "Exchange2013",
    );
    assert!(errors(&found).is_empty(), "{found:#?}");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].severity, ViolationLevel::Note);
    assert_eq!(found[0].rule, Rule::ValueType);
    assert!(found[0].message.contains("exchangelib"), "{}", found[0]);
    let plain = check(
        &notification(&format!("<t:MoreEvents>false</t:MoreEvents>{NEW_MAIL}")),
        Response,
        "Exchange2013",
    );
    assert!(plain.is_empty(), "{plain:#?}");
}

#[test]
fn range_rule() {
    let timeout = |v: &str| pull(&format!("{FOLDERS}{EVENTS}<t:Timeout>{v}</t:Timeout>"));
    assert_clean(&timeout("1"), Request, "Exchange2013");
    assert_clean(&timeout("1440"), Request, "Exchange2013");
    assert_single(
        &timeout("1441"),
        Request,
        "Exchange2013",
        Rule::Range,
        "/soap:Envelope/soap:Body/m:Subscribe/m:PullSubscriptionRequest/t:Timeout: 1441 is outside 1..1440",
    );
    assert_single(
        &timeout("0"),
        Request,
        "Exchange2013",
        Rule::Range,
        "0 is outside 1..1440",
    );
    let frequency = |v: &str| {
        req(&format!(
            "<m:Subscribe><m:PushSubscriptionRequest>{FOLDERS}{EVENTS}<t:StatusFrequency>{v}</t:StatusFrequency><t:URL>http://127.0.0.1:1/</t:URL></m:PushSubscriptionRequest></m:Subscribe>"
        ))
    };
    assert_clean(&frequency("1440"), Request, "Exchange2013");
    assert_single(
        &frequency("1441"),
        Request,
        "Exchange2013",
        Rule::Range,
        "t:StatusFrequency: 1441 is outside 1..1440",
    );
    let streaming = |v: &str| {
        req(&format!(
            "<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>s</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>{v}</m:ConnectionTimeout></m:GetStreamingEvents>"
        ))
    };
    assert_clean(&streaming("1"), Request, "Exchange2013");
    assert_clean(&streaming("30"), Request, "Exchange2013");
    assert_single(
        &streaming("31"),
        Request,
        "Exchange2013",
        Rule::Range,
        "31 is outside 1..30",
    );
    assert_single(
        &streaming("0"),
        Request,
        "Exchange2013",
        Rule::Range,
        "0 is outside 1..30",
    );
    // An xs:int overflow is a type error, not a range error.
    assert_single(
        &timeout("99999999999"),
        Request,
        "Exchange2013",
        Rule::ValueType,
        "`99999999999` is not an xs:int",
    );
}

#[test]
fn attribute_rule() {
    let good = getevents_response(
        r#"<m:GetEventsResponseMessage ResponseClass="Error"><m:ResponseCode>ErrorInvalidWatermark</m:ResponseCode></m:GetEventsResponseMessage>"#,
    );
    assert_clean(&good, Response, "Exchange2013");
    assert_single(
        &good.replace(r#" ResponseClass="Error""#, ""),
        Response,
        "Exchange2013",
        Rule::Attribute,
        "m:GetEventsResponseMessage: required attribute ResponseClass is missing",
    );
    assert_single(
        &good.replace(
            r#"ResponseClass="Error""#,
            r#"ResponseClass="Error" Severity="High""#,
        ),
        Response,
        "Exchange2013",
        Rule::Attribute,
        "attribute Severity is not allowed on m:GetEventsResponseMessage",
    );
    assert_single(
        &notification(&NEW_MAIL.replace(
            r#"<t:ItemId Id="i1" ChangeKey="c1"/>"#,
            r#"<t:ItemId ChangeKey="c1"/>"#,
        )),
        Response,
        "Exchange2013",
        Rule::Attribute,
        "t:ItemId: required attribute Id is missing",
    );
    // xsi attributes are the frameworks' business, not a violation.
    assert_clean(
        &good.replace(
            r#"ResponseClass="Error""#,
            &format!(
                r#"ResponseClass="Error" xmlns:xsi="{}" xsi:nil="false""#,
                ns::XSI
            ),
        ),
        Response,
        "Exchange2013",
    );
}

#[test]
fn serverversioninfo_attributes_are_ints() {
    let with = |attrs: &str| {
        soap(
            &format!(r#"<t:ServerVersionInfo {attrs}/>"#),
            r#"<m:UnsubscribeResponse><m:ResponseMessages><m:UnsubscribeResponseMessage ResponseClass="Success"/></m:ResponseMessages></m:UnsubscribeResponse>"#,
        )
    };
    assert_clean(
        &with(r#"MajorVersion="15" MinorVersion="0" Version="V2_23""#),
        Response,
        "Exchange2013",
    );
    assert_single(
        &with(r#"MajorVersion="fifteen""#),
        Response,
        "Exchange2013",
        Rule::ValueType,
        "t:ServerVersionInfo/@MajorVersion: `fifteen` is not an xs:int",
    );
}

// ------------------------------------------------ the streaming m:/t: conflict

#[test]
fn streaming_notification_namespace_is_a_note_either_way() {
    let stream = |element: &str| {
        soap(
            "",
            &format!(
                r#"<m:GetStreamingEventsResponse><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notifications><{element}><t:SubscriptionId>s</t:SubscriptionId><t:StatusEvent/></{element}></m:Notifications><m:ConnectionStatus>OK</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse>"#
            ),
        )
    };
    for (element, says) in [
        ("m:Notification", "m:Notification is what Exchange sends"),
        ("t:Notification", "t:Notification follows the schema"),
    ] {
        let found = check(&stream(element), Response, "Exchange2013");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].severity, ViolationLevel::Note);
        assert_eq!(found[0].rule, Rule::Namespace);
        assert!(found[0].message.contains(says), "{}", found[0]);
    }
    let foreign = stream("x:Notification").replace(
        "<m:Notifications>",
        r#"<m:Notifications xmlns:x="urn:elsewhere">"#,
    );
    assert_single(
        &foreign,
        Response,
        "Exchange2013",
        Rule::Namespace,
        "element {urn:elsewhere}Notification is in the wrong namespace (expected t:Notification or m:Notification)",
    );
}

// ---------------------------------------------------------------- versions

#[test]
fn exchange2007_requires_watermarks_and_more_events() {
    let lean = notification(
        r#"<t:CreatedEvent><t:TimeStamp>2026-01-01T12:00:00Z</t:TimeStamp><t:ItemId Id="i"/><t:ParentFolderId Id="f"/></t:CreatedEvent>"#,
    );
    assert_clean(&lean, Response, "Exchange2010");
    let found = check(&lean, Response, "Exchange2007_SP1");
    let shown: Vec<String> = errors(&found).iter().map(|v| v.to_string()).collect();
    assert_eq!(shown.len(), 3, "{found:#?}");
    for expected in [
        "m:Notification: t:MoreEvents is missing (required by the Exchange2007_SP1 schema)",
        "m:Notification: t:PreviousWatermark is missing (required by the Exchange2007_SP1 schema)",
        "t:CreatedEvent: t:Watermark is missing (required by the Exchange2007_SP1 schema)",
    ] {
        assert!(
            shown.iter().any(|s| s.ends_with(expected)),
            "{expected}: {shown:#?}"
        );
    }
}

#[test]
fn exchange2007_requires_folder_ids_and_lacks_subscribe_to_all_folders() {
    let all = req(&format!(
        r#"<m:Subscribe><m:PullSubscriptionRequest SubscribeToAllFolders="true">{EVENTS}<t:Timeout>10</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>"#
    ));
    assert_clean(&all, Request, "Exchange2013");
    let old = all.replace("Exchange2013", "Exchange2007_SP1");
    let found = check(&old, Request, "Exchange2013");
    let shown: Vec<String> = errors(&found).iter().map(|v| v.to_string()).collect();
    assert_eq!(shown.len(), 2, "{found:#?}");
    assert!(shown.iter().any(|s| {
        s.contains("attribute SubscribeToAllFolders is not in the Exchange2007_SP1 schema")
    }));
    assert!(shown.iter().any(|s| s.contains("t:FolderIds is missing (required by the Exchange2007_SP1 schema)")));
}

#[test]
fn streaming_and_free_busy_need_exchange2010_sp1() {
    let streaming = req(&format!(
        "<m:Subscribe><m:StreamingSubscriptionRequest>{FOLDERS}{EVENTS}</m:StreamingSubscriptionRequest></m:Subscribe>"
    ));
    assert_clean(
        &streaming.replace("Exchange2013", "Exchange2010_SP1"),
        Request,
        "Exchange2007_SP1",
    );
    assert_single(
        &streaming.replace("Exchange2013", "Exchange2010"),
        Request,
        "Exchange2013",
        Rule::Unexpected,
        "m:StreamingSubscriptionRequest is not in the Exchange2010 schema (it was added in Exchange2010_SP1)",
    );
    let free_busy = pull(&format!(
        "{FOLDERS}<t:EventTypes><t:EventType>FreeBusyChangedEvent</t:EventType></t:EventTypes><t:Timeout>5</t:Timeout>"
    ));
    assert_clean(&free_busy, Request, "Exchange2007");
    assert_single(
        &free_busy.replace("Exchange2013", "Exchange2010"),
        Request,
        "Exchange2013",
        Rule::Enumeration,
        "FreeBusyChangedEvent is not in the Exchange2010 schema",
    );
    // Without a RequestServerVersion the caller's default decides.
    let bare = soap(
        "",
        "<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>s</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>",
    );
    assert_clean(&bare, Request, "Exchange2013");
    assert_single(
        &bare,
        Request,
        "Exchange2007_SP1",
        Rule::Unexpected,
        "m:GetStreamingEvents is not in the Exchange2007_SP1 schema",
    );
}

#[test]
fn caller_data_is_2013_only() {
    let push = req(&format!(
        "<m:Subscribe><m:PushSubscriptionRequest>{FOLDERS}{EVENTS}<t:StatusFrequency>30</t:StatusFrequency><t:URL>http://127.0.0.1:1/</t:URL><t:CallerData>abc</t:CallerData></m:PushSubscriptionRequest></m:Subscribe>"
    ));
    assert_clean(&push, Request, "Exchange2013");
    assert_single(
        &push.replace("Exchange2013", "Exchange2010_SP2"),
        Request,
        "Exchange2013",
        Rule::Unexpected,
        "t:CallerData is not in the Exchange2010_SP2 schema (it was added in Exchange2013)",
    );
}

#[test]
fn request_server_version_values() {
    let unsubscribe = "<m:Unsubscribe><m:SubscriptionId>a</m:SubscriptionId></m:Unsubscribe>";
    assert_single(
        &soap(
            r#"<t:RequestServerVersion Version="ExchangeFoo"/>"#,
            unsubscribe,
        ),
        Request,
        "Exchange2013",
        Rule::Enumeration,
        "t:RequestServerVersion/@Version: `ExchangeFoo` is not an ExchangeVersionType value",
    );
    assert_single(
        &soap("<t:RequestServerVersion/>", unsubscribe),
        Request,
        "Exchange2013",
        Rule::Attribute,
        "required attribute Version is missing",
    );
    // Other header blocks (TimeZoneContext from exchangelib) are not judged.
    assert_clean(
        &soap(
            r#"<t:RequestServerVersion Version="Exchange2013"/><t:TimeZoneContext><t:TimeZoneDefinition Id="UTC"/></t:TimeZoneContext>"#,
            unsubscribe,
        ),
        Request,
        "Exchange2013",
    );
}

// ------------------------------------------------------------- the frame

#[test]
fn frame_rules() {
    let text = format!(r#"<m:Unsubscribe xmlns:m="{}"/>"#, ns::MESSAGES);
    let doc = parse_document(&text).expect("well-formed");
    let found = validate_envelope(&doc, Request, "Exchange2013");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0]
            .message
            .contains("the root element is m:Unsubscribe, not soap:Envelope")
    );
    assert_single(
        &soap("", ""),
        Request,
        "Exchange2013",
        Rule::Missing,
        "soap:Body is empty",
    );
    let body_first = format!(
        r#"<soap:Envelope xmlns:soap="{}"><soap:Body><m:Unsubscribe xmlns:m="{}"><m:SubscriptionId>a</m:SubscriptionId></m:Unsubscribe></soap:Body><soap:Header/></soap:Envelope>"#,
        ns::SOAP,
        ns::MESSAGES
    );
    assert_single(
        &body_first,
        Request,
        "Exchange2013",
        Rule::Order,
        "Header must come before Body",
    );
    // Operations outside the grammar's scope pass the frame check.
    assert_clean(
        &req("<m:CreateItem><m:Items/></m:CreateItem>"),
        Request,
        "Exchange2013",
    );
    // A fault is a legal response body; a request is not.
    assert_clean(
        &SoapFault::client(ResponseCode::ErrorSchemaValidation, "bad").render(),
        Response,
        "Exchange2013",
    );
    assert_single(
        &req("<m:SubscribeResponse/>"),
        Request,
        "Exchange2013",
        Rule::Unexpected,
        "m:SubscribeResponse is a response body, not a request",
    );
}

/// The fault as Exchange writes it (the form of every fault example in
/// Microsoft's EWS reference): `xml:lang` on faultstring, an `e:` detail
/// with the response code, the message and a MessageXml with line and
/// position. A fault with a faultactor is legal too (SOAP 1.1).
#[test]
fn exchange_fault_forms_are_legal() {
    let fault = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="{soap}">
  <s:Body>
    <s:Fault>
      <faultcode xmlns:a="{types}">a:ErrorSchemaValidation</faultcode>
      <faultstring xml:lang="en-US">The request failed schema validation: The 'Id' attribute is invalid.</faultstring>
      <faultactor>https://mail.example.com/EWS/Exchange.asmx</faultactor>
      <detail>
        <e:ResponseCode xmlns:e="{errors}">ErrorSchemaValidation</e:ResponseCode>
        <e:Message xmlns:e="{errors}">The request failed schema validation.</e:Message>
        <t:MessageXml xmlns:t="{types}">
          <t:LineNumber>2</t:LineNumber>
          <t:LinePosition>630</t:LinePosition>
          <t:Violation>The 'Id' attribute is invalid.</t:Violation>
        </t:MessageXml>
      </detail>
    </s:Fault>
  </s:Body>
</s:Envelope>"#,
        soap = ns::SOAP,
        types = ns::TYPES,
        errors = ns::ERRORS,
    );
    assert_clean(&fault, Response, "Exchange2013");
    // Only the XML namespace's attributes are open on the fault parts.
    let foreign = fault.replace("xml:lang=\"en-US\"", "xmlns:q=\"urn:q\" q:lang=\"en\"");
    assert_single(
        &foreign,
        Response,
        "Exchange2013",
        Rule::Attribute,
        "attribute {urn:q}lang is not allowed on faultstring",
    );
}

#[test]
fn operations_validate_on_their_own() {
    let text = format!(
        r#"<m:GetEvents xmlns:m="{}"><m:SubscriptionId>s</m:SubscriptionId></m:GetEvents>"#,
        ns::MESSAGES
    );
    let doc = parse_document(&text).expect("well-formed");
    let found = validate_request(doc.root_element(), "Exchange2013");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].to_string(), "/m:GetEvents: m:Watermark is missing");
    let found = validate_response(doc.root_element(), "Exchange2013");
    assert_eq!(
        found[0].message,
        "m:GetEvents is a request body, not a response"
    );
    let text = format!(r#"<m:CreateItem xmlns:m="{}"/>"#, ns::MESSAGES);
    let doc = parse_document(&text).expect("well-formed");
    let found = validate_request(doc.root_element(), "Exchange2013");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].message.starts_with("{http://schemas.microsoft.com/exchange/services/2006/messages}CreateItem is not a notification request"));
}

#[test]
fn findings_are_bounded() {
    let junk = "<m:Junk/>".repeat(5 * MAX_VIOLATIONS);
    let found = check(
        &req(&format!("<m:Unsubscribe>{junk}</m:Unsubscribe>")),
        Request,
        "Exchange2013",
    );
    assert_eq!(found.len(), MAX_VIOLATIONS + 1);
    let last = found.last().expect("a final note");
    assert_eq!(last.severity, ViolationLevel::Note);
    assert!(last.message.contains("omitted"));
}

// ------------------------------------------------------------- seed documents

fn data(rel: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", "grammar", rel]
        .iter()
        .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn corrected_seed_examples_pass() {
    let cases: &[(&str, Direction, &str)] = &[
        ("valid/gse-request.xml", Request, "Exchange2007_SP1"),
        ("valid/gse-response.xml", Response, "Exchange2013"),
        ("valid/gse-error.xml", Response, "Exchange2010_SP1"),
        ("valid/gse-heartbeat.xml", Response, "Exchange2010_SP1"),
        ("valid/getevents-request.xml", Request, "Exchange2007_SP1"),
        ("valid/getevents-response.xml", Response, "Exchange2007_SP1"),
        ("valid/getevents-response.xml", Response, "Exchange2013"),
        ("valid/getevents-error.xml", Response, "Exchange2007_SP1"),
        (
            "valid/subscribe-pull-request.xml",
            Request,
            "Exchange2007_SP1",
        ),
        (
            "valid/subscribe-pull-response.xml",
            Response,
            "Exchange2007_SP1",
        ),
        ("valid/subscribe-error.xml", Response, "Exchange2007_SP1"),
        (
            "valid/subscribe-push-request.xml",
            Request,
            "Exchange2007_SP1",
        ),
        (
            "valid/subscribe-push-response.xml",
            Response,
            "Exchange2007_SP1",
        ),
    ];
    for (file, kind, version) in cases {
        let found = check(&data(file), *kind, version);
        assert!(errors(&found).is_empty(), "{file} ({version}): {found:#?}");
    }
    // The streaming sample uses m:Notification: recorded, not failed.
    let found = check(&data("valid/gse-response.xml"), Response, "Exchange2013");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].severity, ViolationLevel::Note);
}

#[test]
fn defective_seed_examples_fail_for_the_documented_reason() {
    // (file, direction, first error's rule, text it must contain)
    let cases: &[(&str, Direction, Rule, &str)] = &[
        (
            "defective/gse-request-m-subscriptionid.xml",
            Request,
            Rule::Namespace,
            "m:SubscriptionIds/t:SubscriptionId: element {http://schemas.microsoft.com/exchange/services/2006/messages}SubscriptionId is in the wrong namespace (did you mean http://schemas.microsoft.com/exchange/services/2006/types?)",
        ),
        (
            "defective/gse-error-order.xml",
            Response,
            Rule::Order,
            "m:GetStreamingEventsResponseMessage: ResponseCode must come before DescriptiveLinkKey",
        ),
        (
            "defective/gse-request-2010-https.xml",
            Request,
            Rule::Namespace,
            "/soap:Envelope: element {https://schemas.xmlsoap.org/soap/envelope/}Envelope is in the wrong namespace (did you mean http://schemas.xmlsoap.org/soap/envelope/?)",
        ),
        (
            "defective/gse-request-2010-shape.xml",
            Request,
            Rule::Unexpected,
            "m:GetStreamingEvents/m:SubscriptionId: element {http://schemas.microsoft.com/exchange/services/2006/messages}SubscriptionId is not allowed here",
        ),
        (
            "defective/getevents-request-https.xml",
            Request,
            Rule::Namespace,
            "m:GetEvents: element {https://schemas.microsoft.com/exchange/services/2006/messages}GetEvents is in the wrong namespace (did you mean http://schemas.microsoft.com/exchange/services/2006/messages?)",
        ),
        (
            "defective/subscribe-push-no-namespace.xml",
            Request,
            Rule::Namespace,
            "m:Subscribe: element Subscribe (in no namespace) is in the wrong namespace (did you mean http://schemas.microsoft.com/exchange/services/2006/messages?)",
        ),
        (
            "defective/subscribe-pull-https.xml",
            Request,
            Rule::Namespace,
            "m:Subscribe: element {https://schemas.microsoft.com/exchange/services/2006/messages}Subscribe is in the wrong namespace (did you mean http://schemas.microsoft.com/exchange/services/2006/messages?)",
        ),
    ];
    for (file, kind, rule, text) in cases {
        let found = check(&data(file), *kind, "Exchange2013");
        let errs = errors(&found);
        let first = errs.first().unwrap_or_else(|| panic!("{file} passed"));
        assert_eq!(first.rule, *rule, "{file}: {first}");
        assert!(first.to_string().contains(text), "{file}: {first}");
    }
    // The pre-release shape also lacks SubscriptionIds.
    let found = check(
        &data("defective/gse-request-2010-shape.xml"),
        Request,
        "Exchange2013",
    );
    assert!(
        found
            .iter()
            .any(|v| v.rule == Rule::Missing && v.message == "m:SubscriptionIds is missing")
    );
    assert_eq!(errors(&found).len(), 2, "{found:#?}");
}

#[test]
fn malformed_seed_examples_are_not_xml() {
    for file in [
        "defective/gse-response-no-envelope.xml",
        "defective/gse-error-unclosed.xml",
    ] {
        assert!(parse_document(&data(file)).is_err(), "{file} parsed");
    }
}

// ------------------------------------------ the crate's renderers agree

fn render_request(body: impl FnOnce(&mut XmlWriter)) -> String {
    envelope::request(
        &RequestHeader {
            version: Some("Exchange2013".into()),
            impersonate: Some("user@example.test".into()),
        },
        body,
    )
}

fn render_response(body: impl FnOnce(&mut XmlWriter)) -> String {
    envelope::response(
        EnvelopeStyle::Unprefixed,
        &ServerVersionInfo::default(),
        body,
    )
}

fn sample_notification() -> Notification {
    let item = |id: &str| ObjectId::Item(Id::with_change_key(id, "ck"));
    let mut events = Vec::new();
    for kind in EventKind::ALL {
        let mut e = Event::status(Some(format!("w-{kind}")));
        e.kind = kind;
        if kind != EventKind::Status {
            e.timestamp = Some("2026-01-01T12:00:00Z".into());
            e.object = Some(item("i1"));
            e.parent_folder_id = Some(Id::new("f1"));
        }
        if kind.has_old_location() {
            e.old_object = Some(item("i0"));
            e.old_parent_folder_id = Some(Id::new("f0"));
        }
        if kind == EventKind::Modified {
            e.unread_count = Some(3);
        }
        events.push(e);
    }
    Notification {
        subscription_id: "s1".into(),
        previous_watermark: Some("w0".into()),
        more_events: Some(false),
        events,
    }
}

#[test]
fn rendered_requests_pass() {
    let kinds = [
        SubscriptionKind::Pull { timeout: 10 },
        SubscriptionKind::Push {
            status_frequency: Some(1),
            url: "http://127.0.0.1:1/push".into(),
            caller_data: Some("c".into()),
        },
        SubscriptionKind::Streaming,
    ];
    let scopes = [
        FolderScope::Listed(vec![
            FolderRef::distinguished("inbox"),
            FolderRef::Distinguished {
                id: "drafts".into(),
                mailbox: Some("user@example.test".into()),
            },
            FolderRef::Id(Id::with_change_key("f1", "ck")),
        ]),
        FolderScope::AllFolders,
        FolderScope::Unspecified,
    ];
    for kind in &kinds {
        for scope in &scopes {
            let streaming = matches!(kind, SubscriptionKind::Streaming);
            let request = SubscribeRequest {
                kind: kind.clone(),
                scope: scope.clone(),
                event_types: EventKind::ALL
                    .into_iter()
                    .filter(|k| k.subscribable())
                    .collect(),
                watermark: (!streaming).then(|| "w1".to_string()),
            };
            let xml = render_request(|w| request.render(w));
            assert_clean(&xml, Request, "Exchange2007");
        }
    }
    let bodies = [
        render_request(|w| {
            GetEventsRequest {
                subscription_id: "s".into(),
                watermark: "w".into(),
            }
            .render(w)
        }),
        render_request(|w| {
            GetStreamingEventsRequest {
                subscription_ids: vec!["a".into(), "b".into()],
                connection_timeout: 30,
            }
            .render(w)
        }),
        render_request(|w| {
            UnsubscribeRequest {
                subscription_id: "s".into(),
            }
            .render(w)
        }),
        render_request(|w| SubscriptionStatus::Unsubscribe.render_result(w)),
    ];
    for xml in bodies {
        assert_clean(&xml, Request, "Exchange2007");
    }
}

#[test]
fn rendered_responses_pass() {
    let mut error = ResponseMessage::error(ResponseCode::ErrorServerBusy, "busy");
    error.message_xml = Some(format!(
        r#"<t:Value xmlns:t="{}" Name="BackOffMilliseconds">100</t:Value>"#,
        ns::TYPES
    ));
    let bodies = [
        render_response(|w| {
            SubscribeResponse {
                message: ResponseMessage::success(),
                subscription_id: Some("s".into()),
                watermark: Some("w".into()),
            }
            .render(w)
        }),
        render_response(|w| {
            SubscribeResponse {
                message: error.clone(),
                subscription_id: None,
                watermark: None,
            }
            .render(w)
        }),
        render_response(|w| {
            GetEventsResponse {
                message: ResponseMessage::success(),
                notification: Some(sample_notification()),
            }
            .render(w)
        }),
        render_response(|w| {
            UnsubscribeResponse {
                message: ResponseMessage::success(),
            }
            .render(w)
        }),
        render_response(|w| {
            SendNotification {
                message: ResponseMessage::success(),
                notification: Some(sample_notification()),
            }
            .render(w)
        }),
    ];
    for xml in bodies {
        let found = check(&xml, Response, "Exchange2013");
        assert!(found.is_empty(), "{found:#?}\n{xml}");
    }
    for element in ["t:Notification", "m:Notification"] {
        let xml = render_response(|w| {
            GetStreamingEventsResponse {
                message: ResponseMessage::error(ResponseCode::ErrorInvalidSubscription, "gone"),
                notifications: vec![sample_notification()],
                error_subscription_ids: vec!["bad".into()],
                connection_status: Some(ConnectionStatus::Closed),
            }
            .render(w, element)
        });
        let found = check(&xml, Response, "Exchange2013");
        assert!(errors(&found).is_empty(), "{found:#?}\n{xml}");
        // One note for the Notification, one for ErrorSubscriptionIds/t:SubscriptionId.
        assert_eq!(found.len(), 2, "{found:#?}");
    }
}

/// A server that writes the messages namespace as the default must undeclare
/// it (`xmlns=""`) on the fault's parts, which are in no namespace.
#[test]
fn fault_parts_under_an_undeclared_default_namespace() {
    let fault = format!(
        r#"<Envelope xmlns="{soap}"><Body><Fault><faultcode xmlns="" xmlns:a="{types}">a:ErrorSchemaValidation</faultcode><faultstring xmlns="">bad</faultstring><detail xmlns=""><ResponseCode xmlns="{errors}">ErrorSchemaValidation</ResponseCode></detail></Fault></Body></Envelope>"#,
        soap = ns::SOAP,
        types = ns::TYPES,
        errors = ns::ERRORS,
    );
    assert_clean(&fault, Response, "Exchange2013");
    let doc = parse_document(&fault).expect("well-formed");
    let node = doc
        .descendants()
        .find(|n| n.tag_name().name() == "Fault")
        .expect("has a fault");
    assert_eq!(SoapFault::parse(node).fault_string, "bad");
}

/// A request outside its version's schema can only be refused with the
/// operation's response element (or a fault): in an Error answer the
/// version gate is a note, in a success it stays an error.
#[test]
fn an_error_answer_may_use_an_element_newer_than_the_request() {
    let answer = |class: &str| {
        format!(
            r#"<s:Envelope xmlns:s="{soap}"><s:Body><m:GetStreamingEventsResponse xmlns:m="{m}"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="{class}"><m:ResponseCode>{code}</m:ResponseCode></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></s:Body></s:Envelope>"#,
            soap = ns::SOAP,
            m = ns::MESSAGES,
            code = if class == "Error" {
                "ErrorSchemaValidation"
            } else {
                "NoError"
            },
        )
    };
    assert_clean(&answer("Error"), Response, "Exchange2010");
    let found = check(&answer("Error"), Response, "Exchange2010");
    assert!(
        found
            .iter()
            .any(|v| !v.is_error() && v.message.contains("not in the Exchange2010 schema"))
    );
    assert_single(
        &answer("Success"),
        Response,
        "Exchange2010",
        Rule::Unexpected,
        "not in the Exchange2010 schema",
    );
}
