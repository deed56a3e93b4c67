//! STOMP over a TCP stream.
//!
//! No buffer is held while the connection is idle: the session's read buffer is only filled
//! after the socket reports readable, and is released once all complete frames are taken.

use std::io;
use std::task::{Poll, ready};

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::outcome::ReadOutcome;

/// Reads what the socket has. Readiness can be spurious, so an empty buffer is not grown
/// before bytes are known to exist: they land on the stack first. A buffer already holding a
/// partial frame is read into directly.
fn try_read(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    if buf.capacity() > buf.len() {
        return stream.try_read_buf(buf);
    }
    let mut scratch = [0u8; READ_CHUNK];
    let n = stream.try_read(&mut scratch)?;
    buf.extend_from_slice(&scratch[..n]);
    Ok(n)
}

/// Read granularity: large enough for a burst of chat frames in one syscall, small enough not
/// to matter per active connection.
const READ_CHUNK: usize = 8 * 1024;

#[derive(Debug)]
pub struct TcpTransport {
    stream: TcpStream,
}

impl TcpTransport {
    pub fn new(stream: TcpStream) -> Self {
        let _ = stream.set_nodelay(true);
        Self { stream }
    }

    /// Waits through `poll_read_ready`, which keeps the waker in the socket's own reactor
    /// slot, rather than `readable()`, whose future carries a waiter node of its own: the
    /// session's idle wait sits in this future for the connection's life, so its bytes are
    /// per-connection memory.
    pub async fn read(&mut self, buf: &mut BytesMut) -> io::Result<ReadOutcome> {
        let stream = &self.stream;
        std::future::poll_fn(|cx| {
            loop {
                ready!(stream.poll_read_ready(cx))?;
                // A `WouldBlock` clears the readiness, so the next poll waits again.
                match try_read(stream, buf) {
                    Ok(0) => return Poll::Ready(Ok(ReadOutcome::Eof)),
                    Ok(_) => return Poll::Ready(Ok(ReadOutcome::Data)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        })
        .await
    }

    pub async fn write(&mut self, batch: &[u8]) -> io::Result<()> {
        self.stream.write_all(batch).await
    }

    /// Shuts our side: the peer reads what we wrote, then end of stream.
    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}
