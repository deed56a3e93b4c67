//! A STOMP 1.2 client connection over TCP or WebSocket, split into a [`Reader`] and a
//! [`Writer`] so one task can publish while another consumes. Framing is `stomp_codec`.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::BytesMut;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use stomp_codec::{Command, Frame, Item, Limits, StompCodec, Version, encode_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_util::codec::Decoder;

/// Time allowed for TCP connect + CONNECTED; a broker under a connection storm can be slow.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes a TCP read asks for at least: a subscriber at a million deliveries a second gets
/// hundreds of frames per wake-up, and each read is a syscall on the cores the broker shares.
const READ_CHUNK: usize = 64 * 1024;

/// Which byte pipe carries STOMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Ws,
}

/// Where and how to connect: everything broker-specific lives here.
#[derive(Debug, Clone)]
pub struct Target {
    pub stomp: SocketAddr,
    pub ws_url: Option<String>,
    pub transport: Transport,
    pub host: String,
    pub login: String,
    pub passcode: String,
}

pub type Ws = WebSocketStream<TcpStream>;

pub enum Reader {
    Tcp {
        half: OwnedReadHalf,
        buf: BytesMut,
        codec: StompCodec,
    },
    Ws {
        stream: SplitStream<Ws>,
        buf: BytesMut,
        codec: StompCodec,
    },
}

pub enum Writer {
    Tcp {
        half: OwnedWriteHalf,
        buf: BytesMut,
    },
    Ws {
        sink: SplitSink<Ws, Message>,
        buf: BytesMut,
    },
    /// A receive loop's stand-in when another task owns the real write half.
    Detached,
}

impl Reader {
    /// The next frame or heart-beat; `None` when the broker closed the connection.
    /// Cancel-safe: only the socket read is awaited.
    pub async fn next(&mut self) -> anyhow::Result<Option<Item>> {
        loop {
            let (buf, codec) = self.input();
            if let Some(item) = codec.decode(buf)? {
                return Ok(Some(item));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// Reads more bytes into the input buffer; false when the broker closed the connection.
    /// Cancel-safe: only the socket read is awaited.
    pub async fn fill(&mut self) -> anyhow::Result<bool> {
        match self {
            Reader::Tcp { half, buf, .. } => {
                buf.reserve(READ_CHUNK);
                Ok(half.read_buf(buf).await? > 0)
            }
            Reader::Ws { stream, buf, .. } => loop {
                match stream.next().await {
                    None | Some(Ok(Message::Close(_))) => return Ok(false),
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(Message::Text(t))) => buf.extend_from_slice(t.as_bytes()),
                    Some(Ok(Message::Binary(b))) => buf.extend_from_slice(&b),
                    Some(Ok(_)) => continue,
                }
                return Ok(true);
            },
        }
    }

    /// The bytes read and not yet taken, with the codec that resumes on them.
    pub fn input(&mut self) -> (&mut BytesMut, &mut StompCodec) {
        match self {
            Reader::Tcp { buf, codec, .. } | Reader::Ws { buf, codec, .. } => (buf, codec),
        }
    }

    /// The next frame, skipping heart-beats; ERROR and EOF are errors.
    pub async fn frame(&mut self, within: Duration) -> anyhow::Result<Frame> {
        loop {
            let item = tokio::time::timeout(within, self.next())
                .await
                .context("timed out waiting for a frame")??
                .context("broker closed the connection")?;
            match item {
                Item::HeartBeat => {}
                Item::Frame(f) if f.command == Command::Error => bail!(
                    "ERROR {}: {}",
                    f.headers.get("message").unwrap_or(""),
                    String::from_utf8_lossy(&f.body).trim_end()
                ),
                Item::Frame(f) => return Ok(f),
            }
        }
    }

    /// Waits for RECEIPT `id`, failing on anything but heart-beats and MESSAGEs.
    pub async fn receipt(&mut self, id: &str, within: Duration) -> anyhow::Result<()> {
        loop {
            let f = self.frame(within).await?;
            match f.command {
                Command::Receipt if f.headers.get("receipt-id") == Some(id) => return Ok(()),
                Command::Message | Command::Receipt => {}
                other => bail!("expected RECEIPT {id}, got {other}"),
            }
        }
    }
}

impl Writer {
    /// Encodes `frame` into the pending batch; nothing is written until [`Writer::flush`].
    pub fn queue(&mut self, frame: &Frame) {
        match self {
            Writer::Tcp { buf, .. } => encode_frame(frame, Version::V1_2, buf),
            Writer::Ws { sink: _, buf } => encode_frame(frame, Version::V1_2, buf),
            Writer::Detached => {}
        }
    }

    /// Queues a heart-beat EOL.
    pub fn queue_heartbeat(&mut self) {
        match self {
            Writer::Tcp { buf, .. } | Writer::Ws { buf, .. } => buf.extend_from_slice(b"\n"),
            Writer::Detached => {}
        }
    }

    /// Writes the pending batch: one write for TCP, one WebSocket message for WS.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            Writer::Tcp { half, buf } => {
                if !buf.is_empty() {
                    half.write_all(buf).await?;
                    buf.clear();
                }
            }
            Writer::Ws { sink, buf } => {
                if !buf.is_empty() {
                    let bytes = buf.split().freeze();
                    let text = String::from_utf8(bytes.to_vec())
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    sink.send(Message::Text(text.into())).await?;
                }
            }
            Writer::Detached => {}
        }
        Ok(())
    }

    /// Bytes queued and not yet written.
    pub fn pending(&self) -> usize {
        match self {
            Writer::Tcp { buf, .. } | Writer::Ws { buf, .. } => buf.len(),
            Writer::Detached => 0,
        }
    }

    /// Like [`Writer::flush`], but gives up at `deadline` (a broker's flow control may hold a
    /// publisher's socket for as long as it likes). `Some(n)`: only the first `n` bytes of the
    /// batch went out, the rest is dropped.
    pub async fn flush_until(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<Option<usize>> {
        match self {
            Writer::Tcp { half, buf } => {
                let mut written = 0;
                while written < buf.len() {
                    match tokio::time::timeout_at(deadline, half.write(&buf[written..])).await {
                        Ok(n) => written += n?,
                        Err(_) => {
                            buf.clear();
                            return Ok(Some(written));
                        }
                    }
                }
                buf.clear();
                Ok(None)
            }
            _ => match tokio::time::timeout_at(deadline, self.flush()).await {
                Ok(r) => r.map(|()| None),
                Err(_) => Ok(Some(0)),
            },
        }
    }

    pub async fn send(&mut self, frame: &Frame) -> anyhow::Result<()> {
        self.queue(frame);
        self.flush().await
    }
}

async fn tcp_connect(addr: SocketAddr, source: Option<Ipv4Addr>) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip.into(), 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Opens a connection, sends CONNECT with `heart_beat` (`cx,cy`), waits for CONNECTED.
/// `source` binds the local address, so many connections can spread over 127.0.0.x.
pub async fn connect(
    target: &Target,
    heart_beat: &str,
    source: Option<Ipv4Addr>,
) -> anyhow::Result<(Reader, Writer)> {
    tokio::time::timeout(CONNECT_TIMEOUT, connect_inner(target, heart_beat, source))
        .await
        .context("connect timed out")?
}

async fn connect_inner(
    target: &Target,
    heart_beat: &str,
    source: Option<Ipv4Addr>,
) -> anyhow::Result<(Reader, Writer)> {
    let (mut reader, mut writer) = match target.transport {
        Transport::Tcp => {
            let stream = tcp_connect(target.stomp, source)
                .await
                .with_context(|| format!("connect to {}", target.stomp))?;
            let (r, w) = stream.into_split();
            (
                Reader::Tcp {
                    half: r,
                    buf: BytesMut::new(),
                    codec: StompCodec::new(Limits::default()),
                },
                Writer::Tcp {
                    half: w,
                    buf: BytesMut::new(),
                },
            )
        }
        Transport::Ws => {
            let url = target.ws_url.as_deref().context("--ws URL needed for ws")?;
            let mut request = url.into_client_request()?;
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static("v12.stomp"),
            );
            let host = request.uri().host().context("ws url host")?.to_owned();
            let port = request.uri().port_u16().unwrap_or(80);
            let addr: SocketAddr = format!("{host}:{port}").parse().context("ws url address")?;
            let stream = tcp_connect(addr, source)
                .await
                .with_context(|| format!("connect to {addr}"))?;
            let (ws, _) = tokio_tungstenite::client_async(request, stream).await?;
            let (sink, stream) = ws.split();
            (
                Reader::Ws {
                    stream,
                    buf: BytesMut::new(),
                    codec: StompCodec::new(Limits::default()),
                },
                Writer::Ws {
                    sink,
                    buf: BytesMut::new(),
                },
            )
        }
    };
    let connect = Frame::new(Command::Connect)
        .header("accept-version", "1.2")
        .header("host", target.host.as_str())
        .header("login", target.login.as_str())
        .header("passcode", target.passcode.as_str())
        .header("heart-beat", heart_beat);
    writer.send(&connect).await?;
    let connected = reader.frame(CONNECT_TIMEOUT).await?;
    if connected.command != Command::Connected {
        bail!("expected CONNECTED, got {}", connected.command);
    }
    Ok((reader, writer))
}

/// SUBSCRIBE with a receipt, waiting for it, so publishing starts only once routes exist.
pub async fn subscribe(
    reader: &mut Reader,
    writer: &mut Writer,
    destination: &str,
    id: &str,
    ack: &str,
    extra: &[(String, String)],
) -> anyhow::Result<()> {
    let mut frame = Frame::new(Command::Subscribe)
        .header("destination", destination)
        .header("id", id)
        .header("ack", ack)
        .header("receipt", format!("sub-{id}"));
    for (k, v) in extra {
        frame.headers.push(k.as_str(), v.as_str());
    }
    writer.send(&frame).await?;
    reader
        .receipt(&format!("sub-{id}"), CONNECT_TIMEOUT)
        .await
        .with_context(|| format!("SUBSCRIBE {destination}"))
}

/// Expands `{i}` in a destination or header template.
pub fn expand(template: &str, i: usize) -> String {
    template.replace("{i}", &i.to_string())
}
