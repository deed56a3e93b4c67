//! Offset commits, after the database commit. A consumer-group rebalance can revoke a
//! partition while its batch is being applied; the commit then fails (the group's generation
//! moved on). That must not stop the sink: the commit is retried once if the partition is
//! still assigned, and otherwise dropped — the partition's new owner replays the records from
//! the last commit, which the idempotent apply absorbs.

use std::sync::Arc;

use rdkafka::consumer::{CommitMode, Consumer};

use crate::pipeline::context::SinkConsumer;
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

/// Commits `next_offset` for `partition`. `false` when the commit had to be dropped (logged).
pub(crate) async fn commit(
    consumer: &Arc<SinkConsumer>,
    topic: &str,
    partition: i32,
    next_offset: i64,
) -> bool {
    let Err(e) = commit_sync(consumer, topic, partition, next_offset).await else {
        return true;
    };
    let assigned = consumer
        .assignment()
        .is_ok_and(|list| list.find_partition(topic, partition).is_some());
    if !assigned {
        tracing::warn!(partition, next_offset, error = %e, "offset commit failed: partition revoked; its new owner replays the batch");
        return false;
    }
    tracing::warn!(partition, next_offset, error = %e, "offset commit failed (rebalance?); retrying once");
    match commit_sync(consumer, topic, partition, next_offset).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(partition, next_offset, error = %e, "offset commit failed again; the batch will be replayed (idempotently)");
            false
        }
    }
}

/// A synchronous commit (a partition's next commit must not overtake it) off the async threads.
async fn commit_sync(
    consumer: &Arc<SinkConsumer>,
    topic: &str,
    partition: i32,
    next_offset: i64,
) -> Result<(), KafkaError> {
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Offset(next_offset))?;
    let consumer = Arc::clone(consumer);
    tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync))
        .await
        .unwrap_or(Err(KafkaError::Canceled))
}
