//! `compare`: put the JSON reports of several runs side by side.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use ews_conformance::report::compare::Comparison;
use ews_conformance::report::html::render_comparison;
use ews_conformance::suite::ExitStatus;

#[derive(Args)]
pub(crate) struct CompareArgs {
    /// JSON reports written by `run --json` (at least two).
    #[arg(required = true, num_args = 2..)]
    pub(crate) reports: Vec<PathBuf>,
    /// Also write the matrix as a self-contained HTML page here.
    #[arg(long)]
    pub(crate) html: Option<PathBuf>,
    /// Exit 1 when any case differs (for a CI job that must keep two servers in step).
    #[arg(long)]
    pub(crate) fail_on_difference: bool,
}

pub(crate) fn compare(args: CompareArgs) -> anyhow::Result<ExitStatus> {
    let comparison = Comparison::load(&args.reports)?;
    // A closed pipe (`| head`) is no error worth a panic.
    let mut out = std::io::stdout().lock();
    if let Err(e) = std::io::Write::write_all(&mut out, comparison.render_text().as_bytes())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    drop(out);
    if let Some(path) = &args.html {
        std::fs::write(path, render_comparison(&comparison))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("HTML: {}", path.display());
    }
    Ok(if args.fail_on_difference && comparison.differences() > 0 {
        ExitStatus::Failed
    } else {
        ExitStatus::Passed
    })
}
