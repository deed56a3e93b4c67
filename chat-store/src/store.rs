//! The storage-agnostic interface of the chat layer: the embedded SQLite store implements it
//! now, the PostgreSQL path later. Ids, timestamps and membership rules come from the caller or
//! the types; nothing here names a backend.

use crate::conversation::{Conversation, NewConversation, UserId};
use crate::cursor::{Cursor, Sequenced};
use crate::device::{PushDevice, Registered};
use crate::error::StoreError;
use crate::message::{Appended, StoredMessage};
use crate::receipt::{ReadMark, ReceiptStatus, StatusChange};

/// Resolves when an accepted message is durable (`Ok`) or definitely not stored (`Err`).
pub type Durability =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send>>;

/// A part of a store that cannot take writes now ([`ChatStore::probe`]), and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unready {
    /// `sqlite`, `postgres`, `kafka`.
    pub part: &'static str,
    pub reason: String,
}

#[async_trait::async_trait]
pub trait ChatStore: Send + Sync + std::fmt::Debug + 'static {
    /// DIRECT: get-or-create (idempotent; same id for both orders). GROUP: create (id chosen by
    /// caller, unique).
    ///
    /// `Invalid` when: the creator is not among the members; DIRECT without exactly two distinct
    /// users or with an id other than their `direct_id`; GROUP whose id exists already.
    async fn create_conversation(&self, new: NewConversation) -> Result<Conversation, StoreError>;

    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError>;

    /// Every conversation `user` is a member of, oldest first.
    async fn conversations_of(&self, user: &str) -> Result<Vec<Conversation>, StoreError>;

    /// Adds (as Member) and removes members; returns the updated conversation. Adding a member
    /// already there and removing one who is not are no-ops. `NotFound` for an unknown id,
    /// `Invalid` for a DIRECT conversation (its pair is fixed). Who may do this is the caller's
    /// rule ([`Conversation::is_admin`]).
    async fn update_members(
        &self,
        id: &str,
        add: &[UserId],
        remove: &[UserId],
        at_ms: u64,
    ) -> Result<Conversation, StoreError>;

    /// Durable when it returns Ok (fsync'd by the group commit). Idempotent on (sender,
    /// client_message_id). `NotFound` for an unknown conversation, `Invalid` when the sender is
    /// not a member or the message id is taken by a different message.
    async fn append(&self, message: StoredMessage) -> Result<Appended, StoreError>;

    /// Like [`ChatStore::append`], but may return as soon as the message is *accepted* —
    /// deduplicated, in order, on its way to durable storage — with a [`Durability`] future
    /// that resolves once it is durable. Live delivery follows acceptance; the sender's
    /// RECEIPT follows durability. A store whose accept and durable are the same moment (the
    /// embedded one: its fsync is the accept) keeps this default: `None` = durable already.
    async fn accept(
        &self,
        message: StoredMessage,
    ) -> Result<(Appended, Option<Durability>), StoreError> {
        Ok((self.append(message).await?, None))
    }

    /// Messages of every conversation `user` is a member of with message_id > after, ascending
    /// by id, at most `limit`; the bool says whether more exist.
    async fn messages_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, bool), StoreError>;

    /// Messages of every conversation `user` is a member of after `cursor` there (see
    /// [`Cursor`]), each with its position, ordered by (conversation, position), at most
    /// `limit`; the bool says whether more exist. What exact sync reads: a conversation's
    /// positions are assigned in the order its messages become visible here, so nothing
    /// can later appear at or before a position already returned.
    async fn messages_since(
        &self,
        user: &str,
        cursor: &Cursor,
        limit: usize,
    ) -> Result<(Vec<Sequenced>, bool), StoreError>;

    /// One conversation's messages with id < before (or the newest if None), at most `limit`,
    /// returned ascending by id; bool = more older ones exist. `NotFound` for an unknown id.
    async fn history(
        &self,
        conversation: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, bool), StoreError>;

    /// Marks DELIVERED for `user` (a recipient, not the sender) — only SENT→DELIVERED moves;
    /// unknown ids / the user's own messages / non-member are ignored.
    async fn mark_delivered(
        &self,
        user: &str,
        message_ids: &[u64],
        at_ms: u64,
    ) -> Result<Vec<StatusChange>, StoreError>;

    /// READ watermark for (user, conversation): moves only forward; implies DELIVERED for those
    /// messages. None when it did not move. The watermark lands on the newest message of the
    /// conversation with id ≤ `up_to` (an id from the future cannot pre-read later messages).
    /// `NotFound` for an unknown conversation, `Invalid` when `user` is not a member.
    async fn mark_read(
        &self,
        user: &str,
        conversation: &str,
        up_to: u64,
        at_ms: u64,
    ) -> Result<Option<ReadMark>, StoreError>;

    /// Users sharing at least one conversation with `user` (excluding `user`), sorted.
    async fn contacts_of(&self, user: &str) -> Result<Vec<UserId>, StoreError>;

    /// Per-member receipt state of one message (for groups): (user, status, at_ms) for each
    /// current member but the sender, sorted by user. A SENT entry's time is the message's.
    /// Empty for an unknown message.
    async fn receipts(
        &self,
        message_id: u64,
    ) -> Result<Vec<(UserId, ReceiptStatus, u64)>, StoreError>;

    /// Whether concurrent appends to one conversation are placed (given their positions) in
    /// whichever order they reach the store's lock rather than the order they were called in:
    /// PostgreSQL's, one transaction each. The caller then starts a conversation's appends one
    /// after another, in its own order. Stores that place in call order keep this default.
    fn places_concurrent_appends(&self) -> bool {
        false
    }
    /// Stores a push device for `device.user_id`, keyed by its address: an address the user
    /// holds is refreshed, one another user holds moves to this user, and a new one is refused
    /// with [`Registered::LimitReached`] when the user already has `limit` devices.
    async fn register_device(
        &self,
        device: PushDevice,
        limit: usize,
    ) -> Result<Registered, StoreError>;

    /// Removes `user`'s device with `address`; false when the user had none such.
    async fn unregister_device(&self, user: &str, address: &str) -> Result<bool, StoreError>;

    /// `user`'s devices, oldest registration first.
    async fn devices_of(&self, user: &str) -> Result<Vec<PushDevice>, StoreError>;

    /// Removes the device with `address` whoever holds it (its provider said it is dead).
    async fn forget_device(&self, address: &str) -> Result<(), StoreError>;

    /// A cheap check that the store can take writes now, for the broker's readiness: each
    /// part that cannot says why (empty: ready). Bounded by the caller, which counts a probe
    /// that does not answer in time as not ready. Stores with nothing to check keep this
    /// default.
    async fn probe(&self) -> Vec<Unready> {
        Vec::new()
    }

    /// Called once at shutdown, after the last operation: finishes what the store still holds
    /// in memory (the streamed store's records queued for Kafka), within a bound of its own.
    /// `Err` says what may not have been written; the store stays usable either way. Stores
    /// whose writes are durable when they return keep this default.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// `Some` while writes accepted here are not reaching the store that reads come from
    /// (the streamed store: no sink is moving Kafka into PostgreSQL, or Kafka is down), so
    /// reads fail `Unavailable`; what readiness reads. Stores that read what they write keep
    /// this default.
    fn sink_lag(&self) -> Option<SinkLag> {
        None
    }
}

/// Persistence behind: the streamed store's sink is missing or not keeping up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkLag {
    /// The sink's consumer group, as configured (`KafkaConfig::sink_group`).
    pub group: String,
    /// Records in Kafka not yet in PostgreSQL, over every partition; `None` when Kafka
    /// cannot be asked.
    pub records: Option<u64>,
    /// When the lag was first seen (continuously since).
    pub since: std::time::SystemTime,
}
