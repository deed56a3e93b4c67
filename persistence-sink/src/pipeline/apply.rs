//! Applying one partition's part of a batch: in one transaction that also moves the
//! partition's `sink_progress`, retried with capped backoff while PostgreSQL is unavailable.
//!
//! When some record can never apply (a permanent error), the bad records are found by
//! bisection: each half is applied on its own, a failing half is split again, and a single
//! failing record is dead-lettered. That costs at most ~2·k·log2(n) transactions for k bad
//! records in n, instead of n for record-by-record — and a transient error meanwhile only
//! retries the current slice: the slices before it are committed with their progress.
//!
//! Records that do not even decode are dead-lettered first, so that the progress written with
//! the rows ("every offset below is done") is true at every commit.

use std::ops::Range;
use std::time::Duration;

use chat_store::PostgresStore;
use chat_store::StoreError;
use chat_store::postgres::Position;
use chat_store::postgres::apply::{Applied, apply_batch_at};
use chat_store::record::Event;
use tokio_util::sync::CancellationToken;

use crate::pipeline::backoff::Backoff;
use crate::pipeline::consumed::Consumed;
use crate::pipeline::dead_letter::DeadLetters;
use crate::pipeline::error::SinkError;

/// What applying one partition's records did.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub applied: Applied,
    pub dead_lettered: u64,
    pub transient_retries: u64,
}

/// Everything a partition's apply needs, shared by the partitions of a batch.
pub(crate) struct Applier<'a> {
    pub store: &'a PostgresStore,
    pub topic: &'a str,
    pub dead_letters: &'a DeadLetters,
    pub max_backoff: Duration,
    pub shutdown: &'a CancellationToken,
}

impl Applier<'_> {
    /// `Ok(None)`: shut down before this partition's records were all done (nothing of it will
    /// be committed to Kafka; what was applied is replayed idempotently).
    pub async fn apply_partition(
        &self,
        partition: i32,
        records: &[Consumed],
    ) -> Result<Option<Outcome>, SinkError> {
        let mut outcome = Outcome::default();
        let Some(last) = records.last() else {
            return Ok(Some(outcome));
        };
        let mut good: Vec<(&Consumed, &Event)> = Vec::with_capacity(records.len());
        for consumed in records {
            match &consumed.decoded {
                Ok(event) => good.push((consumed, event)),
                Err(why) => {
                    if !self.dead_letter(consumed, why, &mut outcome).await? {
                        return Ok(None);
                    }
                }
            }
        }
        let all = self.position(partition, last.offset);
        let events: Vec<&Event> = good.iter().map(|(_, e)| *e).collect();
        match self.apply(&events, all, &mut outcome).await {
            Ok(Some(applied)) => {
                outcome.applied.add(&applied);
                return Ok(Some(outcome));
            }
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::warn!(partition, error = %e, "batch refused; isolating the bad records")
            }
        }
        if !self.isolate(partition, &good, &mut outcome).await? {
            return Ok(None);
        }
        // Past the last good record there may be dead-lettered ones: they are done too.
        match self.apply(&[], all, &mut outcome).await {
            Ok(Some(_)) => Ok(Some(outcome)),
            Ok(None) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Bisection over `good` (see the module doc), in offset order. `false`: shut down.
    async fn isolate(
        &self,
        partition: i32,
        good: &[(&Consumed, &Event)],
        outcome: &mut Outcome,
    ) -> Result<bool, SinkError> {
        let mut pending: Vec<Range<usize>> = split(0..good.len());
        while let Some(range) = pending.pop() {
            let slice = &good[range.clone()];
            let Some((last, _)) = slice.last() else {
                continue;
            };
            let events: Vec<&Event> = slice.iter().map(|(_, e)| *e).collect();
            let done = self.position(partition, last.offset);
            match self.apply(&events, done, outcome).await {
                Ok(Some(applied)) => outcome.applied.add(&applied),
                Ok(None) => return Ok(false),
                Err(e) if slice.len() == 1 => {
                    if !self.dead_letter(last, &e.to_string(), outcome).await? {
                        return Ok(false);
                    }
                }
                Err(_) => pending.extend(split(range)),
            }
        }
        Ok(true)
    }

    fn position(&self, partition: i32, last_offset: i64) -> Position<'_> {
        Position {
            topic: self.topic,
            partition,
            next_offset: last_offset + 1,
        }
    }

    /// Applies with capped backoff on transient errors. `Ok(None)`: shut down while waiting.
    /// `Err`: a permanent error (nothing of this call is committed).
    async fn apply(
        &self,
        events: &[&Event],
        done: Position<'_>,
        outcome: &mut Outcome,
    ) -> Result<Option<Applied>, StoreError> {
        let mut backoff = Backoff::new(self.max_backoff);
        loop {
            let result = match self.store.client().await {
                Ok(mut client) => apply_batch_at(&mut client, events, &[done]).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(applied) => return Ok(Some(applied)),
                Err(e) if e.is_transient() => {
                    outcome.transient_retries += 1;
                    tracing::warn!(error = %e, partition = done.partition, "sink: PostgreSQL unavailable, retrying");
                    if !backoff.wait(self.shutdown).await {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn dead_letter(
        &self,
        consumed: &Consumed,
        why: &str,
        outcome: &mut Outcome,
    ) -> Result<bool, SinkError> {
        let sent = self
            .dead_letters
            .send(consumed, why, &mut outcome.transient_retries, self.shutdown)
            .await?;
        outcome.dead_lettered += u64::from(sent);
        Ok(sent)
    }
}

/// The two halves of `range`, the first half last (it is popped, so applied, first).
fn split(range: Range<usize>) -> Vec<Range<usize>> {
    let mid = range.start + range.len() / 2;
    vec![mid..range.end, range.start..mid]
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn halves_cover_the_range_and_pop_in_order() {
        let mut halves = split(3..8);
        assert_eq!(halves.pop(), Some(3..5));
        assert_eq!(halves.pop(), Some(5..8));
        assert_eq!(halves.pop(), None);
    }
}
