//! What the publisher and subscriber examples share: a STOMP 1.2 session over TCP, framed with
//! `stomp_codec::StompCodec`, and the wait for one server frame that skips heart-beats and turns
//! an ERROR into an error.

use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use stomp_codec::{Command, Frame, Item, Limits, StompCodec};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// The broker's default STOMP listener; override with `STOMP_ADDR`.
pub const DEFAULT_ADDR: &str = "127.0.0.1:61613";

pub type Connection = Framed<TcpStream, StompCodec>;

/// `STOMP_ADDR`, or the broker's default address.
pub fn broker_addr() -> String {
    std::env::var("STOMP_ADDR").unwrap_or_else(|_| DEFAULT_ADDR.to_owned())
}

/// Opens TCP, sends CONNECT (STOMP 1.2, dev-mode `login`), and waits for CONNECTED.
///
/// `heart_beat` is the CONNECT header `cx,cy`: what we promise to send, what we want to receive.
pub async fn connect(addr: &str, login: &str, heart_beat: &str) -> anyhow::Result<Connection> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let mut conn = Framed::new(stream, StompCodec::new(Limits::default()));
    let connect = Frame::new(Command::Connect)
        .header("accept-version", "1.2")
        .header("host", "localhost")
        .header("login", login)
        .header("heart-beat", heart_beat);
    conn.send(connect).await?;
    let connected = next_frame(&mut conn, Duration::from_secs(10)).await?;
    if connected.command != Command::Connected {
        bail!("expected CONNECTED, got {}", connected.command);
    }
    Ok(conn)
}

/// The next frame from the broker, skipping heart-beats; an ERROR frame, the connection closing
/// or nothing at all (not even a heart-beat) for `idle` are errors.
pub async fn next_frame(conn: &mut Connection, idle: Duration) -> anyhow::Result<Frame> {
    loop {
        let item = tokio::time::timeout(idle, conn.next())
            .await
            .with_context(|| format!("nothing from the broker for {idle:?}"))?
            .context("broker closed the connection")??;
        match item {
            Item::HeartBeat => continue,
            Item::Frame(frame) if frame.command == Command::Error => {
                let message = frame.headers.get("message").unwrap_or("(no message)");
                bail!(
                    "ERROR {message}: {}",
                    String::from_utf8_lossy(&frame.body).trim_end()
                );
            }
            Item::Frame(frame) => return Ok(frame),
        }
    }
}

/// Sends DISCONNECT with a receipt and waits for it, so everything sent before has taken effect.
pub async fn disconnect(conn: &mut Connection) -> anyhow::Result<()> {
    conn.send(Frame::new(Command::Disconnect).header("receipt", "bye"))
        .await?;
    let receipt = next_frame(conn, Duration::from_secs(10)).await?;
    if receipt.headers.get("receipt-id") != Some("bye") {
        bail!("expected RECEIPT bye, got {receipt:?}");
    }
    Ok(())
}
