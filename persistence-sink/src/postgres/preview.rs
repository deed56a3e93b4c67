//! Reads the streamed mode ([`crate::StreamedStore`]) needs from PostgreSQL without writing:
//! there the sink is the only writer of messages and statuses, so the broker asks "what would
//! this status change move?" by running the store's own rules in a transaction it rolls
//! back. One set of rules (mutation.rs) answers both modes; the sink then applies the same
//! event for real, monotonically.

use chat_store::{ReadMark, StatusChange, StoreError, StoredMessage};

use super::error::{pool_error, store_error};
use super::row::MESSAGE_COLUMNS;
use super::{PostgresStore, mutation, row};

impl PostgresStore {
    /// The message `sender` stored under `client_message_id`, if any (the idempotency key).
    pub async fn find_by_client_id(
        &self,
        sender: &str,
        client_message_id: &str,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        client
            .query_opt(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages \
                     WHERE sender_id = $1 AND client_message_id = $2 \
                     ORDER BY message_id LIMIT 1"
                ),
                &[&sender, &client_message_id],
            )
            .await
            .map_err(store_error)?
            .as_ref()
            .map(row::message)
            .transpose()
    }

    /// What [`chat_store::ChatStore::mark_delivered`] would change now, changing nothing.
    pub async fn preview_mark_delivered(
        &self,
        user: &str,
        message_ids: &[u64],
        at_ms: u64,
    ) -> Result<Vec<StatusChange>, StoreError> {
        let mut pooled = self.pool.get().await.map_err(pool_error)?;
        let tx = pooled.transaction().await.map_err(store_error)?;
        let result = mutation::mark_delivered(&tx, user, message_ids, at_ms).await;
        tx.rollback().await.map_err(store_error)?;
        result
    }

    /// What [`chat_store::ChatStore::mark_read`] would change now, changing nothing.
    pub async fn preview_mark_read(
        &self,
        user: &str,
        conversation: &str,
        up_to: u64,
        at_ms: u64,
    ) -> Result<Option<ReadMark>, StoreError> {
        let mut pooled = self.pool.get().await.map_err(pool_error)?;
        let tx = pooled.transaction().await.map_err(store_error)?;
        let result = mutation::mark_read(&tx, user, conversation, up_to, at_ms).await;
        tx.rollback().await.map_err(store_error)?;
        result
    }
}
