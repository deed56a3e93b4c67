//! Why a connection closed: every session ends with exactly one [`CloseReason`], which is
//! logged and counted (`stompbox_closes_total{reason}`), so an operator can tell a client that left from one
//! the broker threw out.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent DISCONNECT.
    ClientDisconnect,
    /// The peer closed the socket (or the WebSocket) without DISCONNECT.
    PeerClosed,
    /// The broker sent ERROR for a protocol or policy violation; the string is its `message`.
    ProtocolError(String),
    AuthFailed,
    ConnectTimeout,
    HeartbeatTimeout,
    SlowConsumer,
    Shutdown,
    /// The JWT the session was opened with passed its `exp`.
    TokenExpired,
    /// A reload removed the session's user or changed its password.
    CredentialsRevoked,
    /// An operator closed it through the admin API; the reason they gave.
    Disconnected(String),
    /// A transport error (reset, broken pipe...).
    Io(String),
}

impl CloseReason {
    /// The reason's kind, without its detail: the metrics label (a fixed set of names, so a
    /// protocol error's message or an I/O error's text never becomes a series of its own).
    pub fn label(&self) -> &'static str {
        match self {
            CloseReason::ClientDisconnect => "client_disconnect",
            CloseReason::PeerClosed => "peer_closed",
            CloseReason::ProtocolError(_) => "protocol_error",
            CloseReason::AuthFailed => "auth_failed",
            CloseReason::ConnectTimeout => "connect_timeout",
            CloseReason::HeartbeatTimeout => "heartbeat_timeout",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::Shutdown => "shutdown",
            CloseReason::TokenExpired => "token_expired",
            CloseReason::CredentialsRevoked => "credentials_revoked",
            CloseReason::Disconnected(_) => "operator_disconnect",
            CloseReason::Io(_) => "io_error",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::ClientDisconnect => f.write_str("client disconnect"),
            CloseReason::PeerClosed => f.write_str("peer closed"),
            CloseReason::ProtocolError(m) => write!(f, "protocol error: {m}"),
            CloseReason::AuthFailed => f.write_str("authentication failed"),
            CloseReason::ConnectTimeout => f.write_str("connect timeout"),
            CloseReason::HeartbeatTimeout => f.write_str("heart-beat timeout"),
            CloseReason::SlowConsumer => f.write_str("slow consumer"),
            CloseReason::Shutdown => f.write_str("server shutdown"),
            CloseReason::TokenExpired => f.write_str("token expired"),
            CloseReason::CredentialsRevoked => f.write_str("credentials revoked"),
            CloseReason::Disconnected(r) => write!(f, "disconnected by operator: {r}"),
            CloseReason::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}
