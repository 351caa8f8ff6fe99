//! The driver: runs a generated sequence against a real target over the
//! wire and judges what it delivers.
//!
//! It uses the harness's own machinery: the [`Target`] (embedded reference
//! server or live endpoint), the request renderers of [`ews_proto::ews`], the
//! [`Transport`] with its per-request deadline, the push listener the
//! target offers, and [`crate::client::stream::StreamReader`] for
//! streaming. One run:
//!
//! 1. creates a fresh case folder under `msgfolderroot` and looks up the
//!    well-known folders (their ids, and the unread counts the model
//!    starts from);
//! 2. runs each [`Op`], binding the ids responses report to the handles;
//!    pull subscriptions drain GetEvents on `Poll`, streaming ones keep a
//!    GetStreamingEvents connection each, push ones get their own listener
//!    URL, and a `Poll` of those waits (bounded) until the predicted events
//!    arrived;
//! 3. waits a short settling time for anything extra, unsubscribes, deletes
//!    the case folder, and calls [`judge`].
//!
//! A target that refuses an operation, answers garbage or not at all fails
//! the run with evidence ([`StepFailure`]); only an unreachable target or
//! refused credentials end it with a [`DriveError`].

mod collect;
mod config;
mod driver;
mod explore;
mod failure;
mod feeds;
mod runner;
mod wire;

pub use config::DriverConfig;
pub use driver::Driver;
pub use explore::{
    ExploreConfig, ExploreProgress, ExploreReport, Found, explore, explore_with_progress,
    found_case_name, render_found_case, write_found_case,
};
pub use failure::{DriveError, Failure, SequenceRun, Signature, StepFailure};
