//! The harness's push listener: the web service a push subscription's `URL`
//! names. It records every notification POST as evidence, answers each one
//! as the case's policy says (OK, Unsubscribe, an HTTP error, or no answer
//! at all), and lets a case wait for, or rule out, a notification.

mod config;
mod listener;
mod receive;
mod received;
mod shared;

pub use config::*;
pub use listener::PushListener;
pub use receive::result_envelope;
pub use received::{PushWaitError, ReceivedPush};
pub use shared::{PushStats, PushStatsHandle};
