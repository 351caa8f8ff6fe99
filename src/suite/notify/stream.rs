//! `OpenStream`, `AwaitStream`, `AwaitStreamClosed`, `CloseStream` (see the
//! module above for their keys and how they judge).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::wait::{
    CHECK, COUNT, Judging, WITHIN_MINUTES, WITHIN_SECONDS, Wait, WaitEnd, awaited, check_arrivals,
    count, listing, param, received, secs, wait,
};
use crate::case::Args;
use crate::check::Severity;
use crate::check::exchange::Exchange;
use crate::client::error::TransportError;
use crate::client::stream::{
    ArrivedEnvelope, SplitNote, StreamError, StreamReader, parse_envelope,
};
use crate::suite::operation::{Operation, Param, ParamKind};
use crate::suite::step::{StepContext, StepError};
use ews_proto::ews::envelope::request;
use ews_proto::ews::{ConnectionStatus, GetStreamingEventsRequest};

/// The stream name when a step gives none.
const DEFAULT_STREAM: &str = "s1";
/// Largest non-streaming answer read whole (an error page, a fault).
const MAX_PLAIN_BODY: usize = 1024 * 1024;

/// One open GetStreamingEvents connection of a case.
struct Handle {
    /// The stream's name in the case.
    name: String,
    request: String,
    reader: StreamReader,
    /// When the request was sent.
    opened: Instant,
    /// ConnectionTimeout in minutes, when the harness rendered the request.
    connection_timeout: Option<i64>,
    /// When an envelope with ConnectionStatus Closed arrived, after opening.
    closed_after: Option<Duration>,
    /// The body has ended (cleanly or not).
    ended: bool,
    /// The kinds of wire irregularity already reported for this stream.
    reported: Vec<&'static str>,
}

/// The case's open streams by name; dropping it closes them.
#[derive(Default)]
struct Streams {
    open: HashMap<String, Handle>,
    /// Streams an OpenStream step tried and did not open, with the step's name.
    not_opened: HashMap<String, String>,
}

pub(super) fn operations() -> Vec<Arc<dyn Operation>> {
    vec![
        Arc::new(OpenStream),
        Arc::new(AwaitStream),
        Arc::new(AwaitStreamClosed),
        Arc::new(CloseStream),
    ]
}

fn stream_name(ctx: &StepContext<'_>, args: &Args) -> Result<String, StepError> {
    args.text_or(ctx, "stream", DEFAULT_STREAM)
}

/// The open stream `name`. One that an earlier step failed to open makes
/// this step fail like a missing capture would; an unknown name is the case's fault.
fn take(ctx: &mut StepContext<'_>, name: &str) -> Result<Handle, StepError> {
    let streams = ctx.resources().get::<Streams>();
    if let Some(h) = streams.open.remove(name) {
        return Ok(h);
    }
    match streams.not_opened.get(name) {
        Some(step) => Err(StepError::Missing(format!(
            "stream `{name}` did not open (step \"{step}\")"
        ))),
        None => Err(StepError::Case(format!(
            "no stream named `{name}` is open in this case (OpenStream opens one)"
        ))),
    }
}

fn not_opened(ctx: &mut StepContext<'_>, name: &str) {
    let step = ctx.step().name.clone();
    ctx.resources()
        .get::<Streams>()
        .not_opened
        .insert(name.to_string(), step);
}

fn put(ctx: &mut StepContext<'_>, name: String, handle: Handle) {
    let streams = ctx.resources().get::<Streams>();
    streams.not_opened.remove(&name);
    streams.open.insert(name, handle);
}

fn is_closed(text: &str) -> bool {
    parse_envelope(text).is_ok_and(|r| r.connection_status == Some(ConnectionStatus::Closed))
}

/// Records an arrived envelope as an exchange of the step, and reports
/// what the splitter noticed on the wire before and in it.
fn record(
    ctx: &mut StepContext<'_>,
    handle: &mut Handle,
    mut env: ArrivedEnvelope,
    step_began: Instant,
) -> usize {
    if handle.closed_after.is_none() && is_closed(&env.text) {
        handle.closed_after = Some(env.elapsed_since_open);
    }
    let notes = std::mem::take(&mut env.notes);
    let ex = received(
        ctx,
        handle.request.clone(),
        env.text,
        env.arrived.saturating_duration_since(step_began),
    );
    let idx = ctx.record(ex);
    let at = format!("before or in envelope {}", env.index + 1);
    wire_notes(ctx, handle, &notes, &at);
    idx
}

/// Marks the body ended and reports what trailed the last envelope.
fn body_ended(ctx: &mut StepContext<'_>, handle: &mut Handle) {
    handle.ended = true;
    let tail = handle.reader.tail_notes().to_vec();
    wire_notes(ctx, handle, &tail, "after the last envelope");
}

/// How much a wire irregularity weighs: what is not well-formed XML fails
/// (R1); what is legal, or harmless to both reference clients, is a note.
/// The key names the kind, so each is reported once per stream.
fn weigh(note: &SplitNote) -> (&'static str, Severity) {
    match note {
        SplitNote::RepeatedDeclaration { .. } => ("repeated-declaration", Severity::Fail),
        SplitNote::DeclarationInside { .. } => ("declaration-inside", Severity::Fail),
        SplitNote::UnexpectedEndTag { .. } => ("unexpected-end-tag", Severity::Fail),
        SplitNote::DeclarationWithoutEnvelope { .. } => ("trailing-declaration", Severity::Note),
        SplitNote::Junk { .. } => ("junk", Severity::Note),
        SplitNote::ByteOrderMark => ("byte-order-mark", Severity::Note),
        SplitNote::LineBreakInStartTag { .. } => ("line-break-in-start-tag", Severity::Note),
    }
}

/// Reports each kind of irregularity the first time the stream shows it.
fn wire_notes(ctx: &mut StepContext<'_>, handle: &mut Handle, notes: &[SplitNote], at: &str) {
    for note in notes {
        let (kind, severity) = weigh(note);
        if handle.reported.contains(&kind) {
            continue;
        }
        handle.reported.push(kind);
        let step = ctx.step().name.clone();
        let message = match severity {
            Severity::Fail => format!(
                "step \"{step}\": stream `{}` is not well-formed XML {at}: {note}",
                handle.name
            ),
            Severity::Note => format!("step \"{step}\": stream `{}` {at}: {note}", handle.name),
        };
        ctx.report(CHECK, severity, message, None);
    }
}

/// Arrivals of this step, labelled with their time after the opening.
fn arrivals(
    ctx: &StepContext<'_>,
    handle: &Handle,
    since: usize,
    began: Instant,
) -> Vec<(String, String)> {
    ctx.exchanges()[since..]
        .iter()
        .map(|e| {
            let at = (began + e.duration).saturating_duration_since(handle.opened);
            (
                format!("envelope at {} after the opening", secs(at)),
                e.response_text.clone(),
            )
        })
        .collect()
}

fn listed(items: &[(String, String)]) -> String {
    let refs: Vec<(String, &str)> = items.iter().map(|(l, t)| (l.clone(), t.as_str())).collect();
    listing(&refs)
}

// -------------------------------------------------------------- OpenStream

const OPEN: &[Param] = &[
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

async fn open_stream(ctx: &mut StepContext<'_>, args: &Args) -> Result<(), StepError> {
    let name = stream_name(ctx, args)?;
    let result = open_named(ctx, args, name.clone()).await;
    // A request that cannot be sent for want of a capture opens nothing:
    // later steps on the stream then say so instead of blaming the case file.
    if matches!(result, Err(StepError::Missing(_))) {
        not_opened(ctx, &name);
    }
    result
}

async fn open_named(ctx: &mut StepContext<'_>, args: &Args, name: String) -> Result<(), StepError> {
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
fn no_response(ctx: &mut StepContext<'_>, body: String, why: &str, after: Duration) {
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
async fn read_plain(
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

// ------------------------------------------------------------- AwaitStream

const AWAIT: &[Param] = &[
    param("stream", ParamKind::Text, false),
    COUNT,
    WITHIN_MINUTES,
    WITHIN_SECONDS,
];

operation!(AwaitStream, AWAIT, await_stream);

async fn await_stream(ctx: &mut StepContext<'_>, args: &Args) -> Result<(), StepError> {
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
enum End {
    Met(WaitEnd),
    GaveUp,
    Deadline(String),
    Ended,
    Broken(String),
}

/// Reads envelopes into the step until `judging` is satisfied or the wait ends.
async fn read_until(
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
                break End::Deadline(super::wait::pending(partial.as_ref()));
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
        WaitEnd::Unmet => super::wait::closest(judging.last_problem(ctx)),
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
fn gap_text(docs: &[Exchange], began: Instant, opened: Instant) -> String {
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

// ------------------------------------------------------- AwaitStreamClosed

const AWAIT_CLOSED: &[Param] = &[
    param("stream", ParamKind::Text, false),
    WITHIN_MINUTES,
    WITHIN_SECONDS,
];

operation!(AwaitStreamClosed, AWAIT_CLOSED, await_stream_closed);

async fn await_stream_closed(ctx: &mut StepContext<'_>, args: &Args) -> Result<(), StepError> {
    let name = stream_name(ctx, args)?;
    let mut handle = take(ctx, &name)?;
    let result = await_closed(ctx, args, &name, &mut handle).await;
    put(ctx, name, handle);
    result
}

async fn await_closed(
    ctx: &mut StepContext<'_>,
    args: &Args,
    name: &str,
    handle: &mut Handle,
) -> Result<(), StepError> {
    let minute = ctx.target().protocol_minute;
    let began = Instant::now();
    // Without within_*: the opening + ConnectionTimeout (30 minutes when
    // the request was raw) + slack.
    let wait = match super::wait::protocol_time(ctx, args, "within")? {
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
                            super::wait::pending(partial.as_ref())
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
                    super::wait::pending(partial.as_ref())
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

// ------------------------------------------------------------- CloseStream

const CLOSE: &[Param] = &[param("stream", ParamKind::Text, false)];

operation!(CloseStream, CLOSE, close_stream);

async fn close_stream(ctx: &mut StepContext<'_>, args: &Args) -> Result<(), StepError> {
    let name = stream_name(ctx, args)?;
    let handle = take(ctx, &name)?;
    let step = ctx.step().name.clone();
    let state = if handle.ended {
        "had already ended"
    } else {
        "dropped by the harness"
    };
    ctx.note(
        CHECK,
        format!(
            "step \"{step}\": stream `{name}` {state} after {} envelope(s), {} after the opening",
            handle.reader.envelopes_read(),
            secs(handle.opened.elapsed())
        ),
    );
    drop(handle);
    Ok(())
}
