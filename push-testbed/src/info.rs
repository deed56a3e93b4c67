//! The JSON file a testbed run writes once it listens: every file it generated, the ids, the
//! endpoints, the Web Push subscriptions, and the broker flags that point at all of it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Info {
    /// Plain-HTTP base URL of the same routes (the `/_testbed/...` API, for tests).
    pub control: String,
    /// The CA that signed the HTTPS listener's certificate (`--push-ca-file`).
    pub ca_file: PathBuf,
    pub fcm: FcmInfo,
    pub apns: ApnsInfo,
    pub webpush: WebPushInfo,
    /// `--push-*` flags configuring a broker for all three providers against this testbed.
    pub broker_flags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FcmInfo {
    /// The service-account JSON (`--push-fcm-credentials`).
    pub credentials: PathBuf,
    /// HTTPS base URL (`--push-fcm-endpoint`).
    pub endpoint: String,
    pub project_id: String,
    pub client_email: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApnsInfo {
    /// The .p8 key (`--push-apns-key`).
    pub key: PathBuf,
    pub key_id: String,
    pub team_id: String,
    pub topic: String,
    /// HTTPS (HTTP/2) base URL (`--push-apns-endpoint`).
    pub endpoint: String,
    /// Well-formed device tokens (any hex token is accepted).
    pub tokens: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebPushInfo {
    /// The VAPID private key (`--push-vapid-key`).
    pub vapid_key: PathBuf,
    pub vapid_subject: String,
    /// Its public key, base64url: the `applicationServerKey` the subscriptions were made with.
    pub vapid_public_key: String,
    /// The host to allow (`--push-webpush-allow`).
    pub allowed_host: String,
    /// Browser `PushSubscription` JSONs whose private keys the testbed holds; more from
    /// `POST /_testbed/webpush/subscribe`.
    pub subscriptions: Vec<Value>,
}
