//! The schema and its versioned migrations. The version lives in `stompbox_schema_version`
//! (one row per applied migration); all pending migrations run in one transaction under an
//! advisory lock, so concurrent starts apply each exactly once and a failed one leaves nothing.
//! Migrations are append-only: a released one is never edited.

use tokio_postgres::Client;

use crate::StoreError;
use crate::postgres::error::store_error;

/// Advisory lock key of schema changes (migrations and partition maintenance): "stompbox" in
/// ASCII, so it does not collide with another application's small integers.
pub(crate) const SCHEMA_LOCK: i64 = 0x73746f6d70626f78;

/// Migration `i` brings the schema from version `i` to `i + 1`.
///
/// - Times are BIGINT milliseconds (what the `ChatStore` types carry), except `messages
///   .created_at`, the partition key: a TIMESTAMPTZ so partitions are readable calendar months.
/// - `messages` is partitioned by month; its primary key must include the partition key, so it
///   is `(message_id, created_at)`: a replay of the same record (same id, same time) conflicts.
///   The (sender, client id) idempotency key cannot be a global UNIQUE on a partitioned table;
///   `append` checks it under a per-sender advisory lock instead (index below).
/// - A SENT receipt has no row: rows appear when a recipient's status first moves, as in the
///   SQLite store. `message_receipts` has no foreign key to `messages` (a partitioned target
///   would need `created_at` in every receipt row).
/// - `conversation_members.join_seq` keeps join order among members joined in the same ms.
///
/// Migration 2 (`sink_progress`): per events-topic partition, the offset below which every
/// record is in PostgreSQL (or dead-lettered). The sink writes it in the same transaction as
/// the rows, so it can never run ahead of them; the broker's sync barrier reads it
/// (`PostgresStore::sink_progress`).
///
/// Migration 4 (exact sync, `cursor.rs`): `messages.seq`, a message's position in its
/// conversation, and `conversations.last_seq`, the last one given. The direct store's `append`
/// takes the next one with `UPDATE conversations … RETURNING` in the inserting transaction, so
/// the row lock orders a conversation's commits by position; the sink numbers each batch's
/// new rows in record (Kafka partition) order the same way. Existing messages are numbered in
/// id order.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    user_id     TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL
);

CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('DIRECT', 'GROUP')),
    name        TEXT,
    creator     TEXT NOT NULL REFERENCES users (user_id),
    created_at  BIGINT NOT NULL
);

CREATE TABLE conversation_members (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (user_id),
    role            TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    joined_at       BIGINT NOT NULL,
    join_seq        BIGINT GENERATED ALWAYS AS IDENTITY,
    read_up_to      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_by_user ON conversation_members (user_id, conversation_id);

CREATE TABLE messages (
    message_id        BIGINT NOT NULL,
    conversation_id   TEXT NOT NULL REFERENCES conversations (id),
    sender_id         TEXT NOT NULL REFERENCES users (user_id),
    content           TEXT NOT NULL,
    content_type      TEXT NOT NULL,
    client_message_id TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (message_id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX messages_by_conversation ON messages (conversation_id, message_id);
CREATE INDEX messages_by_client_id ON messages (sender_id, client_message_id)
    WHERE client_message_id IS NOT NULL;

CREATE TABLE message_receipts (
    message_id   BIGINT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (user_id),
    status       SMALLINT NOT NULL CHECK (status IN (1, 2)),
    delivered_at BIGINT,
    read_at      BIGINT,
    PRIMARY KEY (message_id, user_id)
);
"#,
    r#"
CREATE TABLE sink_progress (
    topic       TEXT NOT NULL,
    partition   INT NOT NULL,
    next_offset BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ,
    PRIMARY KEY (topic, partition)
);
"#,
    // The per-row foreign keys of `messages` cost the sink 40–60 % of its insert time (a KEY
    // SHARE lock on the conversation and user row per inserted message; measured 1.6–2.7× in
    // docs/persistence.md). Both writers check instead: the direct store's `append` checks
    // membership (which implies both rows), the sink checks each batch's conversations once.
    r#"
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_conversation_id_fkey;
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_sender_id_fkey;
"#,
    r#"
ALTER TABLE conversations ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN seq BIGINT;
UPDATE messages m SET seq = r.n
FROM (SELECT message_id, created_at,
             row_number() OVER (PARTITION BY conversation_id ORDER BY message_id) AS n
      FROM messages) r
WHERE m.message_id = r.message_id AND m.created_at = r.created_at;
UPDATE conversations c SET last_seq = s.n
FROM (SELECT conversation_id, max(seq) AS n FROM messages GROUP BY conversation_id) s
WHERE c.id = s.conversation_id;
CREATE INDEX messages_by_position ON messages (conversation_id, seq);
"#,
    // Push devices (`device.rs`): one row per device address, whoever holds it. Registration
    // is rare and every node reads it, so even the streamed store writes it here directly.
    r#"
CREATE TABLE push_devices (
    address       TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    platform      TEXT NOT NULL,
    registration  TEXT NOT NULL,
    registered_at BIGINT NOT NULL
);
CREATE INDEX push_devices_by_user ON push_devices (user_id, registered_at);
"#,
];

/// Brings the schema up to date; refuses a schema written by a newer Stompbox.
pub(crate) async fn migrate(client: &mut Client) -> Result<u32, StoreError> {
    let tx = client.transaction().await.map_err(store_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await
        .map_err(store_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS stompbox_schema_version (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(store_error)?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM stompbox_schema_version",
            &[],
        )
        .await
        .map_err(store_error)?
        .get(0);
    let known = MIGRATIONS.len() as i32;
    if current > known {
        return Err(StoreError::Internal(format!(
            "database schema version {current} is newer than this build's {known}"
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(sql).await.map_err(store_error)?;
        tx.execute(
            "INSERT INTO stompbox_schema_version (version) VALUES ($1)",
            &[&(index as i32 + 1)],
        )
        .await
        .map_err(store_error)?;
    }
    tx.commit().await.map_err(store_error)?;
    Ok(known as u32)
}
