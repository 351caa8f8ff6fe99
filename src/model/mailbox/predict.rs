//! Running a whole sequence through a model.

use super::prediction::*;
use super::state::*;
use crate::model::latitude::Latitude;
use crate::model::ops::Op;

/// Runs a whole sequence through a fresh model of the reference server.
pub fn predict(ops: &[Op]) -> Result<Prediction, InvalidOp> {
    predict_with(Model::new(), ops)
}

/// Runs a whole sequence through a fresh model of a `profile` target.
pub fn predict_for(profile: &Latitude, ops: &[Op]) -> Result<Prediction, InvalidOp> {
    predict_with(Model::for_profile(profile), ops)
}

/// Runs a sequence through `model` (e.g. one with known unread baselines).
pub fn predict_with(mut model: Model, ops: &[Op]) -> Result<Prediction, InvalidOp> {
    for op in ops {
        model.apply(op)?;
    }
    Ok(model.prediction())
}
