//! What a transport read produced, shared by both transports and the session.

/// What one read produced.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Bytes were appended to the buffer.
    Data,
    /// No STOMP bytes, but the peer is alive (WebSocket ping/pong).
    Liveness,
    /// The peer closed.
    Eof,
}
