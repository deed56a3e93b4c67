//! Messages on their way into sessions: deliveries, what was dropped and why, how deep
//! outboxes get, how long publishers were held back, and how long a message took from its
//! SEND being accepted to being written to a subscriber's connection on this node.

use std::time::Duration;

use prometheus::{Counter, Histogram, IntCounter};

use super::bucket::{COUNT, LATENCY_SECONDS};
use super::register::Register;

/// Why a message did not reach a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The outbox overflowed under the `disconnect` policy: the session is closed.
    SlowConsumer,
    /// A typing indicator refused by an outbox past half full.
    TypingShed,
    /// The outbox was full under the `drop` policy.
    OutboxFull,
    /// A `/queue` refused the message (its bounds, or the number of queues).
    QueueFull,
}

impl DropReason {
    const ALL: [DropReason; 4] = [
        DropReason::SlowConsumer,
        DropReason::TypingShed,
        DropReason::OutboxFull,
        DropReason::QueueFull,
    ];

    fn label(self) -> &'static str {
        match self {
            DropReason::SlowConsumer => "slow_consumer",
            DropReason::TypingShed => "typing_shed",
            DropReason::OutboxFull => "outbox_full",
            DropReason::QueueFull => "queue_full",
        }
    }
}

pub struct DeliveryMetrics {
    pub deliveries: IntCounter,
    drops: [IntCounter; 4],
    pub outbox_depth: Histogram,
    backpressure: Counter,
    pub delivery_latency: Histogram,
    /// Messages the node-wide topic history bound (`--topic-history-max-bytes`) evicted.
    pub history_evicted: IntCounter,
}

impl DeliveryMetrics {
    pub(super) fn new(r: &Register<'_>) -> Self {
        let drops = r.counters(
            "stompbox_drops_total",
            "Messages that did not reach a session, by reason",
            &["reason"],
        );
        Self {
            deliveries: r.counter(
                "stompbox_deliveries_total",
                "MESSAGE frames written to subscribers of this node",
            ),
            drops: DropReason::ALL.map(|d| drops.with_label_values(&[d.label()])),
            outbox_depth: r.histogram(
                "stompbox_outbox_depth_frames",
                "Frames a session found in its outbox at each drain (a run counts as its messages)",
                COUNT,
            ),
            backpressure: r.float_counter(
                "stompbox_publisher_backpressure_seconds_total",
                "Time publishers were paused because subscribers' outboxes were past half full",
            ),
            delivery_latency: r.histogram(
                "stompbox_delivery_latency_seconds",
                "From a message accepted on this node to its MESSAGE encoded for a local subscriber",
                LATENCY_SECONDS,
            ),
            history_evicted: r.counter(
                "stompbox_topic_history_evicted_total",
                "Messages evicted from topic histories, oldest first, because all of this node's \
                 histories together were over --topic-history-max-bytes",
            ),
        }
    }

    pub fn dropped(&self, reason: DropReason) {
        self.drops[reason as usize].inc();
    }

    pub fn paused(&self, pause: Duration) {
        self.backpressure.inc_by(pause.as_secs_f64());
    }
}
