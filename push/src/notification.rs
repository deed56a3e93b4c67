//! What one push says: a title and body a phone shows, the data the app reads, and the key
//! that lets a newer notification for the same conversation replace an older one.

use std::collections::BTreeMap;

/// One coalesced notification for one user (the broker builds it; every provider renders it
/// in its own wire format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The user it is for (the webhook names them; device providers address the device).
    pub user: String,
    /// e.g. "priya" or "Team".
    pub title: String,
    /// e.g. "3 new messages from priya"; the content itself only with `--push-preview full`.
    pub body: String,
    /// String values only (FCM's `data` allows nothing else): `conversationId`, `messageId`
    /// (the newest), `count`, `senderId`.
    pub data: BTreeMap<String, String>,
    /// Replaces an older notification of the same conversation on the device (APNs
    /// `apns-collapse-id`, Web Push `Topic`, FCM `collapse_key`).
    pub collapse_id: Option<String>,
}
