//! Histogram buckets shared by the metrics.

/// Latencies from 50 µs to 10 s, about three buckets per decade (×2, ×2.5): sub-millisecond
/// deliveries on one node are told apart, and a store or Redis stall of seconds still lands in
/// a bucket of its own instead of `+Inf`.
pub const LATENCY_SECONDS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Counts (queue depths, batch sizes, sessions per user) by powers of two up to 64 Ki: the
/// default outbox bound (1,024 frames) and the sequencer's 1,024 operations fall inside.
pub const COUNT: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
    16384.0, 65536.0,
];
