//! The mailbox model: folders, items, unread counts, the mailbox event log
//! and, per subscription, the events it must see. Event shapes are those of
//! the Exchange 2013/Online profile for listed folders (digest 2.2), which the
//! reference server implements; where Exchange versions differ, a
//! [`Latitude`] picks the prediction and each event carries the other legal
//! forms ([`LoggedEvent::alternatives`]) and whether it may be absent.

mod effects;
mod predict;
mod prediction;
mod state;
mod validity;

pub use predict::{predict, predict_for, predict_with};
pub use prediction::{
    AllFolders, ExpectedEvent, InvalidOp, LoggedEvent, PredictedEvent, PredictedSubscription,
    Prediction,
};
pub use state::Model;
