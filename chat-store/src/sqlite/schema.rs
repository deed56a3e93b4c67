//! The schema and its versioned migrations, and the connection settings every connection gets.
//!
//! The version lives in `PRAGMA user_version` (in the database header, so it commits atomically
//! with the migration's DDL). Migrations are append-only: a released one is never edited.

use std::time::Duration;

use rusqlite::Connection;

use crate::error::StoreError;
use crate::sqlite::checkpoint::WalPolicy;

/// How long a connection waits on another's lock before reporting `Unavailable`: a WAL
/// checkpoint or the in-memory store's rollback journal can hold one briefly; seconds means
/// something is wrong.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The writer's page cache, in KiB as SQLite's negative `cache_size` says (the default is
/// 2 MiB): 64 MiB keeps the B-tree pages a busy store writes to in memory.
const WRITER_CACHE_KIB: i64 = -65_536;

/// Migration `i` brings the database from version `i` to `i + 1`.
///
/// Statuses are integers (0 SENT, 1 DELIVERED, 2 READ) so "only forward" is `status < ?`.
/// A SENT receipt has no row: rows appear when a recipient's status first moves, so an append
/// writes one row whatever the group size.
///
/// Migration 2: `messages.seq`, a message's position in its conversation (1, 2, …; see
/// `cursor.rs`): assigned by `append` as one more than the conversation's last, which is
/// exact because the writer is the only one (and commits in that order). Existing messages
/// are numbered in id order, the order they were committed in on one node.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    user_id     TEXT PRIMARY KEY NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE conversations (
    id          TEXT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('DIRECT', 'GROUP')),
    name        TEXT,
    creator     TEXT NOT NULL REFERENCES users(user_id),
    created_at  INTEGER NOT NULL
);

CREATE TABLE conversation_members (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users(user_id),
    role            TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    joined_at       INTEGER NOT NULL,
    read_up_to      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_by_user ON conversation_members (user_id, conversation_id);

CREATE TABLE messages (
    message_id        INTEGER PRIMARY KEY NOT NULL,
    conversation_id   TEXT NOT NULL REFERENCES conversations(id),
    sender_id         TEXT NOT NULL REFERENCES users(user_id),
    content           TEXT NOT NULL,
    content_type      TEXT NOT NULL,
    client_message_id TEXT,
    created_at        INTEGER NOT NULL,
    UNIQUE (sender_id, client_message_id)
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, message_id);

CREATE TABLE message_receipts (
    message_id   INTEGER NOT NULL REFERENCES messages(message_id),
    user_id      TEXT NOT NULL REFERENCES users(user_id),
    status       INTEGER NOT NULL CHECK (status IN (0, 1, 2)),
    delivered_at INTEGER,
    read_at      INTEGER,
    PRIMARY KEY (message_id, user_id)
) WITHOUT ROWID;
"#,
    r#"
ALTER TABLE messages ADD COLUMN seq INTEGER;
UPDATE messages SET seq = (SELECT count(*) FROM messages m2
    WHERE m2.conversation_id = messages.conversation_id AND m2.message_id <= messages.message_id);
CREATE UNIQUE INDEX messages_by_position ON messages (conversation_id, seq);
"#,
    // Push devices (`device.rs`): one row per device address, whoever holds it.
    r#"
CREATE TABLE push_devices (
    address       TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL,
    platform      TEXT NOT NULL,
    registration  TEXT NOT NULL,
    registered_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX push_devices_by_user ON push_devices (user_id, registered_at);
"#,
];

/// Settings for every connection: foreign keys are per connection in SQLite, and so is the
/// busy timeout.
pub(crate) fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// Settings for the writer's connection of a file database: WAL so readers never block the
/// writer (nor it them), and `synchronous=FULL` so a commit is fsync'd before it returns — the
/// durability `append` promises (WAL's NORMAL could lose the last commits on power loss).
/// Checkpoints are the checkpointer's (its own automatic one is only a backstop), and the page
/// cache holds the indexes' hot pages (one per conversation and sender being written) so an
/// append reads none from the file.
pub(crate) fn configure_file_writer(conn: &Connection) -> Result<(), StoreError> {
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Internal(format!(
            "journal_mode is {mode}, WAL was refused"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Until the writer's thread replaces it with the checkpointer's hook (`WalShared::attach`):
    // the migrations, run before, checkpoint as SQLite would, at the backstop's threshold.
    conn.pragma_update(None, "wal_autocheckpoint", WalPolicy::default().backstop)?;
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
    Ok(())
}

/// Brings the schema up to date; refuses a database written by a newer Stompbox.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::Internal(format!(
            "database schema version {current} is newer than this build's {known}"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
