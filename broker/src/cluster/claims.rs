//! Client id claims in Redis ([`chat_store::SharedClaims`]): the streamed store's idempotency
//! key `(sender, clientMessageId)` taken cluster-wide before a message goes to Kafka, so a
//! retry through any node finds the original's id while the sink has not stored it yet.
//!
//! Key `sbx:cm:<sender length>:<sender>:<clientMessageId>` (the length keeps a sender with a
//! `:` in its name apart from another's client id), value `<message id>:<timestamp ms>`, taken
//! by one `SET … NX GET` (Redis ≥ 7.0): atomic, so of two attempts racing through two nodes
//! exactly one takes the key and the other learns its id. The key lapses after [`CLAIM_TTL`],
//! well past a client's retry window and any healthy sink lag; older retries are answered from
//! PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use super::redis_link::Conn;
use chat_store::{ClaimHolder, SharedClaims, StoreError, StoredMessage};

use super::channel::PREFIX;
use super::health::Health;

/// How long a claim outlives its message's send. Redis holds one small key per message with a
/// client id for this long (docs/capacity.md has the memory it takes).
pub const CLAIM_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug)]
pub struct RedisClaims {
    conn: Conn,
    health: Arc<Health>,
}

impl RedisClaims {
    pub(super) fn new(conn: Conn, health: Arc<Health>) -> Self {
        Self { conn, health }
    }
}

fn key(sender: &str, client_id: &str) -> String {
    format!("{PREFIX}cm:{}:{sender}:{client_id}", sender.len())
}

fn parse(value: &str) -> Option<ClaimHolder> {
    let (id, at) = value.split_once(':')?;
    Some(ClaimHolder {
        message_id: id.parse().ok()?,
        timestamp_ms: at.parse().ok()?,
    })
}

#[async_trait::async_trait]
impl SharedClaims for RedisClaims {
    async fn claim(&self, message: &StoredMessage) -> Result<Option<ClaimHolder>, StoreError> {
        let Some(client_id) = &message.client_message_id else {
            return Ok(None);
        };
        // During an outage every call would wait for the connection's timeout: fail at once.
        if !self.health.is_connected() {
            return Err(StoreError::Unavailable("redis unreachable".into()));
        }
        let previous: Option<String> = redis::cmd("SET")
            .arg(key(&message.sender_id, client_id))
            .arg(format!("{}:{}", message.message_id, message.timestamp_ms))
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(CLAIM_TTL.as_millis() as u64)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| StoreError::Unavailable(format!("redis: {e}")))?;
        match previous {
            None => Ok(None),
            Some(value) => parse(&value).map(Some).ok_or_else(|| {
                StoreError::Internal(format!("malformed client id claim {value:?}"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_sender_and_client_id_apart() {
        assert_ne!(key("a:b", "c"), key("a", "b:c"));
        assert_eq!(
            parse("42:1700000000000"),
            Some(ClaimHolder {
                message_id: 42,
                timestamp_ms: 1_700_000_000_000
            })
        );
        assert_eq!(parse("42"), None);
    }
}
