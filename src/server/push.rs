//! Push delivery (phase 2).

use std::sync::Arc;

use super::state::State;

pub fn spawn(_state: Arc<State>, _id: String, _url: String, _frequency: u32) {}
