//! Per-key token buckets (a user's rate of requests): `rate` tokens a second up to `burst`.
//! The chat refuses a request that finds its bucket empty (`--chat-rate`, `chat/rate.rs`); a
//! plain SEND borrows the token and its session stops reading for as long as the debt takes to
//! repay (`--send-rate`, back-pressure as TCP gives it). A bucket left alone refills to full,
//! and a full bucket is what a key without one gets, so idle keys' buckets are evicted.

use std::time::Duration;

use tokio::time::Instant;

use crate::idle::IdleMap;

#[derive(Debug)]
pub struct TokenBuckets {
    /// Tokens per second; `None` when the limit is off.
    rate: Option<f64>,
    burst: f64,
    /// Per key: (tokens, last refill). Tokens below zero are a debt being repaid.
    buckets: IdleMap<String, (f64, Instant)>,
}

impl TokenBuckets {
    /// `rate` tokens per second (0: no limit, no state kept) up to `burst`.
    pub fn new(rate: f64, burst: f64) -> Self {
        // An empty bucket is full again after burst / rate (a debt adds its own repayment, but
        // a key in debt is busy and is not looked at before it is idle): no bucket matters for
        // longer.
        let refill = Duration::try_from_secs_f64(burst / rate).unwrap_or(Duration::MAX);
        Self {
            rate: (rate > 0.0).then_some(rate),
            burst,
            buckets: IdleMap::new(refill),
        }
    }

    /// Takes a token from `key`'s bucket if it holds one.
    pub fn take(&self, key: &str) -> bool {
        self.spend(key, false).is_none()
    }

    /// Takes a token from `key`'s bucket, on credit if it is empty: how long until the debt is
    /// repaid (`None`: no debt, go on at once).
    pub fn borrow(&self, key: &str) -> Option<Duration> {
        self.spend(key, true)
    }

    /// `None` when a token was taken without debt; otherwise how long until the bucket is
    /// back at zero (having taken the token on credit when `credit`).
    fn spend(&self, key: &str, credit: bool) -> Option<Duration> {
        let rate = self.rate?;
        let burst = self.burst;
        let now = Instant::now();
        self.buckets.with(
            key,
            now,
            || (burst, now),
            |bucket| {
                let (tokens, last) = *bucket;
                let refilled = (tokens + now.duration_since(last).as_secs_f64() * rate).min(burst);
                if refilled >= 1.0 {
                    *bucket = (refilled - 1.0, now);
                    return None;
                }
                let left = if credit { refilled - 1.0 } else { refilled };
                *bucket = (left, now);
                Some(Duration::from_secs_f64((-left).max(0.0) / rate))
            },
        )
    }

    /// Evicts the buckets of keys idle long enough to be full again (looking at most at `max`).
    pub fn sweep(&self, now: Instant, max: usize) -> usize {
        self.buckets.sweep(now, max)
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_rate() {
        let buckets = TokenBuckets::new(2.0, 3.0);
        for _ in 0..3 {
            assert!(buckets.take("ann"), "within the burst");
        }
        assert!(!buckets.take("ann"));
        assert!(buckets.take("bob"), "bob has his own bucket");
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(buckets.take("ann"), "one token back");
    }

    #[tokio::test(start_paused = true)]
    async fn a_borrowed_token_is_a_debt_repaid_at_the_rate() {
        let buckets = TokenBuckets::new(10.0, 2.0);
        assert_eq!(buckets.borrow("ann"), None);
        assert_eq!(buckets.borrow("ann"), None);
        assert_eq!(buckets.borrow("ann"), Some(Duration::from_millis(100)));
        assert_eq!(buckets.borrow("ann"), Some(Duration::from_millis(200)));
        tokio::time::advance(Duration::from_millis(200)).await;
        assert_eq!(buckets.borrow("ann"), Some(Duration::from_millis(100)));
        assert!(!buckets.take("ann"), "no token to take while in debt");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_is_evicted_and_an_empty_one_kept() {
        let buckets = TokenBuckets::new(2.0, 3.0);
        for _ in 0..3 {
            assert!(buckets.take("ann"));
        }
        tokio::time::advance(Duration::from_millis(1400)).await;
        assert_eq!(buckets.sweep(Instant::now(), 100), 0, "ann not full yet");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(
            buckets.sweep(Instant::now(), 100),
            1,
            "refilled after 1.5 s"
        );
        for _ in 0..3 {
            assert!(buckets.take("ann"), "a fresh bucket is full");
        }
    }

    #[test]
    fn a_disabled_limit_keeps_no_state() {
        let buckets = TokenBuckets::new(0.0, 3.0);
        for _ in 0..10 {
            assert!(buckets.take("ann"));
            assert_eq!(buckets.borrow("ann"), None);
        }
        assert!(buckets.is_empty());
    }
}
