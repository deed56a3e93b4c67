//! Web Push (RFC 8030): the browser's push service gave the page a subscription (an
//! endpoint URL and two keys); the broker POSTs the notification there, encrypted for the
//! subscription ([`ece`](crate::ece)) and signed with its VAPID key ([`Vapid`]). Because a
//! client chooses the endpoint, registration only accepts endpoints on allowed hosts.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use reqwest::Url;
use serde_json::json;

use crate::ece::{self, Recipient};
use crate::http::{self, Answer};
use crate::vapid::Vapid;
use crate::{Device, Notification, Platform, Provider, PushError, WebPushSubscription, collapse};

/// How long the push service keeps a notification for an offline browser (RFC 8030 §5.2).
const TTL: Duration = Duration::from_secs(24 * 3600);
/// RFC 8030 §5.3 names "normal" for an incoming chat message.
const URGENCY: &str = "normal";
/// RFC 8030 §5.4: a `Topic` is at most 32 URL-safe base64 characters.
const TOPIC_MAX: usize = 32;
/// The push services of the browsers in use, allowed when no host list is configured.
const DEFAULT_HOSTS: &[&str] = &[
    "fcm.googleapis.com",
    "*.push.services.mozilla.com",
    "web.push.apple.com",
    "*.notify.windows.com",
];

#[derive(Debug)]
pub struct WebPushProvider {
    client: reqwest::Client,
    vapid: Vapid,
    allowed_hosts: Vec<String>,
}

impl WebPushProvider {
    /// `allowed_hosts`: exact host names or `*.suffix`; empty means the browsers' own push
    /// services. `http:` endpoints are accepted only for listed loopback hosts (tests).
    pub fn new(
        vapid_key: &Path,
        vapid_subject: &str,
        allowed_hosts: &[String],
        client: reqwest::Client,
    ) -> Result<Self, PushError> {
        let allowed_hosts = if allowed_hosts.is_empty() {
            DEFAULT_HOSTS.iter().map(|h| (*h).to_owned()).collect()
        } else {
            allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect()
        };
        Ok(WebPushProvider {
            client,
            vapid: Vapid::read(vapid_key, vapid_subject)?,
            allowed_hosts,
        })
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts
            .iter()
            .any(|allowed| match allowed.strip_prefix("*.") {
                Some(suffix) => host
                    .strip_suffix(suffix)
                    .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
                None => host == allowed,
            })
    }

    /// The endpoint if the broker may POST there.
    fn endpoint(&self, subscription: &WebPushSubscription) -> Result<Url, PushError> {
        let invalid = |why: &str| PushError::InvalidDevice(format!("Web Push endpoint {why}"));
        let url = Url::parse(&subscription.endpoint).map_err(|_| invalid("is not a URL"))?;
        let host = url
            .host_str()
            .ok_or_else(|| invalid("has no host"))?
            .to_ascii_lowercase();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not carry credentials"));
        }
        if !self.host_allowed(&host) {
            return Err(invalid(&format!(
                "host {host} is not an allowed push service"
            )));
        }
        match url.scheme() {
            "https" => Ok(url),
            "http" if is_loopback(&host) => Ok(url),
            _ => Err(invalid("must be https")),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Browsers hand out base64url keys, some with padding.
fn decode_key(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

fn recipient(subscription: &WebPushSubscription) -> Result<Recipient, PushError> {
    let public = decode_key(&subscription.keys.p256dh)
        .and_then(|bytes| p256::PublicKey::from_sec1_bytes(&bytes).ok())
        .ok_or_else(|| PushError::InvalidDevice("p256dh is not a P-256 public key".into()))?;
    let auth = decode_key(&subscription.keys.auth)
        .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
        .ok_or_else(|| PushError::InvalidDevice("auth must be 16 bytes of base64url".into()))?;
    Ok(Recipient { public, auth })
}

/// What the service worker's `push` event reads with `event.data.json()`; a body too long
/// for one record is shortened rather than the notification lost.
fn payload(notification: &Notification) -> Vec<u8> {
    let render = |body: &str| {
        json!({"title": notification.title, "body": body, "data": notification.data})
            .to_string()
            .into_bytes()
    };
    let mut body = notification.body.clone();
    loop {
        let bytes = render(&body);
        if bytes.len() <= ece::MAX_PLAINTEXT || body.is_empty() {
            return bytes;
        }
        let mut cut = body
            .len()
            .saturating_sub(bytes.len() - ece::MAX_PLAINTEXT + 3);
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
        body.push('…');
    }
}

fn classify(answer: &Answer) -> Result<(), PushError> {
    match answer.status.as_u16() {
        200..=299 => Ok(()),
        // RFC 8030 §7.3: the subscription expired or was unsubscribed.
        404 | 410 => Err(PushError::DeadDevice(format!(
            "Web Push answered {}",
            answer.status
        ))),
        _ if http::is_temporary(answer.status) => Err(answer.retry("the Web Push service")),
        _ => Err(answer.rejected("the Web Push service")),
    }
}

#[async_trait::async_trait]
impl Provider for WebPushProvider {
    fn platform(&self) -> Platform {
        Platform::Webpush
    }

    fn accepts(&self, device: &Device) -> Result<(), PushError> {
        let Device::Webpush { subscription } = device else {
            return Err(PushError::InvalidDevice("not a Web Push device".into()));
        };
        self.endpoint(subscription)?;
        recipient(subscription).map(|_| ())
    }

    async fn send(&self, device: &Device, notification: &Notification) -> Result<(), PushError> {
        let Device::Webpush { subscription } = device else {
            return Err(PushError::InvalidDevice("not a Web Push device".into()));
        };
        // Checked again: the allowed hosts may have changed since it registered.
        let endpoint = self.endpoint(subscription)?;
        let body = ece::encrypt(&recipient(subscription)?, &payload(notification))?;
        let origin = endpoint.origin().ascii_serialization();
        let mut request = self
            .client
            .post(endpoint)
            .header("authorization", self.vapid.authorization(&origin)?)
            .header("content-encoding", "aes128gcm")
            .header("content-type", "application/octet-stream")
            .header("ttl", TTL.as_secs())
            .header("urgency", URGENCY);
        if let Some(id) = &notification.collapse_id {
            request = request.header(
                "topic",
                collapse::fit(id, TOPIC_MAX, collapse::base64url_byte),
            );
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| http::unanswered("the Web Push service", e))?;
        classify(&Answer::read(response).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_or_by_wildcard_suffix() {
        let provider = |hosts: &[&str]| WebPushProvider {
            client: reqwest::Client::new(),
            vapid: Vapid::for_tests(),
            allowed_hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        };
        let p = provider(&["*.push.services.mozilla.com", "web.push.apple.com"]);
        assert!(p.host_allowed("updates.push.services.mozilla.com"));
        assert!(!p.host_allowed("push.services.mozilla.com"));
        assert!(!p.host_allowed("evilpush.services.mozilla.com.attacker.net"));
        assert!(p.host_allowed("web.push.apple.com"));
        assert!(!p.host_allowed("apple.com"));
    }

    #[test]
    fn a_long_body_is_shortened_to_fit_one_record() {
        let notification = Notification {
            user: "bob".into(),
            title: "priya".into(),
            body: "é".repeat(5000),
            data: Default::default(),
            collapse_id: None,
        };
        let bytes = payload(&notification);
        assert!(bytes.len() <= ece::MAX_PLAINTEXT);
        let parsed: serde_json::Value = serde_json::from_slice(&bytes).expect("still JSON");
        assert!(parsed["body"].as_str().expect("body").ends_with('…'));
    }
}
