//! The case's open streams, and recording what a stream delivered.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::case::Args;
use crate::check::Severity;
use crate::client::stream::{ArrivedEnvelope, SplitNote, StreamReader, parse_envelope};
use crate::suite::notify::wait::{CHECK, listing, received, secs};
use crate::suite::step::{StepContext, StepError};
use ews_proto::ews::ConnectionStatus;

/// The stream name when a step gives none.
pub(super) const DEFAULT_STREAM: &str = "s1";
/// Largest non-streaming answer read whole (an error page, a fault).
pub(super) const MAX_PLAIN_BODY: usize = 1024 * 1024;

/// One open GetStreamingEvents connection of a case.
pub(super) struct Handle {
    /// The stream's name in the case.
    pub(super) name: String,
    pub(super) request: String,
    pub(super) reader: StreamReader,
    /// When the request was sent.
    pub(super) opened: Instant,
    /// ConnectionTimeout in minutes, when the harness rendered the request.
    pub(super) connection_timeout: Option<i64>,
    /// When an envelope with ConnectionStatus Closed arrived, after opening.
    pub(super) closed_after: Option<Duration>,
    /// The body has ended (cleanly or not).
    pub(super) ended: bool,
    /// The kinds of wire irregularity already reported for this stream.
    pub(super) reported: Vec<&'static str>,
}

/// The case's open streams by name; dropping it closes them.
#[derive(Default)]
pub(super) struct Streams {
    pub(super) open: HashMap<String, Handle>,
    /// Streams an OpenStream step tried and did not open, with the step's name.
    pub(super) not_opened: HashMap<String, String>,
}

pub(super) fn stream_name(ctx: &StepContext<'_>, args: &Args) -> Result<String, StepError> {
    args.text_or(ctx, "stream", DEFAULT_STREAM)
}

/// The open stream `name`. One that an earlier step failed to open makes
/// this step fail like a missing capture would; an unknown name is the case's fault.
pub(super) fn take(ctx: &mut StepContext<'_>, name: &str) -> Result<Handle, StepError> {
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

pub(super) fn not_opened(ctx: &mut StepContext<'_>, name: &str) {
    let step = ctx.step().name.clone();
    ctx.resources()
        .get::<Streams>()
        .not_opened
        .insert(name.to_string(), step);
}

pub(super) fn put(ctx: &mut StepContext<'_>, name: String, handle: Handle) {
    let streams = ctx.resources().get::<Streams>();
    streams.not_opened.remove(&name);
    streams.open.insert(name, handle);
}

pub(super) fn is_closed(text: &str) -> bool {
    parse_envelope(text).is_ok_and(|r| r.connection_status == Some(ConnectionStatus::Closed))
}

/// Records an arrived envelope as an exchange of the step, and reports
/// what the splitter noticed on the wire before and in it.
pub(super) fn record(
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
pub(super) fn body_ended(ctx: &mut StepContext<'_>, handle: &mut Handle) {
    handle.ended = true;
    let tail = handle.reader.tail_notes().to_vec();
    wire_notes(ctx, handle, &tail, "after the last envelope");
}

/// How much a wire irregularity weighs: what is not well-formed XML fails
/// (R1); what is legal, or harmless to both reference clients, is a note.
/// The key names the kind, so each is reported once per stream.
pub(super) fn weigh(note: &SplitNote) -> (&'static str, Severity) {
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
pub(super) fn wire_notes(
    ctx: &mut StepContext<'_>,
    handle: &mut Handle,
    notes: &[SplitNote],
    at: &str,
) {
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
pub(super) fn arrivals(
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

pub(super) fn listed(items: &[(String, String)]) -> String {
    let refs: Vec<(String, &str)> = items.iter().map(|(l, t)| (l.clone(), t.as_str())).collect();
    listing(&refs)
}
