//! Fetching: a task of its own reads the consumer and hands whole batches to the apply loop
//! through a channel of one, so decoding the next batch overlaps applying the current one (two
//! cores instead of one). A batch is cut by size or by time after its first record, then split
//! by partition: only a partition's order matters (a conversation lives in one partition).

use std::collections::BTreeMap;
use std::sync::Arc;

use rdkafka::Message;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::pipeline::SinkConfig;
use crate::record::{Event, Record};

/// One consumed record: where it came from (offset commit, progress), what it decoded to, and
/// the raw bytes (for the dead-letter topic).
#[derive(Debug)]
pub(crate) struct Consumed {
    pub partition: i32,
    pub offset: i64,
    /// Kafka's record timestamp (the producer's send time), for the persistence lag.
    pub timestamp_ms: Option<i64>,
    pub payload: Vec<u8>,
    pub key: Option<Vec<u8>>,
    pub decoded: Result<Event, String>,
}

impl From<&BorrowedMessage<'_>> for Consumed {
    fn from(msg: &BorrowedMessage<'_>) -> Self {
        let payload = msg.payload().unwrap_or_default().to_vec();
        let decoded = Record::try_from(payload.as_slice())
            .map(|r| r.event)
            .map_err(|e| e.to_string());
        Consumed {
            partition: msg.partition(),
            offset: msg.offset(),
            timestamp_ms: msg.timestamp().to_millis(),
            key: msg.key().map(<[u8]>::to_vec),
            payload,
            decoded,
        }
    }
}

/// One batch, split by partition; each partition's records in offset order.
pub(crate) type Batch = BTreeMap<i32, Vec<Consumed>>;

/// Starts the fetch task. The receiver yields batches until `shutdown` (then it closes) or a
/// consumer error (sent once, then it closes).
pub(crate) fn spawn_fetcher(
    consumer: Arc<StreamConsumer>,
    config: &SinkConfig,
    shutdown: CancellationToken,
) -> mpsc::Receiver<Result<Batch, KafkaError>> {
    // One batch ahead: enough to overlap decode and apply, little to replay after a crash.
    let (batch_tx, batch_rx) = mpsc::channel(1);
    let config = config.clone();
    tokio::spawn(async move {
        loop {
            let result = tokio::select! {
                () = shutdown.cancelled() => return,
                result = next_batch(&consumer, &config) => result,
            };
            let failed = result.is_err();
            if batch_tx.send(result).await.is_err() || failed {
                return;
            }
        }
    });
    batch_rx
}

/// The first record (waiting as long as it takes), then whatever arrives within the linger, up
/// to `batch_max`. Cancel-safe between records: a record is only taken off the consumer by the
/// `recv` that returns it.
async fn next_batch(consumer: &StreamConsumer, config: &SinkConfig) -> Result<Batch, KafkaError> {
    let mut batch = Batch::new();
    let first = Consumed::from(&consumer.recv().await?);
    batch.entry(first.partition).or_default().push(first);
    let mut count = 1;
    let deadline = tokio::time::Instant::now() + config.batch_linger;
    while count < config.batch_max {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(msg) => {
                let consumed = Consumed::from(&msg?);
                batch.entry(consumed.partition).or_default().push(consumed);
                count += 1;
            }
            Err(_) => break,
        }
    }
    Ok(batch)
}
