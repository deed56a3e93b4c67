//! STOMP over WebSocket (axum's upgrade of the HTTP listener).
//!
//! Inbound, the payloads of text and binary messages are appended to the session's byte
//! buffer, so several frames per message and one frame over several messages (stomp.js splits
//! at 16 KiB) need nothing special. Outbound, each STOMP frame is one message: text when it is
//! UTF-8, binary otherwise, so binary bodies survive browsers.

use std::io;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;

use super::outcome::ReadOutcome;
use super::tls::TlsPeer;

#[derive(Debug)]
pub struct WsTransport {
    socket: WebSocket,
    /// Set when the upgrade came over HTTPS.
    tls: Option<TlsPeer>,
}

fn io_error(e: axum::Error) -> io::Error {
    io::Error::other(e)
}

impl WsTransport {
    pub fn new(socket: WebSocket, tls: Option<TlsPeer>) -> Self {
        Self { socket, tls }
    }

    pub fn tls(&self) -> Option<&TlsPeer> {
        self.tls.as_ref()
    }

    pub async fn read(&mut self, buf: &mut BytesMut) -> io::Result<ReadOutcome> {
        match self.socket.recv().await {
            None | Some(Ok(Message::Close(_))) => Ok(ReadOutcome::Eof),
            Some(Ok(Message::Text(text))) => {
                buf.extend_from_slice(text.as_bytes());
                Ok(ReadOutcome::Data)
            }
            Some(Ok(Message::Binary(data))) => {
                buf.extend_from_slice(&data);
                Ok(ReadOutcome::Data)
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(ReadOutcome::Liveness),
            Some(Err(e)) => Err(io_error(e)),
        }
    }

    pub async fn write(&mut self, batch: Bytes, frame_ends: &[usize]) -> io::Result<()> {
        let mut start = 0;
        for &end in frame_ends {
            let frame = batch.slice(start..end);
            start = end;
            let message = match Utf8Bytes::try_from(frame.clone()) {
                Ok(text) => Message::Text(text),
                Err(_) => Message::Binary(frame),
            };
            self.socket.feed(message).await.map_err(io_error)?;
        }
        self.socket.flush().await.map_err(io_error)
    }

    /// Sends the WebSocket close message.
    pub async fn send_close(&mut self) {
        let _ = self.socket.send(Message::Close(None)).await;
    }
}
