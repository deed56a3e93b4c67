//! `tokio_postgres` and pool errors → [`StoreError`], split by SQLSTATE into transient
//! (`Unavailable`: retry later) and permanent (`Internal`).

use tokio_postgres::error::SqlState;

use crate::StoreError;

/// Whether retrying the same statement later may succeed: the connection broke or the server
/// is starting, stopping or out of a resource, or the transaction lost a serialization race.
/// Everything else (a constraint, a type, a syntax error) fails again the same way.
pub fn is_transient(err: &tokio_postgres::Error) -> bool {
    let Some(code) = err.code() else {
        // No SQLSTATE: the connection (I/O, closed) — or a client-side conversion, which is
        // permanent and has no I/O source.
        return err.is_closed()
            || std::error::Error::source(err).is_some_and(|s| s.is::<std::io::Error>());
    };
    let class = &code.code()[..2];
    matches!(class, "08" | "53" | "57" | "58")
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::LOCK_NOT_AVAILABLE
}

/// The server's message with its SQLSTATE, or the client's error with its cause
/// (tokio-postgres' own text is only the kind: "error performing TLS handshake", without
/// which certificate check failed).
fn describe(err: &tokio_postgres::Error) -> String {
    match (err.as_db_error(), std::error::Error::source(err)) {
        (Some(db), _) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        (None, Some(cause)) => format!("{err}: {cause}"),
        (None, None) => err.to_string(),
    }
}

pub(crate) fn store_error(err: tokio_postgres::Error) -> StoreError {
    if is_transient(&err) {
        StoreError::Unavailable(describe(&err))
    } else {
        StoreError::Internal(describe(&err))
    }
}

pub(crate) fn pool_error(err: deadpool_postgres::PoolError) -> StoreError {
    match err {
        deadpool_postgres::PoolError::Backend(err) => store_error(err),
        other => StoreError::Unavailable(format!("connection pool: {other}")),
    }
}

/// `INSERT` into `messages` for a time no partition covers (SQLSTATE 23514 from the router):
/// create that month's partition and retry.
pub(crate) fn is_missing_partition(err: &StoreError) -> bool {
    matches!(err, StoreError::Internal(msg) if msg.contains("no partition of relation"))
}

/// A lock wait that ran out (`lock_timeout`, SQLSTATE 55P03, as [`describe`] writes it): the
/// partition steps give up on it and leave the step for a later run.
pub(crate) fn is_lock_timeout(err: &StoreError) -> bool {
    matches!(err, StoreError::Unavailable(msg) if msg.ends_with("(SQLSTATE 55P03)"))
}

/// A unique violation (SQLSTATE 23505, as [`describe`] writes it): in the sink's apply, only a
/// COPY of message rows meeting a replay can raise it; the apply retries without COPY.
#[cfg(feature = "kafka")]
pub(crate) fn is_unique_violation(err: &StoreError) -> bool {
    matches!(err, StoreError::Internal(msg) if msg.ends_with("(SQLSTATE 23505)"))
}

pub(crate) fn invalid(why: impl Into<String>) -> StoreError {
    StoreError::Invalid(why.into())
}
