//! A STOMP-over-WebSocket client on tokio-tungstenite, checking the contract's framing rule:
//! every outbound frame is exactly one WebSocket message, text when it is UTF-8.

use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use stomp_codec::{Command, Frame, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::WAIT;
use crate::client::{RecvError, connect_frame};
use crate::frame::FrameExt;
use crate::wire::{self, Received};

/// The upgrade request's own lines for RFC 6455's sample key, offering STOMP 1.2.
pub const UPGRADE_LINES: [&str; 5] = [
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Protocol: v12.stomp",
];

/// Sends `{method} /ws` with `lines` as its headers (after `Host`) on `stream`, as raw
/// HTTP/1.1, and reads the response: the status and the text read (the head, and a refusal's
/// body up to its `Content-Length`). After a 101 the stream is a live WebSocket session.
pub async fn raw_upgrade(stream: &mut TcpStream, method: &str, lines: &[&str]) -> (u16, String) {
    let mut request = format!("{method} /ws HTTP/1.1\r\nHost: localhost\r\n");
    for line in lines {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request written");
    let mut response = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let mut chunk = [0u8; 1024];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => response.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => panic!("reading the upgrade response: {e}"),
        }
        let text = String::from_utf8_lossy(&response);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length = head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .and_then(|n| n.trim().parse::<usize>().ok())
        });
        if text.starts_with("HTTP/1.1 101") || body.len() >= length.unwrap_or(0) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    (status, text)
}

/// All STOMP subprotocols, highest first, as stomp.js offers them.
pub const ALL_SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// The upgrade request for `url`, offering `protocols` (none: no `Sec-WebSocket-Protocol`).
fn upgrade_request(
    url: &str,
    protocols: &[&str],
) -> Result<tungstenite::handshake::client::Request, tungstenite::Error> {
    let mut request = url.into_client_request()?;
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(&protocols.join(", ")).expect("valid header value"),
        );
    }
    Ok(request)
}

/// One inbound WebSocket message, decoded.
#[derive(Debug, Clone)]
pub struct WsReceived {
    /// `None` for a heart-beat message (`"\n"`).
    pub frame: Option<Frame>,
    /// Whether it came as a text (not binary) message.
    pub text: bool,
}

/// A client over `S`: plain TCP by default, a TLS stream for `wss://` (`tls.rs`).
#[derive(Debug)]
pub struct WsClient<S = MaybeTlsStream<TcpStream>> {
    ws: WebSocketStream<S>,
    version: Version,
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
}

impl WsClient {
    /// WebSocket handshake offering `protocols` (none: no `Sec-WebSocket-Protocol` header) and
    /// sending `origin` when given. The error carries the HTTP response of a refused upgrade.
    pub async fn open(
        url: &str,
        protocols: &[&str],
        origin: Option<&str>,
    ) -> Result<WsClient, tungstenite::Error> {
        let mut request = upgrade_request(url, protocols)?;
        if let Some(origin) = origin {
            request.headers_mut().insert(
                "Origin",
                HeaderValue::from_str(origin).expect("valid header value"),
            );
        }
        let (ws, response) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| tungstenite::Error::Io(std::io::ErrorKind::TimedOut.into()))??;
        Ok(WsClient::upgraded(ws, &response))
    }

    /// Opens with `v12.stomp` and completes a 1.2 CONNECT as `login`.
    pub async fn connect(url: &str, login: &str) -> WsClient {
        let client = Self::open(url, &["v12.stomp"], None)
            .await
            .unwrap_or_else(|e| panic!("WebSocket handshake with {url} failed: {e}"));
        client.connect_as(login).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsClient<S> {
    /// The WebSocket handshake for `url` over an already connected `stream` (a TLS stream for
    /// `wss://`), offering `protocols`.
    pub async fn open_over(
        stream: S,
        url: &str,
        protocols: &[&str],
    ) -> Result<WsClient<S>, tungstenite::Error> {
        let request = upgrade_request(url, protocols)?;
        let (ws, response) =
            tokio::time::timeout(WAIT, tokio_tungstenite::client_async(request, stream))
                .await
                .map_err(|_| tungstenite::Error::Io(std::io::ErrorKind::TimedOut.into()))??;
        Ok(WsClient::upgraded(ws, &response))
    }

    /// The client on an upgraded socket, with the subprotocol the server chose.
    fn upgraded(
        ws: WebSocketStream<S>,
        response: &tungstenite::handshake::client::Response,
    ) -> Self {
        let protocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        WsClient {
            ws,
            version: Version::V1_2,
            protocol,
        }
    }

    /// Completes a 1.2 CONNECT as `login` on an open WebSocket.
    pub async fn connect_as(mut self, login: &str) -> WsClient<S> {
        let reply = self
            .handshake(connect_frame(
                Command::Connect,
                &[
                    ("accept-version", "1.2"),
                    ("host", "localhost"),
                    ("login", login),
                    ("heart-beat", "0,0"),
                ],
            ))
            .await;
        assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
        self
    }

    /// Sends CONNECT/STOMP as one text message and returns the answer.
    pub async fn handshake(&mut self, connect: Frame) -> Frame {
        self.send(&connect).await;
        let reply = self.recv_frame().await;
        if reply.command == Command::Connected {
            self.version = reply
                .opt("version")
                .map(|v| v.parse().expect("CONNECTED version is a STOMP version"))
                .unwrap_or(Version::V1_0);
        }
        reply
    }

    /// One frame as one text message (binary when the body is not UTF-8).
    pub async fn send(&mut self, frame: &Frame) {
        let bytes = wire::encode(frame, self.version);
        match String::from_utf8(bytes) {
            Ok(text) => self.send_text(&text).await,
            Err(e) => self.send_binary(e.as_bytes()).await,
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_message(Message::text(text)).await;
    }

    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.send_message(Message::binary(bytes.to_vec())).await;
    }

    /// One WebSocket frame as given: `opcode` (0x1 text, 0x2 binary...), its payload unchecked
    /// (tungstenite's `Message::Text` takes only UTF-8) and RSV1 when `rsv1`: what a client
    /// that breaks RFC 6455 sends.
    pub async fn send_raw_frame(&mut self, opcode: u8, payload: &[u8], rsv1: bool) {
        use tungstenite::protocol::frame::Frame as WsFrame;
        use tungstenite::protocol::frame::coding::OpCode;
        let mut frame = WsFrame::message(payload.to_vec(), OpCode::from(opcode), true);
        frame.header_mut().rsv1 = rsv1;
        self.send_message(Message::Frame(frame)).await;
    }

    /// The server's close frame within `within` (anything else skipped): its code and reason.
    pub async fn expect_close_frame(&mut self, within: Duration) -> (u16, String) {
        let deadline = Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("no close frame in time");
            match next {
                Some(Ok(Message::Close(Some(close)))) => {
                    return (u16::from(close.code), close.reason.to_string());
                }
                Some(Ok(Message::Close(None))) => panic!("close frame without a code"),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("connection failed before a close frame: {e}"),
                None => panic!("stream ended before a close frame"),
            }
        }
    }

    /// A WebSocket ping (liveness without any STOMP bytes).
    pub async fn send_ping(&mut self) {
        self.send_message(Message::Ping(Vec::new().into())).await;
    }

    async fn send_message(&mut self, message: Message) {
        tokio::time::timeout(WAIT, self.ws.send(message))
            .await
            .expect("WebSocket send timed out")
            .expect("WebSocket send failed");
    }

    /// The next STOMP-carrying message (ping/pong skipped), decoded and checked to hold exactly
    /// one frame or one heart-beat.
    pub async fn recv_message(&mut self, within: Duration) -> Result<WsReceived, RecvError> {
        let deadline = Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| RecvError::Timeout)?;
            let (bytes, text) = match next {
                None => return Err(RecvError::Closed("WebSocket stream ended".into())),
                Some(Err(e)) => return Err(RecvError::Closed(e.to_string())),
                Some(Ok(Message::Text(t))) => (t.as_bytes().to_vec(), true),
                Some(Ok(Message::Binary(b))) => (b.to_vec(), false),
                Some(Ok(Message::Close(c))) => {
                    return Err(RecvError::Closed(format!("close frame {c:?}")));
                }
                Some(Ok(_)) => continue,
            };
            return decode_one(&bytes, self.version, text);
        }
    }

    /// The next frame (heart-beats skipped) with whether it came as text.
    pub async fn recv_frame_within(
        &mut self,
        within: Duration,
    ) -> Result<(Frame, bool), RecvError> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let received = self.recv_message(left).await?;
            if let Some(frame) = received.frame {
                return Ok((frame, received.text));
            }
        }
    }

    pub async fn recv_frame(&mut self) -> Frame {
        self.recv_frame_within(WAIT)
            .await
            .unwrap_or_else(|e| panic!("expected a frame over WebSocket: {e}"))
            .0
    }

    pub async fn expect(&mut self, command: Command) -> Frame {
        let frame = self.recv_frame().await;
        assert_eq!(frame.command, command, "got {}", frame.describe());
        frame
    }

    pub async fn expect_error(&mut self, message: &str) -> Frame {
        let frame = self.expect(Command::Error).await;
        assert_eq!(frame.opt("message"), Some(message), "{}", frame.describe());
        frame
    }

    /// Sends `frame` with `receipt` and waits for that RECEIPT (no other frame may come first).
    pub async fn request(&mut self, frame: Frame, receipt: &str) {
        self.send(&frame.header("receipt", receipt)).await;
        let reply = self.expect(Command::Receipt).await;
        assert_eq!(reply.opt("receipt-id"), Some(receipt));
    }

    /// The WebSocket (or its TCP connection) is closed within `within`.
    pub async fn expect_closed(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_message(left).await {
                Err(RecvError::Closed(_)) => return,
                Err(e) => panic!("expected close: {e}"),
                Ok(WsReceived { frame: None, .. }) => {}
                Ok(WsReceived {
                    frame: Some(frame), ..
                }) => panic!("expected close, got {}", frame.describe()),
            }
        }
    }
}

fn decode_one(bytes: &[u8], version: Version, text: bool) -> Result<WsReceived, RecvError> {
    let mut buf = BytesMut::from(bytes);
    let first = wire::decode(&mut buf, version).map_err(RecvError::Malformed)?;
    let frame = match first {
        None => {
            return Err(RecvError::Malformed(wire::WireError(format!(
                "WebSocket message is not a whole frame: {:?}",
                String::from_utf8_lossy(bytes)
            ))));
        }
        Some(Received::HeartBeat) => None,
        Some(Received::Frame { frame, .. }) => Some(frame),
    };
    // Trailing EOLs after a frame are allowed by the grammar; another frame is not.
    while let Some(rest) = wire::decode(&mut buf, version).map_err(RecvError::Malformed)? {
        if let Received::Frame { frame: extra, .. } = rest {
            return Err(RecvError::Malformed(wire::WireError(format!(
                "second frame in one WebSocket message: {}",
                extra.describe()
            ))));
        }
    }
    if !buf.is_empty() {
        return Err(RecvError::Malformed(wire::WireError(
            "partial frame after a whole one in one WebSocket message".into(),
        )));
    }
    Ok(WsReceived { frame, text })
}
