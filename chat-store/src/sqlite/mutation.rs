//! Writes: plain functions over the writer's connection, each run as one job of a group-commit
//! batch (inside its own savepoint, so an `Err` leaves nothing behind).

use rusqlite::{Connection, OptionalExtension, params};

use crate::conversation::{Conversation, ConversationKind, NewConversation, Role, UserId};
use crate::error::StoreError;
use crate::message::{Appended, StoredMessage};
use crate::receipt::{ReadMark, ReceiptStatus, StatusChange};
use crate::sqlite::query;
use crate::sqlite::row::{self, MESSAGE_COLUMNS, sql_int};

fn invalid(why: impl Into<String>) -> StoreError {
    StoreError::Invalid(why.into())
}

fn ensure_user(conn: &Connection, user: &str, at: i64) -> Result<(), StoreError> {
    if user.is_empty() {
        return Err(invalid("a user id must not be empty"));
    }
    conn.prepare_cached("INSERT OR IGNORE INTO users (user_id, created_at) VALUES (?1, ?2)")?
        .execute(params![user, at])?;
    Ok(())
}

fn insert_member(
    conn: &Connection,
    conversation: &str,
    user: &str,
    role: Role,
    at: i64,
) -> Result<(), StoreError> {
    ensure_user(conn, user, at)?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO conversation_members (conversation_id, user_id, role, joined_at) \
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![conversation, user, role, at])?;
    Ok(())
}

pub(crate) fn create_conversation(
    conn: &Connection,
    new: NewConversation,
) -> Result<Conversation, StoreError> {
    let at = sql_int(new.at_ms, "timestamp")?;
    let members = new.checked_members()?;
    if let Some(existing) = query::conversation(conn, &new.id)? {
        return match new.kind {
            ConversationKind::Direct => Ok(existing),
            ConversationKind::Group => {
                Err(invalid(format!("conversation {} already exists", new.id)))
            }
        };
    }
    ensure_user(conn, &new.creator, at)?;
    conn.prepare_cached(
        "INSERT INTO conversations (id, kind, name, creator, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![new.id, new.kind, new.name, new.creator, at])?;
    for user in &members {
        insert_member(conn, &new.id, user, new.role_of(user), at)?;
    }
    query::existing_conversation(conn, &new.id)
}

pub(crate) fn update_members(
    conn: &Connection,
    id: &str,
    add: &[UserId],
    remove: &[UserId],
    at_ms: u64,
) -> Result<Conversation, StoreError> {
    let at = sql_int(at_ms, "timestamp")?;
    let conversation = query::existing_conversation(conn, id)?;
    if conversation.kind == ConversationKind::Direct {
        return Err(invalid("a direct conversation's members cannot change"));
    }
    for user in add {
        insert_member(conn, id, user, Role::Member, at)?;
    }
    let mut delete = conn.prepare_cached(
        "DELETE FROM conversation_members WHERE conversation_id = ?1 AND user_id = ?2",
    )?;
    for user in remove {
        delete.execute(params![id, user])?;
    }
    query::existing_conversation(conn, id)
}

pub(crate) fn append(conn: &Connection, message: StoredMessage) -> Result<Appended, StoreError> {
    let id = sql_int(message.message_id, "message id")?;
    let created_at = sql_int(message.timestamp_ms, "timestamp")?;
    if let Some(client_id) = &message.client_message_id {
        let original = conn
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE sender_id = ?1 AND client_message_id = ?2"
            ))?
            .query_row(params![message.sender_id, client_id], row::message)
            .optional()?;
        if let Some(original) = original {
            return Ok(Appended::Duplicate { original });
        }
    }
    let is_member = conn
        .prepare_cached(
            "SELECT 1 FROM conversation_members WHERE conversation_id = ?1 AND user_id = ?2",
        )?
        .exists(params![message.conversation_id, message.sender_id])?;
    if !is_member {
        let exists = conn
            .prepare_cached("SELECT 1 FROM conversations WHERE id = ?1")?
            .exists([&message.conversation_id])?;
        return Err(if exists {
            invalid("the sender is not a member of the conversation")
        } else {
            StoreError::NotFound
        });
    }
    if let Some(existing) = query::message(conn, id)? {
        // The same message again (a retry without a client id) is a duplicate; another message
        // under a used id is the caller's bug.
        return if existing == message {
            Ok(Appended::Duplicate { original: existing })
        } else {
            Err(invalid(format!(
                "message id {} is already used",
                message.message_id
            )))
        };
    }
    // One more than the conversation's last: exact, since this writer is the only one.
    let seq: i64 = conn
        .prepare_cached(
            "SELECT coalesce(max(seq), 0) + 1 FROM messages WHERE conversation_id = ?1",
        )?
        .query_row([&message.conversation_id], |r| r.get(0))?;
    conn.prepare_cached(
        "INSERT INTO messages (message_id, conversation_id, sender_id, content, content_type, \
         client_message_id, created_at, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        id,
        message.conversation_id,
        message.sender_id,
        message.content,
        message.content_type,
        message.client_message_id,
        created_at,
        seq
    ])?;
    Ok(Appended::Stored {
        seq: Some(seq as u64),
    })
}

pub(crate) fn mark_delivered(
    conn: &Connection,
    user: &str,
    message_ids: &[u64],
    at_ms: u64,
) -> Result<Vec<StatusChange>, StoreError> {
    let at = sql_int(at_ms, "timestamp")?;
    let mut find = conn.prepare_cached(
        "SELECT m.conversation_id, m.sender_id, cm.read_up_to FROM messages m \
         JOIN conversation_members cm ON cm.conversation_id = m.conversation_id AND cm.user_id = ?2 \
         WHERE m.message_id = ?1",
    )?;
    // A receipt row exists only once the status has left SENT, so "insert if absent" is
    // exactly SENT → DELIVERED and can never move a status backwards.
    let mut insert = conn.prepare_cached(
        "INSERT INTO message_receipts (message_id, user_id, status, delivered_at) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
    )?;
    let mut changes = Vec::new();
    for &message_id in message_ids {
        let Ok(id) = i64::try_from(message_id) else {
            continue;
        };
        let found = find
            .query_row(params![id, user], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .optional()?;
        let Some((conversation_id, sender_id, read_up_to)) = found else {
            continue;
        };
        if sender_id == user || id <= read_up_to {
            continue;
        }
        if insert.execute(params![id, user, ReceiptStatus::Delivered, at])? == 1 {
            changes.push(StatusChange {
                message_id,
                conversation_id,
                sender_id,
                user_id: user.to_owned(),
                status: ReceiptStatus::Delivered,
                at_ms,
            });
        }
    }
    Ok(changes)
}

pub(crate) fn mark_read(
    conn: &Connection,
    user: &str,
    conversation: &str,
    up_to: u64,
    at_ms: u64,
) -> Result<Option<ReadMark>, StoreError> {
    let at = sql_int(at_ms, "timestamp")?;
    let old: Option<i64> = conn
        .prepare_cached(
            "SELECT read_up_to FROM conversation_members WHERE conversation_id = ?1 AND user_id = ?2",
        )?
        .query_row(params![conversation, user], |r| r.get(0))
        .optional()?;
    let Some(old) = old else {
        let exists = conn
            .prepare_cached("SELECT 1 FROM conversations WHERE id = ?1")?
            .exists([conversation])?;
        return Err(if exists {
            invalid("not a member of the conversation")
        } else {
            StoreError::NotFound
        });
    };
    // The watermark lands on a real message, so an id from the future cannot pre-read.
    let target: Option<i64> = conn
        .prepare_cached(
            "SELECT max(message_id) FROM messages WHERE conversation_id = ?1 AND message_id <= ?2",
        )?
        .query_row(params![conversation, row::sql_bound(up_to)], |r| r.get(0))?;
    let Some(target) = target.filter(|&t| t > old) else {
        return Ok(None);
    };
    conn.prepare_cached(
        "UPDATE conversation_members SET read_up_to = ?3 WHERE conversation_id = ?1 AND user_id = ?2",
    )?
    .execute(params![conversation, user, target])?;
    conn.prepare_cached(
        "INSERT INTO message_receipts (message_id, user_id, status, delivered_at, read_at) \
         SELECT message_id, ?2, 2, ?5, ?5 FROM messages \
         WHERE conversation_id = ?1 AND message_id > ?3 AND message_id <= ?4 AND sender_id <> ?2 \
         ON CONFLICT (message_id, user_id) DO UPDATE SET \
           status = 2, read_at = excluded.read_at, \
           delivered_at = coalesce(delivered_at, excluded.delivered_at) \
         WHERE status < 2",
    )?
    .execute(params![conversation, user, old, target, at])?;
    let senders = conn
        .prepare_cached(
            "SELECT DISTINCT sender_id FROM messages \
             WHERE conversation_id = ?1 AND message_id > ?3 AND message_id <= ?4 AND sender_id <> ?2 \
             ORDER BY sender_id",
        )?
        .query_map(params![conversation, user, old, target], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<UserId>>>()?;
    Ok(Some(ReadMark {
        conversation_id: conversation.to_owned(),
        user_id: user.to_owned(),
        up_to: target as u64,
        at_ms,
        senders,
    }))
}
