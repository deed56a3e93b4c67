//! The chat application: requests by operation and outcome, the SEND → RECEIPT latency of
//! `chat.send`, and how many operations the sequencer runs at once (what the store can
//! group-commit together).

use std::time::Duration;

use prometheus::{Histogram, IntCounterVec};

use super::bucket::{COUNT, LATENCY_SECONDS};
use super::register::Register;

pub struct ChatMetrics {
    requests: IntCounterVec,
    send_receipt: Histogram,
    pub concurrent: Histogram,
}

impl ChatMetrics {
    pub(super) fn new(r: &Register<'_>) -> Self {
        Self {
            requests: r.counters(
                "stompbox_chat_requests_total",
                "Chat requests answered, by operation and outcome (ok, or the error code)",
                &["operation", "outcome"],
            ),
            send_receipt: r.histogram(
                "stompbox_chat_send_receipt_seconds",
                "chat.send from its SEND reaching the chat to its RECEIPT queued (stored, or \
                 acknowledged by Kafka)",
                LATENCY_SECONDS,
            ),
            concurrent: r.histogram(
                "stompbox_chat_concurrent_operations",
                "Operations the sequencer was running when it started one more: the batch the \
                 store can group-commit",
                COUNT,
            ),
        }
    }

    /// A request answered. Both labels come from fixed sets (operation names and
    /// `AppError::code`), so the series are bounded. The vector's own lookup (a read lock) is
    /// kept rather than a cache behind one mutex that every session's request would take.
    pub fn answered(&self, operation: &'static str, outcome: &'static str) {
        self.requests.with_label_values(&[operation, outcome]).inc();
    }

    pub fn send_receipt(&self, took: Duration) {
        self.send_receipt.observe(took.as_secs_f64());
    }
}
