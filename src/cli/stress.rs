//! `stress`: many subscriptions at once, counting lost, duplicated and reordered events.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::target::{TargetArgs, apply};
use ews_conformance::settings::Settings;
use ews_conformance::suite::{ExitStatus, target};

#[derive(Args)]
pub(crate) struct StressArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Pull subscriptions, each polled every --poll-ms.
    #[arg(long, default_value_t = 20)]
    pub(crate) subscriptions: usize,
    /// Streaming subscriptions, dealt over --stream-connections connections.
    #[arg(long, default_value_t = 10)]
    pub(crate) streams: usize,
    /// GetStreamingEvents connections the streaming subscriptions share
    /// (servers limit each user's open streams; Exchange's default is 10).
    #[arg(long, default_value_t = 4)]
    pub(crate) stream_connections: usize,
    /// Push subscriptions, delivering to the harness's push listener.
    #[arg(long, default_value_t = 5)]
    pub(crate) push: usize,
    /// How long items are created.
    #[arg(long, default_value_t = 10)]
    pub(crate) seconds: u64,
    /// Items created per second.
    #[arg(long, default_value_t = 20)]
    pub(crate) rate: u32,
    /// Milliseconds between the GetEvents polls of one pull subscription.
    #[arg(long, default_value_t = 200)]
    pub(crate) poll_ms: u64,
    /// Seconds to wait for the last deliveries after the last item.
    #[arg(long, default_value_t = 15)]
    pub(crate) drain_seconds: u64,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
}

pub(crate) fn stress(mut settings: Settings, args: StressArgs) -> anyhow::Result<ExitStatus> {
    use ews_conformance::stress::{StressConfig, StressError, stress};
    apply(&mut settings, args.target);
    let config = StressConfig {
        pull: args.subscriptions,
        streams: args.streams,
        stream_connections: args.stream_connections.max(1),
        push: args.push,
        generate_for: std::time::Duration::from_secs(args.seconds),
        rate: args.rate.max(1),
        poll_every: std::time::Duration::from_millis(args.poll_ms.max(1)),
        drain_for: std::time::Duration::from_secs(args.drain_seconds),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let target = match target::from_settings(&settings).await {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitStatus::HarnessError);
            }
        };
        println!(
            "stress: {} pull, {} streaming, {} push subscriptions; {} items/s for {} s against {}",
            config.pull,
            config.streams,
            config.push,
            config.rate,
            args.seconds,
            target.config().label
        );
        let report = match stress(target.clone(), &config).await {
            Ok(r) => r,
            Err(StressError::Unreachable(e)) => {
                eprintln!("error: {e}");
                return Ok(ExitStatus::Unreachable);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitStatus::HarnessError);
            }
        };
        print!("{}", report.table());
        if let Some(path) = &args.json {
            let text = serde_json::to_string_pretty(&report)?;
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(if report.passed() {
            ExitStatus::Passed
        } else {
            ExitStatus::Failed
        })
    })
}
