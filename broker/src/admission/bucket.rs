//! A token bucket: `burst` tokens at most, refilled at `rate` per second; each new connection
//! takes one. Time is passed in, so the arithmetic is tested without sleeping.

use std::time::{Duration, Instant};

/// How fast and how far a bucket refills.
#[derive(Debug, Clone, Copy)]
pub(super) struct Refill {
    /// Tokens per second.
    pub(super) rate: f64,
    /// Most tokens held.
    pub(super) burst: f64,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    pub(super) fn full(refill: Refill, now: Instant) -> Self {
        Self {
            tokens: refill.burst,
            updated: now,
        }
    }

    fn refill(&mut self, refill: Refill, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * refill.rate).min(refill.burst);
        self.updated = now;
    }

    /// Takes a token, or says how long until one is there.
    pub(super) fn take(&mut self, refill: Refill, now: Instant) -> Result<(), Duration> {
        self.refill(refill, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / refill.rate))
        }
    }

    /// Whether the bucket has refilled completely: it then says nothing a fresh one would not,
    /// and its address can be forgotten.
    pub(super) fn is_full(&self, refill: Refill, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * refill.rate >= refill.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFILL: Refill = Refill {
        rate: 2.0,
        burst: 3.0,
    };

    #[test]
    fn burst_then_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::full(REFILL, start);
        for _ in 0..3 {
            assert!(bucket.take(REFILL, start).is_ok());
        }
        let wait = bucket.take(REFILL, start).expect_err("burst spent");
        assert_eq!(wait, Duration::from_millis(500));
        assert!(!bucket.is_full(REFILL, start));
        let later = start + Duration::from_millis(500);
        assert!(bucket.take(REFILL, later).is_ok());
        assert!(bucket.take(REFILL, later).is_err());
        assert!(bucket.is_full(REFILL, later + Duration::from_millis(1500)));
    }
}
