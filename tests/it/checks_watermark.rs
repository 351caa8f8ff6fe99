//! The case-level chain checks on recorded exchanges: resuming from a
//! watermark (R21), the push watermark chain (R69) and push batching (R70).
//! Exchanges are built by hand, as a streaming/push operation or a live
//! target would record them, so the checks are shown to judge the wire only.

use std::path::Path;
use std::time::Duration;

use ews_conformance::case::Case;
use ews_conformance::case::template::Vars;
use ews_conformance::check::batching::Batching;
use ews_conformance::check::exchange::Exchange;
use ews_conformance::check::watermark::Watermark;
use ews_conformance::check::{CaseInput, Check, CheckRegistry, Finding, Severity};
use ews_conformance::suite::Loader;
use ews_conformance::suite::operation::OpRegistry;

const M: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
const T: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
const S: &str = "http://schemas.xmlsoap.org/soap/envelope/";

fn case() -> Case {
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    Loader::new(&ops, &checks)
        .parse(
            "title = \"t\"\nrequirements = [\"R21\"]\n[[step]]\nname = \"s\"\nop = \"GetItem\"\nwith = { item = \"x\" }\n",
            Path::new("cases/x/chain.toml"),
            "x/chain",
        )
        .expect("loads")
}

fn ex(step: &str, request: String, response: String) -> Exchange {
    Exchange {
        step: step.into(),
        line: 3,
        request,
        status: Some(200),
        response_text: response,
        duration: Duration::from_millis(1),
        error: None,
        findings: vec![],
        asked: None,
        at: std::time::Duration::ZERO,
        deadline: None,
    }
}

fn subscribe(step: &str, resume: Option<&str>, sub: &str, wm: &str) -> Exchange {
    let resume = resume
        .map(|w| format!("<t:Watermark>{w}</t:Watermark>"))
        .unwrap_or_default();
    ex(
        step,
        format!(
            r#"<s:Envelope xmlns:s="{S}" xmlns:m="{M}" xmlns:t="{T}"><s:Body><m:Subscribe><m:PullSubscriptionRequest><t:FolderIds><t:FolderId Id="F"/></t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes>{resume}<t:Timeout>10</t:Timeout></m:PullSubscriptionRequest></m:Subscribe></s:Body></s:Envelope>"#
        ),
        format!(
            r#"<s:Envelope xmlns:s="{S}"><s:Body><m:SubscribeResponse xmlns:m="{M}"><m:ResponseMessages><m:SubscribeResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:SubscriptionId>{sub}</m:SubscriptionId><m:Watermark>{wm}</m:Watermark></m:SubscribeResponseMessage></m:ResponseMessages></m:SubscribeResponse></s:Body></s:Envelope>"#
        ),
    )
}

/// `events`: (watermark, item id) of CreatedEvents.
fn notification(sub: &str, prev: &str, more: bool, events: &[(&str, &str)]) -> String {
    let body: String = events
        .iter()
        .map(|(w, item)| {
            format!(
                "<t:CreatedEvent><t:Watermark>{w}</t:Watermark><t:TimeStamp>2026-01-01T00:00:00Z</t:TimeStamp><t:ItemId Id=\"{item}\"/><t:ParentFolderId Id=\"F\"/></t:CreatedEvent>"
            )
        })
        .collect();
    let body = if body.is_empty() {
        format!("<t:StatusEvent><t:Watermark>{prev}</t:Watermark></t:StatusEvent>")
    } else {
        body
    };
    format!(
        "<t:SubscriptionId>{sub}</t:SubscriptionId><t:PreviousWatermark>{prev}</t:PreviousWatermark><t:MoreEvents>{more}</t:MoreEvents>{body}"
    )
}

fn poll(step: &str, sub: &str, sent: &str, more: bool, events: &[(&str, &str)]) -> Exchange {
    ex(
        step,
        format!(
            r#"<s:Envelope xmlns:s="{S}" xmlns:m="{M}"><s:Body><m:GetEvents><m:SubscriptionId>{sub}</m:SubscriptionId><m:Watermark>{sent}</m:Watermark></m:GetEvents></s:Body></s:Envelope>"#
        ),
        format!(
            r#"<s:Envelope xmlns:s="{S}"><s:Body><m:GetEventsResponse xmlns:m="{M}" xmlns:t="{T}"><m:ResponseMessages><m:GetEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notification>{}</m:Notification></m:GetEventsResponseMessage></m:ResponseMessages></m:GetEventsResponse></s:Body></s:Envelope>"#,
            notification(sub, sent, more, events)
        ),
    )
}

/// A push as the listener may record it: no HTTP answer of its own (no
/// status), no request of ours, the server's SendNotification body as text.
fn push(step: &str, sub: &str, prev: &str, more: bool, events: &[(&str, &str)]) -> Exchange {
    let mut e = ex(
        step,
        String::new(),
        format!(
            r#"<s:Envelope xmlns:s="{S}"><s:Body><m:SendNotification xmlns:m="{M}" xmlns:t="{T}"><m:ResponseMessages><m:SendNotificationResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notification>{}</m:Notification></m:SendNotificationResponseMessage></m:ResponseMessages></m:SendNotification></s:Body></s:Envelope>"#,
            notification(sub, prev, more, events)
        ),
    );
    e.status = None;
    e
}

fn judge(check: &dyn Check, exchanges: &[Exchange]) -> Vec<Finding> {
    let c = case();
    let vars = Vars::new();
    check.check_case(&CaseInput::new(&c, exchanges, &vars))
}

fn fails(found: &[Finding]) -> Vec<&str> {
    found
        .iter()
        .filter(|f| f.severity == Severity::Fail)
        .map(|f| f.message.as_str())
        .collect()
}

/// S1 sees A (w1) and B (w2); the case re-subscribes from w1 as S2.
fn resume_case(second_answer: &[(&str, &str)]) -> Vec<Exchange> {
    vec![
        subscribe("subscribe", None, "S1", "w0"),
        poll("poll", "S1", "w0", false, &[("w1", "A"), ("w2", "B")]),
        subscribe("resubscribe", Some("w1"), "S2", "v0"),
        poll("resumed poll", "S2", "v0", false, second_answer),
    ]
}

#[test]
fn a_resume_replays_exactly_the_events_after_the_watermark() {
    let good = resume_case(&[("w2", "B")]);
    assert!(
        fails(&judge(&Watermark, &good)).is_empty(),
        "{:?}",
        judge(&Watermark, &good)
    );

    let replay = resume_case(&[("w1", "A"), ("w2", "B")]);
    let found = judge(&Watermark, &replay);
    assert_eq!(
        fails(&found),
        [
            "step \"resumed poll\": the subscription resumed from watermark w1 replays 1 event(s) delivered at or before that watermark (step \"poll\"): CreatedEvent of A (watermark w1) (R21)"
        ]
    );

    let lost = resume_case(&[]);
    let found = judge(&Watermark, &lost);
    assert_eq!(
        fails(&found),
        [
            "step \"resumed poll\": the subscription resumed from watermark w1 was drained (MoreEvents=false) without 1 event(s) that followed that watermark on the first subscription: CreatedEvent of B (watermark w2) (R21)"
        ]
    );
}

#[test]
fn a_resubscription_must_get_a_new_id() {
    let same = vec![
        subscribe("subscribe", None, "S1", "w0"),
        subscribe("resubscribe", Some("w0"), "S1", "w0"),
    ];
    let found = judge(&Watermark, &same);
    assert_eq!(fails(&found).len(), 1, "{found:?}");
    assert!(
        fails(&found)[0].contains("the id already returned in step \"subscribe\""),
        "{found:?}"
    );
}

#[test]
fn the_push_chain_continues_and_a_repeat_is_only_a_note() {
    let good = vec![
        push("p1", "P", "w0", false, &[("w1", "A")]),
        push("p2", "P", "w1", false, &[]),
    ];
    assert!(judge(&Watermark, &good).is_empty());

    let broken = vec![
        push("p1", "P", "w0", false, &[("w1", "A")]),
        push("p2", "P", "w7", false, &[]),
    ];
    assert_eq!(
        fails(&judge(&Watermark, &broken)),
        [
            "step \"p2\": push PreviousWatermark w7 is not the watermark of the last event of the previous push (step \"p1\": w1) (R69)"
        ]
    );

    let retried = vec![
        push("p1", "P", "w0", false, &[("w1", "A")]),
        push("p2", "P", "w0", false, &[("w1", "A")]),
    ];
    let found = judge(&Watermark, &retried);
    assert!(fails(&found).is_empty(), "{found:?}");
    assert!(found[0].message.contains("was sent again"), "{found:?}");
}

#[test]
fn push_more_events_must_be_followed_by_events() {
    let lying = vec![
        push("p1", "P", "w0", true, &[("w1", "A")]),
        push("p2", "P", "w1", false, &[]),
    ];
    assert_eq!(
        fails(&judge(&Batching, &lying)),
        [
            "step \"p2\": a push notification for subscription P said MoreEvents=true, yet the next one carried no event, only a StatusEvent (R70)"
        ]
    );
    let honest = vec![
        push("p1", "P", "w0", true, &[("w1", "A")]),
        push("p2", "P", "w1", false, &[("w2", "B")]),
    ];
    assert!(judge(&Batching, &honest).is_empty());
}
