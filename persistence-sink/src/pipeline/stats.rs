//! The sink's running totals.

use chat_store::postgres::apply::Applied;

/// Totals since start, for tests and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    pub batches: u64,
    pub applied: Applied,
    pub dead_lettered: u64,
    pub transient_retries: u64,
    /// Batches whose offset commit was (partly) dropped after a rebalance.
    pub commit_failures: u64,
}

impl SinkStats {
    pub(super) fn add(&mut self, more: &SinkStats) {
        self.batches += more.batches;
        self.applied.add(&more.applied);
        self.dead_lettered += more.dead_lettered;
        self.transient_retries += more.transient_retries;
        self.commit_failures += more.commit_failures;
    }
}
