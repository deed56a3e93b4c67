//! Application errors of the chat contract: reported on `/user/queue/errors` as
//! `{code, message, receiptId?, clientMessageId?}`; the connection stays open and nothing is
//! partly stored. (Protocol errors remain STOMP ERROR frames.)

use chat_store::StoreError;
use serde::Serialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum AppError {
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("content is {size} bytes; the limit is {limit}")]
    ContentTooLarge { size: usize, limit: usize },
    #[error("no conversation {0:?}")]
    UnknownConversation(String),
    #[error("you are not a member of conversation {0:?}")]
    NotAMember(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("too many requests; slow down")]
    RateLimited,
    #[error("no application destination /app/{0}")]
    UnknownAction(String),
    #[error("storage is unavailable; retry later")]
    Unavailable,
    /// Accepted (members online may have seen it) but refused by durable storage: the sender
    /// never gets a RECEIPT for it and should retry with the same clientMessageId.
    #[error("message {message_id} was not stored ({reason}); retry with the same clientMessageId")]
    NotStored { message_id: u64, reason: String },
    #[error("internal error")]
    Internal,
    /// A push device this broker refuses (bad shape, platform not configured, endpoint host
    /// not allowed).
    #[error("{0}")]
    InvalidDevice(String),
    #[error("a user may register at most {0} push devices; unregister one first")]
    TooManyDevices(usize),
}

impl AppError {
    /// Stable machine-readable code, documented in docs/protocol.md.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "BAD_REQUEST",
            AppError::ContentTooLarge { .. } => "CONTENT_TOO_LARGE",
            AppError::UnknownConversation(_) => "UNKNOWN_CONVERSATION",
            AppError::NotAMember(_) => "NOT_A_MEMBER",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::RateLimited => "RATE_LIMITED",
            AppError::UnknownAction(_) => "UNKNOWN_DESTINATION",
            AppError::Unavailable => "UNAVAILABLE",
            AppError::NotStored { .. } => "NOT_STORED",
            AppError::Internal => "INTERNAL",
            AppError::InvalidDevice(_) => "INVALID_DEVICE",
            AppError::TooManyDevices(_) => "TOO_MANY_DEVICES",
        }
    }

    /// The HTTP status of the same error on the service API.
    pub fn http_status(&self) -> u16 {
        match self {
            AppError::BadRequest(_)
            | AppError::ContentTooLarge { .. }
            | AppError::InvalidDevice(_) => 400,
            AppError::TooManyDevices(_) => 409,
            AppError::UnknownConversation(_) | AppError::UnknownAction(_) => 404,
            AppError::NotAMember(_) | AppError::Forbidden(_) => 403,
            AppError::RateLimited => 429,
            AppError::Unavailable | AppError::NotStored { .. } => 503,
            AppError::Internal => 500,
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::UnknownConversation(String::new()),
            StoreError::Invalid(m) => AppError::BadRequest(m),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "chat store unavailable");
                AppError::Unavailable
            }
            StoreError::Internal(m) => {
                tracing::error!(error = %m, "chat store error");
                AppError::Internal
            }
            // Shutdown cancelled the request: the close reason says so, once per session.
            StoreError::Closed => {
                tracing::debug!("chat store closing");
                AppError::Unavailable
            }
        }
    }
}

impl From<serde_json::Error> for AppError {
    fn from(e: serde_json::Error) -> Self {
        AppError::BadRequest(e.to_string())
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorOut<'a> {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<&'a str>,
}
