//! The command line's parts: one module per subcommand, each with its
//! flags and its work.

pub(crate) mod compare;
pub(crate) mod explore;
pub(crate) mod list;
pub(crate) mod run;
pub(crate) mod selftest;
pub(crate) mod serve;
pub(crate) mod stress;
pub(crate) mod target;

pub(crate) use compare::*;
pub(crate) use explore::*;
pub(crate) use list::*;
pub(crate) use run::*;
pub(crate) use selftest::*;
pub(crate) use serve::*;
pub(crate) use stress::*;
