//! How the store's types are written in SQLite columns, and read back.

use rusqlite::Row;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::conversation::{ConversationKind, Role};
use crate::cursor::Sequenced;
use crate::error::StoreError;
use crate::message::StoredMessage;
use crate::receipt::ReceiptStatus;

/// The columns [`message`] reads, in order.
pub(crate) const MESSAGE_COLUMNS: &str = "message_id, conversation_id, sender_id, content, \
     content_type, client_message_id, created_at";

/// [`MESSAGE_COLUMNS`] and the message's position, for [`sequenced`].
pub(crate) const SEQUENCED_COLUMNS: &str = "message_id, conversation_id, sender_id, content, \
     content_type, client_message_id, created_at, seq";

pub(crate) fn sequenced(row: &Row<'_>) -> rusqlite::Result<Sequenced> {
    Ok(Sequenced {
        message: message(row)?,
        seq: row.get::<_, i64>(7)? as u64,
    })
}

pub(crate) fn message(row: &Row<'_>) -> rusqlite::Result<StoredMessage> {
    Ok(StoredMessage {
        message_id: row.get::<_, i64>(0)? as u64,
        conversation_id: row.get(1)?,
        sender_id: row.get(2)?,
        content: row.get(3)?,
        content_type: row.get(4)?,
        client_message_id: row.get(5)?,
        timestamp_ms: row.get::<_, i64>(6)? as u64,
    })
}

/// SQLite integers are signed; a Snowflake (41-bit time first) stays below 2^63.
pub(crate) fn sql_int(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(format!("{what} {value} is too large")))
}

/// Like [`sql_int`] for bounds, where clamping is the right answer.
pub(crate) fn sql_bound(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A row limit: one more than asked, to learn whether more exist.
pub(crate) fn probe_limit(limit: usize) -> i64 {
    i64::try_from(limit)
        .unwrap_or(i64::MAX - 1)
        .saturating_add(1)
}

impl ToSql for ConversationKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            ConversationKind::Direct => "DIRECT",
            ConversationKind::Group => "GROUP",
        }
        .into())
    }
}

impl FromSql for ConversationKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "DIRECT" => Ok(ConversationKind::Direct),
            "GROUP" => Ok(ConversationKind::Group),
            other => Err(FromSqlError::Other(
                format!("unknown conversation kind {other:?}").into(),
            )),
        }
    }
}

impl ToSql for Role {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
        .into())
    }
}

impl FromSql for Role {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(FromSqlError::Other(
                format!("unknown role {other:?}").into(),
            )),
        }
    }
}

impl ToSql for ReceiptStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(*self as i64))
    }
}

impl FromSql for ReceiptStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_i64()? {
            0 => Ok(ReceiptStatus::Sent),
            1 => Ok(ReceiptStatus::Delivered),
            2 => Ok(ReceiptStatus::Read),
            other => Err(FromSqlError::OutOfRange(other)),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    /// Busy, locked, I/O and full-disk failures may pass; anything else will not.
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::*;
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(
                    f.code,
                    DatabaseBusy
                        | DatabaseLocked
                        | SystemIoFailure
                        | DiskFull
                        | CannotOpen
                        | OutOfMemory
                        | FileLockingProtocolFailed
                ) =>
            {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Internal(e.to_string()),
        }
    }
}
