//! How the driver talks to a target and how long it waits.

use std::time::Duration;

use crate::model::latitude::Latitude;
use crate::suite::target::TargetConfig;

/// How the driver talks to a target and how long it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverConfig {
    /// What the oracle tolerates.
    pub profile: Latitude,
    /// How long a streaming or push `Poll` waits for its predicted events
    /// (and an asynchronous pull target for late ones).
    pub event_wait: Duration,
    /// After the last operation, how long to wait for extra notifications
    /// (repeats) before judging.
    pub settle: Duration,
    /// Pull subscriptions' Timeout, in protocol minutes.
    pub pull_timeout_minutes: i64,
    /// Push subscriptions' StatusFrequency, in protocol minutes.
    pub push_status_frequency: i64,
    /// GetStreamingEvents ConnectionTimeout, in protocol minutes (1..30).
    pub connection_timeout_minutes: i64,
    /// GetEvents calls one drain may make before it is given up.
    pub max_drain_calls: usize,
    /// How long a sent message may take to reach the Inbox (Exchange's
    /// transport delivers asynchronously, seconds after CreateItem returns).
    pub delivery_wait: Duration,
}

impl DriverConfig {
    /// Defaults for a target: its profile (`reference` unless the target
    /// names another; an unknown or missing name against a live endpoint
    /// means `exchange`, every version's latitude), and waits scaled to its
    /// protocol minute.
    pub fn for_target(config: &TargetConfig) -> Self {
        let profile = config
            .profile
            .as_deref()
            .and_then(Latitude::named)
            .unwrap_or_else(Latitude::exchange);
        let minute = config.protocol_minute;
        DriverConfig {
            profile,
            event_wait: (minute / 2).clamp(Duration::from_secs(2), Duration::from_secs(60)),
            settle: (minute / 10).clamp(Duration::from_millis(100), Duration::from_secs(3)),
            pull_timeout_minutes: 30,
            push_status_frequency: 1,
            connection_timeout_minutes: 30,
            max_drain_calls: 50,
            delivery_wait: (minute / 2).clamp(Duration::from_secs(2), Duration::from_secs(60)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_without_a_known_profile_is_judged_with_every_versions_latitude() {
        let build = |profile: Option<&str>| {
            TargetConfig::builder("http://127.0.0.1:1/EWS/Exchange.asmx")
                .profile(profile.map(str::to_string))
                .build()
                .map(|c| DriverConfig::for_target(&c).profile.name)
                .ok()
        };
        assert_eq!(build(None), Some("exchange"));
        assert_eq!(build(Some("a lab server")), Some("exchange"));
        assert_eq!(build(Some("exchange2010")), Some("exchange2010"));
        assert_eq!(build(Some("reference")), Some("reference"));
    }
}
