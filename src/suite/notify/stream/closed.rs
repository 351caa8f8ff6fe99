//! `AwaitStreamClosed`: reads a stream until the server closes it.

use std::time::Instant;

use super::handles::*;
use crate::case::Args;
use crate::check::Severity;
use crate::client::stream::StreamError;
use crate::suite::notify::wait::{
    CHECK, Judging, WITHIN_MINUTES, WITHIN_SECONDS, Wait, WaitEnd, param, secs,
};
use crate::suite::operation::{Operation, Param, ParamKind};
use crate::suite::step::{StepContext, StepError};
use ews_proto::ews::ConnectionStatus;

// ------------------------------------------------------- AwaitStreamClosed

pub(super) const AWAIT_CLOSED: &[Param] = &[
    param("stream", ParamKind::Text, false),
    WITHIN_MINUTES,
    WITHIN_SECONDS,
];

operation!(AwaitStreamClosed, AWAIT_CLOSED, await_stream_closed);

pub(super) async fn await_stream_closed(
    ctx: &mut StepContext<'_>,
    args: &Args,
) -> Result<(), StepError> {
    let name = stream_name(ctx, args)?;
    let mut handle = take(ctx, &name)?;
    let result = await_closed(ctx, args, &name, &mut handle).await;
    put(ctx, name, handle);
    result
}

pub(super) async fn await_closed(
    ctx: &mut StepContext<'_>,
    args: &Args,
    name: &str,
    handle: &mut Handle,
) -> Result<(), StepError> {
    let minute = ctx.target().protocol_minute;
    let began = Instant::now();
    // Without within_*: the opening + ConnectionTimeout (30 minutes when
    // the request was raw) + slack.
    let wait = match crate::suite::notify::wait::protocol_time(ctx, args, "within")? {
        Some((nominal, text)) => Wait::new(nominal, text),
        None => {
            let minutes = handle.connection_timeout.unwrap_or(30);
            let mut w = Wait::new(
                minute * minutes.max(1) as u32,
                format!("ConnectionTimeout {minutes} protocol minute(s) from the opening"),
            );
            w.limit = w.limit.saturating_sub(handle.opened.elapsed());
            w
        }
    };
    ctx.wait_until(wait.limit);
    let deadline = tokio::time::Instant::now() + wait.limit;
    let step = ctx.step().name.clone();
    let mut judging = {
        let mut selection = ctx.step().clone();
        selection.expect.no_events.clear();
        if selection.expect.connection_status.is_none() {
            selection.expect.connection_status = Some(ConnectionStatus::Closed);
        }
        Judging::with_selection(ctx, selection, 1)
    };
    let mut problem: Option<(String, Option<String>)> = None;
    if handle.closed_after.is_none() {
        loop {
            if handle.ended {
                let items = arrivals(ctx, handle, judging.since, began);
                problem = Some((
                    format!(
                        "the body of stream `{name}` ended without an envelope with ConnectionStatus Closed; {} envelope(s) arrived in this step",
                        items.len()
                    ),
                    Some(format!("arrived:{}", listed(&items))),
                ));
                break;
            }
            match handle.reader.next_envelope(deadline).await {
                Ok(Some(env)) => {
                    let idx = record(ctx, handle, env, began);
                    if judging.offer(ctx, idx).is_some() {
                        if let Some(why) = judging.gave_up_text() {
                            problem = Some((
                                format!(
                                    "awaited ConnectionStatus Closed on stream `{name}`: {why}"
                                ),
                                None,
                            ));
                        }
                        break;
                    }
                    if handle.closed_after.is_some() {
                        // Closed, but the step's other expectations failed on it.
                        break;
                    }
                }
                Ok(None) => {
                    body_ended(ctx, handle);
                }
                Err(StreamError::Split(e)) => {
                    ctx.report(
                        CHECK,
                        Severity::Fail,
                        format!("step \"{step}\": stream `{name}`: an envelope could not be delivered: {e}"),
                        None,
                    );
                }
                Err(StreamError::Deadline { partial, .. }) => {
                    let items = arrivals(ctx, handle, judging.since, began);
                    problem = Some((
                        format!(
                            "awaited ConnectionStatus Closed on stream `{name}` for {} ({}; the stream was opened {} before the step); {} envelope(s) arrived in this step; {}",
                            secs(began.elapsed()),
                            wait.text,
                            secs(began.saturating_duration_since(handle.opened)),
                            items.len(),
                            crate::suite::notify::wait::pending(partial.as_ref())
                        ),
                        Some(format!("arrived:{}", listed(&items))),
                    ));
                    break;
                }
                Err(e) => {
                    handle.ended = true;
                    problem = Some((
                        format!("stream `{name}` broke before ConnectionStatus Closed: {e}"),
                        None,
                    ));
                    break;
                }
            }
        }
    }
    let verdict = if handle.closed_after.is_some() && judging.met.len() == 1 {
        WaitEnd::Alone
    } else {
        WaitEnd::Unmet
    };
    judging.finish(ctx, verdict);
    if let Some((p, evidence)) = problem {
        ctx.report(
            CHECK,
            Severity::Fail,
            format!("step \"{step}\": {p}"),
            evidence,
        );
        return Ok(());
    }
    let Some(closed_after) = handle.closed_after else {
        return Ok(());
    };
    // Closed arrived: the body must end now.
    let mut after_closed = 0;
    let ended_after = loop {
        if handle.ended {
            break Ok(handle.opened.elapsed());
        }
        match handle.reader.next_envelope(deadline).await {
            Ok(None) => {
                body_ended(ctx, handle);
                break Ok(handle.opened.elapsed());
            }
            Ok(Some(env)) => {
                after_closed += 1;
                let idx = record(ctx, handle, env, began);
                ctx.pass_over(idx);
                if after_closed >= 3 {
                    break Err(format!(
                        "{after_closed} envelopes arrived after ConnectionStatus Closed; the body should have ended"
                    ));
                }
            }
            Err(StreamError::Split(_)) => {}
            Err(StreamError::Deadline { partial, .. }) => {
                break Err(format!(
                    "ConnectionStatus Closed arrived {} after the opening, but the body did not end within {}; {}",
                    secs(closed_after),
                    wait.text,
                    crate::suite::notify::wait::pending(partial.as_ref())
                ));
            }
            Err(e) => {
                handle.ended = true;
                break Err(format!(
                    "after ConnectionStatus Closed the body broke instead of ending: {e}"
                ));
            }
        }
    };
    if after_closed > 0 {
        ctx.report(
            CHECK,
            Severity::Fail,
            format!(
                "step \"{step}\": stream `{name}`: {after_closed} envelope(s) arrived after the one with ConnectionStatus Closed"
            ),
            None,
        );
    }
    let relative = match handle.connection_timeout {
        Some(m) if m > 0 => format!(
            " = {:.2} × ConnectionTimeout ({m} protocol minute(s) = {})",
            closed_after.as_secs_f64() / (minute * m as u32).as_secs_f64(),
            secs(minute * m as u32)
        ),
        _ => String::new(),
    };
    match ended_after {
        Ok(ended) => ctx.note(
            CHECK,
            format!(
                "step \"{step}\": stream `{name}`: ConnectionStatus Closed {} after the opening{relative}; the body ended {} later",
                secs(closed_after),
                secs(ended.saturating_sub(closed_after))
            ),
        ),
        Err(p) => ctx.report(
            CHECK,
            Severity::Fail,
            format!("step \"{step}\": stream `{name}`: {p}"),
            None,
        ),
    }
    Ok(())
}
