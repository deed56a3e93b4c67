//! A chat user's STOMP/TCP connection for the chat benches (`stompbox-chat-bench`,
//! `stompbox-group-bench`; each includes this file with `#[path]`, as the crate has no library):
//! CONNECT as a login, SUBSCRIBE to its `/user/queue/…` queues, and the latency histogram both
//! record into.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use stomp_codec::{Command, Frame, Item, Limits, StompCodec};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

pub type Conn = Framed<TcpStream, StompCodec>;

/// Connects as `login` and subscribes to `/user/queue/<q>` for each of `queues` (subscription
/// id `q`), the last one with a receipt: when this returns, every subscription is in place, so
/// nothing sent to the user afterwards can be missed.
pub async fn connect(addr: SocketAddr, login: &str, queues: &[&str]) -> anyhow::Result<Conn> {
    let stream = TcpStream::connect(addr).await.context("connect")?;
    stream.set_nodelay(true)?;
    let mut conn = Framed::new(stream, StompCodec::new(Limits::default()));
    conn.send(
        Frame::new(Command::Connect)
            .header("accept-version", "1.2")
            .header("host", "localhost")
            .header("login", login)
            .header("heart-beat", "0,0"),
    )
    .await?;
    loop {
        match conn.next().await {
            Some(Ok(Item::Frame(f))) if f.command == Command::Connected => break,
            Some(Ok(Item::HeartBeat)) => {}
            other => bail!("no CONNECTED for {login}: {other:?}"),
        }
    }
    for (i, queue) in queues.iter().enumerate() {
        let mut subscribe = Frame::new(Command::Subscribe)
            .header("id", *queue)
            .header("destination", format!("/user/queue/{queue}"));
        if i + 1 == queues.len() {
            subscribe = subscribe.header("receipt", "ready");
        }
        conn.send(subscribe).await?;
    }
    loop {
        match conn.next().await {
            Some(Ok(Item::Frame(f))) if f.command == Command::Receipt => return Ok(conn),
            Some(Ok(_)) => {}
            other => bail!("no subscription receipt for {login}: {other:?}"),
        }
    }
}

/// Latencies in µs, 1 µs to 60 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}
