//! Errors a session reports to its client as an ERROR frame.
//!
//! Each variant maps to the short `message` header documented in docs/protocol.md; the
//! `Display` text is the explanatory body. Every one of them ends the session.

use stomp_codec::CodecError;
use thiserror::Error;

use crate::close::CloseReason;

#[derive(Debug, Error)]
pub enum StompError {
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("the command {0} is not one a client may send")]
    UnknownCommand(String),
    #[error("the first frame must be CONNECT or STOMP")]
    NotConnected,
    #[error("this session is already connected")]
    AlreadyConnected,
    #[error("none of the requested versions ({0}) is supported; this server speaks 1.0, 1.1, 1.2")]
    UnsupportedVersion(String),
    #[error("{0}")]
    AuthFailed(String),
    #[error("the {0} frame requires a '{1}' header")]
    MissingHeader(&'static str, &'static str),
    #[error("header '{0}' has an invalid value: {1}")]
    InvalidHeader(&'static str, String),
    #[error(
        "destination {0:?} is not accepted; destinations start with /topic/, /queue/, \
         /user/queue/, /user/<name>/queue/, /temp-queue/, /reply-queue/"
    )]
    UnknownDestination(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("subscription id {0:?} is already in use on this session")]
    DuplicateSubscription(String),
    #[error("no subscription with id {0:?} on this session")]
    UnknownSubscription(String),
    #[error("a session may hold at most {0} subscriptions")]
    TooManySubscriptions(usize),
    #[error("no message pending acknowledgement with id {0:?} on this session")]
    UnknownAckId(String),
    #[error("no transaction {0:?} is open on this session")]
    UnknownTransaction(String),
    #[error("transaction {0:?} is already open")]
    DuplicateTransaction(String),
    #[error("{0}")]
    TooManyTransactions(String),
    #[error("queue {0:?} {1}")]
    QueueFull(String, QueueFull),
    #[error("the session's outbound queue exceeded its limit; reconnect and resync")]
    SlowConsumer,
    #[error("{0}")]
    TooManyUnacked(String),
    #[error("no heart-beat or frame received within {0} ms")]
    HeartbeatTimeout(u64),
    #[error("no CONNECT frame within {0} ms")]
    ConnectTimeout(u64),
    #[error("the server is shutting down; reconnect to another node or retry later")]
    ShuttingDown,
    #[error("{0}")]
    ServerBusy(String),
    #[error("{0}")]
    LoginThrottled(#[from] crate::auth::Throttled),
    #[error("the token this session was opened with has expired; reconnect with a fresh one")]
    TokenExpired,
    #[error(
        "this session's user was removed, or its password changed, when the users file was \
         reloaded"
    )]
    CredentialsRevoked,
    /// An operator closed the session (`POST /admin/.../disconnect`); the reason they gave.
    #[error("{0}")]
    Disconnected(String),
}

impl StompError {
    /// The ERROR frame's `message` header: short and stable, documented for client authors.
    pub fn message(&self) -> String {
        match self {
            StompError::Malformed(_) => "malformed frame".into(),
            StompError::TooLarge(_) => "frame too large".into(),
            StompError::UnknownCommand(_) => "unknown command".into(),
            StompError::NotConnected => "not connected".into(),
            StompError::AlreadyConnected => "already connected".into(),
            StompError::UnsupportedVersion(_) => "unsupported protocol version".into(),
            StompError::AuthFailed(_) => "authentication failed".into(),
            StompError::MissingHeader(_, h) => format!("missing header {h}"),
            StompError::InvalidHeader(h, _) => format!("invalid header {h}"),
            StompError::UnknownDestination(_) => "unknown destination".into(),
            StompError::AccessDenied(_) => "access denied".into(),
            StompError::DuplicateSubscription(_) => "duplicate subscription id".into(),
            StompError::UnknownSubscription(_) => "unknown subscription".into(),
            StompError::TooManySubscriptions(_) => "too many subscriptions".into(),
            StompError::UnknownAckId(_) => "unknown ack id".into(),
            StompError::UnknownTransaction(_) => "unknown transaction".into(),
            StompError::DuplicateTransaction(_) => "duplicate transaction".into(),
            StompError::TooManyTransactions(_) => "too many transactions".into(),
            StompError::QueueFull(_, QueueFull::TooManyQueues(_)) => "too many queues".into(),
            StompError::QueueFull(..) => "queue full".into(),
            StompError::SlowConsumer => "slow consumer".into(),
            StompError::TooManyUnacked(_) => "too many unacknowledged".into(),
            StompError::HeartbeatTimeout(_) => "heart-beat timeout".into(),
            StompError::ConnectTimeout(_) => "connect timeout".into(),
            StompError::ShuttingDown => "server shutting down".into(),
            StompError::ServerBusy(_) => "server busy".into(),
            StompError::LoginThrottled(_) => "too many failed logins".into(),
            StompError::TokenExpired => "token expired".into(),
            StompError::CredentialsRevoked => "credentials revoked".into(),
            StompError::Disconnected(_) => "disconnected by operator".into(),
        }
    }

    pub fn close_reason(&self) -> CloseReason {
        match self {
            StompError::AuthFailed(_) | StompError::LoginThrottled(_) => CloseReason::AuthFailed,
            StompError::SlowConsumer | StompError::TooManyUnacked(_) => CloseReason::SlowConsumer,
            StompError::HeartbeatTimeout(_) => CloseReason::HeartbeatTimeout,
            StompError::ConnectTimeout(_) => CloseReason::ConnectTimeout,
            StompError::ShuttingDown => CloseReason::Shutdown,
            StompError::TokenExpired => CloseReason::TokenExpired,
            StompError::CredentialsRevoked => CloseReason::CredentialsRevoked,
            StompError::Disconnected(reason) => CloseReason::Disconnected(reason.clone()),
            other => CloseReason::ProtocolError(other.message()),
        }
    }
}

impl From<CodecError> for StompError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::FrameTooLarge { .. }
            | CodecError::TooManyHeaders { .. }
            | CodecError::HeaderLineTooLong { .. }
            | CodecError::BodyTooLarge { .. } => StompError::TooLarge(e.to_string()),
            CodecError::UnknownCommand(c) => StompError::UnknownCommand(c),
            other => StompError::Malformed(other.to_string()),
        }
    }
}

/// Why a queue did not take a message, or could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueFull {
    #[error("holds its maximum of {0} messages; the message was not accepted")]
    Messages(usize),
    #[error("would hold more than its maximum of {0} bytes; the message was not accepted")]
    Bytes(usize),
    #[error(
        "would take this node's queues past their budget of {0} bytes; the message was not \
         accepted"
    )]
    Budget(usize),
    #[error("is new, and this node already keeps its maximum of {0} queues")]
    TooManyQueues(usize),
}
