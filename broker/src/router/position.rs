//! A position in a topic's history: the `epoch` (which history) and the `offset` in it that
//! every MESSAGE of a topic with history carries, and a resuming SUBSCRIBE names.

use crate::message::{EPOCH_HEADER, Message, OFFSET_HEADER};

/// Where a subscriber was: the `resume-epoch` and `resume-offset` of its SUBSCRIBE (the last
/// MESSAGE it processed; 0 means "before the first").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub epoch: String,
    pub offset: u64,
}

impl Position {
    /// Where a positioned message (one with `epoch` and `offset` headers) is.
    pub fn of(message: &Message) -> Option<Position> {
        Some(Position {
            epoch: message.headers.get(EPOCH_HEADER)?.to_string(),
            offset: message.headers.get(OFFSET_HEADER)?.parse().ok()?,
        })
    }
}
