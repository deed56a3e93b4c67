//! STOMP over WebSocket: the upgraded HTTP connection (`/ws`, plain or inside HTTPS), framed by
//! [`ws_frame`](super::ws_frame).
//!
//! Inbound, payloads of text and binary frames are appended to the session's byte buffer as
//! they arrive, so several STOMP frames per message and one frame over several messages (stomp.js
//! splits at 16 KiB) need nothing special. Outbound, each STOMP frame is one message: text when
//! it is UTF-8, binary otherwise, so binary bodies survive browsers; a batch of frames goes out
//! in one write.
//!
//! Like the TCP transport, an idle connection holds no buffer: a read lands in a stack buffer
//! and is unmasked straight into the session's input.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::outcome::ReadOutcome;
use super::tls::TlsPeer;
use super::ws_frame::{CLOSE_FRAME, FrameReader, encode_close, encode_message};

/// Read granularity, as the TCP transport's: on the stack, so not per-connection memory.
const READ_CHUNK: usize = 8 * 1024;

/// Boxed (in [`Owed`], and with the TLS peer in [`WsIo::Upgraded`]), the parts that nearly
/// every connection leaves empty: each connection holds its `WsTransport` for its life, and
/// the allocator rounds it up to a size class (128 B now: 192 before the fifth cuts, 160
/// before the sixth; docs/benchmarks.md).
#[derive(Debug)]
pub struct WsTransport {
    io: WsIo,
    reader: FrameReader,
    /// What the connection owes its peer besides the batches; `None` (no allocation) nearly
    /// always.
    owed: Option<Box<Owed>>,
    /// The peer's close frame arrived: reads end.
    peer_closed: bool,
}

/// The upgraded connection's bytes.
///
/// Plain `ws://` connections get their `TcpStream` back from hyper
/// ([`Upgraded::downcast`]): kept inline, 32 B in `WsTransport` instead of hyper's 48-B
/// `Upgraded` (a rewind slot and a `Box<dyn Io>`), and no 32-B box on the heap; for each of
/// thousands of idle connections that is ≈ 64 B (docs/benchmarks.md, "Sixth cuts"). HTTPS
/// upgrades (`wss://`) keep hyper's wrapper, boxed with the TLS layer's word on the peer:
/// their TLS state costs far more anyway.
#[derive(Debug)]
enum WsIo {
    Tcp(TcpStream),
    Upgraded(Box<Wrapped>),
}

#[derive(Debug)]
struct Wrapped {
    io: TokioIo<Upgraded>,
    /// Set when the upgrade came over HTTPS.
    tls: Option<TlsPeer>,
}

impl WsIo {
    /// The TCP stream itself when hyper hands it back, with what hyper read past the request
    /// head (a client may send its first frames without waiting for the 101).
    fn new(upgraded: Upgraded, tls: Option<TlsPeer>) -> (Self, Bytes) {
        let wrapped = |upgraded, tls| {
            let io = TokioIo::new(upgraded);
            (WsIo::Upgraded(Box::new(Wrapped { io, tls })), Bytes::new())
        };
        if tls.is_some() {
            return wrapped(upgraded, tls);
        }
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => (WsIo::Tcp(parts.io.into_inner()), parts.read_buf),
            Err(upgraded) => wrapped(upgraded, None),
        }
    }
}

impl AsyncRead for WsIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Tcp(io) => Pin::new(io).poll_read(cx, buf),
            WsIo::Upgraded(wrapped) => Pin::new(&mut wrapped.io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WsIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WsIo::Tcp(io) => Pin::new(io).poll_write(cx, buf),
            WsIo::Upgraded(wrapped) => Pin::new(&mut wrapped.io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Tcp(io) => Pin::new(io).poll_flush(cx),
            WsIo::Upgraded(wrapped) => Pin::new(&mut wrapped.io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Tcp(io) => Pin::new(io).poll_shutdown(cx),
            WsIo::Upgraded(wrapped) => Pin::new(&mut wrapped.io).poll_shutdown(cx),
        }
    }
}

/// What a connection owes its peer outside the batches, and the rare inbound leftover.
#[derive(Debug, Default)]
struct Owed {
    /// Bytes hyper had read past the upgrade request: the reader takes them before the
    /// socket's.
    unread: Bytes,
    /// Pongs that the socket did not take when their pings arrived; they go out before the
    /// next batch.
    pongs: Vec<u8>,
    /// The client broke the protocol: the close frame to send, with the code and reason
    /// (RFC 6455, 7.4.1).
    refusal: Option<Box<[u8]>>,
}

impl WsTransport {
    /// `max_frame`: the largest payload one WebSocket frame may declare.
    pub fn new(io: Upgraded, max_frame: usize, tls: Option<TlsPeer>) -> Self {
        let (io, unread) = WsIo::new(io, tls);
        let owed = (!unread.is_empty()).then(|| {
            Box::new(Owed {
                unread,
                ..Owed::default()
            })
        });
        Self {
            io,
            reader: FrameReader::new(max_frame),
            owed,
            peer_closed: false,
        }
    }

    pub fn tls(&self) -> Option<&TlsPeer> {
        match &self.io {
            WsIo::Tcp(_) => None,
            WsIo::Upgraded(wrapped) => wrapped.tls.as_ref(),
        }
    }

    /// Cancel-safe: bytes are taken from the socket only inside a poll that then returns
    /// them (or a pong, or the close) as its outcome.
    pub async fn read(&mut self, buf: &mut BytesMut) -> io::Result<ReadOutcome> {
        std::future::poll_fn(|cx| {
            loop {
                if self.peer_closed {
                    return Poll::Ready(Ok(ReadOutcome::Eof));
                }
                if let Some(owed) = self.owed.as_mut().filter(|owed| !owed.pongs.is_empty()) {
                    // Progress only: what the socket does not take now goes before the next batch.
                    if let Poll::Ready(Ok(n)) = Pin::new(&mut self.io).poll_write(cx, &owed.pongs) {
                        owed.pongs.drain(..n);
                    }
                }
                let unread = self
                    .owed
                    .as_mut()
                    .map(|owed| std::mem::take(&mut owed.unread))
                    .unwrap_or_default();
                let mut scratch = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
                let mut read = ReadBuf::uninit(&mut scratch);
                let input = if unread.is_empty() {
                    ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
                    if read.filled().is_empty() {
                        return Poll::Ready(Ok(ReadOutcome::Eof));
                    }
                    read.filled()
                } else {
                    &unread[..]
                };
                let mut pongs = self
                    .owed
                    .as_mut()
                    .map(|owed| std::mem::take(&mut owed.pongs))
                    .unwrap_or_default();
                let fed = self.reader.feed(input, buf, &mut pongs);
                if !pongs.is_empty() {
                    self.owed.get_or_insert_default().pongs = pongs;
                }
                let fed = match fed {
                    Ok(fed) => fed,
                    Err(violation) => {
                        let mut frame = Vec::new();
                        encode_close(&mut frame, violation.code, violation.reason());
                        self.owed.get_or_insert_default().refusal = Some(frame.into());
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            violation,
                        )));
                    }
                };
                if fed.close {
                    self.peer_closed = true;
                }
                if fed.data {
                    return Poll::Ready(Ok(ReadOutcome::Data));
                }
                if fed.close {
                    return Poll::Ready(Ok(ReadOutcome::Eof));
                }
                if fed.liveness {
                    return Poll::Ready(Ok(ReadOutcome::Liveness));
                }
                // Only part of a header so far: read on.
            }
        })
        .await
    }

    /// Writes each frame of the batch as one message, all in one write.
    pub async fn write(&mut self, batch: Bytes, frame_ends: &[usize]) -> io::Result<()> {
        let pongs = self
            .owed
            .as_mut()
            .map(|owed| std::mem::take(&mut owed.pongs));
        let pongs = pongs.unwrap_or_default();
        if self
            .owed
            .as_ref()
            .is_some_and(|owed| owed.refusal.is_none() && owed.unread.is_empty())
        {
            self.owed = None;
        }
        let mut out = BytesMut::with_capacity(batch.len() + pongs.len() + 4 * frame_ends.len());
        out.extend_from_slice(&pongs);
        let mut start = 0;
        for &end in frame_ends {
            encode_message(&mut out, &batch[start..end]);
            start = end;
        }
        self.io.write_all(&out).await?;
        self.io.flush().await
    }

    /// Sends the WebSocket close frame: with the code of the client's violation, if any.
    pub async fn send_close(&mut self) {
        let refusal = self.owed.as_ref().and_then(|owed| owed.refusal.as_deref());
        let frame = refusal.unwrap_or(&CLOSE_FRAME);
        let _ = self.io.write_all(frame).await;
        let _ = self.io.flush().await;
    }
}
