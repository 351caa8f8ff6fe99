//! GetStreamingEvents (phase 2).

use roxmltree::Node;

use super::reply::{Call, Reply, exchange_fault};
use crate::ews::ResponseCode;

pub fn get_streaming_events(_call: &Call<'_>, _op: Node<'_, '_>) -> Reply {
    Reply::Fault(exchange_fault(
        ResponseCode::ErrorInvalidOperation,
        "not yet",
    ))
}
