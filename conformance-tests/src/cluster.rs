//! Helpers for the cluster suite: nodes on one private Redis, and waiting for a condition
//! that becomes true asynchronously (a node's Redis subscription follows a SUBSCRIBE).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{Broker, Redis};

/// Starts a node of the cluster on `redis` with `extra` flags, sharing `store` when given.
pub fn node(redis: &Redis, store: Option<&Path>, extra: &[&str]) -> Broker {
    let url = redis.url();
    let mut args = vec!["--redis-url", url.as_str()];
    args.extend_from_slice(extra);
    Broker::start_in(store, &args)
}

/// Polls `check` every 20 ms until it holds or `within` passes; panics naming `what`.
pub async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until some node of `redis` is subscribed to `channel`.
pub async fn subscribed(redis: &Redis, channel: &str) {
    eventually(&format!("a subscription to {channel}"), crate::WAIT, || {
        redis.channels().iter().any(|c| c == channel)
    })
    .await;
}
