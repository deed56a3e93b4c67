//! Dispatch: a bounded queue of notifications (past its count or byte bound the oldest is
//! shed, counted) drained by a few workers, each making the attempts of one notification:
//! the webhook once per notification, every device through its platform's provider, retried
//! with exponential backoff and jitter (a provider's `Retry-After` is honoured), a device the
//! provider declares dead deleted. None of it is on the chat's path: the chat only emits
//! offline events.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chat_store::ChatStore;
use parking_lot::Mutex;
use stompbox_push::{Device, Notification, Providers, PushError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::metrics;

/// Notifications in flight at once (each may wait on its retries).
const WORKERS: usize = 8;
/// Attempts per device (or webhook call) before it is given up.
const MAX_ATTEMPTS: u32 = 5;
/// The first retry's pause; doubled per attempt, with jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// Longest pause before a retry, a provider's `Retry-After` included.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// One notification and where it goes.
#[derive(Debug)]
pub struct Job {
    pub notification: Notification,
    pub devices: Vec<Device>,
}

impl Job {
    /// What the job holds, for the queue's byte bound.
    fn weight(&self) -> usize {
        let n = &self.notification;
        256 + n.title.len()
            + n.body.len()
            + n.data.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
            + self
                .devices
                .iter()
                .map(|d| d.address().len() + 128)
                .sum::<usize>()
    }
}

/// The queue and its bounds.
#[derive(Debug)]
pub struct Dispatcher {
    queue: Mutex<Queued>,
    ready: Notify,
    max_jobs: usize,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct Queued {
    jobs: VecDeque<(Job, usize)>,
    bytes: usize,
}

impl Dispatcher {
    pub fn new(max_jobs: usize, max_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Queued::default()),
            ready: Notify::new(),
            max_jobs,
            max_bytes,
        })
    }

    /// Queues `job`, shedding the oldest while either bound would be passed. Never waits.
    pub fn enqueue(&self, job: Job) {
        let weight = job.weight();
        let m = &metrics::get().push;
        {
            let mut queued = self.queue.lock();
            while !queued.jobs.is_empty()
                && (queued.jobs.len() >= self.max_jobs || queued.bytes + weight > self.max_bytes)
            {
                if let Some((shed, w)) = queued.jobs.pop_front() {
                    queued.bytes -= w;
                    m.shed.inc();
                    debug!(user = %shed.notification.user, "push queue full: oldest shed");
                }
            }
            queued.bytes += weight;
            queued.jobs.push_back((job, weight));
            m.queued.set(queued.jobs.len() as i64);
        }
        m.notifications.inc();
        self.ready.notify_one();
    }

    fn next(&self) -> Option<Job> {
        let mut queued = self.queue.lock();
        let (job, weight) = queued.jobs.pop_front()?;
        queued.bytes -= weight;
        metrics::get().push.queued.set(queued.jobs.len() as i64);
        Some(job)
    }

    /// Starts the workers; they stop with `shutdown` (what is queued then is dropped).
    pub fn start(
        self: &Arc<Self>,
        providers: Providers,
        store: Arc<dyn ChatStore>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) {
        let sender = Arc::new(Sender {
            providers,
            store,
            shutdown: shutdown.clone(),
        });
        for _ in 0..WORKERS {
            let (queue, sender, shutdown) =
                (Arc::clone(self), Arc::clone(&sender), shutdown.clone());
            tasks.spawn(async move {
                loop {
                    let job = match queue.next() {
                        Some(job) => job,
                        None => {
                            tokio::select! {
                                () = shutdown.cancelled() => return,
                                () = queue.ready.notified() => continue,
                            }
                        }
                    };
                    sender.send(job).await;
                }
            });
        }
    }
}

/// Makes one notification's attempts.
struct Sender {
    providers: Providers,
    store: Arc<dyn ChatStore>,
    shutdown: CancellationToken,
}

impl Sender {
    async fn send(&self, job: Job) {
        let n = &job.notification;
        let webhook = async {
            if let Some(webhook) = &self.providers.webhook {
                self.with_retries("webhook", || webhook.send(n, &job.devices))
                    .await;
            }
        };
        let devices = futures_util::future::join_all(job.devices.iter().map(|device| async move {
            let Some(provider) = self.providers.provider(device.platform()) else {
                return;
            };
            let outcome = self
                .with_retries(device.platform().name(), || provider.send(device, n))
                .await;
            if let Some(PushError::DeadDevice(reason)) = outcome {
                metrics::get().push.dead_devices.inc();
                debug!(user = %n.user, %reason, "push device gone: registration deleted");
                if let Err(e) = self.store.forget_device(device.address()).await {
                    warn!(error = %e, "could not delete a dead push device");
                }
            }
        }));
        tokio::join!(webhook, devices);
    }

    /// Attempts until success, a final answer, or [`MAX_ATTEMPTS`]; returns the last error.
    async fn with_retries<F, Fut>(&self, provider: &str, attempt: F) -> Option<PushError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), PushError>>,
    {
        let m = &metrics::get().push;
        for tried in 1..=MAX_ATTEMPTS {
            let error = match attempt().await {
                Ok(()) => {
                    m.attempt(provider, "ok");
                    return None;
                }
                Err(e) => e,
            };
            let PushError::Retry { after, reason } = &error else {
                let outcome = match error {
                    PushError::DeadDevice(_) => "dead",
                    _ => "rejected",
                };
                m.attempt(provider, outcome);
                warn!(provider, error = %error, "push refused");
                return Some(error);
            };
            m.attempt(provider, "retry");
            if tried == MAX_ATTEMPTS {
                warn!(provider, %reason, attempts = tried, "push given up");
                return Some(error);
            }
            let pause = after.unwrap_or_else(|| backoff(tried)).min(BACKOFF_MAX);
            debug!(provider, %reason, ?pause, "push failed; retrying");
            tokio::select! {
                () = self.shutdown.cancelled() => return Some(error),
                () = tokio::time::sleep(pause) => {}
            }
        }
        None
    }
}

/// `BACKOFF_BASE × 2^(tried-1)`, capped, with ±50 % jitter so retries of many notifications
/// after one outage do not arrive together.
fn backoff(tried: u32) -> Duration {
    let base = BACKOFF_BASE
        .saturating_mul(1 << (tried - 1).min(16))
        .min(BACKOFF_MAX);
    base.mul_f64(rand::random_range(0.5..1.5))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn job(user: &str) -> Job {
        Job {
            notification: Notification {
                user: user.into(),
                title: "t".into(),
                body: "b".into(),
                data: BTreeMap::new(),
                collapse_id: None,
            },
            devices: Vec::new(),
        }
    }

    #[test]
    fn a_full_queue_sheds_the_oldest() {
        let d = Dispatcher::new(2, 1 << 20);
        let shed = metrics::get().push.shed.get();
        d.enqueue(job("a"));
        d.enqueue(job("b"));
        d.enqueue(job("c"));
        assert!(metrics::get().push.shed.get() > shed);
        let users: Vec<String> = std::iter::from_fn(|| d.next())
            .map(|j| j.notification.user)
            .collect();
        assert_eq!(users, ["b", "c"]);
    }

    #[test]
    fn the_byte_bound_sheds_too_but_keeps_the_newest() {
        let d = Dispatcher::new(100, 300);
        d.enqueue(job("a"));
        d.enqueue(job("b"));
        let users: Vec<String> = std::iter::from_fn(|| d.next())
            .map(|j| j.notification.user)
            .collect();
        assert_eq!(users, ["b"]);
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff(1) <= BACKOFF_BASE.mul_f64(1.5));
        assert!(backoff(4) >= BACKOFF_BASE * 4);
        assert!(backoff(40) <= BACKOFF_MAX.mul_f64(1.5));
    }
}
