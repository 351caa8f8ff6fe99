//! `AwaitPush`, `ExpectNoPush`, `SetPushAnswer`, `CollectPushes` (see the
//! module above for their keys and how they judge).
//!
//! The listener is shared by every case of a run; a case only ever looks
//! at the pushes of its own subscriptions, and remembers, per
//! subscription, the last push a step has taken, so that each step sees
//! the pushes that came after the previous one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::wait::{
    CHECK, COUNT, Judging, WITHIN_MINUTES, WITHIN_SECONDS, WaitEnd, awaited, check_arrivals, count,
    listing, param, received, secs, wait,
};
use crate::case::Args;
use crate::check::Severity;
use crate::client::push::{PushAnswer, PushListener, ReceivedPush, result_envelope};
use crate::suite::operation::{Operation, Param, ParamKind};
use crate::suite::step::{StepContext, StepError};
use ews_proto::ews::{EventKind, SubscriptionStatus};

/// Per subscription, the seq of the last push a step of this case took.
#[derive(Default)]
struct Cursors {
    after: HashMap<String, u64>,
}

pub(super) fn operations() -> Vec<Arc<dyn Operation>> {
    vec![
        Arc::new(AwaitPush),
        Arc::new(ExpectNoPush),
        Arc::new(SetPushAnswer),
        Arc::new(CollectPushes),
    ]
}

fn listener<'r>(ctx: &StepContext<'r>) -> Result<&'r PushListener, StepError> {
    ctx.push_listener().ok_or_else(|| {
        StepError::Case(format!(
            "step \"{}\" waits for pushes, but the target has no push listener (the case must list needs = [\"push\"])",
            ctx.step().name
        ))
    })
}

/// `OK`, `Unsubscribe`, `Hang`, or `Error<status>` (400..=599).
pub fn parse_answer(text: &str) -> Option<PushAnswer> {
    match text {
        "OK" => Some(PushAnswer::Ok),
        "Unsubscribe" => Some(PushAnswer::Unsubscribe),
        "Hang" => Some(PushAnswer::Hang),
        _ => text
            .strip_prefix("Error")
            .and_then(|c| c.parse::<u16>().ok())
            .filter(|c| (400..=599).contains(c))
            .map(PushAnswer::HttpError),
    }
}

/// Reads `with.answer` and applies it to the subscription's pushes.
fn apply_answer(
    ctx: &StepContext<'_>,
    args: &Args,
    listener: &PushListener,
    subscription: &str,
) -> Result<Option<PushAnswer>, StepError> {
    let Some(text) = args.text(ctx, "answer")? else {
        return Ok(None);
    };
    let answer = parse_answer(text.trim()).ok_or_else(|| {
        StepError::Case(format!(
            "`with.answer` = {text:?} is not OK, Unsubscribe, Hang or Error<HTTP status 400..599>"
        ))
    })?;
    listener.set_answer(subscription, answer);
    Ok(Some(answer))
}

fn cursor(ctx: &mut StepContext<'_>, subscription: &str) -> u64 {
    ctx.resources()
        .get::<Cursors>()
        .after
        .get(subscription)
        .copied()
        .unwrap_or(0)
}

fn set_cursor(ctx: &mut StepContext<'_>, subscription: &str, seq: u64) {
    ctx.resources()
        .get::<Cursors>()
        .after
        .insert(subscription.to_string(), seq);
}

/// What the listener answered, as the exchange's request text.
fn answer_text(answer: PushAnswer) -> String {
    match answer {
        PushAnswer::Ok => result_envelope(SubscriptionStatus::Ok),
        PushAnswer::Unsubscribe => result_envelope(SubscriptionStatus::Unsubscribe),
        PushAnswer::HttpError(code) => {
            format!("(the listener answered HTTP {code} without a SOAP body)")
        }
        PushAnswer::Hang => "(the listener held the request without answering)".into(),
    }
}

/// Records a push as an exchange of the step.
fn record(ctx: &mut StepContext<'_>, push: &ReceivedPush, began: Instant) -> usize {
    let mut ex = received(
        ctx,
        answer_text(push.answered),
        push.body_text().into_owned(),
        push.arrived.saturating_duration_since(began),
    );
    if push.body_truncated {
        ex.error = Some("the push body was not received in full".into());
    }
    ctx.record(ex)
}

fn push_label(p: &ReceivedPush, began: Instant) -> String {
    let when = if p.arrived >= began {
        format!("{} into the step", secs(p.arrived - began))
    } else {
        format!("{} before the step", secs(began - p.arrived))
    };
    format!("push #{} {when}, answered {}", p.seq, p.answered)
}

fn listed(pushes: &[ReceivedPush], began: Instant) -> String {
    let items: Vec<(String, String)> = pushes
        .iter()
        .map(|p| (push_label(p, began), p.body_text().into_owned()))
        .collect();
    let refs: Vec<(String, &str)> = items.iter().map(|(l, t)| (l.clone(), t.as_str())).collect();
    listing(&refs)
}

/// Waits for the next push of `subscription` after seq `after`.
async fn next_push(
    listener: &PushListener,
    subscription: &str,
    after: u64,
    deadline: tokio::time::Instant,
) -> Option<ReceivedPush> {
    listener
        .wait_for(
            subscription,
            |p| p.seq > after && p.subscription_id.as_deref() == Some(subscription),
            deadline,
        )
        .await
        .ok()
}

// --------------------------------------------------------------- AwaitPush

const AWAIT: &[Param] = &[
    param("subscription", ParamKind::Text, true),
    param("answer", ParamKind::Text, false),
    COUNT,
    WITHIN_MINUTES,
    WITHIN_SECONDS,
];

operation!(AwaitPush, AWAIT, await_push);

async fn await_push(ctx: &mut StepContext<'_>, args: &Args) -> Result<(), StepError> {
    let listener = listener(ctx)?;
    let sub = args.required_text(ctx, "subscription")?;
    let count = count(ctx, args)?;
    let wait = wait(ctx, args, 1.0)?;
    let mut after = cursor(ctx, &sub);
    if apply_answer(ctx, args, listener, &sub)?.is_some() {
        // Only pushes answered the new way count.
        after = after.max(listener.mark());
    }
    let began = Instant::now();
    let deadline = tokio::time::Instant::now() + wait.limit;
    let mut judging = Judging::new(ctx, count);
    let mut seen = Vec::new();
    let mut verdict = WaitEnd::Unmet;
    while let Some(push) = next_push(listener, &sub, after, deadline).await {
        after = push.seq;
        let idx = record(ctx, &push, began);
        seen.push(push);
        if let Some(v) = judging.offer(ctx, idx) {
            verdict = v;
            break;
        }
    }
    set_cursor(ctx, &sub, after);
    judging.finish(ctx, verdict);
    let step = ctx.step().name.clone();
    if verdict == WaitEnd::Unmet {
        let what = awaited(ctx, &judging.selection, "push", count);
        let closest = super::wait::closest(judging.last_problem(ctx));
        ctx.report(
                    CHECK,
                    Severity::Fail,
                    format!(
                        "step \"{step}\": awaited {what} for subscription {sub} for {} ({}); {} push(es) for it arrived{}{closest}; the listener received {} push(es) in all",
                        secs(began.elapsed()),
                        wait.text,
                        seen.len(),
                        judging
                            .gave_up_text()
                            .map(|t| format!(" ({t})"))
                            .unwrap_or_default(),
                        listener.mark()
                    ),
                    Some(format!("arrived:{}", listed(&seen, began))),
                );
    } else {
        let times: Vec<Instant> = judging
            .judged(ctx)
            .iter()
            .filter_map(|&i| seen.get(i - judging.since).map(|p| p.arrived))
            .collect();
        check_arrivals(ctx, &times);
        ctx.report(
            CHECK,
            Severity::Note,
            format!(
                "step \"{step}\": {} push(es) for subscription {sub} in {}",
                seen.len(),
                secs(began.elapsed()),
            ),
            Some(format!("arrived:{}", listed(&seen, began))),
        );
    }
    Ok(())
}

// ------------------------------------------------------------ ExpectNoPush

const NO_PUSH: &[Param] = &[
    param("subscription", ParamKind::Text, true),
    param("for_minutes", ParamKind::Text, false),
    param("for_seconds", ParamKind::Text, false),
];

operation!(ExpectNoPush, NO_PUSH, expect_no_push);

async fn expect_no_push(ctx: &mut StepContext<'_>, args: &Args) -> Result<(), StepError> {
    let listener = listener(ctx)?;
    let sub = args.required_text(ctx, "subscription")?;
    let Some((window, text)) = super::wait::protocol_time(ctx, args, "for")? else {
        return Err(StepError::Case(
            "ExpectNoPush needs `with.for_minutes` or `with.for_seconds`".into(),
        ));
    };
    let after = cursor(ctx, &sub);
    let began = Instant::now();
    let deadline = tokio::time::Instant::now() + window;
    let step = ctx.step().name.clone();
    match next_push(listener, &sub, after, deadline).await {
        Some(push) => {
            set_cursor(ctx, &sub, push.seq);
            record(ctx, &push, began);
            let when = if push.arrived >= began {
                format!("{} into", secs(push.arrived - began))
            } else {
                format!("{} before", secs(began - push.arrived))
            };
            ctx.report(
                        CHECK,
                        Severity::Fail,
                        format!(
                            "step \"{step}\": a push for subscription {sub} arrived {when} the window of {text} ({}) in which none was expected: {}",
                            secs(window),
                            super::wait::summarize(&push.body_text())
                        ),
                        Some(crate::client::excerpt::excerpt(&push.body_text(), 2000)),
                    );
        }
        None => ctx.note(
            CHECK,
            format!(
                "step \"{step}\": no push for subscription {sub} in {text} ({})",
                secs(window)
            ),
        ),
    }
    Ok(())
}

// ----------------------------------------------------------- SetPushAnswer

const SET_ANSWER: &[Param] = &[
    param("subscription", ParamKind::Text, true),
    param("answer", ParamKind::Text, true),
];

operation!(SetPushAnswer, SET_ANSWER, set_push_answer);

async fn set_push_answer(ctx: &mut StepContext<'_>, args: &Args) -> Result<(), StepError> {
    let listener = listener(ctx)?;
    let sub = args.required_text(ctx, "subscription")?;
    if let Some(answer) = apply_answer(ctx, args, listener, &sub)? {
        let step = ctx.step().name.clone();
        ctx.note(
            CHECK,
            format!(
                "step \"{step}\": the listener answers pushes for {sub} with {answer} from now on"
            ),
        );
    }
    Ok(())
}

// ----------------------------------------------------------- CollectPushes

const COLLECT: &[Param] = &[
    param("subscription", ParamKind::Text, true),
    param("until", ParamKind::Text, false),
    param("answer", ParamKind::Text, false),
    COUNT,
    WITHIN_MINUTES,
    WITHIN_SECONDS,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    MoreEventsFalse,
    Count(usize),
}

/// Whether a push carries nothing but a StatusEvent.
fn status_only(push: &ReceivedPush) -> bool {
    match &push.parsed {
        Ok(n) => n
            .notification
            .as_ref()
            .is_some_and(|n| n.events.iter().all(|e| e.kind == EventKind::Status)),
        Err(_) => false,
    }
}

fn more_events(push: &ReceivedPush) -> Option<bool> {
    push.parsed
        .as_ref()
        .ok()
        .and_then(|n| n.notification.as_ref())
        .and_then(|n| n.more_events)
}

operation!(CollectPushes, COLLECT, collect_pushes);

async fn collect_pushes(ctx: &mut StepContext<'_>, args: &Args) -> Result<(), StepError> {
    let listener = listener(ctx)?;
    let sub = args.required_text(ctx, "subscription")?;
    let until = match args.text_or(ctx, "until", "more_events_false")?.as_str() {
        "more_events_false" => {
            if args.int(ctx, "count")?.is_some() {
                return Err(StepError::Case(
                    "CollectPushes: `count` goes with until = \"count\"".into(),
                ));
            }
            Until::MoreEventsFalse
        }
        "count" => Until::Count(count(ctx, args)?),
        other => {
            return Err(StepError::Case(format!(
                "CollectPushes: until = {other:?} is not \"more_events_false\" or \"count\""
            )));
        }
    };
    let wait = wait(ctx, args, 2.0)?;
    let mut after = cursor(ctx, &sub);
    if apply_answer(ctx, args, listener, &sub)?.is_some() {
        after = after.max(listener.mark());
    }
    let began = Instant::now();
    let deadline = tokio::time::Instant::now() + wait.limit;
    let mut seen = Vec::new();
    let mut collected = 0;
    let mut done = false;
    while let Some(push) = next_push(listener, &sub, after, deadline).await {
        after = push.seq;
        let idx = record(ctx, &push, began);
        let leading_status =
            until == Until::MoreEventsFalse && collected == 0 && status_only(&push);
        if leading_status {
            ctx.pass_over(idx);
        } else {
            collected += 1;
        }
        let stop = match until {
            Until::MoreEventsFalse => !leading_status && more_events(&push) == Some(false),
            Until::Count(n) => collected >= n,
        };
        seen.push(push);
        if stop {
            done = true;
            break;
        }
        if seen.len() >= super::wait::MAX_DOCUMENTS {
            break;
        }
    }
    set_cursor(ctx, &sub, after);
    let step = ctx.step().name.clone();
    let target = match until {
        Until::MoreEventsFalse => "a push with MoreEvents false".to_string(),
        Until::Count(n) => format!("{n} push(es)"),
    };
    if !done {
        ctx.report(
                    CHECK,
                    Severity::Fail,
                    format!(
                        "step \"{step}\": collected {collected} push(es) for subscription {sub} in {} ({}) without reaching {target}; {} arrived",
                        secs(began.elapsed()),
                        wait.text,
                        seen.len(),
                    ),
                    Some(format!("arrived:{}", listed(&seen, began))),
                );
        return Ok(());
    }
    let since = ctx.exchanges().len() - seen.len();
    let times: Vec<Instant> = seen
        .iter()
        .enumerate()
        .filter(|(k, _)| !ctx.is_passed_over(since + k))
        .map(|(_, p)| p.arrived)
        .collect();
    check_arrivals(ctx, &times);
    ctx.report(
                CHECK,
                Severity::Note,
                format!(
                    "step \"{step}\": collected {collected} push(es) for subscription {sub} in {} up to {target}",
                    secs(began.elapsed()),
                ),
                Some(format!("arrived:{}", listed(&seen, began))),
            );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_named() {
        assert_eq!(parse_answer("OK"), Some(PushAnswer::Ok));
        assert_eq!(parse_answer("Unsubscribe"), Some(PushAnswer::Unsubscribe));
        assert_eq!(parse_answer("Hang"), Some(PushAnswer::Hang));
        assert_eq!(parse_answer("Error500"), Some(PushAnswer::HttpError(500)));
        assert_eq!(parse_answer("Error404"), Some(PushAnswer::HttpError(404)));
        assert_eq!(parse_answer("Error200"), None);
        assert_eq!(parse_answer("ok"), None);
    }
}
