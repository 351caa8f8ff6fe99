//! `list`: the cases, or their coverage of the requirement catalogue.

use std::path::PathBuf;

use clap::Args;

use ews_conformance::check::CheckRegistry;
use ews_conformance::settings::Settings;
use ews_conformance::suite::operation::OpRegistry;
use ews_conformance::suite::requirements::{Catalogue, Coverage};
use ews_conformance::suite::{ExitStatus, Loader};

#[derive(Args)]
pub(crate) struct ListArgs {
    /// The case folder (EWS_CASES), default `cases`.
    #[arg(long)]
    pub(crate) cases: Option<PathBuf>,
    /// Only cases whose id contains this.
    #[arg(long)]
    pub(crate) filter: Option<String>,
    /// List every requirement of the catalogue with the cases covering it;
    /// exit 1 when a MUST requirement is neither covered nor untestable.
    #[arg(long)]
    pub(crate) coverage: bool,
}

pub(crate) fn list(mut settings: Settings, args: ListArgs) -> anyhow::Result<ExitStatus> {
    if let Some(c) = args.cases {
        settings.cases = c;
    }
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    let suite = Loader::new(&ops, &checks).load_dir(&settings.cases);
    if args.coverage {
        let catalogue = Catalogue::load(&settings.cases)?;
        let coverage = Coverage::of(&catalogue, &suite.cases);
        print!("{}", coverage.render());
        for e in &suite.errors {
            eprintln!("error: {e}");
        }
        return Ok(if !suite.errors.is_empty() {
            ExitStatus::HarnessError
        } else if coverage.uncovered_must().is_empty() {
            ExitStatus::Passed
        } else {
            ExitStatus::Failed
        });
    }
    let keep = |id: &str| args.filter.as_deref().is_none_or(|f| id.contains(f));
    for case in suite.cases.iter().filter(|c| keep(&c.id)) {
        println!(
            "{}\t{}\t{}",
            case.id,
            case.title,
            case.requirements.join(",")
        );
    }
    let errors: Vec<_> = suite.errors.iter().filter(|e| keep(&e.case_id)).collect();
    for e in &errors {
        eprintln!("error: {e}");
    }
    Ok(if errors.is_empty() {
        ExitStatus::Passed
    } else {
        ExitStatus::HarnessError
    })
}
