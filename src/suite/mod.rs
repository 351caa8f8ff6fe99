//! The data-driven suite: case files (format, loading, templating), the
//! target they run against, the named operations, the executor, and the
//! run that ties them to reporters.

pub mod case;
pub mod depend;
pub mod exec;
pub mod load;
pub mod notify;
pub mod ops;
pub mod profile;
pub mod requirements;
pub mod run;
pub mod target;
pub mod template;

pub use case::{Capability, Case, CaseGrade, Step};
pub use exec::{Exchange, Executor, Outcome, Verdict};
pub use load::{LoadError, LoadedSuite, Loader};
pub use profile::Profile;
pub use run::{ExitStatus, RunOptions, RunResult, Signal, Summary, run_suite};
pub use target::{Target, TargetBuilder, TargetConfig, TargetError};
