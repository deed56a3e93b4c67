//! Appends per second into a file-backed `SqliteStore` at several concurrencies: shows what the
//! group commit buys (concurrency 1 pays one fsync per message; many writers share one).
//!
//! `cargo run --release -p chat-store --example append_throughput [messages per run]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chat_store::{ChatStore, ConversationKind, NewConversation, SqliteStore, StoredMessage};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 20_000,
    };
    println!("{total} appends per run, 200-byte bodies, file store in a temp dir");
    for concurrency in [1u64, 16, 256] {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(SqliteStore::open(&dir.path().join("chat.sqlite3"))?);
        store
            .create_conversation(NewConversation {
                id: "bench".into(),
                kind: ConversationKind::Group,
                name: None,
                creator: "u0".into(),
                members: vec!["u0".into()],
                at_ms: 0,
            })
            .await?;
        // Concurrency 1 is fsync-bound: fewer messages keep the run short.
        let count = if concurrency == 1 { total / 10 } else { total };
        let next_id = Arc::new(AtomicU64::new(1));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (store, next_id) = (Arc::clone(&store), Arc::clone(&next_id));
            tasks.push(tokio::spawn(async move {
                loop {
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    if id > count {
                        return anyhow::Ok(());
                    }
                    store
                        .append(StoredMessage {
                            message_id: id,
                            conversation_id: "bench".into(),
                            sender_id: "u0".into(),
                            content: "x".repeat(200),
                            content_type: "text/plain".into(),
                            client_message_id: Some(format!("c{id}")),
                            timestamp_ms: id,
                        })
                        .await?;
                }
            }));
        }
        for task in tasks {
            task.await??;
        }
        let elapsed = started.elapsed();
        println!(
            "concurrency {concurrency:>3}: {count:>6} appends in {:>7.3} s = {:>8.0} appends/s",
            elapsed.as_secs_f64(),
            count as f64 / elapsed.as_secs_f64()
        );
    }
    Ok(())
}
