//! Writes: each runs in one transaction of its own (the caller commits), with the same rules
//! as the SQLite store (`chat-store/src/sqlite/mutation.rs`).

use tokio_postgres::Transaction;

use crate::postgres::error::{invalid, store_error};
use crate::postgres::query;
use crate::postgres::row::{self, MESSAGE_COLUMNS, sql_bound, sql_int};
use crate::{
    Appended, Conversation, ConversationKind, NewConversation, ReadMark, ReceiptStatus, Role,
    StatusChange, StoreError, StoredMessage, UserId,
};

async fn ensure_user(tx: &Transaction<'_>, user: &str, at: i64) -> Result<(), StoreError> {
    if user.is_empty() {
        return Err(invalid("a user id must not be empty"));
    }
    tx.execute(
        "INSERT INTO users (user_id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&user, &at],
    )
    .await
    .map_err(store_error)?;
    Ok(())
}

/// [`ensure_user`] for each of `users`, sorted and once each (the lock order).
async fn ensure_users<'a>(
    tx: &Transaction<'_>,
    users: impl Iterator<Item = &'a UserId>,
    at: i64,
) -> Result<(), StoreError> {
    let users: std::collections::BTreeSet<&UserId> = users.collect();
    for user in users {
        ensure_user(tx, user, at).await?;
    }
    Ok(())
}

async fn insert_member(
    tx: &Transaction<'_>,
    conversation: &str,
    user: &str,
    role: Role,
    at: i64,
) -> Result<(), StoreError> {
    ensure_user(tx, user, at).await?;
    tx.execute(
        "INSERT INTO conversation_members (conversation_id, user_id, role, joined_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        &[&conversation, &user, &query::role_text(role), &at],
    )
    .await
    .map_err(store_error)?;
    Ok(())
}

pub(crate) async fn create_conversation(
    tx: &Transaction<'_>,
    new: NewConversation,
) -> Result<Conversation, StoreError> {
    let at = sql_int(new.at_ms, "timestamp")?;
    let members = new.checked_members()?;
    // Every new user row first, in one global order: two transactions creating conversations
    // that share new users (the two ends of one DIRECT pair, at once) then wait for each other
    // instead of deadlocking (seen: 40P01 under the chat bench, a 1 s stall each).
    ensure_users(tx, std::iter::once(&new.creator).chain(members.iter()), at).await?;
    // ON CONFLICT: two concurrent creates of one DIRECT pair both succeed with the same row.
    let inserted = tx
        .execute(
            "INSERT INTO conversations (id, kind, name, creator, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            &[
                &new.id,
                &query::kind_text(new.kind),
                &new.name,
                &new.creator,
                &at,
            ],
        )
        .await
        .map_err(store_error)?;
    if inserted == 0 {
        return match new.kind {
            ConversationKind::Direct => query::existing_conversation(tx, &new.id).await,
            ConversationKind::Group => {
                Err(invalid(format!("conversation {} already exists", new.id)))
            }
        };
    }
    for user in &members {
        insert_member(tx, &new.id, user, new.role_of(user), at).await?;
    }
    query::existing_conversation(tx, &new.id).await
}

pub(crate) async fn update_members(
    tx: &Transaction<'_>,
    id: &str,
    add: &[UserId],
    remove: &[UserId],
    at_ms: u64,
) -> Result<Conversation, StoreError> {
    let at = sql_int(at_ms, "timestamp")?;
    // Lock the conversation row: concurrent membership changes apply one after the other.
    let kind = tx
        .query_opt(
            "SELECT kind FROM conversations WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await
        .map_err(store_error)?
        .ok_or(StoreError::NotFound)?;
    if kind.get::<_, &str>(0) == "DIRECT" {
        return Err(invalid("a direct conversation's members cannot change"));
    }
    ensure_users(tx, add.iter(), at).await?;
    for user in add {
        insert_member(tx, id, user, Role::Member, at).await?;
    }
    if !remove.is_empty() {
        tx.execute(
            "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = ANY($2)",
            &[&id, &remove],
        )
        .await
        .map_err(store_error)?;
    }
    query::existing_conversation(tx, id).await
}

pub(crate) async fn append(
    tx: &Transaction<'_>,
    message: &StoredMessage,
) -> Result<Appended, StoreError> {
    let id = sql_int(message.message_id, "message id")?;
    sql_int(message.timestamp_ms, "timestamp")?;
    if let Some(client_id) = &message.client_message_id {
        // No global UNIQUE on a partitioned table: the per-sender lock makes check-then-insert
        // atomic against a concurrent retry of the same sender.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&message.sender_id],
        )
        .await
        .map_err(store_error)?;
        let original = tx
            .query_opt(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages \
                     WHERE sender_id = $1 AND client_message_id = $2"
                ),
                &[&message.sender_id, client_id],
            )
            .await
            .map_err(store_error)?;
        if let Some(original) = original {
            return Ok(Appended::Duplicate {
                original: row::message(&original)?,
            });
        }
    }
    let is_member = tx
        .query_opt(
            "SELECT 1 FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
            &[&message.conversation_id, &message.sender_id],
        )
        .await
        .map_err(store_error)?
        .is_some();
    if !is_member {
        return Err(
            if query::conversation_exists(tx, &message.conversation_id).await? {
                invalid("the sender is not a member of the conversation")
            } else {
                StoreError::NotFound
            },
        );
    }
    if let Some(existing) = query::message(tx, id).await? {
        // The same message again (a retry without a client id) is a duplicate; another message
        // under a used id is the caller's bug.
        return if existing == *message {
            Ok(Appended::Duplicate { original: existing })
        } else {
            Err(invalid(format!(
                "message id {} is already used",
                message.message_id
            )))
        };
    }
    // The conversation's row lock, held to commit: its messages commit in position order.
    let seq: i64 = tx
        .query_one(
            "UPDATE conversations SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq",
            &[&message.conversation_id],
        )
        .await
        .map_err(store_error)?
        .get(0);
    tx.execute(
        "INSERT INTO messages (message_id, conversation_id, sender_id, content, content_type, \
         client_message_id, created_at, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &id,
            &message.conversation_id,
            &message.sender_id,
            &message.content,
            &message.content_type,
            &message.client_message_id,
            &row::time(message.timestamp_ms),
            &seq,
        ],
    )
    .await
    .map_err(store_error)?;
    Ok(Appended::Stored {
        seq: Some(row::u64_of(seq)),
    })
}

pub(crate) async fn mark_delivered(
    tx: &Transaction<'_>,
    user: &str,
    message_ids: &[u64],
    at_ms: u64,
) -> Result<Vec<StatusChange>, StoreError> {
    let at = sql_int(at_ms, "timestamp")?;
    let ids: Vec<i64> = message_ids
        .iter()
        .filter_map(|&id| i64::try_from(id).ok())
        .collect();
    // A receipt row exists only once the status has left SENT, so "insert if absent" is
    // exactly SENT → DELIVERED and can never move a status backwards; a message at or below
    // the member's READ watermark is already READ.
    let rows = tx
        .query(
            "WITH candidate AS ( \
                 SELECT m.message_id, m.conversation_id, m.sender_id FROM messages m \
                 JOIN conversation_members cm \
                   ON cm.conversation_id = m.conversation_id AND cm.user_id = $2 \
                 WHERE m.message_id = ANY($1) AND m.sender_id <> $2 \
                   AND m.message_id > cm.read_up_to), \
             inserted AS ( \
                 INSERT INTO message_receipts (message_id, user_id, status, delivered_at) \
                 SELECT message_id, $2, 1, $3 FROM candidate \
                 ON CONFLICT DO NOTHING RETURNING message_id) \
             SELECT c.message_id, c.conversation_id, c.sender_id FROM candidate c \
             JOIN inserted USING (message_id) ORDER BY array_position($1, c.message_id)",
            &[&ids, &user, &at],
        )
        .await
        .map_err(store_error)?;
    Ok(rows
        .iter()
        .map(|r| StatusChange {
            message_id: row::u64_of(r.get(0)),
            conversation_id: r.get(1),
            sender_id: r.get(2),
            user_id: user.to_owned(),
            status: ReceiptStatus::Delivered,
            at_ms,
        })
        .collect())
}

pub(crate) async fn mark_read(
    tx: &Transaction<'_>,
    user: &str,
    conversation: &str,
    up_to: u64,
    at_ms: u64,
) -> Result<Option<ReadMark>, StoreError> {
    let at = sql_int(at_ms, "timestamp")?;
    // FOR UPDATE: two marks of one member apply one after the other, never both from `old`.
    let old: Option<i64> = tx
        .query_opt(
            "SELECT read_up_to FROM conversation_members \
             WHERE conversation_id = $1 AND user_id = $2 FOR UPDATE",
            &[&conversation, &user],
        )
        .await
        .map_err(store_error)?
        .map(|r| r.get(0));
    let Some(old) = old else {
        return Err(if query::conversation_exists(tx, conversation).await? {
            invalid("not a member of the conversation")
        } else {
            StoreError::NotFound
        });
    };
    // The watermark lands on a real message, so an id from the future cannot pre-read.
    let target: Option<i64> = tx
        .query_one(
            "SELECT max(message_id) FROM messages WHERE conversation_id = $1 AND message_id <= $2",
            &[&conversation, &sql_bound(up_to)],
        )
        .await
        .map_err(store_error)?
        .get(0);
    let Some(target) = target.filter(|&t| t > old) else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE conversation_members SET read_up_to = $3 WHERE conversation_id = $1 AND user_id = $2",
        &[&conversation, &user, &target],
    )
    .await
    .map_err(store_error)?;
    tx.execute(
        "INSERT INTO message_receipts (message_id, user_id, status, delivered_at, read_at) \
         SELECT message_id, $2, 2, $5, $5 FROM messages \
         WHERE conversation_id = $1 AND message_id > $3 AND message_id <= $4 AND sender_id <> $2 \
         ON CONFLICT (message_id, user_id) DO UPDATE SET \
           status = 2, read_at = excluded.read_at, \
           delivered_at = coalesce(message_receipts.delivered_at, excluded.delivered_at) \
         WHERE message_receipts.status < 2",
        &[&conversation, &user, &old, &target, &at],
    )
    .await
    .map_err(store_error)?;
    let senders = tx
        .query(
            "SELECT DISTINCT sender_id FROM messages \
             WHERE conversation_id = $1 AND message_id > $3 AND message_id <= $4 AND sender_id <> $2 \
             ORDER BY sender_id",
            &[&conversation, &user, &old, &target],
        )
        .await
        .map_err(store_error)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(Some(ReadMark {
        conversation_id: conversation.to_owned(),
        user_id: user.to_owned(),
        up_to: row::u64_of(target),
        at_ms,
        senders,
    }))
}
