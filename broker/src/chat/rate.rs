//! The per-user chat request rate limit (`--chat-rate`, `--chat-burst`): a token bucket per
//! user ([`TokenBuckets`]), checked once for every chat request as it enters
//! ([`RateLimit::admit`]), whichever way it came (STOMP, HTTP API, ACK); an empty bucket refuses
//! the request (`RATE_LIMITED`).

use tokio::time::Instant;

use super::error::AppError;
use super::request::ChatRequest;
use crate::config::ChatConfig;
use crate::rate::TokenBuckets;

#[derive(Debug)]
pub struct RateLimit {
    buckets: TokenBuckets,
}

impl RateLimit {
    pub fn new(config: &ChatConfig) -> Self {
        Self {
            buckets: TokenBuckets::new(config.rate_per_sec, config.rate_burst),
        }
    }

    /// Takes a token from `user`'s bucket for `request`, or refuses it.
    pub fn admit(&self, user: &str, request: &ChatRequest) -> Result<(), AppError> {
        if !costs_a_token(request) || self.buckets.take(user) {
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
        limit.admit("bob", &send()).expect("bob has his own bucket");
    }
}
