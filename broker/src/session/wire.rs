//! A session's end of the connection: transport, codec, input buffer and the batch of frames
//! waiting to be written.
//!
//! The input buffer is released whenever it holds no partial frame, so an idle connection
//! keeps no read buffer; output is collected per loop turn and written in one go.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use stomp_codec::{CodecError, Command, Frame, Item, Limits, StompCodec, Version, encode_frame};
use tokio_util::codec::Decoder;
use tracing::debug;

use super::{CLOSE_LINGER, Failure};
use crate::close::CloseReason;
use crate::config::Config;
use crate::error::StompError;
use crate::transport::{ReadOutcome, Transport};

pub(super) struct Wire {
    transport: Transport,
    codec: StompCodec,
    input: BytesMut,
    output: Vec<Bytes>,
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
        Self {
            transport,
            codec: StompCodec::new(limits),
            input: BytesMut::new(),
            output: Vec::new(),
        }
    }

    pub(super) fn kind(&self) -> &'static str {
        self.transport.kind()
    }

    pub(super) fn set_version(&mut self, version: Version) {
        self.codec.set_version(version);
    }

    /// Cancel-safe read of more input.
    pub(super) async fn read(&mut self) -> io::Result<ReadOutcome> {
        self.transport.read(&mut self.input).await
    }

    /// The next complete item in the input, if any.
    pub(super) fn decode(&mut self) -> Result<Option<Item>, CodecError> {
        let item = self.codec.decode(&mut self.input)?;
        if self.input.is_empty() && self.input.capacity() > 0 {
            // Idle connections hold no read buffer (frames decoded from it keep their own
            // reference to the bytes they need).
            self.input = BytesMut::new();
        }
        Ok(item)
    }

    pub(super) fn push(&mut self, frame: &Frame) {
        let mut buf = BytesMut::with_capacity(64 + frame.body.len());
        encode_frame(frame, self.codec.version(), &mut buf);
        self.output.push(buf.freeze());
    }

    pub(super) fn push_raw(&mut self, bytes: Bytes) {
        self.output.push(bytes);
    }

    pub(super) fn is_idle(&self) -> bool {
        self.output.is_empty()
    }

    pub(super) async fn flush(&mut self) -> io::Result<()> {
        let result = self.transport.write(&mut self.output).await;
        if self.output.capacity() > 16 {
            self.output = Vec::new();
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
