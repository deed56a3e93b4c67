//! What the testbed saw (every attempt with its answer, every accepted notification) and
//! what a test told it to do (answer some requests with an outage, declare tokens dead).

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A notification the testbed accepted, as the device would get it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Received {
    /// "fcm", "apns" or "webpush".
    pub platform: String,
    /// The FCM/APNs token, or the Web Push endpoint.
    pub device: String,
    /// The protocol headers that matter (apns-*, TTL, Urgency, Topic).
    pub headers: BTreeMap<String, String>,
    /// FCM: the `message`; APNs: the JSON payload; Web Push: the decrypted JSON.
    pub payload: Value,
    pub at_ms: u64,
}

/// One request and how the testbed answered it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub platform: String,
    pub device: String,
    pub status: u16,
    /// Why, when it was not accepted.
    pub reason: String,
}

/// `POST /_testbed/script`: added to what is already scripted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Script {
    /// Outages: the next `times` requests (of `platform`, or any) get `status`.
    #[serde(default)]
    pub fail: Vec<Failure>,
    /// Devices (token, endpoint or subscription id) the service declares gone: FCM 404
    /// UNREGISTERED, APNs 410 Unregistered, Web Push 410.
    #[serde(default)]
    pub dead: Vec<String>,
    /// Devices the service calls malformed: FCM 400 INVALID_ARGUMENT, APNs 400
    /// BadDeviceToken.
    #[serde(default)]
    pub invalid: Vec<String>,
    /// Invalidate every FCM access token issued so far (the next send gets 401).
    #[serde(default)]
    pub revoke_access_tokens: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default = "Failure::default_status")]
    pub status: u16,
    /// Sent as is in `Retry-After` (seconds or an HTTP date).
    #[serde(default)]
    pub retry_after: Option<String>,
    #[serde(default = "Failure::default_times")]
    pub times: u32,
}

impl Failure {
    fn default_status() -> u16 {
        503
    }
    fn default_times() -> u32 {
        1
    }
}

/// What a scripted device or outage makes the service answer instead of accepting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scripted {
    Outage(Outage),
    Dead,
    Invalid,
}

/// A scripted outage: its status, and the `Retry-After` to send with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outage {
    status: u16,
    retry_after: Option<String>,
}

impl Outage {
    /// The service's own error answer (`render` gives its body for the status), with the
    /// scripted `Retry-After`.
    pub(crate) fn answer(self, render: impl FnOnce(StatusCode) -> Response) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let mut response = render(status);
        if let Some(after) = self
            .retry_after
            .and_then(|a| HeaderValue::from_str(&a).ok())
        {
            response.headers_mut().insert(RETRY_AFTER, after);
        }
        response
    }
}

/// Counters a test checks caching with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// OAuth grants the token endpoint answered.
    pub oauth_grants: u64,
    /// Distinct APNs provider tokens seen (Apple wants them reused).
    pub apns_provider_tokens: u64,
}

#[derive(Debug, Default)]
struct Inner {
    received: Vec<Received>,
    attempts: Vec<Attempt>,
    failures: Vec<Failure>,
    dead: HashSet<String>,
    invalid: HashSet<String>,
    oauth_grants: u64,
    provider_tokens: HashSet<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Recorder {
    inner: Mutex<Inner>,
}

/// The values of `names` in `headers` (those present and readable).
pub(crate) fn headers(headers: &HeaderMap, names: &[&str]) -> BTreeMap<String, String> {
    names
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect()
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Recorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn attempt(&self, platform: &str, device: &str, status: u16, reason: &str) {
        self.lock().attempts.push(Attempt {
            platform: platform.into(),
            device: device.into(),
            status,
            reason: reason.into(),
        });
    }

    pub(crate) fn accept(
        &self,
        platform: &str,
        device: &str,
        headers: BTreeMap<String, String>,
        payload: Value,
    ) {
        let mut inner = self.lock();
        inner.attempts.push(Attempt {
            platform: platform.into(),
            device: device.into(),
            status: 200,
            reason: String::new(),
        });
        inner.received.push(Received {
            platform: platform.into(),
            device: device.into(),
            headers,
            payload,
            at_ms: now_ms(),
        });
    }

    /// Whether the script overrides this request; an outage is used up by asking.
    pub(crate) fn scripted(&self, platform: &str, devices: &[&str]) -> Option<Scripted> {
        let mut inner = self.lock();
        if let Some(failure) = inner
            .failures
            .iter_mut()
            .find(|f| f.times > 0 && f.platform.as_deref().is_none_or(|p| p == platform))
        {
            failure.times -= 1;
            return Some(Scripted::Outage(Outage {
                status: failure.status,
                retry_after: failure.retry_after.clone(),
            }));
        }
        if devices.iter().any(|d| inner.dead.contains(*d)) {
            return Some(Scripted::Dead);
        }
        if devices.iter().any(|d| inner.invalid.contains(*d)) {
            return Some(Scripted::Invalid);
        }
        None
    }

    pub(crate) fn script(&self, script: Script) {
        let mut inner = self.lock();
        inner.failures.extend(script.fail);
        inner.dead.extend(script.dead);
        inner.invalid.extend(script.invalid);
    }

    pub(crate) fn granted(&self) {
        self.lock().oauth_grants += 1;
    }

    pub(crate) fn provider_token_seen(&self, jwt: &str) {
        let mut inner = self.lock();
        if !inner.provider_tokens.contains(jwt) {
            inner.provider_tokens.insert(jwt.to_owned());
        }
    }

    pub(crate) fn received(&self, platform: Option<&str>) -> Vec<Received> {
        self.lock()
            .received
            .iter()
            .filter(|r| platform.is_none_or(|p| r.platform == p))
            .cloned()
            .collect()
    }

    pub(crate) fn attempts(&self) -> Vec<Attempt> {
        self.lock().attempts.clone()
    }

    pub(crate) fn stats(&self) -> Stats {
        let inner = self.lock();
        Stats {
            oauth_grants: inner.oauth_grants,
            apns_provider_tokens: inner.provider_tokens.len() as u64,
        }
    }

    /// Forgets what was seen and scripted (counters too).
    pub(crate) fn reset(&self) {
        *self.lock() = Inner::default();
    }
}
