//! Property-generated event sequences without any I/O: a generator of valid
//! mailbox/subscription operation sequences, a model that predicts the
//! events each subscription must see, an oracle that compares what a target
//! delivered with the prediction, and a renderer that turns a (shrunk)
//! sequence into an ordinary case file.
//!
//! A driver runs the operations against a target, binds each handle to the
//! id it captured ([`Bindings`]), records every notification per
//! subscription ([`Delivery`]) and calls [`judge`].

pub mod case;
pub mod generate;
pub mod mailbox;
pub mod ops;
pub mod oracle;
pub mod profile;
pub mod simulate;

pub use case::to_case_toml;
pub use generate::{GenConfig, build_ops, ops_strategy};
pub use mailbox::{
    ExpectedEvent, InvalidOp, LoggedEvent, Model, PredictedEvent, PredictedSubscription,
    Prediction, predict, predict_with,
};
pub use ops::{
    DeleteHow, FolderHandle, Handle, ItemHandle, Mode, Op, Scope, SubHandle, WatermarkHandle,
    describe_sequence,
};
pub use oracle::{
    BindingConflict, Bindings, Delivery, Divergence, DivergenceKind, Observed,
    ObservedSubscription, judge,
};
pub use profile::Profile;
pub use simulate::simulate;

#[cfg(test)]
mod tests;
