//! A session's end of the connection: transport, codec, input buffer and the batch of frames
//! waiting to be written.
//!
//! The input buffer is released whenever it holds no partial frame, so an idle connection
//! keeps no read buffer. Output is encoded straight into one batch buffer per loop turn (frame
//! boundaries noted for WebSocket, which sends one message per frame) and written in one go,
//! then released. Both buffers and the list of frame ends live in one box ([`Buffers`]) made
//! when an active session first reads bytes or has output, and dropped when it parks with no
//! partial frame: a parked session keeps 8 B for them, not 88 (docs/benchmarks.md, "Seventh
//! cuts"), and an active one makes no allocation per turn for the list.

use std::io;
use std::task::Context;
use std::time::Duration;

use bytes::BytesMut;
use stomp_codec::{
    CodecError, Command, Frame, HEARTBEAT, Item, Limits, StompCodec, Version, encode_frame,
};
use tokio_util::codec::Decoder;
use tracing::debug;

use super::failure::{CLOSE_LINGER, Failure};
use crate::auth::ClientIdentity;
use crate::close::CloseReason;
use crate::config::Config;
use crate::error::StompError;
use crate::transport::{ReadOutcome, Transport};

pub(super) struct Wire {
    transport: Transport,
    codec: StompCodec,
    /// `None` in a parked session (unless it holds a partial frame).
    buffers: Option<Box<Buffers>>,
    /// A read that completed while the session was parking, for the loop's next read. Boxed:
    /// it is rare (a race with the parking), and inline it is 16 B in every parked session.
    early: Option<Box<io::Result<ReadOutcome>>>,
}

/// Most frame ends an active session keeps room for between turns: a turn of a busy
/// subscriber's or a conversation's frames, not a large drain's thousands.
const KEPT_FRAME_ENDS: usize = 64;

/// An active session's input and output.
#[derive(Default)]
struct Buffers {
    /// Bytes read and not yet decoded.
    input: BytesMut,
    /// Frames encoded and not yet written.
    batch: BytesMut,
    /// End offset in `batch` of each frame.
    frame_ends: Vec<usize>,
}

/// The connection counts open (metrics) while its wire lives: here rather than in a guard of
/// its own, 8 B less in every session.
impl Drop for Wire {
    fn drop(&mut self) {
        crate::metrics::get().session.ended(self.transport.kind());
    }
}

impl Wire {
    pub(super) fn new(transport: Transport, config: &Config) -> Self {
        let l = &config.limits;
        let limits = Limits {
            max_frame_size: l.max_frame_size,
            max_headers: l.max_headers,
            max_header_line: l.max_header_line,
            max_body: l.max_body,
        };
        crate::metrics::get().session.opened(transport.kind());
        Self {
            transport,
            codec: StompCodec::new(limits),
            buffers: None,
            early: None,
        }
    }

    pub(super) fn kind(&self) -> &'static str {
        self.transport.kind()
    }

    pub(super) fn transport_kind(&self) -> crate::transport::TransportKind {
        self.transport.transport_kind()
    }

    /// Who the peer's verified TLS client certificate names, if it presented one.
    pub(super) fn identity(&self) -> Option<&ClientIdentity> {
        self.transport.identity()
    }

    pub(super) fn set_version(&mut self, version: Version) {
        self.codec.set_version(version);
    }

    /// The version CONNECT negotiated (kept by the codec only: the session's state has no
    /// copy of its own).
    pub(super) fn version(&self) -> Version {
        self.codec.version()
    }

    /// Whether the session may wait for this transport's input parked, outside a task: its
    /// read leaves the waker where the socket or channel keeps it, not in the read's future.
    /// SockJS sessions stay in their tasks (their receivers come and go).
    pub(super) fn parks(&self) -> bool {
        !matches!(self.transport, Transport::SockJs(_))
    }

    /// Polls a read once with `cx` (a parking session's): true when it completed, its outcome
    /// then kept for the loop's next [`read`](Self::read).
    pub(super) fn poll_read_once(&mut self, cx: &mut Context<'_>) -> bool {
        if self.early.is_none() {
            self.early = super::park::poll_once(self.read(), cx).map(Box::new);
        }
        self.early.is_some()
    }

    /// Cancel-safe read of more input.
    pub(super) async fn read(&mut self) -> io::Result<ReadOutcome> {
        if let Some(outcome) = self.early.take() {
            return *outcome;
        }
        let (outcome, read) = match &mut self.buffers {
            Some(buffers) => {
                let before = buffers.input.len();
                let outcome = self.transport.read(&mut buffers.input).await;
                (outcome, buffers.input.len().saturating_sub(before))
            }
            // A parked session's first read (or a parking one's poll) makes no box until
            // bytes come: cancelled while waiting, the empty buffer goes with the future.
            None => {
                let mut input = BytesMut::new();
                let outcome = self.transport.read(&mut input).await;
                let read = input.len();
                if read > 0 {
                    self.buffers = Some(Box::new(Buffers {
                        input,
                        ..Buffers::default()
                    }));
                }
                (outcome, read)
            }
        };
        crate::metrics::get().session.bytes_in.inc_by(read as u64);
        outcome
    }

    /// The next complete item in the input, if any.
    pub(super) fn decode(&mut self) -> Result<Option<Item>, CodecError> {
        let Some(buffers) = self.buffers.as_mut() else {
            return Ok(None);
        };
        let input = &mut buffers.input;
        let item = self.codec.decode(input)?;
        if let Some(Item::Frame(frame)) = &item {
            crate::metrics::get().session.frame_in(frame.command);
        }
        if input.is_empty() && input.capacity() > 0 {
            // Idle connections hold no read buffer (frames decoded from it keep their own
            // reference to the bytes they need).
            *input = BytesMut::new();
        }
        Ok(item)
    }

    pub(super) fn push(&mut self, frame: &Frame) {
        crate::metrics::get().session.frame_out(frame.command);
        let version = self.codec.version();
        self.encode(|dst| encode_frame(frame, version, dst));
    }

    /// Appends one frame written by `write` to the batch.
    pub(super) fn encode(&mut self, write: impl FnOnce(&mut BytesMut)) {
        let output = self.buffers.get_or_insert_default();
        write(&mut output.batch);
        output.frame_ends.push(output.batch.len());
    }

    /// Makes room for about `bytes` more output at once, instead of growing (and copying) the
    /// batch step by step while a large drain is encoded.
    pub(super) fn reserve(&mut self, bytes: usize) {
        self.buffers.get_or_insert_default().batch.reserve(bytes);
    }

    pub(super) fn push_heartbeat(&mut self) {
        self.encode(|dst| dst.extend_from_slice(HEARTBEAT));
    }

    pub(super) fn is_idle(&self) -> bool {
        self.buffers
            .as_ref()
            .is_none_or(|output| output.frame_ends.is_empty())
    }

    /// A session about to park gives back its buffers, unless they hold a partial frame
    /// (nothing is waiting to be written: it parks only once its last batch was).
    pub(super) fn shed_buffers(&mut self) {
        if self.is_idle() && self.buffers.as_ref().is_some_and(|b| b.input.is_empty()) {
            self.buffers = None;
        }
    }

    pub(super) async fn flush(&mut self) -> io::Result<()> {
        let Some(output) = self.buffers.as_mut().filter(|o| !o.frame_ends.is_empty()) else {
            return Ok(());
        };
        // Taking the buffer releases it after the write: idle sessions hold no write buffer.
        let batch = std::mem::take(&mut output.batch);
        crate::metrics::get()
            .session
            .bytes_out
            .inc_by(batch.len() as u64);
        let result = self.transport.write(batch, &output.frame_ends).await;
        // Kept for the next turn, unless a large drain grew it: that goes with the batch.
        if output.frame_ends.capacity() > KEPT_FRAME_ENDS {
            output.frame_ends = Vec::new();
        } else {
            output.frame_ends.clear();
        }
        result
    }

    pub(super) async fn close(&mut self, linger: Duration) {
        self.transport.close(linger).await;
    }

    /// Sends ERROR for `failure` after whatever is already queued, then closes.
    pub(super) async fn fail(&mut self, failure: Failure) -> CloseReason {
        let Failure { error, receipt } = failure;
        debug!(error = %error, "sending ERROR");
        let mut frame = Frame::new(Command::Error)
            .header("message", error.message())
            .header("content-type", "text/plain");
        if let Some(receipt) = receipt {
            frame.headers.push("receipt-id", receipt);
        }
        if matches!(error, StompError::UnsupportedVersion(_)) {
            frame.headers.push("version", "1.0,1.1,1.2");
        }
        let frame = frame.with_body(format!("{error}\n"));
        self.push(&frame);
        if self.flush().await.is_ok() {
            self.close(CLOSE_LINGER).await;
        }
        error.close_reason()
    }
}
