//! The chat store, timed: [`MeteredStore`] wraps whichever store the broker opened and
//! implements [`ChatStore`] by forwarding, so every write is measured at the one seam all of
//! them cross, per store (`sqlite`, `postgres`, `kafka`), without the stores knowing.
//!
//! For the streamed store (`kafka`) a write is two moments: `accept` returns once the message
//! is deduplicated and queued to the producer, and its [`Durability`] future resolves at
//! Kafka's acknowledgement. The second is produce → ack: timed, counted in flight, and its
//! failures counted.

use std::sync::Arc;
use std::time::Instant;

use chat_store::{
    Appended, ChatStore, Conversation, Durability, NewConversation, PushDevice, ReadMark,
    ReceiptStatus, Registered, SinkLag, StatusChange, StoreError, StoredMessage, Unready, UserId,
};
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec};

use super::bucket::LATENCY_SECONDS;
use super::register::Register;

pub struct StoreMetrics {
    writes: HistogramVec,
    failures: IntCounterVec,
    durable: HistogramVec,
    in_flight: IntGaugeVec,
}

impl StoreMetrics {
    pub(super) fn new(r: &Register<'_>) -> Self {
        Self {
            writes: r.histograms(
                "stompbox_store_write_seconds",
                "Chat store writes (append or accept, receipts, conversations), by store",
                LATENCY_SECONDS,
                &["store"],
            ),
            failures: r.counters(
                "stompbox_store_write_failures_total",
                "Chat store writes that failed, and accepted messages never made durable, by store",
                &["store"],
            ),
            durable: r.histograms(
                "stompbox_store_durable_seconds",
                "From a message accepted to durable, for stores where those differ (kafka: \
                 produce to acknowledgement)",
                LATENCY_SECONDS,
                &["store"],
            ),
            in_flight: r.gauges(
                "stompbox_store_durable_in_flight",
                "Accepted messages waiting to be durable (kafka: produced, not yet acknowledged)",
                &["store"],
            ),
        }
    }
}

/// One store's handles, resolved once.
#[derive(Clone)]
struct Handles {
    write: Histogram,
    failures: IntCounter,
    durable: Histogram,
    in_flight: IntGauge,
}

/// A [`ChatStore`] that times the one it wraps.
pub struct MeteredStore {
    inner: Arc<dyn ChatStore>,
    handles: Handles,
}

impl std::fmt::Debug for MeteredStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl MeteredStore {
    /// `name` labels the series of `metrics` (`metrics::get().store`): `sqlite`, `postgres`
    /// or `kafka`.
    pub fn new(inner: Arc<dyn ChatStore>, name: &'static str, metrics: &StoreMetrics) -> Self {
        let m = metrics;
        let handles = Handles {
            write: m.writes.with_label_values(&[name]),
            failures: m.failures.with_label_values(&[name]),
            durable: m.durable.with_label_values(&[name]),
            in_flight: m.in_flight.with_label_values(&[name]),
        };
        Self { inner, handles }
    }

    fn timed<T>(&self, started: Instant, result: Result<T, StoreError>) -> Result<T, StoreError> {
        self.handles.write.observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.handles.failures.inc();
        }
        result
    }
}

/// Times `durability` from now to its resolution, counted in flight meanwhile.
fn metered(durability: Durability, handles: Handles) -> Durability {
    handles.in_flight.inc();
    let started = Instant::now();
    Box::pin(async move {
        let result = durability.await;
        handles.in_flight.dec();
        handles.durable.observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            handles.failures.inc();
        }
        result
    })
}

#[async_trait::async_trait]
impl ChatStore for MeteredStore {
    async fn create_conversation(&self, new: NewConversation) -> Result<Conversation, StoreError> {
        let started = Instant::now();
        let result = self.inner.create_conversation(new).await;
        self.timed(started, result)
    }

    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        self.inner.conversation(id).await
    }

    async fn conversations_of(&self, user: &str) -> Result<Vec<Conversation>, StoreError> {
        self.inner.conversations_of(user).await
    }

    async fn update_members(
        &self,
        id: &str,
        add: &[UserId],
        remove: &[UserId],
        at_ms: u64,
    ) -> Result<Conversation, StoreError> {
        let started = Instant::now();
        let result = self.inner.update_members(id, add, remove, at_ms).await;
        self.timed(started, result)
    }

    async fn append(&self, message: StoredMessage) -> Result<Appended, StoreError> {
        let started = Instant::now();
        let result = self.inner.append(message).await;
        self.timed(started, result)
    }

    async fn accept(
        &self,
        message: StoredMessage,
    ) -> Result<(Appended, Option<Durability>), StoreError> {
        let started = Instant::now();
        let result = self.inner.accept(message).await;
        let (appended, durability) = self.timed(started, result)?;
        let durability = durability.map(|d| metered(d, self.handles.clone()));
        Ok((appended, durability))
    }

    async fn messages_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        self.inner.messages_after(user, after, limit).await
    }

    fn places_concurrent_appends(&self) -> bool {
        self.inner.places_concurrent_appends()
    }

    async fn messages_since(
        &self,
        user: &str,
        cursor: &chat_store::Cursor,
        limit: usize,
    ) -> Result<(Vec<chat_store::Sequenced>, bool), StoreError> {
        self.inner.messages_since(user, cursor, limit).await
    }

    async fn history(
        &self,
        conversation: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        self.inner.history(conversation, before, limit).await
    }

    async fn register_device(
        &self,
        device: PushDevice,
        limit: usize,
    ) -> Result<Registered, StoreError> {
        self.inner.register_device(device, limit).await
    }

    async fn unregister_device(&self, user: &str, address: &str) -> Result<bool, StoreError> {
        self.inner.unregister_device(user, address).await
    }

    async fn devices_of(&self, user: &str) -> Result<Vec<PushDevice>, StoreError> {
        self.inner.devices_of(user).await
    }

    async fn forget_device(&self, address: &str) -> Result<(), StoreError> {
        self.inner.forget_device(address).await
    }

    async fn mark_delivered(
        &self,
        user: &str,
        message_ids: &[u64],
        at_ms: u64,
    ) -> Result<Vec<StatusChange>, StoreError> {
        let started = Instant::now();
        let result = self.inner.mark_delivered(user, message_ids, at_ms).await;
        self.timed(started, result)
    }

    async fn mark_read(
        &self,
        user: &str,
        conversation: &str,
        up_to: u64,
        at_ms: u64,
    ) -> Result<Option<ReadMark>, StoreError> {
        let started = Instant::now();
        let result = self.inner.mark_read(user, conversation, up_to, at_ms).await;
        self.timed(started, result)
    }

    async fn contacts_of(&self, user: &str) -> Result<Vec<UserId>, StoreError> {
        self.inner.contacts_of(user).await
    }

    async fn receipts(
        &self,
        message_id: u64,
    ) -> Result<Vec<(UserId, ReceiptStatus, u64)>, StoreError> {
        self.inner.receipts(message_id).await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.inner.close().await
    }

    // Readiness asks the store itself: a wrapper that kept the defaults would always be ready.
    async fn probe(&self) -> Vec<Unready> {
        self.inner.probe().await
    }

    fn sink_lag(&self) -> Option<SinkLag> {
        self.inner.sink_lag()
    }
}
