//! A partition's worker: takes its records from the dispatcher, cuts them into batches (by
//! size, or by time after a batch's first record), applies each (`apply`, in one transaction
//! with the partition's progress) while holding one of the sink's connection permits, then
//! commits the partition's offset and counts the batch.
//!
//! When its channel closes (shutdown), the records already taken are applied and committed
//! before the worker ends; a shutdown while PostgreSQL is unavailable abandons them
//! uncommitted instead (they are replayed).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::pipeline::context::SinkConsumer;
use tokio::sync::Semaphore;

use crate::metrics::SinkMetrics;
use crate::pipeline::apply::{Applier, Outcome};
use crate::pipeline::commit;
use crate::pipeline::config::SinkConfig;
use crate::pipeline::consumed::Consumed;
use crate::pipeline::error::SinkError;
use crate::pipeline::source::Source;
use crate::pipeline::stats::SinkStats;

pub(crate) struct Worker<'a> {
    pub partition: i32,
    pub applier: &'a Applier<'a>,
    pub consumer: &'a Arc<SinkConsumer>,
    pub config: &'a SinkConfig,
    pub metrics: &'a SinkMetrics,
    /// Bounds the partitions applied at once (PostgreSQL connections).
    pub permits: &'a Semaphore,
}

impl Worker<'_> {
    pub async fn run(self, mut source: Source) -> Result<SinkStats, SinkError> {
        let mut stats = SinkStats::default();
        loop {
            let (batch, open) = self.next_batch(&mut source).await?;
            if !batch.is_empty() {
                let started = std::time::Instant::now();
                let Some(outcome) = self.apply(&batch).await? else {
                    return Ok(stats);
                };
                let applied_at = std::time::Instant::now();
                let next_offset = batch.last().map_or(0, |c| c.offset + 1);
                let committed = commit::commit(
                    self.consumer,
                    self.applier.topic,
                    self.partition,
                    next_offset,
                )
                .await;
                tracing::debug!(
                    partition = self.partition,
                    records = batch.len(),
                    apply_ms = applied_at.duration_since(started).as_millis() as u64,
                    commit_ms = applied_at.elapsed().as_millis() as u64,
                    first = batch.first().map_or(0, |c| c.offset),
                    next_offset,
                    committed,
                    "batch applied"
                );
                self.count(&batch, &outcome, committed, &mut stats);
            }
            if !open {
                return Ok(stats);
            }
        }
    }

    /// The next batch, and whether the source is still open.
    async fn next_batch(&self, source: &mut Source) -> Result<(Vec<Consumed>, bool), SinkError> {
        let Some(first) = source.recv().await? else {
            return Ok((Vec::new(), false));
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + self.config.batch_linger;
        while batch.len() < self.config.batch_max {
            match tokio::time::timeout_at(deadline, source.recv()).await {
                Ok(Ok(Some(consumed))) => batch.push(consumed),
                Ok(Ok(None)) => return Ok((batch, false)),
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => break,
            }
        }
        Ok((batch, true))
    }

    async fn apply(&self, batch: &[Consumed]) -> Result<Option<Outcome>, SinkError> {
        let Ok(_permit) = self.permits.acquire().await else {
            return Ok(None);
        };
        self.applier.apply_partition(self.partition, batch).await
    }

    fn count(&self, batch: &[Consumed], outcome: &Outcome, committed: bool, stats: &mut SinkStats) {
        stats.batches += 1;
        stats.applied.add(&outcome.applied);
        stats.dead_lettered += outcome.dead_lettered;
        stats.transient_retries += outcome.transient_retries;
        stats.commit_failures += u64::from(!committed);
        let m = self.metrics;
        let applied = &outcome.applied;
        m.records.fetch_add(batch.len() as u64, Ordering::Relaxed);
        m.batches.fetch_add(1, Ordering::Relaxed);
        m.messages_inserted
            .fetch_add(applied.messages_inserted, Ordering::Relaxed);
        m.duplicates_skipped
            .fetch_add(applied.messages_skipped, Ordering::Relaxed);
        m.delivered.fetch_add(applied.delivered, Ordering::Relaxed);
        m.read_marks
            .fetch_add(applied.read_marks, Ordering::Relaxed);
        m.dead_letters
            .fetch_add(outcome.dead_lettered, Ordering::Relaxed);
        m.transient_retries
            .fetch_add(outcome.transient_retries, Ordering::Relaxed);
        m.commit_failures
            .fetch_add(u64::from(!committed), Ordering::Relaxed);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        m.record_lags(now_ms, batch.iter().filter_map(|c| c.timestamp_ms));
    }
}
