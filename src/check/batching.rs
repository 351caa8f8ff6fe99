//! `batching`: the 50-event rule and MoreEvents, for every notification a
//! case receives (GetEvents and DrainEvents answers, push bodies, streamed
//! envelopes).
//!
//! - Per step: a GetEvents or push notification holds at most 50 events
//!   (R32, R70). For streaming the digest only copies the rule from GetEvents
//!   (R59, UNSURE), so a larger streamed notification is a note.
//! - Per case: `MoreEvents=true` promises that more events are queued, so
//!   the next notification of that subscription — the next GetEvents that
//!   sends the last watermark, or the next push — must carry an event other
//!   than StatusEvent (R32, R33, R70). Together with the `watermark` check's
//!   lost-event rule this makes MoreEvents true exactly while more remain.

use super::finding::Finding;
use super::finding::call_label;
use super::input::CaseInput;
use super::input::StepInput;
use super::kind::Check;
use super::wire::{Channel, Link, received, short, subscriptions};
use ews_proto::ews::{EventKind, Notification};

pub struct Batching;

const NAME: &str = "batching";

/// Events one notification may hold.
pub const MAX_EVENTS: usize = 50;

impl Check for Batching {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(&self, input: &StepInput<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let total = input.exchanges.len();
        for (i, ex) in input.exchanges.iter().enumerate() {
            // Only notifications are judged here: a body without one (as
            // text) needs no reading.
            if received(ex).is_none() || !ex.response_text.contains("Notification") {
                continue;
            }
            let Some(reply) = input.reply(i) else {
                continue;
            };
            let call = call_label(i, total);
            for (channel, n) in &reply.notifications {
                let count = n.events.len();
                if count <= MAX_EVENTS {
                    continue;
                }
                let text = format!(
                    "step \"{}\"{call}: a {} for subscription {} holds {count} events; at most {MAX_EVENTS} fit in one notification",
                    input.step.name,
                    channel.describe(),
                    short(&n.subscription_id)
                );
                let mut f = match channel {
                    Channel::Pull => input.fail(NAME, format!("{text} (R32)")),
                    Channel::Push => input.fail(NAME, format!("{text} (R70)")),
                    Channel::Streaming => input.note(
                        NAME,
                        format!("{text} (R59: recorded; the streaming rule is not documented)"),
                    ),
                };
                f.exchange = Some(i);
                out.push(f);
            }
        }
        out
    }

    fn reads_entries(&self) -> bool {
        true
    }

    fn check_case(&self, input: &CaseInput<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let subs = subscriptions(input.entries());
        for sub in &subs {
            // Pull: consecutive answered calls where the second one is chained.
            let answered: Vec<_> = sub
                .polls
                .iter()
                .filter(|p| p.notification.is_some())
                .collect();
            for pair in answered.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                let (Some(na), Some(nb)) = (&a.notification, &b.notification) else {
                    continue;
                };
                if b.link != Link::Chained || na.more_events != Some(true) || has_events(nb) {
                    continue;
                }
                out.push(input.fail_at(
                    NAME,
                    b.index,
                    format!(
                        "step \"{}\": the GetEvents of step \"{}\" said MoreEvents=true for subscription {}, yet the next GetEvents (sending its last watermark) found no event, only {} (R32, R33)",
                        b.step,
                        a.step,
                        short(&sub.id),
                        describe(nb)
                    ),
                ));
            }
            // Push: consecutive notifications of the subscription.
            for pair in sub.pushes.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                if a.notification.more_events == Some(true) && !has_events(&b.notification) {
                    out.push(input.fail_at(
                        NAME,
                        b.index,
                        format!(
                            "step \"{}\": a push notification for subscription {} said MoreEvents=true, yet the next one carried no event, only {} (R70)",
                            b.step,
                            short(&sub.id),
                            describe(&b.notification)
                        ),
                    ));
                }
            }
        }
        out
    }
}

fn has_events(n: &Notification) -> bool {
    n.events.iter().any(|e| e.kind != EventKind::Status)
}

fn describe(n: &Notification) -> String {
    match n.events.len() {
        0 => "no event at all".to_string(),
        1 => format!("a {}", n.events[0].kind.element_name()),
        k => format!("{k} StatusEvents"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Expect;
    use crate::case::template::Vars;
    use crate::check::finding::Severity;
    use crate::check::testing::*;

    fn get_events(sub: &str, prev: &str, more: bool, events: &[(&str, &str)]) -> String {
        let body: String = events
            .iter()
            .map(|(kind, wm)| {
                if *kind == "StatusEvent" {
                    format!("<t:StatusEvent><t:Watermark>{wm}</t:Watermark></t:StatusEvent>")
                } else {
                    format!(
                        "<t:{kind}><t:Watermark>{wm}</t:Watermark><t:TimeStamp>2026-01-01T00:00:00Z</t:TimeStamp><t:ItemId Id=\"I{wm}\"/><t:ParentFolderId Id=\"F\"/></t:{kind}>"
                    )
                }
            })
            .collect();
        format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notification><t:SubscriptionId>{sub}</t:SubscriptionId><t:PreviousWatermark>{prev}</t:PreviousWatermark><t:MoreEvents>{more}</t:MoreEvents>{body}</m:Notification></m:GetEventsResponseMessage></m:ResponseMessages></m:GetEventsResponse></s:Body></s:Envelope>"#
        )
    }

    #[test]
    fn fifty_one_events_in_one_notification_fail() {
        let many: Vec<(String, String)> = (0..51)
            .map(|i| ("CreatedEvent".to_string(), format!("w{i}")))
            .collect();
        let refs: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let c = case(None);
        let s = step("drain", Expect::default());
        let vars = Vars::new();
        let ex = [exchange(200, &get_events("S1", "w", false, &refs))];
        let input = StepInput::new(&c, &s, &ex, &vars);
        let f = Batching.check(&input);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].severity, Severity::Fail);
        assert_eq!(
            f[0].message,
            "step \"drain\": a GetEvents for subscription S1 holds 51 events; at most 50 fit in one notification (R32)"
        );
        let ex = [exchange(200, &get_events("S1", "w", false, &refs[..50]))];
        let input = StepInput::new(input.case, input.step, &ex, input.vars);
        assert!(Batching.check(&input).is_empty());
    }

    #[test]
    fn more_events_true_must_be_followed_by_events() {
        let c = case(None);
        let vars = Vars::new();
        let sub = crate::check::exchange::Exchange {
            request: SUBSCRIBE_REQUEST.into(),
            ..exchange(200, SUBSCRIBE_OK)
        };
        let poll = |sent: &str, body: String| crate::check::exchange::Exchange {
            request: get_events_request("S1", sent),
            ..exchange(200, &body)
        };
        let lying = [
            sub.clone(),
            poll(
                "W0",
                get_events("S1", "W0", true, &[("CreatedEvent", "w1")]),
            ),
            poll(
                "w1",
                get_events("S1", "w1", false, &[("StatusEvent", "w1")]),
            ),
        ];
        let input = CaseInput::new(&c, &lying, &vars);
        let f = Batching.check_case(&input);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].message.contains("said MoreEvents=true for subscription S1, yet the next GetEvents (sending its last watermark) found no event, only a StatusEvent (R32, R33)"),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].exchange, Some(2));
        let honest = [
            sub,
            poll(
                "W0",
                get_events("S1", "W0", true, &[("CreatedEvent", "w1")]),
            ),
            poll(
                "w1",
                get_events("S1", "w1", false, &[("CreatedEvent", "w2")]),
            ),
        ];
        let input = CaseInput::new(input.case, &honest, input.vars);
        assert!(Batching.check_case(&input).is_empty());
    }
}
