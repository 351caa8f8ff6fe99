//! `OpenStream`: sends GetStreamingEvents and keeps the response open.

use std::time::{Duration, Instant};

use super::handles::*;
use crate::case::Args;
use crate::check::Severity;
use crate::check::exchange::Exchange;
use crate::client::error::TransportError;
use crate::client::stream::{StreamError, StreamReader};
use crate::suite::notify::wait::{CHECK, WITHIN_MINUTES, WITHIN_SECONDS, param, secs, wait};
use crate::suite::operation::{Operation, Param, ParamKind};
use crate::suite::step::{StepContext, StepError};
use ews_proto::ews::GetStreamingEventsRequest;
use ews_proto::ews::envelope::request;

// -------------------------------------------------------------- OpenStream

pub(super) const OPEN: &[Param] = &[
    param("stream", ParamKind::Text, false),
    param("subscriptions", ParamKind::List, false),
    param("connection_timeout", ParamKind::Int, false),
    param("pad_subscriptions", ParamKind::Int, false),
    param("request", ParamKind::Text, false),
    param("await_first", ParamKind::Bool, false),
    WITHIN_MINUTES,
    WITHIN_SECONDS,
];

operation!(OpenStream, OPEN, open_stream);

pub(super) async fn open_stream(ctx: &mut StepContext<'_>, args: &Args) -> Result<(), StepError> {
    let name = stream_name(ctx, args)?;
    let result = open_named(ctx, args, name.clone()).await;
    // A request that cannot be sent for want of a capture opens nothing:
    // later steps on the stream then say so instead of blaming the case file.
    if matches!(result, Err(StepError::Missing(_))) {
        not_opened(ctx, &name);
    }
    result
}

pub(super) async fn open_named(
    ctx: &mut StepContext<'_>,
    args: &Args,
    name: String,
) -> Result<(), StepError> {
    if ctx.resources().get::<Streams>().open.contains_key(&name) {
        return Err(StepError::Case(format!(
            "stream `{name}` is already open; CloseStream it first or use another name"
        )));
    }
    let timeout = args.int(ctx, "connection_timeout")?;
    let (body, connection_timeout) = match args.text(ctx, "request")? {
        Some(raw) => {
            if args.list(ctx, "subscriptions")?.is_some() || timeout.is_some() {
                return Err(StepError::Case(
                    "OpenStream: `request` is the whole body; it takes no `subscriptions` or `connection_timeout`".into(),
                ));
            }
            (raw, None)
        }
        None => {
            let mut ids = args.list(ctx, "subscriptions")?.ok_or_else(|| {
                StepError::Case("OpenStream needs `with.subscriptions` (or a raw `request`)".into())
            })?;
            if let Some(n) = args.int(ctx, "pad_subscriptions")? {
                if !(0..=10_000).contains(&n) {
                    return Err(StepError::Case(format!(
                        "OpenStream: pad_subscriptions {n} is outside 0..10000"
                    )));
                }
                let mut k = 0;
                while (ids.len() as i64) < n {
                    k += 1;
                    ids.push(format!("ews-conformance-made-up-id-{k:05}"));
                }
            }
            let minutes = timeout.unwrap_or(1);
            let r = GetStreamingEventsRequest {
                subscription_ids: ids,
                connection_timeout: minutes,
            };
            (
                request(&ctx.request_header(), |w| r.render(w)),
                Some(minutes),
            )
        }
    };
    let await_first = args.boolean(ctx, "await_first")?.unwrap_or(true);
    let wait = wait(ctx, args, 1.0)?;
    let step = ctx.step().name.clone();
    let sent = Instant::now();
    let deadline = tokio::time::Instant::now() + wait.limit;
    let opened = match ctx.open(&body, wait.limit).await? {
        Ok(o) => o,
        Err(e) if e.is_fatal() => return Err(StepError::Fatal(e)),
        Err(e) => {
            let why = match e {
                TransportError::Timeout { .. } => format!(
                    "awaited the HTTP response to GetStreamingEvents on stream `{name}` for {} ({}): no status line or headers arrived",
                    secs(sent.elapsed()),
                    wait.text
                ),
                other => format!("GetStreamingEvents on stream `{name}` got no response: {other}"),
            };
            no_response(ctx, body, &why, sent.elapsed());
            not_opened(ctx, &name);
            return Ok(());
        }
    };
    if opened.status != 200 {
        let text = read_plain(opened.body, deadline).await;
        let ex = Exchange {
            step: step.clone(),
            line: ctx.step().line,
            request: body,
            status: Some(opened.status),
            response_text: text.unwrap_or_else(|e| e),
            duration: sent.elapsed(),
            error: None,
            findings: Vec::new(),
            asked: None,
            at: std::time::Duration::ZERO,
            deadline: None,
        };
        ctx.record(ex);
        not_opened(ctx, &name);
        return Ok(());
    }
    let headers_after = opened.elapsed;
    let mut handle = Handle {
        name: name.clone(),
        request: body.clone(),
        reader: StreamReader::from_body(opened.body).opened_at(sent),
        opened: sent,
        connection_timeout,
        closed_after: None,
        ended: false,
        reported: Vec::new(),
    };
    if !await_first {
        ctx.note(
            CHECK,
            format!(
                "step \"{step}\": stream `{name}` answered HTTP 200 after {}",
                secs(headers_after)
            ),
        );
        put(ctx, name, handle);
        return Ok(());
    }
    match handle.reader.next_envelope(deadline).await {
        Ok(Some(env)) => {
            let elapsed = env.elapsed_since_open;
            record(ctx, &mut handle, env, sent);
            ctx.note(
                CHECK,
                format!(
                    "step \"{step}\": stream `{name}`: HTTP 200 after {}, first envelope after {}",
                    secs(headers_after),
                    secs(elapsed)
                ),
            );
            put(ctx, name, handle);
        }
        Ok(None) => {
            let why = format!(
                "stream `{name}`: HTTP 200 after {}, then the body ended without any envelope",
                secs(headers_after)
            );
            no_response(ctx, body, &why, sent.elapsed());
            not_opened(ctx, &name);
        }
        Err(e) => {
            let why = match &e {
                StreamError::Deadline { .. } => format!(
                    "awaited the first envelope of stream `{name}` for {} ({}): HTTP 200 arrived after {}, then {e}",
                    secs(sent.elapsed()),
                    wait.text,
                    secs(headers_after)
                ),
                _ => format!(
                    "stream `{name}`: HTTP 200 after {}, then the first envelope could not be read: {e}",
                    secs(headers_after)
                ),
            };
            no_response(ctx, body, &why, sent.elapsed());
            not_opened(ctx, &name);
        }
    }
    Ok(())
}

/// Records an exchange that got no usable document, with a failing finding.
pub(super) fn no_response(ctx: &mut StepContext<'_>, body: String, why: &str, after: Duration) {
    let step = ctx.step().name.clone();
    let ex = Exchange {
        step: step.clone(),
        line: ctx.step().line,
        request: body,
        status: None,
        response_text: String::new(),
        duration: after,
        error: Some(why.to_string()),
        findings: Vec::new(),
        asked: None,
        at: std::time::Duration::ZERO,
        deadline: None,
    };
    ctx.record(ex);
    ctx.report(
        CHECK,
        Severity::Fail,
        format!("step \"{step}\": {why}"),
        None,
    );
}

/// Reads a whole (non-streaming) body before the deadline; the error is a description.
pub(super) async fn read_plain(
    mut response: crate::client::transport::BodyStream,
    deadline: tokio::time::Instant,
) -> Result<String, String> {
    use futures_util::StreamExt;
    let mut body = Vec::new();
    let read = async {
        while let Some(chunk) = response.next().await.transpose()? {
            if body.len() + chunk.len() > MAX_PLAIN_BODY {
                return Err(format!("the body exceeds {MAX_PLAIN_BODY} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    match tokio::time::timeout_at(deadline, read).await {
        Ok(Ok(())) => Ok(String::from_utf8_lossy(&body).into_owned()),
        Ok(Err(e)) => Err(format!(
            "{}\n(reading the body failed: {e})",
            String::from_utf8_lossy(&body)
        )),
        Err(_) => Err(format!(
            "{}\n(the body did not end before the deadline)",
            String::from_utf8_lossy(&body)
        )),
    }
}
