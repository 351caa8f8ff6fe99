//! Pins the grammar's exact output — every finding's path, rule, message and
//! severity — over a varied corpus of valid and defective documents, in both
//! directions and several schema versions. The snapshots were taken before
//! the checker's walk was optimised; they must never change unless the
//! grammar's judgement itself is meant to change.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ews_proto::ews::envelope::{self, EnvelopeStyle, RequestHeader, ServerVersionInfo};
use ews_proto::ews::grammar::{
    Direction, Violation, ViolationLevel, validate_envelope, validate_request, validate_response,
};
use ews_proto::ews::{
    ConnectionStatus, Event, EventKind, GetEventsResponse, GetStreamingEventsResponse, Id,
    Notification, ObjectId, ResponseCode, ResponseMessage, SendNotification,
};
use ews_proto::xml::{ns, parse_document};

use Direction::{Request, Response};

const VERSIONS: &[&str] = &[
    "Exchange2007_SP1",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2013",
    "NotAVersion",
];

fn line(v: &Violation) -> String {
    let sev = match v.severity {
        ViolationLevel::Error => "E",
        ViolationLevel::Note => "N",
    };
    format!("  [{sev}] {} {:?} {:?}", v.rule, v.path, v.message)
}

fn direction(d: Direction) -> &'static str {
    match d {
        Request => "request",
        Response => "response",
    }
}

/// Appends the findings for `xml` in each direction and version; versions
/// with the same findings share one heading.
fn record(out: &mut String, name: &str, xml: &str, directions: &[Direction], versions: &[&str]) {
    let doc = match parse_document(xml) {
        Ok(doc) => doc,
        Err(e) => {
            let _ = writeln!(out, "== {name}: not XML ({e})");
            return;
        }
    };
    for &d in directions {
        let mut groups: Vec<(Vec<&str>, Vec<Violation>)> = Vec::new();
        for &v in versions {
            let found = validate_envelope(&doc, d, v);
            match groups.iter_mut().find(|(_, f)| *f == found) {
                Some((vs, _)) => vs.push(v),
                None => groups.push((vec![v], found)),
            }
        }
        for (vs, found) in groups {
            let _ = writeln!(
                out,
                "== {name} | {} | {} | {} finding(s)",
                direction(d),
                vs.join(","),
                found.len()
            );
            for f in &found {
                let _ = writeln!(out, "{}", line(f));
            }
        }
    }
}

fn soap(header: &str, body: &str) -> String {
    format!(
        r#"<soap:Envelope xmlns:soap="{}" xmlns:m="{}" xmlns:t="{}" xmlns:xsi="{}"><soap:Header>{header}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"#,
        ns::SOAP,
        ns::MESSAGES,
        ns::TYPES,
        ns::XSI,
    )
}

fn req(body: &str) -> String {
    soap(r#"<t:RequestServerVersion Version="Exchange2013"/>"#, body)
}

fn resp(body: &str) -> String {
    soap(
        r#"<t:ServerVersionInfo MajorVersion="15" MinorVersion="0" MajorBuildNumber="1497" MinorBuildNumber="2" Version="V2_23"/>"#,
        body,
    )
}

const FOLDERS: &str = r#"<t:FolderIds><t:DistinguishedFolderId Id="inbox"/></t:FolderIds>"#;
const EVENTS: &str = "<t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes>";

fn pull(inner: &str) -> String {
    req(&format!(
        "<m:Subscribe><m:PullSubscriptionRequest>{inner}</m:PullSubscriptionRequest></m:Subscribe>"
    ))
}

fn push(inner: &str) -> String {
    req(&format!(
        "<m:Subscribe><m:PushSubscriptionRequest>{inner}</m:PushSubscriptionRequest></m:Subscribe>"
    ))
}

fn created(n: usize) -> String {
    format!(
        r#"<t:CreatedEvent><t:Watermark>w{n}</t:Watermark><t:TimeStamp>2026-01-01T12:00:00Z</t:TimeStamp><t:ItemId Id="i{n}" ChangeKey="c"/><t:ParentFolderId Id="f"/></t:CreatedEvent>"#
    )
}

fn notification(events: &str) -> String {
    format!(
        "<m:Notification><t:SubscriptionId>s</t:SubscriptionId><t:PreviousWatermark>w0</t:PreviousWatermark><t:MoreEvents>false</t:MoreEvents>{events}</m:Notification>"
    )
}

fn getevents(message: &str) -> String {
    resp(&format!(
        "<m:GetEventsResponse><m:ResponseMessages>{message}</m:ResponseMessages></m:GetEventsResponse>"
    ))
}

fn getevents_ok(events: &str) -> String {
    getevents(&format!(
        r#"<m:GetEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>{}</m:GetEventsResponseMessage>"#,
        notification(events)
    ))
}

fn gse(inner: &str) -> String {
    resp(&format!(
        r#"<m:GetStreamingEventsResponse><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>{inner}</m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse>"#
    ))
}

/// Hand-made documents, each breaking (or carefully not breaking) something.
fn handwritten() -> Vec<(String, String)> {
    let mut docs: Vec<(&str, String)> = Vec::new();
    let mut add = |name: &'static str, xml: String| docs.push((name, xml));

    // ---- requests
    let timeout = "<t:Timeout>10</t:Timeout>";
    add("pull-valid", pull(&format!("{FOLDERS}{EVENTS}{timeout}")));
    add(
        "pull-wrong-op-namespace",
        req(&format!(
            r#"<x:Subscribe xmlns:x="https://schemas.microsoft.com/exchange/services/2006/messages"><m:PullSubscriptionRequest>{FOLDERS}{EVENTS}{timeout}</m:PullSubscriptionRequest></x:Subscribe>"#
        )),
    );
    add(
        "pull-request-in-types",
        req(&format!(
            "<m:Subscribe><t:PullSubscriptionRequest>{FOLDERS}{EVENTS}{timeout}</t:PullSubscriptionRequest></m:Subscribe>"
        )),
    );
    add(
        "pull-unknown-repeated",
        pull(&format!(
            "<m:Bogus/>{FOLDERS}<m:Bogus/><t:Other/>{EVENTS}<m:Bogus>x</m:Bogus>{timeout}<x:Y xmlns:x=\"urn:x\"/><x:Y xmlns:x=\"urn:x\"/><Z/>"
        )),
    );
    add(
        "pull-repeated-eventtypes",
        pull(&format!("{FOLDERS}{EVENTS}{EVENTS}{EVENTS}{timeout}")),
    );
    add(
        "pull-repeated-folderids-and-timeouts",
        pull(&format!("{FOLDERS}{FOLDERS}{EVENTS}{timeout}{timeout}")),
    );
    for (name, value) in [
        ("pull-timeout-abc", "abc"),
        ("pull-timeout-zero", "0"),
        ("pull-timeout-huge", "99999999999"),
        ("pull-timeout-padded", " 5 "),
        ("pull-timeout-plus", "+5"),
        ("pull-timeout-minus-zero", "-0"),
        ("pull-timeout-1441", "1441"),
        ("pull-timeout-empty", ""),
        ("pull-timeout-comment-split", "1<!-- c -->0"),
        ("pull-timeout-cdata", "<![CDATA[12]]>"),
        ("pull-timeout-entity", "&#49;0"),
        ("pull-timeout-element", "<t:Value>5</t:Value>"),
        ("pull-timeout-mixed", "5<t:Value/>6"),
    ] {
        add(
            name,
            pull(&format!("{FOLDERS}{EVENTS}<t:Timeout>{value}</t:Timeout>")),
        );
    }
    for (name, attr) in [
        ("pull-all-folders-true", r#"SubscribeToAllFolders="true""#),
        ("pull-all-folders-one", r#"SubscribeToAllFolders="1""#),
        ("pull-all-folders-yes", r#"SubscribeToAllFolders="yes""#),
        ("pull-bogus-attribute", r#"Bogus="1" Other="2""#),
        ("pull-xsi-attribute", r#"xsi:type="m:X""#),
        ("pull-foreign-attribute", r#"xmlns:q="urn:q" q:flag="1""#),
        ("pull-soap-attribute", r#"soap:mustUnderstand="1""#),
    ] {
        add(
            name,
            req(&format!(
                "<m:Subscribe><m:PullSubscriptionRequest {attr}>{EVENTS}{timeout}</m:PullSubscriptionRequest></m:Subscribe>"
            )),
        );
    }
    add("pull-missing-everything", pull(""));
    add(
        "pull-missing-eventtypes",
        pull(&format!("{FOLDERS}{timeout}")),
    );
    add(
        "pull-out-of-order",
        pull(&format!(
            "{timeout}{EVENTS}<t:Watermark>w</t:Watermark>{FOLDERS}"
        )),
    );
    add(
        "pull-text-everywhere",
        pull(&format!(
            "hello<t:FolderIds>there<t:DistinguishedFolderId Id=\"inbox\">more<t:Mailbox>inside</t:Mailbox></t:DistinguishedFolderId></t:FolderIds><t:EventTypes>x<t:EventType>NewMailEvent</t:EventType>y</t:EventTypes>{timeout}tail"
        )),
    );
    add(
        "pull-long-text",
        pull(&format!(
            "{EVENTS}{timeout}ÄÖÜ-äöü-ß-日本語のテキストはとても長いのでここで切られるはずですよね、たぶん"
        )),
    );
    add(
        "pull-folders",
        pull(&format!(
            r#"<t:FolderIds><t:DistinguishedFolderId Id="Inbox"/><t:DistinguishedFolderId/><t:DistinguishedFolderId Id="nowhere" ChangeKey="c" Bad="b"/><t:FolderId/><t:FolderId Id="f" ChangeKey="k" Extra="e">text<t:Child/></t:FolderId><t:FolderId Id="g"><t:Child/><t:Child/></t:FolderId><t:DistinguishedFolderId Id="drafts"><t:Mailbox><t:EmailAddress></t:EmailAddress><t:MailboxType>Bad</t:MailboxType><t:ItemId/><t:RoutingType>SMTP</t:RoutingType><t:Name>n</t:Name></t:Mailbox><t:Mailbox/></t:DistinguishedFolderId></t:FolderIds>{EVENTS}{timeout}"#
        )),
    );
    add(
        "pull-event-types",
        pull(&format!(
            "<t:EventTypes><t:EventType>StatusEvent</t:EventType><t:EventType>FreeBusyChangedEvent</t:EventType><t:EventType>newmailevent</t:EventType><t:EventType></t:EventType><t:EventType> NewMailEvent </t:EventType><t:EventType>Nope</t:EventType><m:EventType>CreatedEvent</m:EventType></t:EventTypes>{timeout}"
        )),
    );
    add(
        "pull-empty-eventtypes",
        pull(&format!("<t:EventTypes/>{timeout}")),
    );
    add(
        "push-valid-with-caller-data",
        push(&format!(
            "{FOLDERS}{EVENTS}<t:Watermark>w</t:Watermark><t:StatusFrequency>1</t:StatusFrequency><t:URL>http://127.0.0.1:1/</t:URL><t:CallerData>c</t:CallerData>"
        )),
    );
    add(
        "push-defects",
        push(&format!(
            "{EVENTS}<t:Watermark></t:Watermark><t:StatusFrequency>0</t:StatusFrequency><t:CallerData>c</t:CallerData>"
        )),
    );
    add(
        "streaming-subscribe",
        req(&format!(
            r#"<m:Subscribe><m:StreamingSubscriptionRequest SubscribeToAllFolders="false">{EVENTS}</m:StreamingSubscriptionRequest></m:Subscribe>"#
        )),
    );
    add(
        "streaming-subscribe-2007-header",
        soap(
            r#"<t:RequestServerVersion Version="Exchange2007"/>"#,
            &format!(
                "<m:Subscribe><m:StreamingSubscriptionRequest>{FOLDERS}{EVENTS}</m:StreamingSubscriptionRequest></m:Subscribe>"
            ),
        ),
    );
    add(
        "pull-and-push-together",
        req(&format!(
            "<m:Subscribe><m:PullSubscriptionRequest>{EVENTS}{timeout}</m:PullSubscriptionRequest><m:PushSubscriptionRequest>{EVENTS}<t:StatusFrequency>1</t:StatusFrequency><t:URL>u</t:URL></m:PushSubscriptionRequest><m:PullSubscriptionRequest>{EVENTS}{timeout}</m:PullSubscriptionRequest></m:Subscribe>"
        )),
    );
    add("subscribe-empty", req("<m:Subscribe/>"));
    add(
        "getevents-defects",
        req(
            "<m:GetEvents><t:SubscriptionId>s</t:SubscriptionId><m:SubscriptionId></m:SubscriptionId></m:GetEvents>",
        ),
    );
    add(
        "getevents-valid",
        req(
            "<m:GetEvents><m:SubscriptionId>s</m:SubscriptionId><m:Watermark>w</m:Watermark></m:GetEvents>",
        ),
    );
    let many_ids: String = (0..20)
        .map(|i| {
            if i % 7 == 3 {
                format!("<m:SubscriptionId>m{i}</m:SubscriptionId>")
            } else if i % 5 == 4 {
                "<t:SubscriptionId/>".to_string()
            } else {
                format!("<t:SubscriptionId>s{i}</t:SubscriptionId>")
            }
        })
        .collect();
    add(
        "gse-request-wide",
        req(&format!(
            "<m:GetStreamingEvents><m:SubscriptionIds>{many_ids}<t:Other/></m:SubscriptionIds><m:ConnectionTimeout>31</m:ConnectionTimeout></m:GetStreamingEvents>"
        )),
    );
    add(
        "gse-request-empty-ids",
        req(
            "<m:GetStreamingEvents><m:SubscriptionIds/><m:ConnectionTimeout>30</m:ConnectionTimeout><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>",
        ),
    );
    add(
        "unsubscribe-two-ids",
        req(
            "<m:Unsubscribe><m:SubscriptionId>a</m:SubscriptionId><m:SubscriptionId>b</m:SubscriptionId></m:Unsubscribe>",
        ),
    );
    add(
        "send-notification-result",
        req(
            "<m:SendNotificationResult><m:SubscriptionStatus>ok</m:SubscriptionStatus></m:SendNotificationResult>",
        ),
    );
    for (name, header) in [
        (
            "rsv-unknown",
            r#"<t:RequestServerVersion Version="Exchange2099"/>"#,
        ),
        ("rsv-missing-version", r#"<t:RequestServerVersion/>"#),
        (
            "rsv-extra",
            r#"<t:RequestServerVersion Version="exchange2010" Bogus="1">text<t:Kid/></t:RequestServerVersion>"#,
        ),
        (
            "rsv-messages-ns",
            r#"<m:RequestServerVersion Version="Exchange2007"/>"#,
        ),
        (
            "rsv-twice",
            r#"<t:RequestServerVersion Version="Exchange2007"/><t:RequestServerVersion Version="Exchange2013"/>"#,
        ),
        (
            "header-mixed",
            r#"some text<x:Security xmlns:x="urn:x"><x:Deep><x:Deeper/></x:Deep></x:Security><t:ExchangeImpersonation/><t:ServerVersionInfo MajorVersion="x" Version="V2" Odd="o"/>"#,
        ),
        (
            "sv-info-wrong-ns",
            r#"<m:ServerVersionInfo MajorVersion="15" MinorVersion="-1" MajorBuildNumber="2147483648" MinorBuildNumber=" 3 "/>"#,
        ),
    ] {
        add(
            name,
            soap(
                header,
                &format!(
                    "<m:Subscribe><m:StreamingSubscriptionRequest>{EVENTS}</m:StreamingSubscriptionRequest></m:Subscribe>"
                ),
            ),
        );
    }

    // ---- frame
    add("body-empty", soap("", ""));
    add("body-text", soap("", "just text"));
    add(
        "body-two-ops",
        soap(
            "",
            "<m:Unsubscribe><m:SubscriptionId>a</m:SubscriptionId></m:Unsubscribe><m:GetEvents/>",
        ),
    );
    add(
        "envelope-extras",
        format!(
            r#"<soap:Envelope xmlns:soap="{}" xmlns:m="{}">text<soap:Body><m:Unsubscribe><m:SubscriptionId>a</m:SubscriptionId></m:Unsubscribe></soap:Body><soap:Header/><soap:Body/><x:Trailer xmlns:x="urn:x"/><x:Trailer xmlns:x="urn:x"/><soap:Other/><Plain/></soap:Envelope>"#,
            ns::SOAP,
            ns::MESSAGES
        ),
    );
    add(
        "envelope-no-body",
        format!(
            r#"<soap:Envelope xmlns:soap="{}"><soap:Header/></soap:Envelope>"#,
            ns::SOAP
        ),
    );
    add(
        "envelope-wrong-ns",
        r#"<soap:Envelope xmlns:soap="https://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>"#
            .to_string(),
    );
    add(
        "envelope-soap12",
        r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body/></s:Envelope>"#
            .to_string(),
    );
    add("root-not-envelope", "<Body><Thing/></Body>".to_string());
    add(
        "root-not-envelope-ns",
        format!(r#"<m:GetEvents xmlns:m="{}"/>"#, ns::MESSAGES),
    );
    add(
        "unknown-messages-op",
        req("<m:CreateItem><t:Items/></m:CreateItem>"),
    );
    add(
        "unknown-foreign-op",
        req(r#"<x:Frob xmlns:x="urn:x"><x:Inner/></x:Frob>"#),
    );
    add("unknown-plain-op", req("<Frob/>"));
    add(
        "op-in-types-ns",
        req(
            "<t:GetEvents><m:SubscriptionId>s</m:SubscriptionId><m:Watermark>w</m:Watermark></t:GetEvents>",
        ),
    );
    add(
        "op-in-no-ns",
        req("<GetEvents><SubscriptionId>s</SubscriptionId><Watermark>w</Watermark></GetEvents>"),
    );
    let mut deep = String::new();
    for i in 0..40 {
        let _ = write!(deep, "<x:D{i} xmlns:x=\"urn:d\">");
    }
    for i in (0..40).rev() {
        let _ = write!(deep, "</x:D{i}>");
    }
    add(
        "deep-nesting",
        resp(&format!(
            r#"<m:GetEventsResponse><m:ResponseMessages><m:GetEventsResponseMessage ResponseClass="Error"><m:MessageText>t</m:MessageText><m:ResponseCode>ErrorInternalServerError</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:MessageXml>{deep}</m:MessageXml>{deep}</m:GetEventsResponseMessage></m:ResponseMessages></m:GetEventsResponse>"#
        )),
    );
    add("deep-nesting-in-header", soap(&deep, "<m:GetEvents/>"));

    // ---- responses
    let all_events = format!(
        r#"{}<t:CopiedEvent><t:Watermark>w</t:Watermark><t:TimeStamp>2026-01-01T12:00:00Z</t:TimeStamp><t:FolderId Id="f"/><t:ParentFolderId Id="p"/><t:OldFolderId Id="o"/><t:OldParentFolderId Id="op"/></t:CopiedEvent><t:ModifiedEvent><t:TimeStamp>2026-01-01T12:00:00.123+02:00</t:TimeStamp><t:ItemId Id="i"/><t:ParentFolderId Id="p"/><t:UnreadCount>3</t:UnreadCount></t:ModifiedEvent><t:StatusEvent><t:Watermark>w</t:Watermark></t:StatusEvent><t:FreeBusyChangedEvent><t:TimeStamp>2026-01-01T12:00:00Z</t:TimeStamp><t:ItemId Id="i"/><t:ParentFolderId Id="p"/></t:FreeBusyChangedEvent>"#,
        created(1)
    );
    add("getevents-all-events", getevents_ok(&all_events));
    add(
        "getevents-event-defects",
        getevents_ok(
            r#"<t:CreatedEvent><t:ItemId Id="i"/><t:ParentFolderId Id="p"/></t:CreatedEvent><t:DeletedEvent><t:TimeStamp>yesterday</t:TimeStamp><t:ItemId Id="i"/><t:FolderId Id="f"/><t:ParentFolderId Id="p"/></t:DeletedEvent><t:MovedEvent><t:TimeStamp>2026-13-01T00:00:00Z</t:TimeStamp><t:ItemId Id="i"/><t:ParentFolderId Id="p"/></t:MovedEvent><t:ModifiedEvent><t:TimeStamp>2026-01-01T12:00:00Z</t:TimeStamp><t:ItemId Id="i"/><t:ParentFolderId Id="p"/><t:UnreadCount>x</t:UnreadCount></t:ModifiedEvent><t:StatusEvent><t:TimeStamp>2026-01-01T12:00:00Z</t:TimeStamp></t:StatusEvent><t:UnknownEvent/><m:NewMailEvent><t:TimeStamp>2026-01-01T12:00:00Z</t:TimeStamp><t:ItemId Id="i"/><t:ParentFolderId Id="p"/></m:NewMailEvent><t:NewMailEvent><t:ParentFolderId Id="p"/><t:TimeStamp>2026-01-01T12:00:00Z</t:TimeStamp><t:ItemId Id="i"/><t:Watermark>w</t:Watermark></t:NewMailEvent>"#,
        ),
    );
    let wide: String = (1..=30)
        .map(|i| match i {
            3 => r#"<t:CreatedEvent><t:TimeStamp>bad</t:TimeStamp><t:ItemId Id="x"/><t:ParentFolderId Id="f"/></t:CreatedEvent>"#.to_string(),
            17 => r#"<t:CreatedEvent><t:TimeStamp>2026-01-01T12:00:00Z</t:TimeStamp><t:ItemId/><t:ParentFolderId Id="f"/></t:CreatedEvent>"#.to_string(),
            20 => "<t:StatusEvent>oops</t:StatusEvent>".to_string(),
            25 => "<t:StatusEvent/>".to_string(),
            _ => created(i),
        })
        .collect();
    add("getevents-wide-30", getevents_ok(&wide));
    let wide16: String = (1..=16).map(created).collect();
    add(
        "getevents-wide-16",
        getevents_ok(&format!("{wide16}<t:Bad/>")),
    );
    let wide17: String = (1..=17).map(created).collect();
    add(
        "getevents-wide-17",
        getevents_ok(&format!("{wide17}<t:Bad/><t:Bad/>")),
    );
    add(
        "getevents-notification-defects",
        getevents(
            r#"<m:GetEventsResponseMessage ResponseClass="Fine"><m:ResponseCode>Bogus</m:ResponseCode><m:Notification><t:MoreEvents>1</t:MoreEvents><t:PreviousWatermark/></m:Notification></m:GetEventsResponseMessage><m:GetEventsResponseMessage><m:ResponseCode>Error</m:ResponseCode><m:DescriptiveLinkKey>x</m:DescriptiveLinkKey></m:GetEventsResponseMessage><m:GetEventsResponseMessage ResponseClass="Error"><m:ResponseCode>ErrorFoo!</m:ResponseCode><m:MessageText>why</m:MessageText></m:GetEventsResponseMessage><m:SubscribeResponseMessage ResponseClass="Success"/>"#,
        ),
    );
    add(
        "getevents-2007-shapes",
        getevents(
            r#"<m:GetEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notification><t:SubscriptionId>s</t:SubscriptionId><t:NewMailEvent><t:TimeStamp>2026-01-01T12:00:00Z</t:TimeStamp><t:ItemId Id="i"/><t:ParentFolderId Id="p"/></t:NewMailEvent><t:StatusEvent/></m:Notification></m:GetEventsResponseMessage>"#,
        ),
    );
    add("getevents-no-messages", resp("<m:GetEventsResponse/>"));
    add(
        "getevents-empty-messages",
        resp("<m:GetEventsResponse><m:ResponseMessages/></m:GetEventsResponse>"),
    );
    for (name, element) in [("gse-notification-t", "t"), ("gse-notification-m", "m")] {
        let events = created(1);
        add(
            name,
            gse(&format!(
                "<m:Notifications><{element}:Notification><t:SubscriptionId>s</t:SubscriptionId>{events}</{element}:Notification><{element}:Notification><t:SubscriptionId>s2</t:SubscriptionId>{events}</{element}:Notification></m:Notifications><m:ErrorSubscriptionIds><{element}:SubscriptionId>bad</{element}:SubscriptionId></m:ErrorSubscriptionIds><m:ConnectionStatus>OK</m:ConnectionStatus>"
            )),
        );
    }
    add(
        "gse-defects",
        gse(&format!(
            r#"<m:Notifications><x:Notification xmlns:x="urn:x"><t:SubscriptionId>s</t:SubscriptionId>{}</x:Notification><Notification/></m:Notifications><m:ErrorSubscriptionIds/><m:ConnectionStatus>open</m:ConnectionStatus><m:ConnectionStatus>OK</m:ConnectionStatus>"#,
            created(1)
        )),
    );
    add(
        "send-notification",
        resp(&format!(
            r#"<m:SendNotification><m:ResponseMessages><m:SendNotificationResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>{}</m:SendNotificationResponseMessage><m:SendNotificationResponseMessage ResponseClass="Success"/></m:ResponseMessages></m:SendNotification>"#,
            notification(&created(1))
        )),
    );
    add(
        "subscribe-response",
        resp(
            r#"<m:SubscribeResponse><m:ResponseMessages><m:SubscribeResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Watermark>w</m:Watermark><m:SubscriptionId>s</m:SubscriptionId><t:Watermark>t</t:Watermark></m:SubscribeResponseMessage></m:ResponseMessages></m:SubscribeResponse>"#,
        ),
    );
    add(
        "unsubscribe-response",
        resp(
            r#"<m:UnsubscribeResponse><m:ResponseMessages><m:UnsubscribeResponseMessage ResponseClass="Warning"><m:ResponseCode>NoError</m:ResponseCode><m:SubscriptionId>s</m:SubscriptionId></m:UnsubscribeResponseMessage></m:ResponseMessages></m:UnsubscribeResponse>"#,
        ),
    );
    add(
        "fault-valid",
        resp(
            r#"<soap:Fault><faultcode>soap:Client</faultcode><faultstring xml:lang="en-US">bad</faultstring><faultactor>x</faultactor><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorSchemaValidation</e:ResponseCode></detail></soap:Fault>"#,
        ),
    );
    add(
        "fault-defects",
        resp(
            r#"<soap:Fault><soap:faultcode></soap:faultcode><detail/><faultactor/><faultactor/></soap:Fault>"#,
        ),
    );
    add(
        "fault-wrong-ns",
        resp(r#"<m:Fault><faultcode>c</faultcode><faultstring>s</faultstring></m:Fault>"#),
    );
    add(
        "getfolder-response",
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><ServerVersionInfo MajorVersion="15" MinorVersion="0" MajorBuildNumber="1497" MinorBuildNumber="2" Version="V2_23" xmlns="http://schemas.microsoft.com/exchange/services/2006/types"/></s:Header><s:Body xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><m:GetFolderResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Folders><t:Folder><t:FolderId Id="AAMk" ChangeKey="CQ=="/></t:Folder></m:Folders></m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse></s:Body></s:Envelope>"#
            .to_string(),
    );
    let names: String = (0..40)
        .map(|i| {
            format!(
                "<x:N{} xmlns:x=\"urn:n\"/><t:EventType>NewMailEvent</t:EventType><N{}/>",
                i % 20,
                i % 3
            )
        })
        .collect();
    add(
        "many-distinct-names",
        pull(&format!("<t:EventTypes>{names}</t:EventTypes>{timeout}")),
    );
    let flood: String = (0..150)
        .map(|_| "<t:Bad/><t:EventType>Nope</t:EventType>")
        .collect();
    add(
        "flood",
        pull(&format!(
            "<t:EventTypes>{flood}</t:EventTypes><t:Timeout>x</t:Timeout>"
        )),
    );
    docs.into_iter().map(|(n, x)| (n.to_string(), x)).collect()
}

#[test]
fn handwritten_documents() {
    let mut out = String::new();
    for (name, xml) in handwritten() {
        record(&mut out, &name, &xml, &[Request, Response], VERSIONS);
    }
    insta::assert_snapshot!("handwritten", out);
}

fn manifest(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn files_under(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files_under(&path, ext, out);
        } else if path.extension().is_some_and(|x| x == ext) {
            out.push(path);
        }
    }
}

fn relative(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn seed_documents() {
    let mut files = Vec::new();
    files_under(&manifest("tests/data/grammar"), "xml", &mut files);
    assert!(files.len() >= 20, "seed documents: {files:?}");
    let mut out = String::new();
    for path in files {
        let xml = std::fs::read_to_string(&path).expect("seed document is readable");
        record(
            &mut out,
            &relative(&path),
            &xml,
            &[Request, Response],
            VERSIONS,
        );
    }
    insta::assert_snapshot!("seeds", out);
}

/// Every SOAP envelope written out in a case file, and every golden body.
#[test]
fn case_and_golden_bodies() {
    let mut files = Vec::new();
    files_under(&manifest("cases"), "toml", &mut files);
    files_under(&manifest("golden"), "snap", &mut files);
    let mut out = String::new();
    let mut count = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).expect("case file is readable");
        let mut rest = text.as_str();
        let mut n = 0;
        while let Some(start) = rest.find("<soap:Envelope") {
            let tail = &rest[start..];
            let Some(end) = tail.find("</soap:Envelope>") else {
                break;
            };
            let body = &tail[..end + "</soap:Envelope>".len()];
            n += 1;
            count += 1;
            let name = format!("{}#{n}", relative(&path));
            record(
                &mut out,
                &name,
                body,
                &[Request, Response],
                &["Exchange2007_SP1", "Exchange2013"],
            );
            rest = &tail[body.len()..];
        }
    }
    assert!(count >= 20, "only {count} bodies found");
    insta::assert_snapshot!("case_bodies", out);
}

// --------------------------------------------------------------- mutations

fn qname_len(xml: &str, start: usize) -> usize {
    xml[start + 1..]
        .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
        .unwrap_or(0)
}

/// Variants of `xml`, each with one element dropped, doubled, renamed,
/// swapped with its next sibling, given a stray attribute or text, or a
/// changed value.
fn mutants(xml: &str) -> Vec<(String, String)> {
    let doc = parse_document(xml).expect("mutation source is well-formed");
    let mut out = Vec::new();
    let root = doc.root_element();
    for (i, e) in root.descendants().filter(|n| n.is_element()).enumerate() {
        if e == root {
            continue;
        }
        let r = e.range();
        let whole = &xml[r.clone()];
        let (head, tail) = (&xml[..r.start], &xml[r.end..]);
        let tag = format!("{i}:{}", e.tag_name().name());
        let q = qname_len(xml, r.start);
        let qname = &xml[r.start + 1..r.start + 1 + q];
        let after_name = r.start + 1 + q;
        out.push((format!("{tag} drop"), format!("{head}{tail}")));
        out.push((format!("{tag} dup"), format!("{head}{whole}{whole}{tail}")));
        out.push((
            format!("{tag} stray-text"),
            format!("{head}{whole}stray{tail}"),
        ));
        out.push((
            format!("{tag} attr"),
            format!(
                r#"{}{} Bogus="1" xsi:nil="true" xmlns:xsi="{}"{}"#,
                head,
                &xml[r.start..after_name],
                ns::XSI,
                &xml[after_name..]
            ),
        ));
        let self_closing = whole.ends_with("/>");
        let renamed = if self_closing {
            format!("{head}<{qname}X{}{tail}", &xml[after_name..r.end])
        } else {
            let end_tag = format!("</{qname}>");
            let inner = &xml[after_name..r.end - end_tag.len()];
            format!("{head}<{qname}X{inner}</{qname}X>{tail}")
        };
        out.push((format!("{tag} rename"), renamed));
        let inner_text = if self_closing {
            format!("{head}{}>inner</{qname}>{tail}", &whole[..whole.len() - 2])
        } else {
            let end_tag = format!("</{qname}>");
            format!(
                "{head}{}inner{end_tag}{tail}",
                &whole[..whole.len() - end_tag.len()]
            )
        };
        out.push((format!("{tag} inner-text"), inner_text));
        if let Some(next) = e.next_siblings().skip(1).find(|n| n.is_element()) {
            let r2 = next.range();
            out.push((
                format!("{tag} swap"),
                format!(
                    "{head}{}{}{whole}{}",
                    &xml[r2.clone()],
                    &xml[r.end..r2.start],
                    &xml[r2.end..]
                ),
            ));
        }
        if let Some(t) = e
            .children()
            .find(|n| n.is_text() && !n.text().unwrap_or_default().trim().is_empty())
        {
            let rt = t.range();
            out.push((
                format!("{tag} value"),
                format!("{}?!x{}", &xml[..rt.start], &xml[rt.end..]),
            ));
        }
    }
    out
}

fn rendered_getevents(events: usize) -> String {
    let mut list = Vec::new();
    for (n, kind) in EventKind::ALL.into_iter().cycle().take(events).enumerate() {
        let mut e = Event::status(Some(format!("w{n}")));
        e.kind = kind;
        if kind != EventKind::Status {
            e.timestamp = Some("2026-01-01T12:00:00Z".into());
            e.object = Some(ObjectId::Item(Id::with_change_key(format!("i{n}"), "ck")));
            e.parent_folder_id = Some(Id::new("f1"));
        }
        if kind.has_old_location() {
            e.old_object = Some(ObjectId::Folder(Id::new("o")));
            e.old_parent_folder_id = Some(Id::new("f0"));
        }
        if kind == EventKind::Modified {
            e.unread_count = Some(3);
        }
        list.push(e);
    }
    envelope::response(
        EnvelopeStyle::Unprefixed,
        &ServerVersionInfo::default(),
        |w| {
            GetEventsResponse {
                message: ResponseMessage::success(),
                notification: Some(Notification {
                    subscription_id: "s1".into(),
                    previous_watermark: Some("w0".into()),
                    more_events: Some(true),
                    events: list,
                }),
            }
            .render(w)
        },
    )
}

#[test]
fn mutated_documents() {
    const BOTH: &[&str] = &["Exchange2007_SP1", "Exchange2013"];
    const NEW: &[&str] = &["Exchange2013"];
    let mut sources: Vec<(String, String, Direction, &[&str])> = Vec::new();
    for (file, d, versions) in [
        ("valid/getevents-response.xml", Response, BOTH),
        ("valid/subscribe-push-request.xml", Request, BOTH),
        ("valid/gse-request.xml", Request, NEW),
        ("valid/gse-error.xml", Response, NEW),
    ] {
        let path = manifest("tests/data/grammar").join(file);
        let xml = std::fs::read_to_string(&path).expect("seed document is readable");
        sources.push((file.to_string(), xml, d, versions));
    }
    sources.push((
        "rendered-getevents-9".into(),
        rendered_getevents(9),
        Response,
        NEW,
    ));
    let rendered_request = envelope::request(
        &RequestHeader {
            version: Some("Exchange2010_SP1".into()),
            impersonate: None,
        },
        |w| {
            ews_proto::ews::GetStreamingEventsRequest {
                subscription_ids: vec!["a".into(), "b".into()],
                connection_timeout: 30,
            }
            .render(w)
        },
    );
    sources.push((
        "rendered-gse-request".into(),
        rendered_request,
        Request,
        BOTH,
    ));
    let rendered_gse = envelope::response(
        EnvelopeStyle::Unprefixed,
        &ServerVersionInfo::default(),
        |w| {
            GetStreamingEventsResponse {
                message: ResponseMessage::error(ResponseCode::ErrorInvalidSubscription, "gone"),
                notifications: Vec::new(),
                error_subscription_ids: vec!["bad".into(), "worse".into()],
                connection_status: Some(ConnectionStatus::Closed),
            }
            .render(w, "m:Notification")
        },
    );
    sources.push(("rendered-gse-error".into(), rendered_gse, Response, NEW));
    let send = envelope::response(
        EnvelopeStyle::Unprefixed,
        &ServerVersionInfo::default(),
        |w| {
            SendNotification {
                message: ResponseMessage::success(),
                notification: Some(Notification {
                    subscription_id: "s".into(),
                    previous_watermark: None,
                    more_events: None,
                    events: vec![Event::status(None)],
                }),
            }
            .render(w)
        },
    );
    sources.push(("rendered-send-notification".into(), send, Response, BOTH));
    let mut out = String::new();
    let mut total = 0;
    for (name, xml, d, versions) in &sources {
        record(&mut out, name, xml, &[*d], versions);
        for (what, mutant) in mutants(xml) {
            total += 1;
            record(
                &mut out,
                &format!("{name} {what}"),
                &mutant,
                &[*d],
                versions,
            );
        }
    }
    assert!(total > 500, "only {total} mutants");
    insta::assert_snapshot!("mutants", out);
}

/// validate_request/validate_response on elements inside a document: the
/// path starts with the element's ancestry.
#[test]
fn operations_alone() {
    let mut out = String::new();
    let mut docs = handwritten();
    docs.push(("rendered-getevents-4".into(), rendered_getevents(4)));
    for (name, xml) in &docs {
        let Ok(doc) = parse_document(xml) else {
            continue;
        };
        let mut targets = Vec::new();
        let body = doc
            .root_element()
            .children()
            .filter(|n| n.is_element())
            .find(|n| n.tag_name().name() == "Body");
        if let Some(body) = body {
            for op in body.children().filter(|n| n.is_element()) {
                targets.push(op);
                targets.extend(op.children().filter(|n| n.is_element()).take(1));
            }
        } else {
            targets.push(doc.root_element());
        }
        for node in targets {
            let version = "Exchange2013";
            for (what, found) in [
                ("request", validate_request(node, version)),
                ("response", validate_response(node, version)),
            ] {
                let _ = writeln!(
                    out,
                    "== {name} {} | {what} | {version} | {} finding(s)",
                    node.tag_name().name(),
                    found.len()
                );
                for f in &found {
                    let _ = writeln!(out, "{}", line(f));
                }
            }
        }
    }
    insta::assert_snapshot!("operations", out);
}
