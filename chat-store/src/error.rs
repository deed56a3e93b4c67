//! What a store operation can fail with, split so the caller knows whether to retry.

/// `Unavailable` is transient (busy, I/O, the writer gone): retrying later may succeed.
/// `Internal` is permanent (corruption, a schema from the future, a bug): retrying will not help.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("conversation not found")]
    NotFound,
    /// The request breaks a rule of the store (its message says which); not retryable.
    #[error("{0}")]
    Invalid(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Internal(String),
    /// The runtime is shutting down and cancelled the operation before it ran: not a failure
    /// of the store, and nothing to report beyond the shutdown itself.
    #[error("the store is closing")]
    Closed,
}

impl StoreError {
    /// Whether the same request may succeed if retried later.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}
