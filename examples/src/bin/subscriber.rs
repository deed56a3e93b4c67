//! Subscribes to a destination with `client-individual` ack, prints and ACKs every message, and
//! reconnects with exponential backoff and full jitter when the connection is lost.
//!
//! Run against a default broker (`cargo run -p stompbox`, STOMP on 127.0.0.1:61613):
//!
//! ```text
//! cargo run -p examples --bin subscriber -- /topic/demo
//! ```
//!
//! Then publish from another terminal: `cargo run -p examples --bin publisher -- /topic/demo 10`.
//! `STOMP_ADDR=host:port` points it at another broker; Ctrl-C stops it.

use std::convert::Infallible;
use std::time::Duration;

use anyhow::bail;
use futures_util::SinkExt;
use rand::Rng;
use stomp_codec::{Command, Frame};

use examples::{broker_addr, connect, next_frame};

/// We ask the broker for a heart-beat every 10 s (`heart-beat:0,10000`)...
const HEART_BEAT: &str = "0,10000";
/// ...and call the connection dead after three missed ones.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// First retry ceiling; doubled per failed attempt.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// Retry ceiling cap: a restarted broker is found within this, without a thundering herd.
const BACKOFF_CAP: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let destination = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/topic/demo".to_owned());
    tokio::select! {
        result = run(&destination) => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Reconnect loop: every session that ends is followed by a randomized wait, so many clients
/// dropped at once (a broker restart) do not all come back in the same instant.
async fn run(destination: &str) -> anyhow::Result<()> {
    let addr = broker_addr();
    let mut attempt: u32 = 0;
    loop {
        let Err(err) = session(&addr, destination, &mut attempt).await;
        eprintln!("subscriber: {err:#}");
        let ceiling = BACKOFF_BASE
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(BACKOFF_CAP);
        let delay = rand::rng().random_range(Duration::ZERO..=ceiling);
        eprintln!("subscriber: reconnecting in {delay:?}");
        tokio::time::sleep(delay).await;
        attempt = attempt.saturating_add(1);
    }
}

/// One connected session; resets the backoff once the broker accepted the SUBSCRIBE.
async fn session(addr: &str, destination: &str, attempt: &mut u32) -> anyhow::Result<Infallible> {
    let mut conn = connect(addr, "subscriber", HEART_BEAT).await?;
    let subscribe = Frame::new(Command::Subscribe)
        .header("id", "0")
        .header("destination", destination)
        .header("ack", "client-individual")
        .header("receipt", "subscribed");
    conn.send(subscribe).await?;
    println!("subscribed to {destination} at {addr}");
    loop {
        let frame = next_frame(&mut conn, IDLE_TIMEOUT).await?;
        match frame.command {
            Command::Receipt => *attempt = 0,
            Command::Message => {
                println!(
                    "{}: {}",
                    frame.headers.get("message-id").unwrap_or("?"),
                    String::from_utf8_lossy(&frame.body)
                );
                let Some(ack) = frame.headers.get("ack") else {
                    bail!("client-individual MESSAGE without an ack header");
                };
                conn.send(Frame::new(Command::Ack).header("id", ack))
                    .await?;
            }
            other => bail!("unexpected {other} frame"),
        }
    }
}
