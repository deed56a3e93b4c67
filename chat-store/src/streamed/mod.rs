//! [`StreamedStore`]: the chat store of the write path for scale. Accepted messages and
//! status changes go to Kafka; the sink (`stompbox-sink`) moves them into PostgreSQL; reads
//! come from PostgreSQL behind a [`barrier`] so they have no gap while the sink lags.
//!
//! - `accept` returns once the message is deduplicated and handed to the producer, so live
//!   delivery does not wait for Kafka. Every message takes one [`line`] to the producer, in
//!   `accept` call order, so a conversation's records reach Kafka in the order they were
//!   delivered live (the sink numbers positions in Kafka order). Its durability future
//!   resolves on Kafka's ack (`acks=all`), and only then does the sender get a RECEIPT. A
//!   refusal (delivery timeout, or a permanent Kafka error) resolves it with an error
//!   instead: the sender is told the message was not stored
//!   (docs/decisions/2026-11-28-storage-modes.md, "When Kafka refuses a message").
//! - At most `max_pending` messages wait for Kafka's ack; past that, sends are refused at
//!   once while Kafka is down, instead of memory growing with the outage.
//! - Conversations and membership are written to PostgreSQL directly: they are rare, and a
//!   member must be a member everywhere at once.
//! - DELIVERED/READ: what moves is decided by running the store's own rules against
//!   PostgreSQL in a rolled-back transaction (after the barrier, so the messages are there),
//!   then the event goes to Kafka and the sink applies it, never backwards.
//! - A missing or stalled sink is warned about from start, naming its consumer group and the
//!   lag, for as long as it lasts ([`lag`]); `sink_lag` tells readiness.

mod barrier;
mod in_flight;
mod lag;
mod line;
mod outbox;
mod producer;
mod recent;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::kafka::{self, KafkaConfig};
use crate::postgres::PostgresStore;
use crate::record::Event;
use crate::{
    Appended, ChatStore, Conversation, Cursor, Durability, NewConversation, PushDevice, ReadMark,
    ReceiptStatus, Registered, Sequenced, SharedClaims, SinkLag, StatusChange, StoreError,
    StoredMessage, Unready, UserId,
};
use barrier::Barrier;
use in_flight::InFlight;
use line::{Entry, Line};
use outbox::{Outbox, durable, kafka_error};
use producer::Producers;
use recent::{Claim, RecentIds};

/// Client ids remembered at accept time: a retry comes within seconds (a reconnect); older
/// retries are answered from PostgreSQL, where the original is by then.
const RECENT_IDS: usize = 1_000_000;
const RECENT_WINDOW: Duration = Duration::from_secs(600);
/// Longest pause between attempts to create the topics while Kafka is unreachable.
const TOPIC_RETRY_MAX: Duration = Duration::from_secs(5);
/// Bound on flushing the producer at shutdown: a reachable Kafka acks what is queued in
/// milliseconds; an unreachable one must not hold the broker's exit. Records left unflushed
/// are ones whose senders got no RECEIPT, so they send them again.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the readiness probe waits for Kafka's metadata: under the broker's probe bound, so
/// an unreachable Kafka is reported as such rather than as a probe that timed out.
const KAFKA_PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Debug)]
pub struct StreamedStore {
    postgres: Arc<PostgresStore>,
    outbox: Outbox,
    /// Every message on its way to Kafka, in `accept` call order ([`line`]).
    line: Line,
    barrier: Barrier,
    lag: lag::LagState,
}

impl StreamedStore {
    /// Starts the producer, the barrier, and a task that creates the topics as soon as Kafka
    /// answers — Kafka down at start delays RECEIPTs, not the broker — then watches the sink.
    /// `shared`: the claims every node of a cluster takes a client id through.
    pub fn start(
        postgres: PostgresStore,
        config: KafkaConfig,
        max_pending: usize,
        shared: Option<Arc<dyn SharedClaims>>,
    ) -> Result<Self, StoreError> {
        let producers = Producers::new(config.clone())
            .map_err(|e| StoreError::Internal(format!("Kafka producer: {e}")))?;
        let postgres = Arc::new(postgres);
        let in_flight = InFlight::new();
        let barrier = Barrier::start(
            producers.clone(),
            Arc::clone(&postgres),
            config.events_topic.clone(),
            Arc::clone(&in_flight),
        );
        let lag = lag::LagState::default();
        let watched = lag::Watched {
            barrier: barrier.clone(),
            producers: producers.clone(),
            postgres: Arc::clone(&postgres),
            topic: config.events_topic.clone(),
            group: config.sink_group.clone(),
        };
        let watch = lag::watch(watched, Arc::downgrade(&lag));
        let producers_now = producers.clone();
        tokio::spawn(async move {
            create_topics(config, producers_now).await;
            watch.await;
        });
        let recent = Arc::new(RecentIds::new(RECENT_IDS, RECENT_WINDOW));
        let outbox = Outbox::new(producers, recent, in_flight, max_pending);
        Ok(Self {
            // `shared`: `None` on a single node, where `recent` and PostgreSQL see every
            // attempt.
            line: Line::start(Arc::clone(&postgres), outbox.clone(), shared),
            outbox,
            postgres,
            barrier,
            lag,
        })
    }
}

async fn create_topics(config: KafkaConfig, producers: Producers) {
    let mut pause = Duration::from_millis(100);
    loop {
        match kafka::ensure_topics(&config).await {
            Ok(()) => {
                // The producer learns the new topic now, not on the first message (which
                // otherwise waits ~1 s for librdkafka's metadata refresh).
                producers.current().partition_count().await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?pause, "Kafka topics not created yet");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(TOPIC_RETRY_MAX);
            }
        }
    }
}

#[async_trait::async_trait]
impl ChatStore for StreamedStore {
    async fn create_conversation(&self, new: NewConversation) -> Result<Conversation, StoreError> {
        self.postgres.create_conversation(new).await
    }

    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        self.postgres.conversation(id).await
    }

    async fn conversations_of(&self, user: &str) -> Result<Vec<Conversation>, StoreError> {
        self.postgres.conversations_of(user).await
    }

    async fn update_members(
        &self,
        id: &str,
        add: &[UserId],
        remove: &[UserId],
        at_ms: u64,
    ) -> Result<Conversation, StoreError> {
        self.postgres.update_members(id, add, remove, at_ms).await
    }

    // Registration is rare and every node reads it: PostgreSQL directly, not through Kafka.
    async fn register_device(
        &self,
        device: PushDevice,
        limit: usize,
    ) -> Result<Registered, StoreError> {
        self.postgres.register_device(device, limit).await
    }

    async fn unregister_device(&self, user: &str, address: &str) -> Result<bool, StoreError> {
        self.postgres.unregister_device(user, address).await
    }

    async fn devices_of(&self, user: &str) -> Result<Vec<PushDevice>, StoreError> {
        self.postgres.devices_of(user).await
    }

    async fn forget_device(&self, address: &str) -> Result<(), StoreError> {
        self.postgres.forget_device(address).await
    }

    async fn append(&self, message: StoredMessage) -> Result<Appended, StoreError> {
        let (appended, durability) = self.accept(message).await?;
        if let Some(durability) = durability {
            durability.await?;
        }
        Ok(appended)
    }

    async fn accept(
        &self,
        message: StoredMessage,
    ) -> Result<(Appended, Option<Durability>), StoreError> {
        // The key is claimed now, in call order (a retry racing its original finds it
        // held); everything that may produce a record then takes the line, in the same order.
        let entry = match self.outbox.recent.claim(&message) {
            Claim::Claimed => Entry::New(message),
            Claim::Taken(original) => return Ok((Appended::Duplicate { original }, None)),
            // Kafka may hold the first attempt: the same message again, same id.
            Claim::Resend(original) => Entry::Resend(original),
        };
        self.line.accept(&self.outbox, entry).await
    }

    async fn messages_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        self.barrier.wait().await?;
        self.postgres.messages_after(user, after, limit).await
    }

    async fn messages_since(
        &self,
        user: &str,
        cursor: &Cursor,
        limit: usize,
    ) -> Result<(Vec<Sequenced>, bool), StoreError> {
        self.barrier.wait().await?;
        self.postgres.messages_since(user, cursor, limit).await
    }

    async fn history(
        &self,
        conversation: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        self.barrier.wait().await?;
        self.postgres.history(conversation, before, limit).await
    }

    async fn mark_delivered(
        &self,
        user: &str,
        message_ids: &[u64],
        at_ms: u64,
    ) -> Result<Vec<StatusChange>, StoreError> {
        self.barrier.wait().await?;
        let changes = self
            .postgres
            .preview_mark_delivered(user, message_ids, at_ms)
            .await?;
        let mut by_conversation: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for change in &changes {
            by_conversation
                .entry(&change.conversation_id)
                .or_default()
                .push(change.message_id);
        }
        let mut acks = Vec::with_capacity(by_conversation.len());
        for (conversation_id, message_ids) in by_conversation {
            acks.push(self.outbox.produce(
                &Event::Delivered {
                    conversation_id: conversation_id.to_owned(),
                    user_id: user.to_owned(),
                    message_ids,
                    at_ms,
                },
                None,
            )?);
        }
        for ack in acks {
            durable(ack).await?;
        }
        Ok(changes)
    }

    async fn mark_read(
        &self,
        user: &str,
        conversation: &str,
        up_to: u64,
        at_ms: u64,
    ) -> Result<Option<ReadMark>, StoreError> {
        self.barrier.wait().await?;
        let Some(mark) = self
            .postgres
            .preview_mark_read(user, conversation, up_to, at_ms)
            .await?
        else {
            return Ok(None);
        };
        let ack = self.outbox.produce(
            &Event::Read {
                conversation_id: mark.conversation_id.clone(),
                user_id: mark.user_id.clone(),
                up_to: mark.up_to,
                at_ms: mark.at_ms,
            },
            None,
        )?;
        durable(ack).await?;
        Ok(Some(mark))
    }

    async fn contacts_of(&self, user: &str) -> Result<Vec<UserId>, StoreError> {
        self.postgres.contacts_of(user).await
    }

    async fn receipts(
        &self,
        message_id: u64,
    ) -> Result<Vec<(UserId, ReceiptStatus, u64)>, StoreError> {
        self.barrier.wait().await?;
        self.postgres.receipts(message_id).await
    }

    fn sink_lag(&self) -> Option<SinkLag> {
        self.lag.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// PostgreSQL's probe, Kafka's metadata for the events topic, and room among the
    /// messages waiting for Kafka's ack (none left: sends are refused at once).
    async fn probe(&self) -> Vec<Unready> {
        let producer = self.outbox.producers.current();
        let (postgres, kafka) = tokio::join!(
            self.postgres.probe(),
            producer.reachable(KAFKA_PROBE_TIMEOUT)
        );
        let mut unready = postgres;
        if let Err(reason) = kafka {
            unready.push(Unready {
                part: "kafka",
                reason,
            });
        } else if self.outbox.full() {
            unready.push(Unready {
                part: "kafka",
                reason: "every slot for messages awaiting Kafka's ack is taken".into(),
            });
        }
        // No sink keeping up: reads (sync, history) answer UNAVAILABLE, so this node is no
        // place to send clients to.
        if let Some(lag) = self.sink_lag() {
            let behind = lag
                .records
                .map_or_else(|| "an unknown number of".to_string(), |n| n.to_string());
            unready.push(Unready {
                part: "sink",
                reason: format!(
                    "sink consumer group {:?} is {behind} records behind PostgreSQL",
                    lag.group
                ),
            });
        }
        unready
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.outbox
            .producers
            .flush(CLOSE_FLUSH_TIMEOUT)
            .await
            .map_err(|e| kafka_error("records still queued for Kafka at shutdown", &e))
    }
}
