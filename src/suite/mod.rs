//! The data-driven suite: loading case files, the target they run against,
//! the named operations, the executor, and the run that hands outcomes to
//! the reporters.
//!
//! Inside, imports go one way: `target`, `profile`, `requirements` →
//! `step` (what an operation gets) → `operation` (the trait and registry)
//! → `notify` and `ops` (the operations) → `depend`, `load` → `outcome`,
//! `exec` → `checks`, `run`.

pub mod checks;
pub mod depend;
pub mod exec;
pub mod harness;
pub mod load;
pub mod notify;
pub mod operation;
pub mod ops;
pub mod outcome;
pub mod profile;
pub mod requirements;
pub mod run;
pub mod step;
pub mod target;

pub use exec::Executor;
pub use harness::{Harness, HarnessBuilder, HarnessError};
pub use load::{LoadError, LoadedSuite, Loader};
pub use outcome::{Outcome, Verdict};
pub use profile::Profile;
pub use run::{ExitStatus, RunOptions, RunResult, Signal, Summary, run_suite};
pub use target::{Target, TargetBuilder, TargetConfig, TargetError};
