//! Builders shared by the check tests.

use std::path::PathBuf;
use std::time::Duration;

use super::finding::{Finding, Severity};
use crate::case::{Action, Args, Case, CaseGrade, Expect, Step, UserRole};
use crate::check::exchange::Exchange;

/// The messages of the failing findings, in order.
pub fn fails(found: &[Finding]) -> Vec<&str> {
    found
        .iter()
        .filter(|f| f.severity == Severity::Fail)
        .map(|f| f.message.as_str())
        .collect()
}

pub fn case(checks: Option<Vec<String>>) -> Case {
    Case {
        id: "x/y".into(),
        file: PathBuf::from("cases/x/y.toml"),
        title: "t".into(),
        requirements: vec!["R29".into()],
        grade: CaseGrade::Assert,
        serial: false,
        needs: vec![],
        isolate: false,
        source: None,
        defect: None,
        profiles: vec![],
        checks,
        golden: false,
        pending: None,
        vars: vec![],
        steps: vec![],
    }
}

pub fn step(name: &str, expect: Expect) -> Step {
    Step {
        index: 0,
        name: name.into(),
        line: 12,
        user: UserRole::User,
        action: Action::Op {
            name: "GetEvents".into(),
            args: Args::default(),
        },
        headers: vec![],
        expect,
        captures: vec![],
        asserts: vec![],
    }
}

pub fn exchange(status: u16, body: &str) -> Exchange {
    Exchange {
        step: "s".into(),
        line: 12,
        request: "<request/>".into(),
        status: Some(status),
        response_text: body.to_string(),
        duration: Duration::from_millis(3),
        error: None,
        findings: vec![],
        asked: None,
        at: std::time::Duration::ZERO,
        deadline: None,
    }
}

pub const GET_EVENTS_OK: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<m:GetEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
<m:ResponseMessages><m:GetEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>
<m:Notification><t:SubscriptionId>S1</t:SubscriptionId><t:PreviousWatermark>W0</t:PreviousWatermark><t:MoreEvents>false</t:MoreEvents>
<t:CreatedEvent><t:Watermark>W1</t:Watermark><t:TimeStamp>2026-01-01T00:00:00Z</t:TimeStamp><t:ItemId Id="I1"/><t:ParentFolderId Id="F1"/></t:CreatedEvent>
<t:ModifiedEvent><t:Watermark>W2</t:Watermark><t:TimeStamp>2026-01-01T00:00:00Z</t:TimeStamp><t:FolderId Id="F1"/><t:ParentFolderId Id="ROOT"/><t:UnreadCount>1</t:UnreadCount></t:ModifiedEvent>
<t:MovedEvent><t:Watermark>W3</t:Watermark><t:TimeStamp>2026-01-01T00:00:00Z</t:TimeStamp><t:ItemId Id="I2"/><t:ParentFolderId Id="F2"/><t:OldItemId Id="I1"/><t:OldParentFolderId Id="F1"/></t:MovedEvent>
</m:Notification></m:GetEventsResponseMessage></m:ResponseMessages></m:GetEventsResponse></s:Body></s:Envelope>"#;

pub const NOT_FOUND: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<m:GetEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">
<m:ResponseMessages><m:GetEventsResponseMessage ResponseClass="Error"><m:MessageText>nope</m:MessageText><m:ResponseCode>ErrorSubscriptionNotFound</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:GetEventsResponseMessage></m:ResponseMessages>
</m:GetEventsResponse></s:Body></s:Envelope>"#;

/// A pull Subscribe request on folder F with CreatedEvent.
pub const SUBSCRIBE_REQUEST: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Header><t:RequestServerVersion Version="Exchange2013"/></s:Header><s:Body><m:Subscribe><m:PullSubscriptionRequest><t:FolderIds><t:FolderId Id="F"/></t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes><t:Timeout>10</t:Timeout></m:PullSubscriptionRequest></m:Subscribe></s:Body></s:Envelope>"#;

/// Its answer: subscription S1, watermark W0.
pub const SUBSCRIBE_OK: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:SubscribeResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:ResponseMessages><m:SubscribeResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:SubscriptionId>S1</m:SubscriptionId><m:Watermark>W0</m:Watermark></m:SubscribeResponseMessage></m:ResponseMessages></m:SubscribeResponse></s:Body></s:Envelope>"#;

pub fn get_events_request(sub: &str, watermark: &str) -> String {
    format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><s:Body><m:GetEvents><m:SubscriptionId>{sub}</m:SubscriptionId><m:Watermark>{watermark}</m:Watermark></m:GetEvents></s:Body></s:Envelope>"#
    )
}

pub const FAULT: &str = r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>a:ErrorSchemaValidation</faultcode><faultstring>bad</faultstring><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorSchemaValidation</e:ResponseCode></detail></s:Fault></s:Body></s:Envelope>"#;
