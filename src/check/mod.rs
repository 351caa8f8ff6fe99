//! Checks that judge what a target sent, and the normalisation that golden
//! snapshots rely on.

pub mod normalize;
pub mod shape;
#[cfg(feature = "xsd")]
pub mod xsd;
