//! Push notifications: windows opened, notifications sent, cancelled and shed, device
//! attempts by provider and outcome, the dispatch queue's depth.

use prometheus::{IntCounter, IntCounterVec, IntGauge};

use super::register::Register;

pub struct PushMetrics {
    /// Coalescing windows this node opened (and so owns).
    pub windows: IntCounter,
    /// Notifications queued for dispatch.
    pub notifications: IntCounter,
    /// Windows closed without a notification, by reason (`online`, `delivered`, `no_device`).
    cancelled: IntCounterVec,
    /// Notifications dropped from the dispatch queue to make room (oldest first).
    pub shed: IntCounter,
    /// Offline events the push service could not keep up with (the chat's channel lagged).
    pub lagged: IntCounter,
    /// One attempt per device (or webhook call), by provider and outcome.
    attempts: IntCounterVec,
    /// Registrations removed because their provider said the device is gone.
    pub dead_devices: IntCounter,
    pub queued: IntGauge,
}

impl PushMetrics {
    pub(super) fn new(r: &Register<'_>) -> Self {
        Self {
            windows: r.counter(
                "stompbox_push_windows_total",
                "Push coalescing windows this node opened (and owns)",
            ),
            notifications: r.counter(
                "stompbox_push_notifications_total",
                "Push notifications queued for dispatch (one per user per window)",
            ),
            cancelled: r.counters(
                "stompbox_push_cancelled_total",
                "Push windows closed without a notification, by reason",
                &["reason"],
            ),
            shed: r.counter(
                "stompbox_push_shed_total",
                "Push notifications dropped from the full dispatch queue (oldest first)",
            ),
            lagged: r.counter(
                "stompbox_push_lagged_total",
                "Offline events missed because the push service fell behind the chat",
            ),
            attempts: r.counters(
                "stompbox_push_attempts_total",
                "Push delivery attempts, by provider and outcome (ok, retry, dead, rejected)",
                &["provider", "outcome"],
            ),
            dead_devices: r.counter(
                "stompbox_push_dead_devices_total",
                "Device registrations deleted because the provider said the device is gone",
            ),
            queued: r.gauge(
                "stompbox_push_queued",
                "Push notifications waiting in the dispatch queue",
            ),
        }
    }

    pub fn cancelled(&self, reason: &'static str) {
        self.cancelled.with_label_values(&[reason]).inc();
    }

    pub fn attempt(&self, provider: &str, outcome: &'static str) {
        self.attempts.with_label_values(&[provider, outcome]).inc();
    }
}
