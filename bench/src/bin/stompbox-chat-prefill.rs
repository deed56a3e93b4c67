//! Fills an embedded chat store (the broker's `--data-dir`) with many messages over many DIRECT
//! conversations, fast, so the chat benchmark can run on a store the size production reaches
//! (issue 17: latency must not grow with the store).
//!
//! It writes through `chat-store`'s own API (`SqliteStore::append_many`, thousands of appends
//! per transaction), so the rows are exactly what the broker writes: the same schema, checks
//! and indexes. Stop the broker first (one writer per file).
//!
//! Users are `{prefix}0`, `{prefix}1`, …; pair k is `{prefix}2k` with `{prefix}2k+1`, the same
//! pairing `stompbox-chat-bench --prefix` uses, so a bench with fewer pairs chats in
//! conversations that already have history. Message ids are Snowflakes (the broker's layout)
//! spread over the `--days` before now, so the broker's own ids sort after them.
//!
//! `stompbox-chat-prefill --data-dir /tmp/chatbench --messages 10000000 --pairs 50000`

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use chat_store::{ChatStore, ConversationKind, NewConversation, SqliteStore, StoredMessage};
use clap::Parser;
use futures_util::StreamExt;

/// The broker's Snowflake layout (broker/src/id.rs): ms since 2025-01-01 above 10 node bits
/// and 12 sequence bits.
const EPOCH_MS: u64 = 1_735_689_600_000;
const SEQ_BITS: u32 = 12;
const NODE_BITS: u32 = 10;

#[derive(Debug, Parser)]
struct Args {
    /// The broker's data directory (the store is `chat.sqlite3` in it, as broker.rs names it).
    #[arg(long)]
    data_dir: PathBuf,
    /// Messages to add.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// DIRECT conversations (pairs of users) the messages are spread over.
    #[arg(long, default_value_t = 50_000)]
    pairs: u64,
    /// Prefix of user names (the chat bench's `--prefix`).
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// Messages per transaction.
    #[arg(long, default_value_t = 20_000)]
    batch: usize,
    /// The messages' times are spread over this many days before now.
    #[arg(long, default_value_t = 30)]
    days: u64,
    /// Node id in the messages' Snowflake ids.
    #[arg(long, default_value_t = 0)]
    node: u64,
    /// Consecutive messages that go to one (randomly chosen) conversation: chat comes in
    /// bursts, and a burst writes a handful of index pages where scattered messages would
    /// write one page each.
    #[arg(long, default_value_t = 20)]
    burst: u64,
    /// Seed of the pseudo-random choice of conversation, sender and client message id.
    #[arg(long, default_value_t = 17)]
    seed: u64,
}

/// xorshift64*: reproducible and dependency-free; quality is irrelevant here.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn now_ms() -> anyhow::Result<u64> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.pairs > 0 && args.batch > 0,
        "--pairs and --batch must be > 0"
    );
    let path = args.data_dir.join("chat.sqlite3");
    let store = SqliteStore::open(&path).with_context(|| format!("open {}", path.display()))?;
    let user = |i: u64| format!("{}{i}", args.prefix);

    let end_ms = now_ms()?.saturating_sub(60_000);
    let start_ms = end_ms.saturating_sub(args.days * 86_400_000).max(EPOCH_MS);
    let began = Instant::now();
    let created = futures_util::stream::iter(0..args.pairs)
        .map(|k| {
            let (a, b) = (user(2 * k), user(2 * k + 1));
            store.create_conversation(NewConversation {
                id: chat_store::direct_id(&a, &b),
                kind: ConversationKind::Direct,
                name: None,
                creator: a.clone(),
                members: vec![a, b],
                at_ms: start_ms,
            })
        })
        .buffer_unordered(1024)
        .collect::<Vec<_>>()
        .await;
    for c in created {
        c.context("create conversation")?;
    }
    println!(
        "{} conversations in {:.1} s",
        args.pairs,
        began.elapsed().as_secs_f64()
    );

    let mut rng = Rng(args.seed.max(1));
    let (mut last, mut seq, mut conversation) = (0u64, 0u64, 0u64);
    let (mut done, mut stored) = (0u64, 0usize);
    let mut report = Instant::now();
    let began = Instant::now();
    while done < args.messages {
        let n = (args.messages - done).min(args.batch as u64);
        let mut batch = Vec::with_capacity(n as usize);
        for i in done..done + n {
            let ms = start_ms + (end_ms - start_ms) * i / args.messages;
            // Several messages in one millisecond take the next sequence numbers.
            if ms > last {
                (last, seq) = (ms, 0);
            } else {
                seq += 1;
                if seq >= 1 << SEQ_BITS {
                    (last, seq) = (last + 1, 0);
                }
            }
            let id = ((last - EPOCH_MS) << (NODE_BITS + SEQ_BITS)) | (args.node << SEQ_BITS) | seq;
            if i % args.burst.max(1) == 0 {
                conversation = rng.next() % args.pairs;
            }
            let pick = rng.next();
            let k = conversation;
            let (a, b) = (user(2 * k), user(2 * k + 1));
            let sender = if pick >> 63 == 0 {
                a.clone()
            } else {
                b.clone()
            };
            batch.push(StoredMessage {
                message_id: id,
                conversation_id: chat_store::direct_id(&a, &b),
                sender_id: sender,
                content: format!("prefilled message {i}: the quick brown fox jumps over the dog"),
                content_type: "text/plain".into(),
                // Time-ordered like a UUIDv7, so the sender's part of the idempotency index
                // grows at its end and the fill stays fast (random v4 ids, as the web example
                // sends, put every append on its own index page: a few times slower to fill).
                client_message_id: Some(format!("{last:012x}-{:016x}", rng.next())),
                timestamp_ms: last,
            });
        }
        stored += store.append_many(batch).await.context("append")?;
        done += n;
        if report.elapsed() >= Duration::from_secs(10) || done == args.messages {
            report = Instant::now();
            let secs = began.elapsed().as_secs_f64();
            println!(
                "{done} / {} messages in {secs:.0} s ({:.0}/s)",
                args.messages,
                done as f64 / secs
            );
        }
    }
    println!(
        "stored {stored} new messages ({} duplicates) in {:.1} s",
        done as usize - stored,
        began.elapsed().as_secs_f64()
    );
    Ok(())
}
