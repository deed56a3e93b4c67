//! This node's records on their way to Kafka: the tickets the read [`barrier`](super::barrier)
//! waits on ([`InFlight`]), and what each record holds until Kafka answers ([`Held`], dropped
//! by the producer's delivery report on librdkafka's polling thread).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, watch};

/// What a record holds until Kafka answers (released by the producer's delivery report,
/// whether or not anyone awaits the ack): its slot among the messages awaiting Kafka's ack
/// (status changes take none) and its in-flight ticket (none for barrier markers).
#[derive(Debug, Default)]
pub(crate) struct Held {
    pub(crate) _ticket: Option<Ticket>,
    pub(crate) _permit: Option<OwnedSemaphorePermit>,
}

/// This node's sends not yet resolved by Kafka, by sequence number.
#[derive(Debug)]
pub(crate) struct InFlight {
    state: Mutex<(u64, BTreeSet<u64>)>,
    /// Every sequence number below this one is resolved.
    resolved: watch::Sender<u64>,
}

/// A send in flight; dropping it marks it resolved.
#[derive(Debug)]
pub(crate) struct Ticket {
    seq: u64,
    owner: Arc<InFlight>,
}

impl InFlight {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new((0, BTreeSet::new())),
            resolved: watch::Sender::new(0),
        })
    }

    pub(crate) fn begin(self: &Arc<Self>) -> Ticket {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let seq = state.0;
        state.0 += 1;
        state.1.insert(seq);
        Ticket {
            seq,
            owner: Arc::clone(self),
        }
    }

    /// Waits until every send begun before this call is resolved.
    pub(crate) async fn settle(&self) {
        let through = self.state.lock().unwrap_or_else(|p| p.into_inner()).0;
        let mut resolved = self.resolved.subscribe();
        let _ = resolved.wait_for(|r| *r >= through).await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.owner.state.lock().unwrap_or_else(|p| p.into_inner());
        state.1.remove(&self.seq);
        let low = state.1.first().copied().unwrap_or(state.0);
        self.owner.resolved.send_if_modified(|r| {
            let moved = low > *r;
            *r = (*r).max(low);
            moved
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn settle_waits_for_earlier_sends_only() {
        let in_flight = InFlight::new();
        let first = in_flight.begin();
        let second = in_flight.begin();
        let settled = {
            let in_flight = Arc::clone(&in_flight);
            tokio::spawn(async move { in_flight.settle().await })
        };
        drop(second);
        tokio::task::yield_now().await;
        assert!(!settled.is_finished(), "the first send is still in flight");
        let _later = in_flight.begin(); // begun after the wait: not waited for
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), settled)
            .await
            .expect("settled once earlier sends resolved")
            .expect("task");
    }
}
