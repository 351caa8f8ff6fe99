//! `AwaitStream`: reads a stream until the step's notifications arrived.

use std::time::Instant;

use super::handles::*;
use crate::case::Args;
use crate::check::Severity;
use crate::check::exchange::Exchange;
use crate::client::stream::StreamError;
use crate::suite::notify::wait::{
    CHECK, COUNT, Judging, WITHIN_MINUTES, WITHIN_SECONDS, Wait, WaitEnd, awaited, check_arrivals,
    count, param, secs, wait,
};
use crate::suite::operation::{Operation, Param, ParamKind};
use crate::suite::step::{StepContext, StepError};

// ------------------------------------------------------------- AwaitStream

pub(super) const AWAIT: &[Param] = &[
    param("stream", ParamKind::Text, false),
    COUNT,
    WITHIN_MINUTES,
    WITHIN_SECONDS,
];

operation!(AwaitStream, AWAIT, await_stream);

pub(super) async fn await_stream(ctx: &mut StepContext<'_>, args: &Args) -> Result<(), StepError> {
    let name = stream_name(ctx, args)?;
    let count = count(ctx, args)?;
    let wait = wait(ctx, args, 1.0)?;
    let mut handle = take(ctx, &name)?;
    let judging = Judging::new(ctx, count);
    let result = read_until(ctx, &name, &mut handle, judging, &wait, count).await;
    put(ctx, name, handle);
    result
}

/// How reading a stream for a step ended.
pub(super) enum End {
    Met(WaitEnd),
    GaveUp,
    Deadline(String),
    Ended,
    Broken(String),
}

/// Reads envelopes into the step until `judging` is satisfied or the wait ends.
pub(super) async fn read_until(
    ctx: &mut StepContext<'_>,
    name: &str,
    handle: &mut Handle,
    mut judging: Judging,
    wait: &Wait,
    count: usize,
) -> Result<(), StepError> {
    let began = Instant::now();
    let deadline = tokio::time::Instant::now() + wait.limit;
    let end = loop {
        if handle.ended {
            break End::Ended;
        }
        match handle.reader.next_envelope(deadline).await {
            Ok(Some(env)) => {
                let idx = record(ctx, handle, env, began);
                match judging.offer(ctx, idx) {
                    Some(WaitEnd::Unmet) => break End::GaveUp,
                    Some(v) => break End::Met(v),
                    None => {}
                }
            }
            Ok(None) => {
                body_ended(ctx, handle);
                break End::Ended;
            }
            Err(StreamError::Split(e)) => {
                let step = ctx.step().name.clone();
                ctx.report(
                    CHECK,
                    Severity::Fail,
                    format!(
                        "step \"{step}\": stream `{name}`: an envelope could not be delivered: {e}"
                    ),
                    None,
                );
            }
            Err(StreamError::Deadline { partial, .. }) => {
                break End::Deadline(crate::suite::notify::wait::pending(partial.as_ref()));
            }
            Err(e) => {
                handle.ended = true;
                break End::Broken(e.to_string());
            }
        }
    };
    let verdict = match end {
        End::Met(v) => v,
        _ => WaitEnd::Unmet,
    };
    judging.finish(ctx, verdict);
    let step_name = ctx.step().name.clone();
    let what = awaited(ctx, &judging.selection, "envelope", count);
    let items = arrivals(ctx, handle, judging.since, began);
    let n = items.len();
    let closest = match verdict {
        WaitEnd::Unmet => crate::suite::notify::wait::closest(judging.last_problem(ctx)),
        _ => String::new(),
    };
    let failure = match end {
        End::Met(_) => None,
        End::GaveUp => Some(format!(
            "awaited {what} on stream `{name}` for {}: {}{closest}",
            secs(began.elapsed()),
            judging.gave_up_text().unwrap_or_default(),
        )),
        End::Deadline(pending) => Some(format!(
            "awaited {what} on stream `{name}` for {} ({}); {n} envelope(s) arrived in this step{closest}; {pending}",
            secs(began.elapsed()),
            wait.text,
        )),
        End::Ended => Some(format!(
            "stream `{name}` ended ({} into the step) before {what} arrived; {n} envelope(s) arrived in this step{closest}",
            secs(began.elapsed()),
        )),
        End::Broken(detail) => Some(format!(
            "stream `{name}` broke {} into the step, before {what} arrived: {detail}; {n} envelope(s) arrived in this step{closest}",
            secs(began.elapsed()),
        )),
    };
    match failure {
        Some(message) => ctx.report(
            CHECK,
            Severity::Fail,
            format!("step \"{step_name}\": {message}"),
            Some(format!("arrived:{}", listed(&items))),
        ),
        None => {
            let judged: Vec<usize> = judging.judged(ctx);
            let times: Vec<Instant> = judged
                .iter()
                .map(|&i| began + ctx.exchanges()[i].duration)
                .collect();
            check_arrivals(ctx, &times);
            let opened = handle.opened;
            let gaps = gap_text(&ctx.exchanges()[judging.since..], began, opened);
            ctx.report(
                CHECK,
                Severity::Note,
                format!(
                    "step \"{step_name}\": stream `{name}`: {n} envelope(s) in {}{gaps}",
                    secs(began.elapsed()),
                ),
                Some(format!("arrived:{}", listed(&items))),
            );
        }
    }
    Ok(())
}

/// Arrival times after the opening and the gaps between them, in seconds.
pub(super) fn gap_text(docs: &[Exchange], began: Instant, opened: Instant) -> String {
    let at: Vec<f64> = docs
        .iter()
        .map(|e| {
            (began + e.duration)
                .saturating_duration_since(opened)
                .as_secs_f64()
        })
        .collect();
    if at.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = at.iter().take(40).map(|s| format!("{s:.2}")).collect();
    let gaps: Vec<String> = at
        .windows(2)
        .take(40)
        .map(|w| format!("{:.2}", w[1] - w[0]))
        .collect();
    if gaps.is_empty() {
        format!(", at [{}] s after the opening", shown.join(", "))
    } else {
        format!(
            ", at [{}] s after the opening (gaps [{}] s)",
            shown.join(", "),
            gaps.join(", ")
        )
    }
}
