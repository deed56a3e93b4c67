//! Reads: plain functions over a client or transaction (a multi-statement answer runs in one
//! transaction, so a conversation and its members are one snapshot).

use tokio_postgres::GenericClient;

use crate::postgres::error::store_error;
use crate::postgres::row::{
    self, MESSAGE_COLUMNS, SEQUENCED_COLUMNS, probe_limit, sql_bound, u64_of,
};
use crate::{
    Conversation, ConversationKind, Cursor, Member, Role, Sequenced, StoreError, StoredMessage,
    UserId,
};

fn kind_of(text: &str) -> Result<ConversationKind, StoreError> {
    match text {
        "DIRECT" => Ok(ConversationKind::Direct),
        "GROUP" => Ok(ConversationKind::Group),
        other => Err(StoreError::Internal(format!(
            "unknown conversation kind {other}"
        ))),
    }
}

pub(crate) fn kind_text(kind: ConversationKind) -> &'static str {
    match kind {
        ConversationKind::Direct => "DIRECT",
        ConversationKind::Group => "GROUP",
    }
}

fn role_of(text: &str) -> Result<Role, StoreError> {
    match text {
        "admin" => Ok(Role::Admin),
        "member" => Ok(Role::Member),
        other => Err(StoreError::Internal(format!("unknown role {other}"))),
    }
}

pub(crate) fn role_text(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

pub(crate) async fn conversation(
    client: &impl GenericClient,
    id: &str,
) -> Result<Option<Conversation>, StoreError> {
    let Some(head) = client
        .query_opt(
            "SELECT kind, name, creator, created_at FROM conversations WHERE id = $1",
            &[&id],
        )
        .await
        .map_err(store_error)?
    else {
        return Ok(None);
    };
    let members = client
        .query(
            "SELECT user_id, role, joined_at FROM conversation_members \
             WHERE conversation_id = $1 ORDER BY joined_at, join_seq",
            &[&id],
        )
        .await
        .map_err(store_error)?
        .iter()
        .map(|r| {
            Ok(Member {
                user_id: r.get(0),
                role: role_of(r.get(1))?,
                joined_at_ms: u64_of(r.get(2)),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(Conversation {
        id: id.to_owned(),
        kind: kind_of(head.get(0))?,
        name: head.get(1),
        creator: head.get(2),
        members,
        created_at_ms: u64_of(head.get(3)),
    }))
}

/// Like [`conversation`], for a conversation known to exist.
pub(crate) async fn existing_conversation(
    client: &impl GenericClient,
    id: &str,
) -> Result<Conversation, StoreError> {
    conversation(client, id).await?.ok_or(StoreError::NotFound)
}

pub(crate) async fn conversation_exists(
    client: &impl GenericClient,
    id: &str,
) -> Result<bool, StoreError> {
    Ok(client
        .query_opt("SELECT 1 FROM conversations WHERE id = $1", &[&id])
        .await
        .map_err(store_error)?
        .is_some())
}

pub(crate) async fn conversations_of(
    client: &impl GenericClient,
    user: &str,
) -> Result<Vec<Conversation>, StoreError> {
    let ids = client
        .query(
            "SELECT c.id FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.user_id = $1 ORDER BY c.created_at, c.id",
            &[&user],
        )
        .await
        .map_err(store_error)?;
    let mut all = Vec::with_capacity(ids.len());
    for id in ids {
        all.push(existing_conversation(client, id.get(0)).await?);
    }
    Ok(all)
}

/// Per conversation of the user, the first `limit + 1` messages after `after` (one index range
/// scan each, via LATERAL), merged by id: bounded by conversations × limit, not by everyone
/// else's traffic.
pub(crate) async fn messages_after(
    client: &impl GenericClient,
    user: &str,
    after: u64,
    limit: usize,
) -> Result<(Vec<StoredMessage>, bool), StoreError> {
    let probe = probe_limit(limit);
    let rows = client
        .query(
            &format!(
                "SELECT m.message_id, m.conversation_id, m.sender_id, m.content, m.content_type, \
                        m.client_message_id, m.created_at \
                 FROM conversation_members cm CROSS JOIN LATERAL ( \
                     SELECT {MESSAGE_COLUMNS} FROM messages m \
                     WHERE m.conversation_id = cm.conversation_id AND m.message_id > $2 \
                     ORDER BY m.message_id LIMIT $3) AS m \
                 WHERE cm.user_id = $1 ORDER BY m.message_id LIMIT $3"
            ),
            &[&user, &sql_bound(after), &probe],
        )
        .await
        .map_err(store_error)?;
    let mut all = rows
        .iter()
        .map(row::message)
        .collect::<Result<Vec<_>, _>>()?;
    let more = all.len() > limit;
    all.truncate(limit);
    Ok((all, more))
}

/// Per conversation of `user`, the first `limit + 1` messages after the cursor's position
/// there (for a conversation the cursor does not name: with an id after its
/// `after_message_id`), one index range scan each, then by (conversation, position).
pub(crate) async fn messages_since(
    client: &impl GenericClient,
    user: &str,
    cursor: &Cursor,
    limit: usize,
) -> Result<(Vec<Sequenced>, bool), StoreError> {
    let probe = probe_limit(limit);
    let named: Vec<&str> = cursor.positions.keys().map(String::as_str).collect();
    let positions: Vec<i64> = cursor.positions.values().map(|p| sql_bound(*p)).collect();
    let rows = client
        .query(
            &format!(
                "SELECT {SEQUENCED_COLUMNS} \
                 FROM conversation_members cm \
                 LEFT JOIN unnest($2::text[], $3::bigint[]) AS c(id, at) \
                        ON c.id = cm.conversation_id \
                 CROSS JOIN LATERAL ( \
                     SELECT {SEQUENCED_COLUMNS} FROM messages m \
                     WHERE m.conversation_id = cm.conversation_id \
                       AND m.seq > coalesce(c.at, 0) \
                       AND (c.at IS NOT NULL OR m.message_id > $4) \
                     ORDER BY m.seq LIMIT $5) AS m \
                 WHERE cm.user_id = $1 ORDER BY m.conversation_id, m.seq LIMIT $5"
            ),
            &[
                &user,
                &named,
                &positions,
                &sql_bound(cursor.after_message_id),
                &probe,
            ],
        )
        .await
        .map_err(store_error)?;
    let mut all = rows
        .iter()
        .map(row::sequenced)
        .collect::<Result<Vec<_>, _>>()?;
    let more = all.len() > limit;
    all.truncate(limit);
    Ok((all, more))
}

pub(crate) async fn history(
    client: &impl GenericClient,
    conversation: &str,
    before: Option<u64>,
    limit: usize,
) -> Result<(Vec<StoredMessage>, bool), StoreError> {
    if !conversation_exists(client, conversation).await? {
        return Err(StoreError::NotFound);
    }
    let before = before.map_or(i64::MAX, sql_bound);
    let rows = client
        .query(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages \
                 WHERE conversation_id = $1 AND message_id < $2 ORDER BY message_id DESC LIMIT $3"
            ),
            &[&conversation, &before, &probe_limit(limit)],
        )
        .await
        .map_err(store_error)?;
    let mut messages = rows
        .iter()
        .map(row::message)
        .collect::<Result<Vec<_>, _>>()?;
    let more = messages.len() > limit;
    messages.truncate(limit);
    messages.reverse();
    Ok((messages, more))
}

pub(crate) async fn contacts_of(
    client: &impl GenericClient,
    user: &str,
) -> Result<Vec<UserId>, StoreError> {
    Ok(client
        .query(
            "SELECT DISTINCT other.user_id FROM conversation_members me \
             JOIN conversation_members other ON other.conversation_id = me.conversation_id \
             WHERE me.user_id = $1 AND other.user_id <> $1 ORDER BY other.user_id",
            &[&user],
        )
        .await
        .map_err(store_error)?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// No receipt row means SENT, at the message's own time.
pub(crate) async fn receipts(
    client: &impl GenericClient,
    message_id: u64,
) -> Result<Vec<(UserId, crate::ReceiptStatus, u64)>, StoreError> {
    client
        .query(
            "SELECT cm.user_id, coalesce(r.status, 0::smallint), \
                    CASE coalesce(r.status, 0) WHEN 2 THEN r.read_at WHEN 1 THEN r.delivered_at \
                         ELSE (extract(epoch FROM m.created_at) * 1000)::bigint END \
             FROM messages m \
             JOIN conversation_members cm ON cm.conversation_id = m.conversation_id \
             LEFT JOIN message_receipts r ON r.message_id = m.message_id AND r.user_id = cm.user_id \
             WHERE m.message_id = $1 AND cm.user_id <> m.sender_id ORDER BY cm.user_id",
            &[&sql_bound(message_id)],
        )
        .await
        .map_err(store_error)?
        .iter()
        .map(|r| Ok((r.get(0), row::status_of(r.get(1))?, u64_of(r.get(2)))))
        .collect()
}

/// A stored message by its id.
pub(crate) async fn message(
    client: &impl GenericClient,
    message_id: i64,
) -> Result<Option<StoredMessage>, StoreError> {
    client
        .query_opt(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE message_id = $1"),
            &[&message_id],
        )
        .await
        .map_err(store_error)?
        .as_ref()
        .map(row::message)
        .transpose()
}
