//! Waiting for mail delivery.
//!
//! Exchange delivers mail through its transport pipeline: the message, and
//! the Created/NewMail events about it, can reach the recipient's Inbox
//! seconds after CreateItem (SendOnly, SendAndSaveCopy) has answered. So a
//! case never assumes delivery is complete when CreateItem returns:
//!
//! * `AwaitDelivery` (`folder`, default `inbox`; `subject`, a text the
//!   subjects contain; `count`, default 1; `within_*`) polls FindItem until
//!   the folder holds `count` messages whose subject contains `subject`. The
//!   last FindItem answer is the one judged and captured (`//t:Message/t:ItemId/@Id`).
//! * A pull step that expects events (`GetEvents`, `DrainEvents` with
//!   `expect.event` patterns) polls again, each time from the last
//!   watermark, until the patterns hold in order; then every event it
//!   received is judged. Answers that held only StatusEvents ("nothing
//!   new") before the events came are passed over. A step whose patterns
//!   hold after the first call sends nothing more.
//!
//! Both wait [`POLL_MINUTES`] protocol minutes by default (`within_minutes`
//! or `within_seconds` change it), never less than [`POLL_MIN`], and poll
//! every [`POLL_INTERVAL_FRACTION`] of a protocol minute, bounded by
//! [`POLL_INTERVAL_MIN`] and [`POLL_INTERVAL_MAX`]. When the deadline
//! passes, the last answer is judged, so the step fails with what did arrive.

use std::time::{Duration, Instant};

use super::wait::{COUNT, WITHIN_MINUTES, WITHIN_SECONDS, param, protocol_time, secs};
use crate::case::Args;
use crate::case::Step;
use crate::check::events::patterns_arrived;
use crate::suite::operation::{Operation, Param, ParamKind};
use crate::suite::step::{StepContext, StepError};
use ews_proto::ews::envelope::request;
use ews_proto::ews::items::folder_ref;
use ews_proto::ews::{Event, EventKind};
use ews_proto::xml::{ElementExt, ns};

/// How long a delivery wait lasts by default, in protocol minutes.
pub const POLL_MINUTES: f64 = 1.0;
/// The shortest delivery wait, whatever the protocol minute.
pub const POLL_MIN: Duration = Duration::from_secs(3);
/// The pause between two polls, as a fraction of a protocol minute.
pub const POLL_INTERVAL_FRACTION: f64 = 1.0 / 30.0;
pub const POLL_INTERVAL_MIN: Duration = Duration::from_millis(100);
pub const POLL_INTERVAL_MAX: Duration = Duration::from_secs(2);

const DELIVERY: &str = "delivery";

/// A delivery wait: when it ends, and how it is described.
pub(crate) struct PollWait {
    deadline: Instant,
    limit: Duration,
    text: String,
    interval: Duration,
}

impl PollWait {
    /// The step's `within_*`, or [`POLL_MINUTES`]; at least [`POLL_MIN`].
    pub(crate) fn of(ctx: &StepContext<'_>, args: &Args) -> Result<Self, StepError> {
        let minute = ctx.target().protocol_minute;
        let (nominal, text) = match protocol_time(ctx, args, "within")? {
            Some(t) => t,
            None => (
                minute.mul_f64(POLL_MINUTES),
                format!("{POLL_MINUTES} protocol minute, the default"),
            ),
        };
        let limit = nominal.max(POLL_MIN);
        let text = if limit > nominal {
            format!("{text}, raised to the minimum {}", secs(limit))
        } else {
            format!("{text} = {}", secs(limit))
        };
        Ok(PollWait {
            deadline: Instant::now() + limit,
            limit,
            text,
            interval: minute
                .mul_f64(POLL_INTERVAL_FRACTION)
                .clamp(POLL_INTERVAL_MIN, POLL_INTERVAL_MAX),
        })
    }

    /// Sleeps until the next poll; `false` when the deadline has passed.
    async fn pause(&self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.interval.min(self.deadline - now)).await;
        true
    }
}

// --------------------------------------------------------- pull polling

/// Whether a pull step must keep polling: it expects events.
pub(crate) fn expects_events(step: &Step) -> bool {
    !step.expect.events.is_empty()
}

/// Whether the step's expected events have all arrived, in order, in the
/// answers the step is judged on so far (`received`: each answer's events
/// by exchange index). A pattern that cannot be rendered never matches, so
/// waiting would not help: the checks report it.
pub(crate) fn events_arrived(ctx: &StepContext<'_>, received: &[(usize, Vec<Event>)]) -> bool {
    let events: Vec<&Event> = received
        .iter()
        .filter(|(i, _)| !ctx.is_passed_over(*i))
        .flat_map(|(_, list)| list.iter())
        .collect();
    patterns_arrived(&ctx.step().expect.events, ctx.vars(), &events).unwrap_or(true)
}

/// Passes over the answers of this round (from exchange `since`) that held
/// only StatusEvents: "nothing new yet" while the step waits for delivery.
fn pass_over_idle(ctx: &mut StepContext<'_>, since: usize, received: &[(usize, Vec<Event>)]) {
    for (i, events) in received {
        if *i >= since && !events.is_empty() && events.iter().all(|e| e.kind == EventKind::Status) {
            ctx.pass_over(*i);
        }
    }
}

/// Waits before the next poll of a pull step whose events have not all
/// arrived; `false` (after a note) when its deadline has passed.
pub(crate) async fn poll_again(
    ctx: &mut StepContext<'_>,
    wait: &PollWait,
    round_began: usize,
    polls: usize,
    received: &[(usize, Vec<Event>)],
) -> bool {
    if wait.pause().await {
        pass_over_idle(ctx, round_began, received);
        return true;
    }
    let step = ctx.step().name.clone();
    ctx.note(
        DELIVERY,
        format!(
            "step \"{step}\": polled {polls} time(s) for {} ({}) and the expected events did not all arrive",
            secs(wait.limit),
            wait.text
        ),
    );
    false
}

// -------------------------------------------------------- AwaitDelivery

const AWAIT_DELIVERY: &[Param] = &[
    param("folder", ParamKind::Text, false),
    param("subject", ParamKind::Text, true),
    COUNT,
    WITHIN_MINUTES,
    WITHIN_SECONDS,
];

operation!(AwaitDelivery, AWAIT_DELIVERY, await_delivery);

pub(super) fn operations() -> Vec<std::sync::Arc<dyn Operation>> {
    vec![std::sync::Arc::new(AwaitDelivery)]
}

/// A FindItem request: the folder's messages whose subject contains `subject`, with their subjects.
fn find_item(ctx: &StepContext<'_>, folder: &str, subject: &str) -> String {
    request(&ctx.request_header(), |w| {
        w.start("m:FindItem", &[("Traversal", "Shallow")]);
        w.start("m:ItemShape", &[]);
        w.leaf("t:BaseShape", "IdOnly");
        w.start("t:AdditionalProperties", &[]);
        w.empty("t:FieldURI", &[("FieldURI", "item:Subject")]);
        w.end("t:AdditionalProperties");
        w.end("m:ItemShape");
        w.start("m:Restriction", &[]);
        w.start(
            "t:Contains",
            &[
                ("ContainmentMode", "Substring"),
                ("ContainmentComparison", "IgnoreCase"),
            ],
        );
        w.empty("t:FieldURI", &[("FieldURI", "item:Subject")]);
        w.empty("t:Constant", &[("Value", subject)]);
        w.end("t:Contains");
        w.end("m:Restriction");
        w.start("m:ParentFolderIds", &[]);
        folder_ref(folder).render(w);
        w.end("m:ParentFolderIds");
        w.end("m:FindItem");
    })
}

/// The subjects of the messages a successful FindItem answer lists
/// (`None`: not a successful answer, the checks say why). A message
/// without a subject counts as matching: the server applied the restriction.
fn found_subjects(text: &str, subject: &str) -> Option<usize> {
    let doc = ews_proto::xml::parse_document(text).ok()?;
    let message = doc
        .descendants()
        .find(|n| n.is(ns::MESSAGES, "FindItemResponseMessage"))?;
    if message.attribute("ResponseClass") != Some("Success") {
        return None;
    }
    let wanted = subject.to_lowercase();
    Some(
        message
            .descendants()
            .filter(|n| n.is(ns::TYPES, "Message"))
            .filter(|m| {
                m.children()
                    .find(|c| c.is(ns::TYPES, "Subject"))
                    .is_none_or(|s| s.text_trimmed().to_lowercase().contains(&wanted))
            })
            .count(),
    )
}

async fn await_delivery(ctx: &mut StepContext<'_>, args: &Args) -> Result<(), StepError> {
    let folder = args.text_or(ctx, "folder", "inbox")?;
    let subject = args.required_text(ctx, "subject")?;
    if subject.is_empty() {
        return Err(StepError::Case(
            "AwaitDelivery: `with.subject` must not be empty (name the case's own messages)".into(),
        ));
    }
    let count = super::wait::count(ctx, args)?;
    let wait = PollWait::of(ctx, args)?;
    let mut polls = 0;
    loop {
        let idx = ctx.exchange(find_item(ctx, &folder, &subject)).await?;
        polls += 1;
        let Some(found) = found_subjects(&ctx.exchanges()[idx].response_text, &subject) else {
            return Ok(()); // an error answer: the checks judge it
        };
        if found >= count {
            return Ok(());
        }
        if !wait.pause().await {
            let step = ctx.step().name.clone();
            ctx.fail(
                DELIVERY,
                format!(
                    "step \"{step}\": {found} of {count} message(s) with a subject containing {subject:?} arrived in folder `{folder}` within {} ({}; {polls} FindItem call(s))",
                    secs(wait.limit),
                    wait.text
                ),
            );
            return Ok(());
        }
        // Judged only by the general checks: the last answer is the one that counts.
        ctx.pass_over(idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::EventPattern;
    use crate::case::template::Vars;
    use ews_proto::ews::{Id, ObjectId};

    fn pattern(kind: EventKind, item: Option<&str>) -> EventPattern {
        EventPattern {
            line: 1,
            kind,
            item: item.map(str::to_string),
            folder: None,
            parent: None,
            old_parent: None,
            old_item: None,
            old_folder: None,
            unread_count: None,
        }
    }

    fn event(kind: EventKind, item: &str) -> Event {
        let mut e = Event::status(None);
        e.kind = kind;
        e.object = Some(ObjectId::Item(Id::new(item)));
        e
    }

    #[test]
    fn patterns_decide_when_polling_stops() {
        let mut vars = Vars::new();
        vars.set("mine", "I2");
        let want = [
            pattern(EventKind::Created, Some("${mine}")),
            pattern(EventKind::NewMail, Some("${mine}")),
        ];
        let other = event(EventKind::Created, "I1");
        let created = event(EventKind::Created, "I2");
        let new_mail = event(EventKind::NewMail, "I2");
        let status = Event::status(Some("W".into()));
        // Someone else's mail and idle answers do not stop it.
        assert_eq!(
            patterns_arrived(&want, &vars, &[&other, &status]),
            Some(false)
        );
        // One delivery's events may come in any order (one operation's burst).
        assert_eq!(
            patterns_arrived(&want, &vars, &[&new_mail, &created]),
            Some(true)
        );
        assert_eq!(patterns_arrived(&want, &vars, &[&created]), Some(false));
        assert_eq!(
            patterns_arrived(&want, &vars, &[&other, &created, &status, &new_mail]),
            Some(true)
        );
        // A pattern that cannot be rendered is not waited for.
        let unbound = [pattern(EventKind::Created, Some("${gone}"))];
        assert_eq!(patterns_arrived(&unbound, &vars, &[&created]), None);
    }

    #[test]
    fn found_messages_are_counted_by_subject() {
        let answer = |inner: &str| {
            format!(
                r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:FindItemResponse xmlns:m="{}" xmlns:t="{}"><m:ResponseMessages><m:FindItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:RootFolder TotalItemsInView="2" IncludesLastItemInRange="true"><t:Items>{inner}</t:Items></m:RootFolder></m:FindItemResponseMessage></m:ResponseMessages></m:FindItemResponse></s:Body></s:Envelope>"#,
                ns::MESSAGES,
                ns::TYPES
            )
        };
        let two = answer(
            r#"<t:Message><t:ItemId Id="a"/><t:Subject>Delivered ABC 1</t:Subject></t:Message><t:Message><t:ItemId Id="b"/><t:Subject>other</t:Subject></t:Message><t:Message><t:ItemId Id="c"/></t:Message>"#,
        );
        assert_eq!(found_subjects(&two, "delivered abc"), Some(2));
        assert_eq!(found_subjects(&answer(""), "x"), Some(0));
        assert_eq!(found_subjects("not xml", "x"), None);
        let error = two.replace(r#"ResponseClass="Success""#, r#"ResponseClass="Error""#);
        assert_eq!(found_subjects(&error, "x"), None);
    }
}
