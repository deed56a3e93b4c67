//! A raw STOMP-over-TCP client: writes exactly the bytes a test gives it, reads frames with the
//! suite's own decoder, and bounds every wait so a broken broker fails a test instead of
//! hanging it.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use stomp_codec::{Command, Frame, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::frame::{self, FrameExt};
use crate::wire::{self, Received, WireError};
use crate::{QUIET, WAIT};

/// Why nothing (or no frame) was read.
#[derive(Debug)]
pub enum RecvError {
    Timeout,
    /// EOF, reset, or another read error.
    Closed(String),
    Malformed(WireError),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Timeout => f.write_str("timed out waiting for the broker"),
            RecvError::Closed(why) => write!(f, "connection closed: {why}"),
            RecvError::Malformed(e) => write!(f, "{e}"),
        }
    }
}

/// The byte stream under a [`TcpClient`]: a TCP stream, or a TLS stream over one.
pub trait ClientIo: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> ClientIo for T {}

#[derive(Debug)]
pub struct TcpClient {
    stream: Box<dyn ClientIo>,
    buf: BytesMut,
    version: Version,
    /// Frames read while waiting for something else (a RECEIPT), returned first.
    pending: VecDeque<Received>,
    receipt_seq: u64,
    /// The CONNECTED frame of a successful handshake.
    pub connected: Option<Frame>,
}

impl TcpClient {
    /// A TCP connection with no STOMP handshake yet.
    pub async fn open(addr: SocketAddr) -> TcpClient {
        Self::try_open(addr)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
    }

    pub async fn try_open(addr: SocketAddr) -> io::Result<TcpClient> {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        Self::from_stream(stream)
    }

    /// Wraps an already connected stream (e.g. one with a tiny receive buffer).
    pub fn from_stream(stream: TcpStream) -> io::Result<TcpClient> {
        stream.set_nodelay(true)?;
        Ok(Self::from_io(stream))
    }

    /// Wraps any connected byte stream (a TLS stream, for the TLS listener).
    pub fn from_io(stream: impl ClientIo + 'static) -> TcpClient {
        TcpClient {
            stream: Box::new(stream),
            buf: BytesMut::with_capacity(64 * 1024),
            version: Version::V1_2,
            pending: VecDeque::new(),
            receipt_seq: 0,
            connected: None,
        }
    }

    /// Opens and completes a 1.2 CONNECT as `login`, without heart-beats.
    pub async fn connect(addr: SocketAddr, login: &str) -> TcpClient {
        Self::connect_with(
            addr,
            &[
                ("accept-version", "1.2"),
                ("host", "localhost"),
                ("login", login),
                ("heart-beat", "0,0"),
            ],
        )
        .await
    }

    /// Opens and sends CONNECT with exactly `headers`; panics unless CONNECTED comes back.
    pub async fn connect_with(addr: SocketAddr, headers: &[(&str, &str)]) -> TcpClient {
        let mut client = Self::open(addr).await;
        let reply = client
            .handshake(connect_frame(Command::Connect, headers))
            .await;
        assert_eq!(
            reply.command,
            Command::Connected,
            "CONNECT refused: {}",
            reply.describe()
        );
        client
    }

    /// Sends a CONNECT/STOMP frame and returns the broker's answer (CONNECTED or ERROR),
    /// adopting the negotiated version for header escaping.
    pub async fn handshake(&mut self, connect: Frame) -> Frame {
        self.send(&connect).await;
        let reply = self.recv_frame().await;
        if reply.command == Command::Connected {
            self.version = reply
                .opt("version")
                .map(|v| v.parse().expect("CONNECTED version is a STOMP version"))
                .unwrap_or(Version::V1_0);
            self.connected = Some(reply.clone());
        }
        reply
    }

    /// The version whose escaping rules this client uses.
    pub fn version(&self) -> Version {
        self.version
    }

    pub async fn send(&mut self, frame: &Frame) {
        let bytes = wire::encode(frame, self.version);
        self.send_raw(&bytes).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.try_send_raw(bytes)
            .await
            .unwrap_or_else(|e| panic!("write to broker failed: {e}"));
    }

    pub async fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        tokio::time::timeout(WAIT, async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))?
    }

    /// The next heart-beat or frame within `within`.
    pub async fn recv_item(&mut self, within: Duration) -> Result<Received, RecvError> {
        if let Some(item) = self.pending.pop_front() {
            return Ok(item);
        }
        let deadline = Instant::now() + within;
        loop {
            if let Some(item) =
                wire::decode(&mut self.buf, self.version).map_err(RecvError::Malformed)?
            {
                return Ok(item);
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf))
                .await
                .map_err(|_| RecvError::Timeout)?;
            match read {
                Ok(0) => return Err(RecvError::Closed("EOF".into())),
                Ok(_) => {}
                Err(e) => return Err(RecvError::Closed(e.to_string())),
            }
        }
    }

    /// The next frame (heart-beats skipped) with its raw bytes.
    pub async fn recv_raw_frame_within(
        &mut self,
        within: Duration,
    ) -> Result<(Frame, Bytes), RecvError> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_item(left).await? {
                Received::HeartBeat => {}
                Received::Frame { frame, raw } => return Ok((frame, raw)),
            }
        }
    }

    pub async fn recv_frame_within(&mut self, within: Duration) -> Result<Frame, RecvError> {
        Ok(self.recv_raw_frame_within(within).await?.0)
    }

    /// The next frame within the default wait; panics otherwise.
    pub async fn recv_frame(&mut self) -> Frame {
        self.recv_frame_within(WAIT)
            .await
            .unwrap_or_else(|e| panic!("expected a frame: {e}"))
    }

    pub async fn recv_raw_frame(&mut self) -> (Frame, Bytes) {
        self.recv_raw_frame_within(WAIT)
            .await
            .unwrap_or_else(|e| panic!("expected a frame: {e}"))
    }

    /// The next frame, which must be `command`.
    pub async fn expect(&mut self, command: Command) -> Frame {
        let frame = self.recv_frame().await;
        assert_eq!(
            frame.command,
            command,
            "expected {command}, got {}",
            frame.describe()
        );
        frame
    }

    pub async fn expect_message(&mut self) -> Frame {
        self.expect(Command::Message).await
    }

    /// The next frame must be ERROR with `message:<message>`.
    pub async fn expect_error(&mut self, message: &str) -> Frame {
        let frame = self.expect(Command::Error).await;
        assert_eq!(
            frame.opt("message"),
            Some(message),
            "wrong ERROR: {}",
            frame.describe()
        );
        frame
    }

    pub async fn expect_receipt(&mut self, id: &str) -> Frame {
        let frame = self.expect(Command::Receipt).await;
        assert_eq!(frame.opt("receipt-id"), Some(id), "{}", frame.describe());
        frame
    }

    /// The server closes the connection (EOF or reset) within `within`, sending no frame
    /// first (heart-beats are allowed).
    pub async fn expect_closed(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_item(left).await {
                Err(RecvError::Closed(_)) => return,
                Err(RecvError::Timeout) => panic!("connection still open after {within:?}"),
                Err(RecvError::Malformed(e)) => panic!("expected close, got {e}"),
                Ok(Received::HeartBeat) => {}
                Ok(Received::Frame { frame, .. }) => {
                    panic!("expected close, got {}", frame.describe())
                }
            }
        }
    }

    /// Nothing but heart-beats arrives for `within` and the connection stays open.
    pub async fn expect_silence(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_item(left).await {
                Err(RecvError::Timeout) => return,
                Err(e) => panic!("expected silence, got {e}"),
                Ok(Received::HeartBeat) => {}
                Ok(Received::Frame { frame, .. }) => {
                    panic!("expected silence, got {}", frame.describe())
                }
            }
        }
    }

    /// `expect_silence` for the suite's standard quiet period.
    pub async fn expect_no_frame(&mut self) {
        self.expect_silence(QUIET).await;
    }

    /// Sends `frame` with a fresh `receipt` and waits for its RECEIPT; frames that arrive in
    /// between are kept for the next `recv_*`. Panics on ERROR.
    pub async fn request(&mut self, frame: Frame) {
        self.receipt_seq += 1;
        let id = format!("rcpt-{}", self.receipt_seq);
        let command = frame.command;
        self.send(&frame.header("receipt", id.clone())).await;
        let mut held = Vec::new();
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_raw_frame_within(left).await {
                Ok((frame, _)) if frame.command == Command::Receipt => {
                    assert_eq!(frame.opt("receipt-id"), Some(id.as_str()));
                    break;
                }
                Ok((frame, _)) if frame.command == Command::Error => {
                    panic!("{command} got {}", frame.describe())
                }
                Ok((frame, raw)) => held.push(Received::Frame { frame, raw }),
                Err(e) => panic!("no RECEIPT for {command}: {e}"),
            }
        }
        // The loop drained `pending` into `held`, so appending keeps arrival order.
        self.pending.extend(held);
    }

    /// SUBSCRIBE (auto ack) and wait until it took effect.
    pub async fn subscribe(&mut self, id: &str, destination: &str) {
        self.request(frame::subscribe(id, destination)).await;
    }

    /// SUBSCRIBE with extra headers (e.g. `ack`, `prefetch-count`), waiting until it took effect.
    pub async fn subscribe_with(&mut self, id: &str, destination: &str, extra: &[(&str, &str)]) {
        let mut frame = frame::subscribe(id, destination);
        for (name, value) in extra {
            frame = frame.header(*name, *value);
        }
        self.request(frame).await;
    }

    pub async fn unsubscribe(&mut self, id: &str) {
        self.request(Frame::new(Command::Unsubscribe).header("id", id))
            .await;
    }

    /// SEND with a body and wait until it was routed.
    pub async fn publish(&mut self, destination: &str, body: impl AsRef<[u8]>) {
        self.request(frame::send(destination, body)).await;
    }

    /// ACK the MESSAGE by its `ack` header (1.2), waiting until it took effect.
    pub async fn ack(&mut self, message: &Frame) {
        self.request(Frame::new(Command::Ack).header("id", message.value("ack")))
            .await;
    }

    /// NACK the MESSAGE by its `ack` header (1.2), waiting until it took effect.
    pub async fn nack(&mut self, message: &Frame) {
        self.request(Frame::new(Command::Nack).header("id", message.value("ack")))
            .await;
    }

    /// DISCONNECT with a receipt, then the server closes.
    pub async fn disconnect(mut self) {
        self.send(&Frame::new(Command::Disconnect).header("receipt", "bye"))
            .await;
        loop {
            let frame = self.recv_frame().await;
            match frame.command {
                Command::Receipt => {
                    assert_eq!(frame.opt("receipt-id"), Some("bye"));
                    break;
                }
                // Deliveries racing the DISCONNECT are fine; the session is ending.
                Command::Message => {}
                _ => panic!("DISCONNECT got {}", frame.describe()),
            }
        }
        self.expect_closed(WAIT).await;
    }
}

/// CONNECT or STOMP with exactly `headers`.
pub fn connect_frame(command: Command, headers: &[(&str, &str)]) -> Frame {
    let mut frame = Frame::new(command);
    for (name, value) in headers {
        frame = frame.header(*name, *value);
    }
    frame
}
