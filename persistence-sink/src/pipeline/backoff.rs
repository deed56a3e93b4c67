//! Capped exponential backoff that a shutdown interrupts: every retry of the sink (PostgreSQL
//! unavailable, the dead-letter topic unavailable) waits through one of these.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The first wait: short, so a blip (a connection reset, a failover) costs little latency.
const FIRST: Duration = Duration::from_millis(50);

pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(max: Duration) -> Self {
        Backoff {
            next: FIRST.min(max),
            max,
        }
    }

    /// Waits the current delay and doubles it up to the cap; `false` when shut down meanwhile.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn delays_double_up_to_the_cap_and_shutdown_interrupts() {
        let shutdown = CancellationToken::new();
        let mut backoff = Backoff::new(Duration::from_millis(300));
        let mut waited = Vec::new();
        for _ in 0..5 {
            let start = tokio::time::Instant::now();
            assert!(backoff.wait(&shutdown).await);
            waited.push(start.elapsed().as_millis());
        }
        assert_eq!(waited, vec![50, 100, 200, 300, 300]);
        shutdown.cancel();
        assert!(!backoff.wait(&shutdown).await);
    }
}
