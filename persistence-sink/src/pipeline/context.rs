//! The consumer's context: logs every rebalance (which partitions this sink gained or lost),
//! the first thing to read when a partition's progress stalls.

use rdkafka::ClientContext;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;

pub(crate) struct SinkContext;

/// The consumer type of the pipeline.
pub(crate) type SinkConsumer = rdkafka::consumer::StreamConsumer<SinkContext>;

impl ClientContext for SinkContext {}

fn partitions(list: &TopicPartitionList) -> Vec<i32> {
    list.elements().iter().map(|e| e.partition()).collect()
}

impl ConsumerContext for SinkContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                tracing::info!(partitions = ?partitions(list), "partitions assigned");
            }
            Rebalance::Revoke(list) => {
                tracing::info!(partitions = ?partitions(list), "partitions revoked");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::debug!(error = %e, "commit callback");
        }
    }
}
