//! Column encodings: u64 ids and millisecond times as PostgreSQL BIGINT / TIMESTAMPTZ, and the
//! message row.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_postgres::Row;

use crate::postgres::error::invalid;
use crate::{ReceiptStatus, Sequenced, StoreError, StoredMessage};

/// The columns [`message`] reads, in its order.
pub(crate) const MESSAGE_COLUMNS: &str = "message_id, conversation_id, sender_id, content, \
     content_type, client_message_id, created_at";

/// A u64 for a BIGINT column: larger values are refused (the broker's Snowflakes stay below 2^63).
pub(crate) fn sql_int(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| invalid(format!("{what} {value} is out of range")))
}

/// A u64 as an upper/lower bound: values past i64::MAX compare like i64::MAX.
pub(crate) fn sql_bound(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// `limit + 1` rows tell whether more exist.
pub(crate) fn probe_limit(limit: usize) -> i64 {
    i64::try_from(limit)
        .unwrap_or(i64::MAX - 1)
        .saturating_add(1)
}

pub(crate) fn time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

pub(crate) fn ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// [`message`]'s columns of `messages m`, then the position, for [`sequenced`].
pub(crate) const SEQUENCED_COLUMNS: &str = "m.message_id, m.conversation_id, m.sender_id, \
     m.content, m.content_type, m.client_message_id, m.created_at, m.seq";

pub(crate) fn sequenced(row: &Row) -> Result<Sequenced, StoreError> {
    let seq: Option<i64> = row.try_get(7).map_err(super::error::store_error)?;
    Ok(Sequenced {
        message: message(row)?,
        seq: u64_of(seq.unwrap_or(0)),
    })
}

pub(crate) fn message(row: &Row) -> Result<StoredMessage, StoreError> {
    Ok(StoredMessage {
        message_id: u64_of(row.try_get(0).map_err(super::error::store_error)?),
        conversation_id: row.try_get(1).map_err(super::error::store_error)?,
        sender_id: row.try_get(2).map_err(super::error::store_error)?,
        content: row.try_get(3).map_err(super::error::store_error)?,
        content_type: row.try_get(4).map_err(super::error::store_error)?,
        client_message_id: row.try_get(5).map_err(super::error::store_error)?,
        timestamp_ms: ms(row.try_get(6).map_err(super::error::store_error)?),
    })
}

/// A BIGINT written by this store (never negative) back to u64.
pub(crate) fn u64_of(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Statuses are SMALLINT so "only forward" is a comparison: 0 SENT (no row), 1 DELIVERED, 2 READ.
pub(crate) fn status_of(code: i16) -> Result<ReceiptStatus, StoreError> {
    match code {
        0 => Ok(ReceiptStatus::Sent),
        1 => Ok(ReceiptStatus::Delivered),
        2 => Ok(ReceiptStatus::Read),
        other => Err(StoreError::Internal(format!(
            "unknown receipt status {other}"
        ))),
    }
}
