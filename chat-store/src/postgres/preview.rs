//! Reads the streamed mode ([`crate::StreamedStore`]) needs from PostgreSQL without writing:
//! there the sink is the only writer of messages and statuses, so the broker asks "what would
//! this status change move?" by running the store's own rules in a transaction it rolls
//! back. One set of rules (mutation.rs) answers both modes; the sink then applies the same
//! event for real, monotonically.

use super::error::{pool_error, store_error};
use super::row::MESSAGE_COLUMNS;
use super::{PostgresStore, mutation, row};
use crate::{ReadMark, StatusChange, StoreError, StoredMessage};

impl PostgresStore {
    /// The messages stored under any of these `(sender, client_message_id)` idempotency keys:
    /// one query for many keys (a batch of concurrent sends), prepared once per connection
    /// (planning over every monthly partition costs more than the lookup itself).
    pub async fn find_by_client_ids(
        &self,
        keys: &[(String, String)],
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages \
                 WHERE (sender_id, client_message_id) IN \
                       (SELECT * FROM unnest($1::text[], $2::text[]))"
            ))
            .await
            .map_err(store_error)?;
        let senders: Vec<&str> = keys.iter().map(|(s, _)| s.as_str()).collect();
        let client_ids: Vec<&str> = keys.iter().map(|(_, c)| c.as_str()).collect();
        client
            .query(&statement, &[&senders, &client_ids])
            .await
            .map_err(store_error)?
            .iter()
            .map(row::message)
            .collect()
    }

    /// What [`crate::ChatStore::mark_delivered`] would change now, changing nothing.
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

    /// What [`crate::ChatStore::mark_read`] would change now, changing nothing.
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
