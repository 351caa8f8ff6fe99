//! Named operations for the two delivery paths that are not request and
//! response: GetStreamingEvents streams and push notifications.
//!
//! Streaming (a case may hold several connections, each under a name):
//!
//! | op | `with` | does |
//! |---|---|---|
//! | `OpenStream` | `stream` (default `"s1"`), `subscriptions` (list), `connection_timeout` (minutes, default 1), `pad_subscriptions` (fill the id list with made-up ids up to this many), `request` (a raw body instead), `await_first` (default true), `within_minutes`/`within_seconds` | POSTs GetStreamingEvents, keeps the body as an incremental reader, and judges the first envelope (HTTP 200 expected unless the step says otherwise). With `await_first = false` only the headers are awaited, so the next `AwaitStream` sees every envelope. A non-200 answer is read whole and judged like any response. |
//! | `AwaitStream` | `stream`, `count` (default 1), `within_*` | Reads envelopes as they arrive until the step's expectations hold (below). |
//! | `AwaitStreamClosed` | `stream`, `within_*` | Reads until an envelope with ConnectionStatus Closed, then requires the body to end. Without `within_*` the deadline is the opening time + ConnectionTimeout + slack. Reports when it closed relative to ConnectionTimeout. |
//! | `CloseStream` | `stream` | Drops the connection (the server must free it). |
//!
//! Push (the target POSTs to the harness's listener, `${push_url}`):
//!
//! | op | `with` | does |
//! |---|---|---|
//! | `AwaitPush` | `subscription`, `answer`, `count` (default 1), `within_*` | Waits for the next SendNotification of that subscription that meets the step's expectations. With `answer` (`OK`, `Unsubscribe`, `Error500` or any `Error4xx/5xx`, `Hang`) the listener answers so from now on, and only pushes arriving after the step starts count. |
//! | `ExpectNoPush` | `subscription`, `for_minutes`/`for_seconds` | Fails, with the push as evidence, if one arrives for the subscription within the window. |
//! | `SetPushAnswer` | `subscription`, `answer` | Sets how the listener answers that subscription's pushes. |
//! | `CollectPushes` | `subscription`, `until` (`more_events_false`, default, or `count`), `count`, `answer`, `within_*` | Gathers a run of pushes; with `more_events_false`, leading pushes holding only a StatusEvent are passed over and the run ends at the first MoreEvents false. Every gathered push is judged, so batching (`batches`, `more_events_until_last`) and continuity (`watermark_chain`) checks see the run. |
//!
//! **Which documents a waiting step is judged on.** Every envelope or push
//! that arrives while a step waits becomes an [`Exchange`]
//! of that step (response text = the document; request = the
//! GetStreamingEvents request, or the listener's answer to the push;
//! duration = when it arrived after the step began), so every check applies
//! to it.
//! * When a step states a per-document expectation (`class`, `code`,
//!   `status`, `fault`, `rejected`, `connection_status`,
//!   `error_subscription_ids`, `previous_watermark`), or `count` > 1, it
//!   stops at the `count`-th document that meets all its expectations on
//!   its own. The others are *passed over*: judged only by the general
//!   checks (a named operation's implicit success, structure), so an
//!   unexpected Error envelope still shows. With `count` > 1 the chosen
//!   documents are then checked together, as a DrainEvents step's
//!   responses are (an assert's `count` is their total).
//! * Otherwise it stops at the first document that meets them on its own
//!   (the others are passed over), or as soon as all the documents it
//!   received meet them together (events split over several envelopes);
//!   then all of them are judged.
//! * `no_events` is not a reason to keep waiting; it is judged at the end.
//! * If the deadline passes, the stream ends, or [`MAX_DOCUMENTS`] arrive
//!   first, the last document is judged with the step's expectations (so
//!   the checks say what was wrong with it), and a finding says what was
//!   awaited, for how long, and lists what arrived (bounded).
//! * Each waiting step adds a note (shown for recorded cases) with the
//!   arrival times, gaps and a one-line summary of each document: the
//!   heartbeat interval (R49) and batch sizes (R59) are recorded this way.
//! * What a stream carries between and around its envelopes is judged by
//!   the step that reads it, each kind once per stream: what is not
//!   well-formed XML fails (two XML declarations before an envelope, a
//!   declaration inside one, an envelope closed by another tag); junk
//!   between envelopes, a byte order mark, a declaration after the last
//!   envelope and a line break in the Envelope start tag are notes.
//!
//! Default waits: `OpenStream`, `AwaitStream` and `AwaitPush` one protocol
//! minute, `CollectPushes` two. In an assert case a step on a stream whose
//! OpenStream step failed is skipped (see [`depend`](super::depend)); in a
//! record case, a step on a stream that did not open fails like a step
//! whose capture is missing.
//!
//! Waiting for mail delivery (`AwaitDelivery`, and pull steps that poll
//! until their events arrive) is in the `delivery` module.
//!
//! **Time.** `within_minutes` and `for_minutes` are protocol minutes (the
//! target's `protocol_minute`); `within_seconds`/`for_seconds` are
//! protocol seconds (1/60 of one). A deadline adds a slack of
//! [`SLACK_FRACTION`] of the wait, at least [`SLACK_MIN`]; a window in
//! which nothing may arrive has none. `arrivals_minutes` is judged with a
//! tolerance of [`ARRIVAL_TOLERANCE_FRACTION`] of the expected offset, at
//! least [`ARRIVAL_TOLERANCE_MIN_MINUTES`] protocol minutes.

/// Declares the unit struct `$op`, an [`Operation`] named after it with the
/// parameters `$params`, whose step runs the async fn `$run(ctx, args)`.
macro_rules! operation {
    ($op:ident, $params:expr, $run:ident) => {
        pub(super) struct $op;

        impl Operation for $op {
            fn name(&self) -> &'static str {
                stringify!($op)
            }

            fn params(&self) -> &'static [Param] {
                $params
            }

            fn run<'a>(
                &'a self,
                ctx: &'a mut StepContext<'_>,
                args: &'a Args,
            ) -> futures_util::future::BoxFuture<'a, Result<(), StepError>> {
                Box::pin($run(ctx, args))
            }
        }
    };
}

pub(crate) mod delivery;
mod push;
mod stream;
mod wait;

use std::sync::Arc;

use super::operation::Operation;

pub use wait::{
    ARRIVAL_TOLERANCE_FRACTION, ARRIVAL_TOLERANCE_MIN_MINUTES, MAX_DOCUMENTS, SLACK_FRACTION,
    SLACK_MIN,
};

/// The operations that judge `arrivals_minutes`.
pub const TIMED_OPS: &[&str] = &["AwaitStream", "AwaitPush", "CollectPushes"];

/// The streaming and push operations, for [`OpRegistry::builtin`](super::ops::OpRegistry::builtin).
pub fn operations() -> Vec<Arc<dyn Operation>> {
    let mut ops = stream::operations();
    ops.extend(push::operations());
    ops.extend(delivery::operations());
    ops
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::wait::*;

    #[test]
    fn slack_is_half_the_wait_and_at_least_the_minimum() {
        let w = Wait::new(Duration::from_secs(60), "1 protocol minute".into());
        assert_eq!(w.limit, Duration::from_secs(90));
        assert!(w.text.contains("60.00 s + 30.00 s slack"), "{}", w.text);
        let w = Wait::new(Duration::from_millis(500), "x".into());
        assert_eq!(w.limit, Duration::from_millis(2500));
    }

    #[test]
    fn documents_are_summarized_in_one_line() {
        let heartbeat = r#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><m:GetStreamingEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:ConnectionStatus>OK</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></Body></Envelope>"#;
        assert_eq!(
            summarize(heartbeat),
            "Success/NoError, ConnectionStatus OK, heartbeat"
        );
        let s = summarize(crate::check::testing::GET_EVENTS_OK);
        assert_eq!(
            s,
            "Success/NoError, subscription S1: 3 event(s) [CreatedEvent, ModifiedEvent, MovedEvent], MoreEvents false, PreviousWatermark \"W0\""
        );
        assert!(summarize("junk").starts_with("no SOAP envelope"));
    }
}
