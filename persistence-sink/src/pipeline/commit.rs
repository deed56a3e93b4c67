//! Offset commits, after the database commit. A consumer-group rebalance can revoke a
//! partition while its batch is being applied; the commit then fails (the group's generation
//! moved on). That must not stop the sink: the partitions still assigned are committed again
//! on their own, and the revoked ones' uncommitted records are dropped — their new owner
//! replays them from the last commit, which the idempotent apply absorbs.

use std::collections::BTreeMap;
use std::sync::Arc;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::pipeline::batch::Batch;

/// Commits, per partition, the offset after the batch's last record. `false` when some
/// partition's commit had to be dropped (logged).
pub(crate) async fn commit(consumer: &Arc<StreamConsumer>, topic: &str, batch: &Batch) -> bool {
    let next: BTreeMap<i32, i64> = batch
        .iter()
        .filter_map(|(&p, records)| records.last().map(|last| (p, last.offset + 1)))
        .collect();
    let Err(e) = commit_sync(consumer, topic, next.clone()).await else {
        return true;
    };
    tracing::warn!(error = %e, "offset commit failed (rebalance?); retrying for the partitions still assigned");
    let assigned = match consumer.assignment() {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(error = %e, "no assignment; dropping this batch's commit");
            return false;
        }
    };
    let kept: BTreeMap<i32, i64> = next
        .into_iter()
        .filter(|(p, _)| assigned.find_partition(topic, *p).is_some())
        .collect();
    let dropped = batch.len() - kept.len();
    if kept.is_empty() {
        tracing::warn!(
            dropped,
            "every partition of the batch was revoked; its new owner replays it"
        );
        return false;
    }
    match commit_sync(consumer, topic, kept).await {
        Ok(()) if dropped == 0 => true,
        Ok(()) => {
            tracing::warn!(
                dropped,
                "committed the partitions still assigned; the revoked ones are replayed by their new owner"
            );
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "offset commit failed again; the batch will be replayed (idempotently)");
            false
        }
    }
}

/// A synchronous commit (the next batch's commit must not overtake it) off the async threads.
async fn commit_sync(
    consumer: &Arc<StreamConsumer>,
    topic: &str,
    next: BTreeMap<i32, i64>,
) -> Result<(), KafkaError> {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in next {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    let consumer = Arc::clone(consumer);
    tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync))
        .await
        .unwrap_or(Err(KafkaError::Canceled))
}
