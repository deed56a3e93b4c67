//! A chore: a background task that does one short, synchronous step every period until
//! shutdown (evicting idle users' rate buckets, expiring idle queues). One loop for all of
//! them, so each chore is only its step.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Runs `step` every `every` (the first at once), in `tasks`, until `done`. `step` must not
/// block: it runs on the runtime, and is told the time of its tick.
pub fn spawn_every(
    tasks: &TaskTracker,
    done: CancellationToken,
    every: Duration,
    mut step: impl FnMut(Instant) + Send + 'static,
) {
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                () = done.cancelled() => return,
                _ = tick.tick() => {}
            }
            step(Instant::now());
        }
    });
}
