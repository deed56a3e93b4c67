//! `copy-ceiling`: what PostgreSQL itself takes of the bench's rows, with no Kafka and no sink —
//! the same rows (ids, conversations, bodies, client ids, positions) into the same schema by
//! the sink's own binary `COPY`, one transaction per `--batch-size` rows, on `--connections`
//! connections side by side, each taking whole conversations (as the sink's partitions do).
//! The sink's throughput is read against this: the gap between the two is ours (decoding,
//! replay checks, positions, round trips); the rest is PostgreSQL's per-row cost (the heap and
//! the four indexes of `messages`).

use std::time::{Duration, Instant};

use chat_store::postgres::message_copy;
use chat_store::record::Event;
use chat_store::{PostgresStore, StoredMessage};

use crate::workload::Workload;

/// Copies messages `0..records` of `workload` into `store` on `connections` connections; how
/// long that took.
pub async fn copy_all(
    store: &PostgresStore,
    workload: &Workload,
    records: u64,
    connections: usize,
    batch: usize,
) -> anyhow::Result<Duration> {
    let connections = connections.max(1);
    let mut shards: Vec<Vec<(StoredMessage, i64)>> = vec![Vec::new(); connections];
    let mut positions = vec![0i64; workload.conversations];
    for n in 0..records {
        let Event::Message(message) = workload.message(n) else {
            anyhow::bail!("the workload makes only messages");
        };
        let conversation = (n % workload.conversations as u64) as usize;
        positions[conversation] += 1;
        shards[conversation % connections].push((message, positions[conversation]));
    }
    let started = Instant::now();
    let copies = shards
        .iter()
        .map(|shard| copy_shard(store, shard, batch.max(1)));
    futures_util::future::try_join_all(copies).await?;
    Ok(started.elapsed())
}

async fn copy_shard(
    store: &PostgresStore,
    rows: &[(StoredMessage, i64)],
    batch: usize,
) -> anyhow::Result<()> {
    let mut client = store.client().await?;
    for chunk in rows.chunks(batch) {
        let ids = chunk
            .iter()
            .map(|(m, _)| i64::try_from(m.message_id))
            .collect::<Result<Vec<i64>, _>>()?;
        let seqs: Vec<i64> = chunk.iter().map(|(_, seq)| *seq).collect();
        let messages: Vec<&StoredMessage> = chunk.iter().map(|(m, _)| m).collect();
        let tx = client.transaction().await?;
        message_copy::copy(&tx, &ids, &seqs, &messages).await?;
        tx.commit().await?;
    }
    Ok(())
}
