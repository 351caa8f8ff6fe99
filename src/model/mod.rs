//! Property-generated event sequences: a generator of valid
//! mailbox/subscription operation sequences, a model that predicts the
//! events each subscription must see, an oracle that compares what a target
//! delivered with the prediction, a renderer that turns a (shrunk) sequence
//! into an ordinary case file, and the driver that runs sequences against a
//! target ([`drive`]).
//!
//! Apart from [`drive`], nothing here does I/O. What a driver does:
//! 1. predicts: [`predict`] (or [`predict_with`] and a [`Model`] told the
//!    Inbox's unread count read with GetFolder);
//! 2. runs each [`Op`] and binds what responses report ([`Bindings`]): the
//!    case folder; the ItemId of CreateItem / MoveItem / CopyItem to `item`
//!    / `new`; the FolderId of CreateFolder to `folder`. Delivered items,
//!    items moved by a delete and unlooked-up folders are learnt from events;
//! 3. records what each subscription receives ([`ObservedSubscription`]):
//!    on `Poll`, pull drains GetEvents (one [`Delivery`] per response, with
//!    the watermark it sent); streaming and push wait, bounded, until
//!    [`PredictedSubscription::expected_by`] events have arrived. `Remember`
//!    keeps the watermark a pull subscription sends next; `Resubscribe`
//!    subscribes with it;
//! 4. calls [`judge`] with a [`Latitude`]; on a failure, [`minimize`] trims
//!    proptest's shrunk sequence further and [`to_case_toml`] turns it into
//!    a case file.
//!
//! [`simulate()`] is that driver against an ideal in-memory target;
//! [`drive`] is the driver against a real one, over the wire, with the
//! search that finds, shrinks and writes down failures ([`drive::explore`]).

pub mod case;
pub mod drive;
pub mod generate;
pub mod latitude;
pub mod mailbox;
pub mod ops;
pub mod oracle;
pub mod shrink;
pub mod simulate;

pub use case::to_case_toml;
pub use generate::{GenConfig, build_ops, ops_strategy};
pub use latitude::{Latitude, Redelete, SoftDelete};
pub use mailbox::{
    AllFolders, ExpectedEvent, InvalidOp, LoggedEvent, Model, PredictedEvent,
    PredictedSubscription, Prediction, predict, predict_for, predict_with,
};
pub use ops::{
    DeleteHow, FolderHandle, Handle, ItemHandle, Mode, Op, OtherAction, Scope, SubHandle,
    WatermarkHandle, describe_sequence,
};
pub use oracle::{
    BindingConflict, Bindings, Delivery, Divergence, DivergenceKind, Observed,
    ObservedSubscription, judge,
};
pub use shrink::{Minimizer, minimize};
pub use simulate::simulate;

#[cfg(test)]
mod tests;
