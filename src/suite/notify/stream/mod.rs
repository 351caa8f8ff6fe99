//! `OpenStream`, `AwaitStream`, `AwaitStreamClosed`, `CloseStream` (see the
//! module above for their keys and how they judge).

mod awaiting;
mod close;
mod closed;
mod handles;
mod open;

use std::sync::Arc;

use crate::suite::operation::Operation;
use awaiting::AwaitStream;
use close::CloseStream;
use closed::AwaitStreamClosed;
use open::OpenStream;

pub(super) fn operations() -> Vec<Arc<dyn Operation>> {
    vec![
        Arc::new(OpenStream),
        Arc::new(AwaitStream),
        Arc::new(AwaitStreamClosed),
        Arc::new(CloseStream),
    ]
}
