//! `serve`: the reference server alone, with its faults and dialects.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use ews_conformance::suite::ExitStatus;
use ews_server::{DIALECTS, DialectSet, FaultSet};

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (default: the config file's `listen`, else
    /// 127.0.0.1:8080). Anything but loopback exposes the test users'
    /// fixed passwords to the network.
    #[arg(long)]
    pub(crate) listen: Option<std::net::SocketAddr>,
    /// A TOML file with users and server settings (see README).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Length of a protocol minute in milliseconds (default 60000).
    #[arg(long)]
    pub(crate) protocol_minute_ms: Option<u64>,
    /// Switch on a fault of the catalogue (repeatable; `selftest --list` names them).
    #[arg(long = "fault", value_name = "NAME")]
    pub(crate) faults: Vec<String>,
    /// Answer in a dialect: a legal variation of Exchange's wire behaviour
    /// (repeatable; `all` = every compatible one; `list` prints them).
    #[arg(long = "dialect", value_name = "NAME")]
    pub(crate) dialects: Vec<String>,
    /// Push notifications go only to this network (repeatable, CIDR or a
    /// single address; replaces the config's `push_allow`). Without any,
    /// everything but link-local and cloud metadata addresses is allowed.
    #[arg(long = "push-allow", value_name = "CIDR")]
    pub(crate) push_allow: Vec<String>,
}

/// Where `serve` listens when neither the flag nor the config file says.
pub(crate) const SERVE_LISTEN: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

pub(crate) fn serve(args: ServeArgs) -> anyhow::Result<ExitStatus> {
    let mut config = match &args.config {
        Some(path) => ews_server::ServerConfig::from_file_listening(path, SERVE_LISTEN)?,
        None => ews_server::ServerConfig {
            listen: SERVE_LISTEN,
            ..Default::default()
        },
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if !args.push_allow.is_empty() {
        config.push_destinations = ews_server::PushDestinations::allow_only(&args.push_allow)?;
    }
    if let Some(ms) = args.protocol_minute_ms {
        config.protocol_minute = std::time::Duration::from_millis(ms.max(10));
    }
    for fault in FaultSet::parse(&args.faults)?.iter() {
        config.faults.insert(fault);
    }
    if args.dialects.iter().any(|d| d.trim() == "list") {
        print_dialects();
        return Ok(ExitStatus::Passed);
    }
    for dialect in DialectSet::parse(&args.dialects)?.iter() {
        config.dialects.insert(dialect);
    }
    config.dialects.check()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let server = ews_server::start(config.clone())
            .await
            .context("starting the reference server")?;
        println!("EWS reference server listening at {}", server.url());
        println!(
            "  push notifications go {}",
            config.push_destinations.describe()
        );
        println!(
            "  limits: request head {} ms (also the idle keep-alive wait), request body {} ms, {} connections",
            config.limits.header_timeout.as_millis(),
            config.limits.body_timeout.as_millis(),
            config.limits.max_connections
        );
        for user in &config.users {
            println!("  user {} ({})", user.smtp, user.display_name);
        }
        for fault in config.faults.iter() {
            println!("  FAULT {fault}: {}", fault.info().description);
        }
        for dialect in config.dialects.iter() {
            let info = dialect.info();
            println!("  DIALECT {dialect}: {}", info.description);
            if let Some(p) = info.profile {
                println!("    (run the suite with EWS_PROFILE={p})");
            }
        }
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        server.shutdown().await;
        Ok(ExitStatus::Passed)
    })
}

/// The dialect catalogue, one line each: name, class, profile, exclusions,
/// description, source.
pub(crate) fn print_dialects() {
    for info in DIALECTS {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            info.name,
            info.class,
            info.profile.unwrap_or("-"),
            if info.excludes.is_empty() {
                "-".to_string()
            } else {
                format!(
                    "excludes {}",
                    info.excludes
                        .iter()
                        .map(|d| d.name())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            },
            info.description,
            info.source
        );
    }
}
