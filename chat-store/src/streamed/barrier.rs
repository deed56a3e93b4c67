//! Gap-free reads while the sink lags: before history or sync reads PostgreSQL, wait until
//! every message accepted before the read — on this node or any other — is either in
//! PostgreSQL or definitely refused.
//!
//! Two waits, in order:
//! 1. This node's own sends still waiting for Kafka's ack ([`InFlight`], `in_flight`): once acked they are
//!    in Kafka, once refused they never existed (their sender got an error, not a RECEIPT).
//! 2. A marker round: one `MARK` record produced to every partition of the events topic.
//!    Kafka orders a partition, so every record acked before the marker — from any node —
//!    has a lower offset; when the sink's `sink_progress` (written in the same transaction as
//!    the rows) passes each marker's offset, all of them are in PostgreSQL.
//!
//! Reads that arrive while a round runs share the next one, so a reconnect storm costs a few
//! rounds (one marker per partition each), not one per client.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::try_join_all;
use tokio::sync::{mpsc, oneshot};

use super::in_flight::{Held, InFlight};
use super::producer::Producers;
use crate::StoreError;
use crate::kafka::Acked;
use crate::postgres::PostgresStore;
use crate::record::Event;

/// A round that takes longer than this fails its reads with `Unavailable` (the client
/// retries): Kafka or the sink is down or far behind, and an answer with a gap is worse.
const ROUND_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a waiting round asks PostgreSQL for the sink's progress: the sink commits a
/// batch every ~20 ms at most, so polling faster buys nothing.
const POLL_EVERY: Duration = Duration::from_millis(5);
/// Reads waiting for a round, at most; beyond it they fail at once.
const MAX_WAITING: usize = 16_384;

type Waiter = oneshot::Sender<Result<(), StoreError>>;

#[derive(Debug, Clone)]
pub(crate) struct Barrier {
    requests: mpsc::Sender<Waiter>,
}

impl Barrier {
    /// Starts the round task; it ends when every `Barrier` clone is dropped.
    pub(crate) fn start(
        producers: Producers,
        store: Arc<PostgresStore>,
        topic: String,
        in_flight: Arc<InFlight>,
    ) -> Self {
        let (requests, rx) = mpsc::channel(MAX_WAITING);
        tokio::spawn(rounds(rx, producers, store, topic, in_flight));
        Self { requests }
    }

    /// Resolves once everything accepted before the call is in PostgreSQL (or refused).
    pub(crate) async fn wait(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .try_send(tx)
            .map_err(|_| StoreError::Unavailable("too many reads waiting for the sink".into()))?;
        rx.await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("store is shutting down".into())))
    }
}

async fn rounds(
    mut requests: mpsc::Receiver<Waiter>,
    producers: Producers,
    store: Arc<PostgresStore>,
    topic: String,
    in_flight: Arc<InFlight>,
) {
    let mut partitions = None;
    while let Some(first) = requests.recv().await {
        let mut waiters = vec![first];
        while let Ok(more) = requests.try_recv() {
            waiters.push(more);
        }
        let round = round(&producers, &store, &topic, &in_flight, &mut partitions);
        let result = tokio::time::timeout(ROUND_TIMEOUT, round)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(format!(
                    "persistence is more than {ROUND_TIMEOUT:?} behind (Kafka or the sink)"
                )))
            });
        if let Err(e) = &result {
            tracing::warn!(error = %e, reads = waiters.len(), "sync barrier failed");
        }
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }
}

async fn round(
    producers: &Producers,
    store: &PostgresStore,
    topic: &str,
    in_flight: &InFlight,
    partitions: &mut Option<i32>,
) -> Result<(), StoreError> {
    in_flight.settle().await;
    let producer = producers.current();
    let count = match *partitions {
        Some(count) => count,
        None => {
            let count = producer.partition_count().await.ok_or_else(|| {
                StoreError::Unavailable(format!("Kafka topic {topic} is not reachable"))
            })?;
            *partitions = Some(count);
            count
        }
    };
    let at_ms = crate::clock::now_ms();
    let mut marks = Vec::with_capacity(count as usize);
    for partition in 0..count {
        let mark = producer
            .enqueue(&Event::Mark { at_ms }, Some(partition), Held::default())
            .map_err(|e| StoreError::Unavailable(format!("Kafka: {e}")))?;
        marks.push(mark);
    }
    // A failed marker replaces a stuck producer like any failed record (`producer`).
    let marks: Vec<Acked> = try_join_all(marks)
        .await
        .map_err(|e| StoreError::Unavailable(format!("Kafka: {e}")))?;
    loop {
        let progress: HashMap<i32, i64> = store.sink_progress(topic).await?;
        let caught_up = marks.iter().all(|mark| {
            progress
                .get(&mark.partition)
                .is_some_and(|next| *next > mark.offset)
        });
        if caught_up {
            return Ok(());
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
