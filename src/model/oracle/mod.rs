//! The oracle: compares what a target delivered to each subscription with
//! the model's prediction, and names every divergence with the requirement
//! it breaks and the evidence (predicted vs received, readable).
//!
//! Ids are matched through [`Bindings`]. A handle the driver could not bind
//! (a delivered item, an item moved by a delete, a well-known folder it did
//! not look up) is bound on its first consistent appearance, after which it
//! must stay the same; one id never stands for two handles.

mod bindings;
mod display;
mod divergence;
mod events;
mod judge;
mod matching;
mod observed;

pub use bindings::{BindingConflict, Bindings};
pub use display::describe_received;
pub use divergence::{Divergence, DivergenceKind};
pub use judge::{judge, may_be_absent};
pub use observed::{Delivery, Observed, ObservedSubscription};
