//! Apple Push Notification service, token-based: every request carries a provider token (an
//! ES256 JWT naming the key id and team id, signed with the .p8 key) over HTTP/2 to
//! `/3/device/<token>`. Apple wants the provider token reused, and refreshed no more often
//! than every 20 minutes and no less often than every 60, so one is cached and replaced
//! after 40.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::collapse;
use crate::http::{self, Answer};
use crate::{Device, Notification, Platform, Provider, PushError};

/// Apple's production base URL unless `--push-apns-endpoint` names another (the sandbox is
/// `https://api.sandbox.push.apple.com`).
pub const DEFAULT_ENDPOINT: &str = "https://api.push.apple.com";
/// Inside Apple's 20–60 minute window.
const TOKEN_REFRESH: Duration = Duration::from_secs(40 * 60);
const COLLAPSE_MAX: usize = 64;
/// How long Apple keeps trying a device that is off.
const EXPIRATION: Duration = Duration::from_secs(24 * 3600);
/// Real device tokens are 64 hex digits; Apple warns their length may grow.
const MAX_TOKEN_HEX: usize = 200;

/// What `ApnsProvider::new` needs beyond the key file.
#[derive(Debug, Clone)]
pub struct ApnsSettings<'a> {
    pub key: &'a Path,
    pub key_id: &'a str,
    pub team_id: &'a str,
    /// The app's bundle id, sent as `apns-topic`.
    pub topic: &'a str,
    pub endpoint: Option<&'a str>,
}

pub struct ApnsProvider {
    client: reqwest::Client,
    base: String,
    topic: String,
    key_id: String,
    team_id: String,
    key: EncodingKey,
    token: Mutex<Option<ProviderToken>>,
}

impl std::fmt::Debug for ApnsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApnsProvider")
            .field("base", &self.base)
            .field("topic", &self.topic)
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct ProviderToken {
    jwt: String,
    issued: Instant,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: u64,
}

/// Apple's error body: `{"reason":"BadDeviceToken"}`.
#[derive(Debug, Default, Deserialize)]
struct Reason {
    #[serde(default)]
    reason: String,
}

impl ApnsProvider {
    /// `client` must speak HTTP/2 (APNs accepts nothing else).
    pub fn new(settings: &ApnsSettings<'_>, client: reqwest::Client) -> Result<Self, PushError> {
        let pem = std::fs::read(settings.key)
            .map_err(|e| PushError::Config(format!("reading {}: {e}", settings.key.display())))?;
        let key = EncodingKey::from_ec_pem(&pem).map_err(|e| {
            PushError::Config(format!(
                "{} is not an APNs .p8 (PKCS#8 P-256) key: {e}",
                settings.key.display()
            ))
        })?;
        for (name, value) in [
            ("key id", settings.key_id),
            ("team id", settings.team_id),
            ("topic", settings.topic),
        ] {
            if value.trim().is_empty() {
                return Err(PushError::Config(format!("APNs needs its {name}")));
            }
        }
        let base = settings
            .endpoint
            .unwrap_or(DEFAULT_ENDPOINT)
            .trim_end_matches('/')
            .to_owned();
        reqwest::Url::parse(&base)
            .map_err(|e| PushError::Config(format!("APNs endpoint {base:?}: {e}")))?;
        Ok(ApnsProvider {
            client,
            base,
            topic: settings.topic.to_owned(),
            key_id: settings.key_id.to_owned(),
            team_id: settings.team_id.to_owned(),
            key,
            token: Mutex::new(None),
        })
    }

    /// The current provider token, signing a new one when it is 40 minutes old. Signing is
    /// a few microseconds, so a plain mutex keeps it to one signer at a time.
    fn provider_token(&self) -> Result<String, PushError> {
        let mut token = self
            .token
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(current) = token
            .as_ref()
            .filter(|t| t.issued.elapsed() < TOKEN_REFRESH)
        {
            return Ok(current.jwt.clone());
        }
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let jwt = jsonwebtoken::encode(
            &header,
            &Claims {
                iss: &self.team_id,
                iat,
            },
            &self.key,
        )
        .map_err(|e| PushError::Config(format!("signing the APNs provider token: {e}")))?;
        *token = Some(ProviderToken {
            jwt: jwt.clone(),
            issued: Instant::now(),
        });
        Ok(jwt)
    }

    /// Apple said the token expired: the next send signs a new one.
    fn forget(&self, rejected: &str) {
        let mut token = self
            .token
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if token.as_ref().is_some_and(|t| t.jwt == rejected) {
            *token = None;
        }
    }

    async fn post(
        &self,
        device_token: &str,
        notification: &Notification,
        body: &Value,
    ) -> Result<(String, Answer), PushError> {
        let jwt = self.provider_token()?;
        let expiration = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(EXPIRATION)
            .as_secs();
        let mut request = self
            .client
            .post(format!("{}/3/device/{device_token}", self.base))
            .header("authorization", format!("bearer {jwt}"))
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .header("apns-expiration", expiration)
            .json(body);
        if let Some(id) = &notification.collapse_id {
            request = request.header(
                "apns-collapse-id",
                collapse::fit(id, COLLAPSE_MAX, collapse::header_byte),
            );
        }
        let response = request
            .send()
            .await
            .map_err(|e| http::unanswered("APNs", e))?;
        Ok((jwt, Answer::read(response).await))
    }
}

/// The APNs payload: the alert in `aps`, the conversation as `thread-id` (so iOS groups
/// them), and `data`'s keys at the top level where the app's `userInfo` finds them.
fn payload(notification: &Notification) -> Value {
    let mut aps = json!({
        "alert": {"title": notification.title, "body": notification.body},
        "sound": "default",
    });
    if let Some(conversation) = notification.data.get("conversationId") {
        aps["thread-id"] = json!(conversation);
    }
    let mut body = Map::new();
    for (key, value) in &notification.data {
        body.insert(key.clone(), json!(value));
    }
    body.insert("aps".into(), aps);
    Value::Object(body)
}

fn reason(answer: &Answer) -> String {
    serde_json::from_str::<Reason>(&answer.body)
        .unwrap_or_default()
        .reason
}

fn classify(answer: &Answer) -> Result<(), PushError> {
    let status = answer.status.as_u16();
    if answer.status.is_success() {
        return Ok(());
    }
    let reason = reason(answer);
    match (status, reason.as_str()) {
        // 410 Unregistered: the app is gone from the device; 400 BadDeviceToken: not a
        // token of this environment at all.
        (410, _) | (400, "BadDeviceToken") => {
            Err(PushError::DeadDevice(format!("APNs: {status} {reason}")))
        }
        _ if http::is_temporary(answer.status) => Err(answer.retry("APNs")),
        _ => Err(answer.rejected("APNs")),
    }
}

fn token_expired(answer: &Answer) -> bool {
    answer.status.as_u16() == 403 && reason(answer) == "ExpiredProviderToken"
}

fn is_hex_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN_HEX
        && token.len().is_multiple_of(2)
        && token.bytes().all(|b| b.is_ascii_hexdigit())
}

#[async_trait::async_trait]
impl Provider for ApnsProvider {
    fn platform(&self) -> Platform {
        Platform::Apns
    }

    fn accepts(&self, device: &Device) -> Result<(), PushError> {
        match device {
            Device::Apns { token } if is_hex_token(token) => Ok(()),
            Device::Apns { .. } => Err(PushError::InvalidDevice(
                "an APNs device token is hex digits".into(),
            )),
            _ => Err(PushError::InvalidDevice("not an APNs device".into())),
        }
    }

    async fn send(&self, device: &Device, notification: &Notification) -> Result<(), PushError> {
        self.accepts(device)?;
        let token = device.address();
        let body = payload(notification);
        let (jwt, mut answer) = self.post(token, notification, &body).await?;
        if token_expired(&answer) {
            self.forget(&jwt);
            (_, answer) = self.post(token, notification, &body).await?;
        }
        classify(&answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apple_reasons_classify_as_documented() {
        let dead = r#"{"reason":"Unregistered","timestamp":1700000000000}"#;
        assert!(matches!(
            classify(&Answer::for_tests(410, dead)),
            Err(PushError::DeadDevice(_))
        ));
        let bad = r#"{"reason":"BadDeviceToken"}"#;
        assert!(matches!(
            classify(&Answer::for_tests(400, bad)),
            Err(PushError::DeadDevice(_))
        ));
        let topic = r#"{"reason":"BadTopic"}"#;
        assert!(matches!(
            classify(&Answer::for_tests(400, topic)),
            Err(PushError::Rejected(_))
        ));
        assert!(matches!(
            classify(&Answer::for_tests(429, r#"{"reason":"TooManyRequests"}"#)),
            Err(PushError::Retry { .. })
        ));
        assert!(matches!(
            classify(&Answer::for_tests(503, "")),
            Err(PushError::Retry { .. })
        ));
        assert!(token_expired(&Answer::for_tests(
            403,
            r#"{"reason":"ExpiredProviderToken"}"#
        )));
        assert!(classify(&Answer::for_tests(200, "")).is_ok());
    }

    #[test]
    fn tokens_are_hex() {
        assert!(is_hex_token(&"a1".repeat(32)));
        assert!(!is_hex_token("xyz"));
        assert!(!is_hex_token("../3/device/a1"));
        assert!(!is_hex_token(""));
    }
}
