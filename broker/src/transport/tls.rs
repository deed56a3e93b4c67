//! STOMP over TLS: a TCP stream wrapped by rustls, and who its client certificate names.
//!
//! Reads decrypt into a stack buffer inside one poll and are appended to the session's buffer
//! only when plaintext arrived, so like plain TCP no read buffer of ours is held while the
//! connection is idle, and a read cancelled in `select!` has taken nothing (rustls keeps any
//! partial record in its own state).

use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::outcome::ReadOutcome;
use crate::auth::ClientIdentity;

/// Plaintext taken per read: one TLS record's worth (16 KiB), so a burst of frames is one
/// read and the stack buffer lives only within a poll.
const READ_CHUNK: usize = 16 * 1024;

/// What the TLS layer knows about the peer, for the session (and, over HTTPS, for the
/// WebSocket upgrade, as a request extension).
#[derive(Debug, Clone, Default)]
pub struct TlsPeer {
    /// What a verified client certificate names; `None` when the client presented none.
    pub identity: Option<ClientIdentity>,
}

#[derive(Debug)]
pub struct TlsTransport {
    stream: TlsStream<TcpStream>,
    peer: TlsPeer,
}

impl TlsTransport {
    pub fn new(stream: TlsStream<TcpStream>, peer: TlsPeer) -> Self {
        let _ = stream.get_ref().0.set_nodelay(true);
        Self { stream, peer }
    }

    pub fn peer(&self) -> &TlsPeer {
        &self.peer
    }

    pub async fn read(&mut self, buf: &mut BytesMut) -> io::Result<ReadOutcome> {
        let stream = &mut self.stream;
        std::future::poll_fn(|cx| {
            let mut scratch = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut scratch);
            match Pin::new(&mut *stream).poll_read(cx, &mut read) {
                Poll::Pending => Poll::Pending,
                // The peer closed without close_notify, as most clients do on a plain close.
                // STOMP frames are self-delimiting, so a truncated tail is a partial frame
                // that is dropped anyway: this is the same end as a TCP EOF.
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    Poll::Ready(Ok(ReadOutcome::Eof))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    Poll::Ready(Ok(ReadOutcome::Eof))
                }
                Poll::Ready(Ok(())) => {
                    buf.extend_from_slice(read.filled());
                    Poll::Ready(Ok(ReadOutcome::Data))
                }
            }
        })
        .await
    }

    /// Encrypts and writes the batch, and flushes: rustls may hold records back otherwise.
    pub async fn write(&mut self, batch: &[u8]) -> io::Result<()> {
        self.stream.write_all(batch).await?;
        self.stream.flush().await
    }

    /// Sends close_notify and shuts our side, waiting at most `linger` for it to go out.
    pub async fn shutdown(&mut self, linger: Duration) {
        let _ = tokio::time::timeout(linger, self.stream.shutdown()).await;
    }
}
