//! Whether a sink is moving the events topic into PostgreSQL, watched from the broker, so a
//! missing sink is said at once instead of showing only as reads failing `UNAVAILABLE`.
//!
//! From start (once the topics exist) and every [`CHECK_EVERY`] ([`RECHECK_EVERY`] while
//! behind), one barrier round (markers on every partition that
//! only a sink can apply; it shares rounds with reads, so it costs nothing extra while reads
//! run). When a round fails, the lag is measured — records in Kafka not yet in PostgreSQL,
//! from Kafka's high watermarks and the sink's `sink_progress` — and a warning names the
//! sink's consumer group and the lag, at every check while it lasts. The state is what
//! `ChatStore::sink_lag` (readiness) answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use super::barrier::Barrier;
use super::producer::Producers;
use crate::SinkLag;
use crate::postgres::PostgresStore;

/// Pause between checks while the sink keeps up: it costs one marker per partition per check.
const CHECK_EVERY: Duration = Duration::from_secs(10);
/// Pause after a failed check (itself a round's timeout, 5 s, long): a missing sink is
/// reported within ~5 s of start and every ~6 s while it lasts, and its return is noticed
/// as soon.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// The watched state; `None` while the sink keeps up.
pub(crate) type LagState = Arc<Mutex<Option<SinkLag>>>;

/// What the watch reads.
pub(crate) struct Watched {
    pub(crate) barrier: Barrier,
    pub(crate) producers: Producers,
    pub(crate) postgres: Arc<PostgresStore>,
    pub(crate) topic: String,
    pub(crate) group: String,
}

/// Watches until `state` is dropped (with the store). Started once the topics exist: before
/// that every round fails at once, and Kafka being unreachable is warned about by the topic
/// creation's retries.
pub(crate) async fn watch(watched: Watched, state: Weak<Mutex<Option<SinkLag>>>) {
    loop {
        let round = watched.barrier.wait().await;
        let Some(state) = state.upgrade() else { return };
        let pause = if round.is_ok() {
            CHECK_EVERY
        } else {
            RECHECK_EVERY
        };
        match round {
            Ok(()) => {
                let was = state.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(lag) = was {
                    tracing::info!(group = %lag.group, topic = %watched.topic,
                        "persistence caught up: the sink is moving the topic into PostgreSQL");
                }
            }
            Err(e) => {
                let records = lag(&watched).await;
                let lag = {
                    let mut held = state.lock().unwrap_or_else(|p| p.into_inner());
                    let since = held.as_ref().map_or_else(SystemTime::now, |l| l.since);
                    let lag = SinkLag {
                        group: watched.group.clone(),
                        records,
                        since,
                    };
                    *held = Some(lag.clone());
                    lag
                };
                let behind_s = lag.since.elapsed().unwrap_or_default().as_secs();
                let records = lag
                    .records
                    .map_or_else(|| "unknown".into(), |n| n.to_string());
                tracing::warn!(group = %lag.group, topic = %watched.topic, lag = %records,
                    behind_s, error = %e,
                    "persistence is behind: the sink (consumer group {}) is not moving {} \
                     into PostgreSQL ({records} records not applied); sync and history answer \
                     UNAVAILABLE until a stompbox-sink runs and catches up",
                    lag.group, watched.topic);
            }
        }
        drop(state);
        tokio::time::sleep(pause).await;
    }
}

/// Records in the topic the sink has not applied, over every partition; `None` when Kafka or
/// PostgreSQL cannot be asked.
async fn lag(watched: &Watched) -> Option<u64> {
    let producer = watched.producers.current();
    let partitions = producer.partition_count().await?;
    let ends = producer.watermarks(partitions).await?;
    let done: HashMap<i32, i64> = watched.postgres.sink_progress(&watched.topic).await.ok()?;
    Some(behind(&ends, &done))
}

/// Per partition, the high watermark less what the sink has done (or the low watermark when
/// it has done nothing there).
fn behind(ends: &[(i64, i64)], done: &HashMap<i32, i64>) -> u64 {
    (0..)
        .zip(ends)
        .map(|(partition, &(low, high))| {
            let next = done.get(&partition).copied().unwrap_or(low).max(low);
            u64::try_from(high - next).unwrap_or(0)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_what_the_sink_has_not_done() {
        let ends = [(0, 10), (5, 8), (0, 0)];
        let done = HashMap::from([(0, 4)]);
        // 10 - 4, then 8 - 5 (nothing done: from the low watermark), then 0.
        assert_eq!(behind(&ends, &done), 9);
        let all = HashMap::from([(0, 10), (1, 8), (2, 0)]);
        assert_eq!(behind(&ends, &all), 0);
    }
}
