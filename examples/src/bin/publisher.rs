//! Publishes N messages to a destination and waits for the broker's RECEIPT on the last one.
//!
//! Run against a default broker (`cargo run -p stompbox`, STOMP on 127.0.0.1:61613):
//!
//! ```text
//! cargo run -p examples --bin publisher -- /topic/demo 10
//! ```
//!
//! Arguments: destination (default `/topic/demo`), message count (default 10).
//! `STOMP_ADDR=host:port` points it at another broker.

use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::SinkExt;
use stomp_codec::{Command, Frame};

use examples::{broker_addr, connect, disconnect, next_frame};

/// How long the receipt for the last message may take: routing is in-memory, so seconds mean
/// the broker is stuck.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let destination = args.next().unwrap_or_else(|| "/topic/demo".to_owned());
    let count: usize = match args.next() {
        Some(n) => n.parse().context("message count must be a number")?,
        None => 10,
    };

    let mut conn = connect(&broker_addr(), "publisher", "0,0").await?;
    for i in 1..=count {
        let mut frame = Frame::new(Command::Send)
            .header("destination", destination.as_str())
            .header("content-type", "text/plain")
            .with_body(format!("message {i} of {count}"));
        if i == count {
            frame = frame.header("receipt", "last");
        }
        // `feed` queues without flushing, so a burst goes out in few writes; `send` flushes.
        if i == count {
            conn.send(frame).await?;
        } else {
            conn.feed(frame).await?;
        }
    }
    if count > 0 {
        let receipt = next_frame(&mut conn, RECEIPT_TIMEOUT).await?;
        if receipt.command != Command::Receipt || receipt.headers.get("receipt-id") != Some("last")
        {
            bail!("expected RECEIPT for the last message, got {receipt:?}");
        }
    }
    println!("published {count} messages to {destination}");
    disconnect(&mut conn).await
}
