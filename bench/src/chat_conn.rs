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

/// A `/app/chat.send` of `body` (its JSON: recipient or conversation, content,
/// clientMessageId) asking for the RECEIPT `receipt`.
pub fn chat_send(body: &serde_json::Value, receipt: String) -> Frame {
    Frame::new(Command::Send)
        .header("destination", "/app/chat.send")
        .header("receipt", receipt)
        .header("content-type", "application/json")
        .with_body(body.to_string())
}

/// Prints `name`'s latency percentiles (p50, p90, p99, p99.9, max) in ms on one line.
pub fn print_latency(name: &str, h: &Histogram<u64>) {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{name:<22} p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  max {:>7.2} ms",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1000.0,
    );
}

/// Latencies in µs, 1 µs to 60 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}
