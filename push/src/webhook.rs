//! The signed webhook (`--push-webhook-url`): for integrators with their own push stack, one
//! POST per user notification carrying the user, the notification and the user's devices.
//!
//! Signed like Stripe's and GitHub's: `Stompbox-Signature: t=<unix seconds>,v1=<hex>` where
//! `v1` is HMAC-SHA256 under `--push-webhook-secret` over `"<t>.<body>"`. A receiver recomputes
//! it, compares in constant time and refuses an old `t` (a replayed request).

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::http::{self, Answer};
use crate::{Device, Notification, PushError};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "stompbox-signature";

/// The webhook provider.
#[derive(Debug)]
pub struct Webhook {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: String,
}

impl Webhook {
    /// `client` is the providers' shared HTTPS client (its roots include `--push-ca-file`).
    pub fn new(url: &str, secret: &str, client: reqwest::Client) -> Result<Self, PushError> {
        if secret.is_empty() {
            return Err(PushError::Config("the webhook secret is empty".into()));
        }
        let url = reqwest::Url::parse(url)
            .map_err(|e| PushError::Config(format!("webhook URL {url:?}: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(PushError::Config(format!(
                "webhook URL {url}: the scheme must be https or http, with a host"
            )));
        }
        Ok(Self {
            client,
            url,
            secret: secret.to_owned(),
        })
    }

    /// One attempt: POSTs the notification with `devices`; 2xx is delivered, 429 and 5xx are
    /// worth a retry (after `Retry-After` when given), anything else is refused for good.
    pub async fn send(
        &self,
        notification: &Notification,
        devices: &[Device],
    ) -> Result<(), PushError> {
        let body = body(notification, devices).to_string();
        let signature = signature(&self.secret, unix_now(), body.as_bytes());
        let response = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| http::unanswered("the webhook", e))?;
        let answer = Answer::read(response).await;
        if answer.status.is_success() {
            Ok(())
        } else if http::is_temporary(answer.status) {
            Err(answer.retry("the webhook"))
        } else {
            Err(answer.rejected("the webhook"))
        }
    }
}

/// `{"user", "title", "body", "data", "collapseId", "devices"}`.
pub fn body(notification: &Notification, devices: &[Device]) -> serde_json::Value {
    json!({
        "user": notification.user,
        "title": notification.title,
        "body": notification.body,
        "data": notification.data,
        "collapseId": notification.collapse_id,
        "devices": devices,
    })
}

/// `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Computed independently: python3 -c 'import hmac,hashlib;
        // print(hmac.new(b"Jefe", b"1700000000.{\"a\":1}", hashlib.sha256).hexdigest())'
        assert_eq!(
            signature("Jefe", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=fa5f6481efc59da48b19c9dc10196c9953e5651f8304b3a318b6b87d70272e0a"
        );
    }
}
