//! What a session reports when it fails: the error for the ERROR frame, and the receipt of the
//! frame that caused it.

use std::time::Duration;

use crate::error::StompError;

/// How long a closing connection waits for the peer to read our last frame and hang up.
pub(super) const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// An error to report in an ERROR frame, with the `receipt` of the frame that caused it.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) error: StompError,
    pub(super) receipt: Option<String>,
}

impl From<StompError> for Failure {
    fn from(error: StompError) -> Self {
        Failure {
            error,
            receipt: None,
        }
    }
}
