//! Full validation of documents against the EWS schema files with libxml2
//! (cargo feature `xsd`).
//!
//! The schema files are the target's own (`messages.xsd`, `types.xsd`, from
//! a folder or fetched from `<scheme>://<host>/EWS/`); the harness never
//! ships them. libxml2 refuses the published files as they are, so two
//! repairs are made to a copy before compiling (see [`Repair`]); the copy
//! lives in a temporary folder that is removed once the schema is compiled.
//!
//! libxml2's schema contexts must stay on one thread, so a validator owns a
//! dedicated worker thread and talks to it over a channel: the handle is
//! `Send + Sync + Clone` and usable from blocking and async code alike.

mod finding;
mod repair;
mod validator;

pub use finding::{
    DEFAULT_FETCH_DEADLINE, FetchAuth, MAX_DOCUMENT_BYTES, MAX_FINDINGS, MAX_SCHEMA_BYTES, Repair,
    XsdError, XsdFinding,
};
pub use repair::{RepairedTypes, repair_types};
pub use validator::XsdValidator;
