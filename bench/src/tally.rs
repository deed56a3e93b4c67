//! Per-stream bookkeeping: which sequence numbers arrived, so loss, duplication and reordering
//! are counted exactly, plus end-to-end latency in a shared, sharded histogram.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use hdrhistogram::Histogram;
use parking_lot::Mutex;

/// Highest latency the histograms track, in microseconds (60 s); larger values saturate.
const MAX_LATENCY_US: u64 = 60_000_000;

/// One stream's received sequence numbers as a bitset.
#[derive(Debug, Default)]
struct Seen {
    bits: Vec<u64>,
    max: Option<u64>,
    unique: u64,
}

/// Hashes the generator's own stream ids (small integers, publisher in the high half): one
/// multiply instead of SipHash, whose resistance to chosen keys buys nothing here and which
/// cost a few percent of the generator's CPU per delivery.
#[derive(Debug, Default)]
struct StreamHasher(u64);

impl Hasher for StreamHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Loss/duplicate/reorder counters for every stream one receiver sees.
#[derive(Debug, Default)]
pub struct Streams {
    seen: HashMap<u64, Seen, BuildHasherDefault<StreamHasher>>,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub received: u64,
}

impl Streams {
    pub fn record(&mut self, stream: u64, seq: u64) {
        self.received += 1;
        let s = self.seen.entry(stream).or_default();
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if s.bits.len() <= word {
            s.bits.resize(word + 1, 0);
        }
        if s.bits[word] & (1 << bit) != 0 {
            self.duplicated += 1;
            return;
        }
        s.bits[word] |= 1 << bit;
        s.unique += 1;
        if s.max.is_some_and(|m| seq < m) {
            self.out_of_order += 1;
        }
        s.max = Some(s.max.map_or(seq, |m| m.max(seq)));
    }

    pub fn unique_total(&self) -> u64 {
        self.seen.values().map(|s| s.unique).sum()
    }
}

/// One receiver's latencies, recorded without any lock (a shared shard's mutex per delivery
/// cost the generator CPU the broker shares at a million deliveries a second).
#[derive(Debug)]
pub struct Recorder(Histogram<u64>);

impl Default for Recorder {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid bounds"))
    }
}

impl Recorder {
    /// Records `ns` nanoseconds.
    pub fn record(&mut self, ns: u64) {
        self.0
            .saturating_record((ns / 1000).clamp(1, MAX_LATENCY_US));
    }
}

/// Latency histograms sharded so receivers rarely contend; merged at the end.
#[derive(Debug, Clone)]
pub struct Latencies {
    shards: Arc<Vec<Mutex<Histogram<u64>>>>,
}

impl Latencies {
    pub fn new(shards: usize) -> Self {
        let shards = (0..shards.clamp(1, 32))
            .map(|_| {
                Mutex::new(Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid bounds"))
            })
            .collect();
        Self {
            shards: Arc::new(shards),
        }
    }

    /// Records `ns` nanoseconds into shard `who`.
    pub fn record(&self, who: usize, ns: u64) {
        let us = (ns / 1000).clamp(1, MAX_LATENCY_US);
        self.shards[who % self.shards.len()]
            .lock()
            .saturating_record(us);
    }

    /// Adds one receiver's own histogram into shard `who`: receivers record without a lock
    /// and merge once at the end.
    pub fn absorb(&self, who: usize, own: &Recorder) {
        let _ = self.shards[who % self.shards.len()].lock().add(&own.0);
    }

    pub fn merged(&self) -> Histogram<u64> {
        let mut all = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid bounds");
        for shard in self.shards.iter() {
            let _ = all.add(&*shard.lock());
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_count_duplicates_and_reorders() {
        let mut s = Streams::default();
        for seq in [0, 1, 3, 2, 2, 4] {
            s.record(1, seq);
        }
        assert_eq!(s.duplicated, 1);
        assert_eq!(s.out_of_order, 1);
        assert_eq!(s.unique_total(), 5);
        assert_eq!(s.received, 6);
    }
}
