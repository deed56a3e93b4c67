//! Firebase Cloud Messaging, HTTP v1 API: one `messages:send` POST per device, authorised by
//! the service account's OAuth access token ([`GoogleAuth`]), and the answer classified the
//! way Google documents its errors (404 `UNREGISTERED` and an invalid token mean the device
//! is gone; 429 and 5xx mean later).

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::collapse;
use crate::google_auth::{GoogleAuth, ServiceAccount};
use crate::http::{self, Answer};
use crate::{Device, Notification, Platform, Provider, PushError};

/// FCM's base URL unless `--push-fcm-endpoint` names another.
pub const DEFAULT_ENDPOINT: &str = "https://fcm.googleapis.com";
/// `apns-collapse-id` is at most 64 bytes; FCM passes it on to Apple as is.
const APNS_COLLAPSE_MAX: usize = 64;

#[derive(Debug)]
pub struct FcmProvider {
    client: reqwest::Client,
    send_url: String,
    auth: GoogleAuth,
}

impl FcmProvider {
    /// Reads the service-account file; `endpoint` replaces [`DEFAULT_ENDPOINT`].
    pub fn new(
        credentials: &Path,
        endpoint: Option<&str>,
        client: reqwest::Client,
    ) -> Result<Self, PushError> {
        let account = ServiceAccount::read(credentials)?;
        let base = endpoint.unwrap_or(DEFAULT_ENDPOINT).trim_end_matches('/');
        let send_url = format!("{base}/v1/projects/{}/messages:send", account.project_id);
        reqwest::Url::parse(&send_url)
            .map_err(|e| PushError::Config(format!("FCM endpoint {base:?}: {e}")))?;
        let auth = GoogleAuth::new(&account, client.clone())?;
        Ok(FcmProvider {
            client,
            send_url,
            auth,
        })
    }

    async fn post(&self, bearer: &str, message: &Value) -> Result<reqwest::Response, PushError> {
        self.client
            .post(&self.send_url)
            .bearer_auth(bearer)
            .json(message)
            .send()
            .await
            .map_err(|e| http::unanswered("FCM", e))
    }
}

/// The v1 `Message` for one device: a visible notification, string-only `data`, and the
/// collapse key on both Android and (through FCM) APNs.
fn message(token: &str, notification: &Notification) -> Value {
    let mut message = json!({
        "token": token,
        "notification": {"title": notification.title, "body": notification.body},
        "data": notification.data,
        "android": {"priority": "high"},
    });
    if let Some(id) = &notification.collapse_id {
        message["android"]["collapse_key"] = json!(id);
        let apns_id = collapse::fit(id, APNS_COLLAPSE_MAX, collapse::header_byte);
        message["apns"] = json!({"headers": {"apns-collapse-id": apns_id}});
    }
    json!({ "message": message })
}

/// Google's error body: `{"error":{"code","message","status","details":[…]}}`.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: GoogleError,
}

#[derive(Debug, Default, Deserialize)]
struct GoogleError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<Value>,
}

impl GoogleError {
    /// The `FcmError` detail's `errorCode` (e.g. `UNREGISTERED`).
    fn fcm_code(&self) -> Option<&str> {
        self.details
            .iter()
            .find_map(|detail| detail.get("errorCode").and_then(Value::as_str))
    }

    /// Whether a 400 names the registration token as the bad argument (a `BadRequest`
    /// field violation on `message.token`, or the message Google sends for a malformed
    /// token) rather than something in our payload.
    fn blames_token(&self) -> bool {
        let field_violation = self.details.iter().any(|detail| {
            detail
                .get("fieldViolations")
                .and_then(Value::as_array)
                .is_some_and(|violations| {
                    violations
                        .iter()
                        .any(|v| v.get("field").and_then(Value::as_str) == Some("message.token"))
                })
        });
        field_violation || self.message.contains("registration token")
    }
}

fn classify(answer: &Answer) -> Result<(), PushError> {
    let status = answer.status.as_u16();
    if answer.status.is_success() {
        return Ok(());
    }
    if http::is_temporary(answer.status) {
        return Err(answer.retry("FCM"));
    }
    let body: ErrorBody = serde_json::from_str(&answer.body).unwrap_or_default();
    let error = body.error;
    let code = error.fcm_code();
    // A 404 without `UNREGISTERED` is a wrong project or URL: our fault, not the device's.
    if status == 404 && code == Some("UNREGISTERED") {
        return Err(PushError::DeadDevice(format!(
            "FCM: {}",
            answer.body_excerpt()
        )));
    }
    if status == 400
        && (code == Some("INVALID_ARGUMENT") || error.status == "INVALID_ARGUMENT")
        && error.blames_token()
    {
        return Err(PushError::DeadDevice(format!("FCM: {}", error.message)));
    }
    Err(answer.rejected("FCM"))
}

#[async_trait::async_trait]
impl Provider for FcmProvider {
    fn platform(&self) -> Platform {
        Platform::Fcm
    }

    async fn send(&self, device: &Device, notification: &Notification) -> Result<(), PushError> {
        let Device::Fcm { token } = device else {
            return Err(PushError::InvalidDevice("not an FCM device".into()));
        };
        let message = message(token, notification);
        let bearer = self.auth.token().await?;
        let mut response = self.post(&bearer, &message).await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            // The token was revoked or expired early: one fresh grant, one more try.
            self.auth.forget(&bearer).await;
            let bearer = self.auth.token().await?;
            response = self.post(&bearer, &message).await?;
        }
        classify(&Answer::read(response).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_errors_classify_as_documented() {
        let unregistered = r#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#;
        assert!(matches!(
            classify(&Answer::for_tests(404, unregistered)),
            Err(PushError::DeadDevice(_))
        ));
        let bad_token = r#"{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"}]}}"#;
        assert!(matches!(
            classify(&Answer::for_tests(400, bad_token)),
            Err(PushError::DeadDevice(_))
        ));
        let bad_payload = r#"{"error":{"code":400,"message":"Invalid value at 'message.data[0].value'","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.data[0].value"}]}]}}"#;
        assert!(matches!(
            classify(&Answer::for_tests(400, bad_payload)),
            Err(PushError::Rejected(_))
        ));
        assert!(matches!(
            classify(&Answer::for_tests(503, "")),
            Err(PushError::Retry { .. })
        ));
        assert!(matches!(
            classify(&Answer::for_tests(429, "")),
            Err(PushError::Retry { .. })
        ));
        assert!(matches!(
            classify(&Answer::for_tests(403, "{}")),
            Err(PushError::Rejected(_))
        ));
        assert!(
            classify(&Answer::for_tests(
                200,
                r#"{"name":"projects/p/messages/1"}"#
            ))
            .is_ok()
        );
    }

    #[test]
    fn the_message_carries_notification_data_and_collapse_keys() {
        let notification = Notification {
            user: "bob".into(),
            title: "priya".into(),
            body: "3 new messages from priya".into(),
            data: [("count".to_string(), "3".to_string())].into(),
            collapse_id: Some("conv-1".into()),
        };
        let message = message("tok", &notification);
        assert_eq!(message["message"]["token"], "tok");
        assert_eq!(
            message["message"]["notification"]["body"],
            "3 new messages from priya"
        );
        assert_eq!(message["message"]["data"]["count"], "3");
        assert_eq!(message["message"]["android"]["collapse_key"], "conv-1");
        assert_eq!(
            message["message"]["apns"]["headers"]["apns-collapse-id"],
            "conv-1"
        );
    }
}
