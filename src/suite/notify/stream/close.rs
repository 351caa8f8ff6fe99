//! `CloseStream`: the client ends a stream.

use super::handles::*;
use crate::case::Args;
use crate::suite::notify::wait::{CHECK, param, secs};
use crate::suite::operation::{Operation, Param, ParamKind};
use crate::suite::step::{StepContext, StepError};

// ------------------------------------------------------------- CloseStream

pub(super) const CLOSE: &[Param] = &[param("stream", ParamKind::Text, false)];

operation!(CloseStream, CLOSE, close_stream);

pub(super) async fn close_stream(ctx: &mut StepContext<'_>, args: &Args) -> Result<(), StepError> {
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
