//! The per-user request rate limit (`--chat-rate`, `--chat-burst`): a token bucket per user,
//! checked once for every chat request as it enters ([`RateLimit::admit`]), whichever way it
//! came (STOMP, HTTP API, ACK). A bucket left alone refills to full, and a full bucket is what
//! a user without one gets, so idle users' buckets are evicted.

use std::time::Duration;

use tokio::time::Instant;

use super::error::AppError;
use super::idle::IdleMap;
use super::request::ChatRequest;
use crate::config::ChatConfig;

#[derive(Debug)]
pub struct RateLimit {
    /// Tokens per second; `None` when the limit is off.
    rate: Option<f64>,
    burst: f64,
    /// Per user: (tokens, last refill).
    buckets: IdleMap<String, (f64, Instant)>,
}

impl RateLimit {
    pub fn new(config: &ChatConfig) -> Self {
        let (rate, burst) = (config.rate_per_sec, config.rate_burst);
        // An empty bucket is full again after burst / rate: no bucket matters for longer.
        let refill = Duration::try_from_secs_f64(burst / rate).unwrap_or(Duration::MAX);
        Self {
            rate: (rate > 0.0).then_some(rate),
            burst,
            buckets: IdleMap::new(refill),
        }
    }

    /// Takes a token from `user`'s bucket for `request`, or refuses it.
    pub fn admit(&self, user: &str, request: &ChatRequest) -> Result<(), AppError> {
        if !costs_a_token(request) {
            return Ok(());
        }
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let burst = self.burst;
        let now = Instant::now();
        let admitted = self.buckets.with(
            user,
            now,
            || (burst, now),
            |bucket| {
                let (tokens, last) = *bucket;
                let refilled = (tokens + now.duration_since(last).as_secs_f64() * rate).min(burst);
                if refilled < 1.0 {
                    *bucket = (refilled, now);
                    return false;
                }
                *bucket = (refilled - 1.0, now);
                true
            },
        );
        if admitted {
            Ok(())
        } else {
            Err(AppError::RateLimited)
        }
    }

    /// Evicts the buckets of users idle long enough to be full again (at most `max`).
    pub fn sweep(&self, now: Instant, max: usize) -> usize {
        self.buckets.sweep(now, max)
    }
}

/// Which requests take a token: every request a user makes, reads included (a user looping on
/// `chat.sync` or `chat.history` would otherwise fill the node-wide request queue, and everyone
/// would get `RATE_LIMITED`). An ACK's DELIVERED is not a request the user makes.
fn costs_a_token(request: &ChatRequest) -> bool {
    !matches!(request, ChatRequest::Acked(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::model;

    fn send() -> ChatRequest {
        ChatRequest::Send(model::SendMessage {
            conversation_id: Some("c".into()),
            recipient_id: None,
            content: "hi".into(),
            client_message_id: None,
            content_type: None,
        })
    }

    fn limit(rate_per_sec: f64, rate_burst: f64) -> RateLimit {
        RateLimit::new(&ChatConfig {
            rate_per_sec,
            rate_burst,
            ..ChatConfig::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_rate() {
        let limit = limit(2.0, 3.0);
        for _ in 0..3 {
            limit.admit("ann", &send()).expect("within the burst");
        }
        assert!(matches!(
            limit.admit("ann", &send()),
            Err(AppError::RateLimited)
        ));
        limit.admit("bob", &send()).expect("bob has his own bucket");
        tokio::time::advance(Duration::from_millis(500)).await;
        limit.admit("ann", &send()).expect("one token back");
    }

    #[tokio::test(start_paused = true)]
    async fn reads_cost_a_token_and_acks_do_not() {
        let limit = limit(2.0, 3.0);
        for _ in 0..3 {
            limit
                .admit("ann", &ChatRequest::ListConversations)
                .expect("within the burst");
        }
        assert!(matches!(
            limit.admit("ann", &ChatRequest::ListConversations),
            Err(AppError::RateLimited)
        ));
        assert!(matches!(
            limit.admit("ann", &ChatRequest::Delivered(vec![1])),
            Err(AppError::RateLimited)
        ));
        limit
            .admit("ann", &ChatRequest::Acked(vec![1, 2, 3]))
            .expect("an ACK's receipt is never refused");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_is_evicted_and_an_empty_one_kept() {
        let limit = limit(2.0, 3.0);
        for _ in 0..3 {
            limit.admit("ann", &send()).expect("within the burst");
        }
        tokio::time::advance(Duration::from_millis(1400)).await;
        assert_eq!(limit.sweep(Instant::now(), 100), 0, "ann not full yet");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(limit.sweep(Instant::now(), 100), 1, "refilled after 1.5 s");
        for _ in 0..3 {
            limit.admit("ann", &send()).expect("a fresh bucket is full");
        }
    }

    #[test]
    fn a_disabled_limit_keeps_no_state() {
        let limit = limit(0.0, 3.0);
        for _ in 0..10 {
            limit.admit("ann", &send()).expect("within the burst");
        }
        assert!(limit.buckets.is_empty());
    }
}
