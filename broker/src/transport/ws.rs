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
use std::task::{Poll, ready};

use bytes::{Bytes, BytesMut};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::outcome::ReadOutcome;
use super::tls::TlsPeer;
use super::ws_frame::{CLOSE_FRAME, FrameReader, encode_close, encode_message};

/// Read granularity, as the TCP transport's: on the stack, so not per-connection memory.
const READ_CHUNK: usize = 8 * 1024;

#[derive(Debug)]
pub struct WsTransport {
    io: TokioIo<Upgraded>,
    reader: FrameReader,
    /// Pongs owed to the peer that the socket did not take when their pings arrived; they go
    /// out before the next batch. Empty (no allocation) otherwise.
    owed: Vec<u8>,
    /// The peer's close frame arrived: reads end.
    peer_closed: bool,
    /// The client broke the protocol: the close frame to send, with the code and reason
    /// (RFC 6455, 7.4.1). `None` (no allocation) otherwise.
    refusal: Option<Box<[u8]>>,
    /// Set when the upgrade came over HTTPS.
    tls: Option<TlsPeer>,
}

impl WsTransport {
    /// `max_frame`: the largest payload one WebSocket frame may declare.
    pub fn new(io: Upgraded, max_frame: usize, tls: Option<TlsPeer>) -> Self {
        Self {
            io: TokioIo::new(io),
            reader: FrameReader::new(max_frame),
            owed: Vec::new(),
            peer_closed: false,
            refusal: None,
            tls,
        }
    }

    pub fn tls(&self) -> Option<&TlsPeer> {
        self.tls.as_ref()
    }

    /// Cancel-safe: bytes are taken from the socket only inside a poll that then returns
    /// them (or a pong, or the close) as its outcome.
    pub async fn read(&mut self, buf: &mut BytesMut) -> io::Result<ReadOutcome> {
        std::future::poll_fn(|cx| {
            loop {
                if self.peer_closed {
                    return Poll::Ready(Ok(ReadOutcome::Eof));
                }
                if !self.owed.is_empty() {
                    // Progress only: what the socket does not take now goes before the next batch.
                    if let Poll::Ready(Ok(n)) = Pin::new(&mut self.io).poll_write(cx, &self.owed) {
                        self.owed.drain(..n);
                    }
                }
                let mut scratch = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
                let mut read = ReadBuf::uninit(&mut scratch);
                ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
                if read.filled().is_empty() {
                    return Poll::Ready(Ok(ReadOutcome::Eof));
                }
                let fed = match self.reader.feed(read.filled(), buf, &mut self.owed) {
                    Ok(fed) => fed,
                    Err(violation) => {
                        let mut frame = Vec::new();
                        encode_close(&mut frame, violation.code, violation.reason());
                        self.refusal = Some(frame.into());
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
        let mut out = BytesMut::with_capacity(batch.len() + self.owed.len() + 4 * frame_ends.len());
        out.extend_from_slice(&self.owed);
        self.owed = Vec::new();
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
        let frame = self.refusal.as_deref().unwrap_or(&CLOSE_FRAME);
        let _ = self.io.write_all(frame).await;
        let _ = self.io.flush().await;
    }
}
