//! The byte pipes a session runs over: STOMP over TCP, over TLS, over WebSocket (plain or
//! inside HTTPS), and over a SockJS session.
//!
//! Both present the same three operations to the session: read some bytes into the session's
//! buffer (cancel-safe, so it can sit in `select!`), write a batch of encoded frames, and close
//! with a linger so an ERROR frame reaches the peer before the socket goes.

mod outcome;
pub mod sockjs;
pub mod tcp;
pub mod tls;
mod utf8_stream;
pub mod ws;
pub(crate) mod ws_frame;
pub mod ws_upgrade;

pub use outcome::ReadOutcome;

use std::io;
use std::time::Duration;

use bytes::BytesMut;

use crate::auth::ClientIdentity;

/// Most bytes a closing connection reads and discards while it lingers.
pub const CLOSE_DRAIN_MAX: usize = 1024 * 1024;

/// Which transport a connection came over: one byte, where its name is a 16-B `&str` (the
/// admin API's record of every session keeps it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Tcp,
    Ws,
    Wss,
    Tls,
    SockJs,
}

impl TransportKind {
    /// The name the admin API, the metrics and the logs use.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Tcp => "tcp",
            TransportKind::Ws => "ws",
            TransportKind::Wss => "wss",
            TransportKind::Tls => "tls",
            TransportKind::SockJs => "sockjs",
        }
    }
}

#[derive(Debug)]
pub enum Transport {
    Tcp(tcp::TcpTransport),
    /// Boxed: a WebSocket's state is ten times a TCP stream's.
    Ws(Box<ws::WsTransport>),
    /// Boxed: rustls's connection state is larger still.
    Tls(Box<tls::TlsTransport>),
    SockJs(sockjs::SockJsTransport),
}

impl Transport {
    /// Cancel-safe: when cancelled, no bytes have been taken from the peer.
    pub async fn read(&mut self, buf: &mut BytesMut) -> io::Result<ReadOutcome> {
        match self {
            Transport::Tcp(t) => t.read(buf).await,
            Transport::Ws(t) => t.read(buf).await,
            Transport::Tls(t) => t.read(buf).await,
            Transport::SockJs(t) => t.read(buf).await,
        }
    }

    /// Writes a batch of whole frames (or heart-beats); `frame_ends` are the end offsets of
    /// each. Not cancel-safe: call it outside `select!`.
    pub async fn write(&mut self, batch: BytesMut, frame_ends: &[usize]) -> io::Result<()> {
        match self {
            Transport::Tcp(t) => t.write(&batch).await,
            Transport::Ws(t) => t.write(batch.freeze(), frame_ends).await,
            Transport::Tls(t) => t.write(&batch).await,
            Transport::SockJs(t) => t.write(&batch, frame_ends).await,
        }
    }

    /// Closes our side, then reads and discards until the peer closes, `linger` passes or
    /// [`CLOSE_DRAIN_MAX`] bytes were discarded, so that unread input does not make the kernel
    /// reset the connection and lose our last frame. The byte bound is for the peer that
    /// keeps writing (an oversized frame streamed at line rate): it is not reading our ERROR
    /// anyway, and draining it for the whole linger cost a core hundreds of MB/s in the
    /// hostile-input run (docs/security.md).
    pub async fn close(&mut self, linger: Duration) {
        match self {
            Transport::Tcp(t) => t.shutdown().await,
            Transport::Ws(t) => t.send_close().await,
            Transport::Tls(t) => t.shutdown(linger).await,
            // Nothing to drain: the receivers deliver the queue and the close frame, and the
            // SockJS session outlives this one until its client stops polling.
            Transport::SockJs(t) => return t.close(),
        }
        let mut scratch = BytesMut::new();
        let mut drained = 0;
        let _ = tokio::time::timeout(linger, async {
            while drained <= CLOSE_DRAIN_MAX {
                scratch.clear();
                match self.read(&mut scratch).await {
                    Ok(ReadOutcome::Data | ReadOutcome::Liveness) => drained += scratch.len(),
                    Ok(ReadOutcome::Eof) | Err(_) => break,
                }
            }
        })
        .await;
    }

    pub fn kind(&self) -> &'static str {
        self.transport_kind().as_str()
    }

    pub fn transport_kind(&self) -> TransportKind {
        match self {
            Transport::Tcp(_) => TransportKind::Tcp,
            Transport::Ws(t) if t.tls().is_some() => TransportKind::Wss,
            Transport::Ws(_) => TransportKind::Ws,
            Transport::Tls(_) => TransportKind::Tls,
            Transport::SockJs(_) => TransportKind::SockJs,
        }
    }

    /// Who the peer's verified TLS client certificate names, if it presented one.
    pub fn identity(&self) -> Option<&ClientIdentity> {
        let peer = match self {
            Transport::Tcp(_) => None,
            Transport::Ws(t) => t.tls(),
            Transport::SockJs(t) => t.tls(),
            Transport::Tls(t) => Some(t.peer()),
        };
        peer.and_then(|peer| peer.identity.as_ref())
    }
}
