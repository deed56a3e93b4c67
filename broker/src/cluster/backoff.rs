//! Reconnect delays: exponential with full jitter, so the nodes of a cluster that lost Redis
//! together do not all knock on its door in the same millisecond when it comes back.

use std::time::Duration;

/// First retry comes quickly: most outages are a restart that takes well under a second.
const FIRST: Duration = Duration::from_millis(100);
/// Ceiling: a long outage is retried every few seconds, not hammered.
const CEILING: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub fn new() -> Self {
        Self { attempt: 0 }
    }

    /// The next delay: a random point in [cap/2, cap], cap doubling from `FIRST` to `CEILING`.
    pub fn next_delay(&mut self) -> Duration {
        let cap = FIRST
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(CEILING);
        self.attempt = self.attempt.saturating_add(1);
        let half = cap / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_ceiling_with_jitter() {
        let mut b = Backoff::new();
        let first = b.next_delay();
        assert!(first >= FIRST / 2 && first <= FIRST, "{first:?}");
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(d <= CEILING, "{d:?}");
        }
        let late = b.next_delay();
        assert!(late >= CEILING / 2 && late <= CEILING, "{late:?}");
        b.reset();
        assert!(b.next_delay() <= FIRST);
    }
}
