//! A push as the listener received it, and why a wait for pushes ended.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::config::*;
use ews_proto::ews::SendNotification;

/// One POST the listener received.
#[derive(Debug, Clone)]
pub struct ReceivedPush {
    /// 1 for the first push.
    pub seq: u64,
    pub arrived: Instant,
    /// Path and query of the request.
    pub path: String,
    /// Request headers, without any credentials.
    pub headers: Vec<(String, String)>,
    /// The body (at most the body limit).
    pub body: Bytes,
    /// The body could not be read to its end (a body over the limit is
    /// refused, never recorded).
    pub body_truncated: bool,
    /// The body as `m:SendNotification`, or why it is not one.
    pub parsed: Result<SendNotification, String>,
    /// From the parsed notification, or from any `SubscriptionId` element
    /// when the body is XML but not a valid notification.
    pub subscription_id: Option<String>,
    pub answered: PushAnswer,
}

impl ReceivedPush {
    /// The body as text (lossy).
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The value of a header (case-insensitive name), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// One line for listings in error messages.
    pub fn summary(&self) -> String {
        let parsed = match &self.parsed {
            Ok(n) => {
                let events: Vec<&str> = n
                    .notification
                    .iter()
                    .flat_map(|x| &x.events)
                    .map(|e| e.kind.element_name())
                    .collect();
                format!("events [{}]", events.join(", "))
            }
            Err(e) => format!("unreadable: {e}"),
        };
        format!(
            "#{} {} subscription {} {} ({} bytes), answered {}",
            self.seq,
            self.path,
            self.subscription_id.as_deref().unwrap_or("?"),
            parsed,
            self.body.len(),
            self.answered
        )
    }
}

/// Why a wait on the listener failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PushWaitError {
    #[error(
        "no push matching {what} arrived within {waited:?}; {total} push(es) arrived:{}",
        listing(.arrived)
    )]
    Timeout {
        what: String,
        waited: Duration,
        total: usize,
        /// Summaries of the most recent pushes.
        arrived: Vec<String>,
    },
    #[error(
        "a push matching {what} arrived, none was expected within {window:?}: {}\n{}",
        .push.summary(),
        crate::client::stream::evidence(&.push.body)
    )]
    Unexpected {
        what: String,
        window: Duration,
        push: Box<ReceivedPush>,
    },
}

pub(super) fn listing(arrived: &[String]) -> String {
    if arrived.is_empty() {
        " none".into()
    } else {
        arrived.iter().map(|a| format!("\n  {a}")).collect()
    }
}
