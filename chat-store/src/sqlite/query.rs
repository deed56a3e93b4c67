//! Reads: plain functions over a connection, run by the read pool (inside one read
//! transaction, so a multi-statement answer is one snapshot) or by writer jobs.

use rusqlite::{Connection, OptionalExtension, params};

use crate::conversation::{Conversation, Member, UserId};
use crate::cursor::{Cursor, Sequenced};
use crate::error::StoreError;
use crate::message::StoredMessage;
use crate::receipt::ReceiptStatus;
use crate::sqlite::row::{self, MESSAGE_COLUMNS, SEQUENCED_COLUMNS, probe_limit, sql_bound};

pub(crate) fn conversation(
    conn: &Connection,
    id: &str,
) -> Result<Option<Conversation>, StoreError> {
    let head = conn
        .prepare_cached("SELECT kind, name, creator, created_at FROM conversations WHERE id = ?1")?
        .query_row([id], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .optional()?;
    let Some((kind, name, creator, created_at)) = head else {
        return Ok(None);
    };
    let members = conn
        .prepare_cached(
            "SELECT user_id, role, joined_at FROM conversation_members \
             WHERE conversation_id = ?1 ORDER BY joined_at, rowid",
        )?
        .query_map([id], |r| {
            Ok(Member {
                user_id: r.get(0)?,
                role: r.get(1)?,
                joined_at_ms: r.get::<_, i64>(2)? as u64,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(Conversation {
        id: id.to_owned(),
        kind,
        name,
        creator,
        members,
        created_at_ms: created_at as u64,
    }))
}

/// Like [`conversation`], for a conversation known to exist.
pub(crate) fn existing_conversation(
    conn: &Connection,
    id: &str,
) -> Result<Conversation, StoreError> {
    conversation(conn, id)?.ok_or(StoreError::NotFound)
}

fn conversation_ids_of(conn: &Connection, user: &str) -> Result<Vec<String>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT c.id FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.user_id = ?1 ORDER BY c.created_at, c.id",
        )?
        .query_map([user], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?)
}

pub(crate) fn conversations_of(
    conn: &Connection,
    user: &str,
) -> Result<Vec<Conversation>, StoreError> {
    conversation_ids_of(conn, user)?
        .iter()
        .map(|id| existing_conversation(conn, id))
        .collect()
}

/// Per conversation, the first `limit + 1` messages after `after` (one index range scan each),
/// merged by id: bounded by conversations × limit however much history there is, where a scan
/// of all messages by id would walk everyone else's traffic too.
pub(crate) fn messages_after(
    conn: &Connection,
    user: &str,
    after: u64,
    limit: usize,
) -> Result<(Vec<StoredMessage>, bool), StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages \
         WHERE conversation_id = ?1 AND message_id > ?2 ORDER BY message_id LIMIT ?3"
    ))?;
    let mut all = Vec::new();
    for id in conversation_ids_of(conn, user)? {
        let rows = stmt.query_map(
            params![id, sql_bound(after), probe_limit(limit)],
            row::message,
        )?;
        for message in rows {
            all.push(message?);
        }
    }
    all.sort_unstable_by_key(|m| m.message_id);
    let more = all.len() > limit;
    all.truncate(limit);
    Ok((all, more))
}

/// Per conversation of `user`, the first `limit + 1` messages after the cursor's position
/// there (by position; by id for a conversation the cursor does not name), one index range
/// scan each; then by conversation and position, so a page cut at `limit` ends every
/// conversation at a position the next page continues from.
pub(crate) fn messages_since(
    conn: &Connection,
    user: &str,
    cursor: &Cursor,
    limit: usize,
) -> Result<(Vec<Sequenced>, bool), StoreError> {
    let mut by_position = conn.prepare_cached(&format!(
        "SELECT {SEQUENCED_COLUMNS} FROM messages \
         WHERE conversation_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    ))?;
    let mut by_id = conn.prepare_cached(&format!(
        "SELECT {SEQUENCED_COLUMNS} FROM messages \
         WHERE conversation_id = ?1 AND message_id > ?2 ORDER BY seq LIMIT ?3"
    ))?;
    let mut all = Vec::new();
    for id in conversation_ids_of(conn, user)? {
        let rows = match cursor.positions.get(&id) {
            Some(at) => by_position.query_map(
                params![id, sql_bound(*at), probe_limit(limit)],
                row::sequenced,
            )?,
            None => by_id.query_map(
                params![id, sql_bound(cursor.after_message_id), probe_limit(limit)],
                row::sequenced,
            )?,
        };
        for message in rows {
            all.push(message?);
        }
    }
    all.sort_unstable_by(|a, b| {
        (&a.message.conversation_id, a.seq).cmp(&(&b.message.conversation_id, b.seq))
    });
    let more = all.len() > limit;
    all.truncate(limit);
    Ok((all, more))
}

pub(crate) fn history(
    conn: &Connection,
    conversation: &str,
    before: Option<u64>,
    limit: usize,
) -> Result<(Vec<StoredMessage>, bool), StoreError> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM conversations WHERE id = ?1")?
        .exists([conversation])?;
    if !exists {
        return Err(StoreError::NotFound);
    }
    let before = before.map_or(i64::MAX, sql_bound);
    let mut messages = conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
             WHERE conversation_id = ?1 AND message_id < ?2 ORDER BY message_id DESC LIMIT ?3"
        ))?
        .query_map(
            params![conversation, before, probe_limit(limit)],
            row::message,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let more = messages.len() > limit;
    messages.truncate(limit);
    messages.reverse();
    Ok((messages, more))
}

pub(crate) fn contacts_of(conn: &Connection, user: &str) -> Result<Vec<UserId>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT DISTINCT other.user_id FROM conversation_members me \
             JOIN conversation_members other ON other.conversation_id = me.conversation_id \
             WHERE me.user_id = ?1 AND other.user_id <> ?1 ORDER BY other.user_id",
        )?
        .query_map([user], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// No receipt row means SENT, at the message's own time.
pub(crate) fn receipts(
    conn: &Connection,
    message_id: u64,
) -> Result<Vec<(UserId, ReceiptStatus, u64)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT cm.user_id, coalesce(r.status, 0), \
                    CASE coalesce(r.status, 0) WHEN 2 THEN r.read_at WHEN 1 THEN r.delivered_at \
                         ELSE m.created_at END \
             FROM messages m \
             JOIN conversation_members cm ON cm.conversation_id = m.conversation_id \
             LEFT JOIN message_receipts r ON r.message_id = m.message_id AND r.user_id = cm.user_id \
             WHERE m.message_id = ?1 AND cm.user_id <> m.sender_id ORDER BY cm.user_id",
        )?
        .query_map([sql_bound(message_id)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// A stored message by its id.
pub(crate) fn message(
    conn: &Connection,
    message_id: i64,
) -> Result<Option<StoredMessage>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE message_id = ?1"
        ))?
        .query_row([message_id], row::message)
        .optional()?)
}
