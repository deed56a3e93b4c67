//! The OAuth 2.0 access token FCM HTTP v1 wants, obtained the way a Google service account
//! does without a Google library: a JWT-bearer grant (RFC 7523) signed RS256 with the
//! account's private key, POSTed to its `token_uri`. The token is cached until shortly
//! before it expires, and only one refresh runs at a time: senders arriving meanwhile wait
//! for it and share the result instead of each asking Google.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::PushError;
use crate::http::{self, Answer};

/// The only scope sending needs.
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google accepts assertions valid for at most an hour.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);
/// Refresh this long before the token expires, so a send never races its expiry.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// The fields of a service-account JSON key file that the grant uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ServiceAccount {
    pub project_id: String,
    pub client_email: String,
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    pub token_uri: String,
}

impl ServiceAccount {
    pub(crate) fn read(path: &Path) -> Result<Self, PushError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PushError::Config(format!("reading {}: {e}", path.display())))?;
        let account: ServiceAccount = serde_json::from_str(&text).map_err(|e| {
            PushError::Config(format!(
                "{} is not a service-account key: {e}",
                path.display()
            ))
        })?;
        for (name, value) in [
            ("project_id", &account.project_id),
            ("client_email", &account.client_email),
            ("token_uri", &account.token_uri),
        ] {
            if value.is_empty() {
                return Err(PushError::Config(format!(
                    "{}: {name} is empty",
                    path.display()
                )));
            }
        }
        Ok(account)
    }
}

/// Signs grants for one service account and caches the access token they buy.
pub(crate) struct GoogleAuth {
    client: reqwest::Client,
    client_email: String,
    key_id: Option<String>,
    token_uri: String,
    key: EncodingKey,
    cached: Mutex<Option<AccessToken>>,
}

impl std::fmt::Debug for GoogleAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleAuth")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

struct AccessToken {
    value: String,
    refresh_at: Instant,
}

#[derive(Serialize)]
struct GrantClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct GrantAnswer {
    access_token: String,
    expires_in: u64,
}

impl GoogleAuth {
    pub(crate) fn new(
        account: &ServiceAccount,
        client: reqwest::Client,
    ) -> Result<Self, PushError> {
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes()).map_err(|e| {
            PushError::Config(format!(
                "the service account's private_key is not an RSA PEM key: {e}"
            ))
        })?;
        Ok(GoogleAuth {
            client,
            client_email: account.client_email.clone(),
            key_id: account.private_key_id.clone(),
            token_uri: account.token_uri.clone(),
            key,
            cached: Mutex::new(None),
        })
    }

    /// A valid access token: the cached one, or a fresh grant.
    pub(crate) async fn token(&self) -> Result<String, PushError> {
        // Held across the grant on purpose: that is what makes it one refresh at a time.
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.value.clone());
        }
        let fresh = self.grant().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// FCM refused `rejected` (401): drop it, unless another sender already replaced it.
    pub(crate) async fn forget(&self, rejected: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == rejected) {
            *cached = None;
        }
    }

    async fn grant(&self) -> Result<AccessToken, PushError> {
        let assertion = self.assertion()?;
        let asked = Instant::now();
        let response = self
            .client
            .post(&self.token_uri)
            .form(&[
                ("grant_type", GRANT_TYPE),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| http::unanswered("the OAuth token endpoint", e))?;
        if !response.status().is_success() {
            let answer = Answer::read(response).await;
            if http::is_temporary(answer.status) {
                return Err(answer.retry("the OAuth token endpoint"));
            }
            // A refused grant (wrong key, revoked account, clock skew) fails every send alike.
            return Err(answer.rejected("the OAuth token endpoint"));
        }
        let answer: GrantAnswer = response.json().await.map_err(|e| PushError::Retry {
            reason: format!("unreadable OAuth token answer: {e}"),
            after: None,
        })?;
        let lifetime = Duration::from_secs(answer.expires_in);
        let usable = if lifetime > REFRESH_MARGIN * 2 {
            lifetime - REFRESH_MARGIN
        } else {
            lifetime / 2
        };
        Ok(AccessToken {
            value: answer.access_token,
            refresh_at: asked + usable,
        })
    }

    fn assertion(&self) -> Result<String, PushError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = GrantClaims {
            iss: &self.client_email,
            scope: SCOPE,
            aud: &self.token_uri,
            iat: now,
            exp: now + ASSERTION_LIFETIME.as_secs(),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid.clone_from(&self.key_id);
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| PushError::Config(format!("signing the OAuth grant: {e}")))
    }
}
