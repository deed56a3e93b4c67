//! VAPID (RFC 8292): how the broker identifies itself to a Web Push service. Each request
//! carries `Authorization: vapid t=<JWT>, k=<public key>`, the JWT signed ES256 with the
//! broker's P-256 key, its `aud` the push service's origin, `sub` a contact, `exp` within
//! 24 hours. The push service checks the signature against `k` and, if the subscription was
//! made with an `applicationServerKey`, that `k` is that key.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::SecretKey;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use serde::Serialize;

use crate::PushError;

/// Push services refuse `exp` more than 24 h ahead; 12 h leaves room for clock skew.
const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

pub(crate) struct Vapid {
    key: EncodingKey,
    /// The uncompressed public point, base64url: the `k` parameter, and what a web app
    /// passes as `applicationServerKey` when it subscribes.
    public_key: String,
    subject: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid")
            .field("public_key", &self.public_key)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    exp: u64,
    sub: &'a str,
}

impl Vapid {
    /// Reads a P-256 private key in PEM, PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1
    /// (`BEGIN EC PRIVATE KEY`, what `openssl ecparam -genkey` writes).
    pub(crate) fn read(path: &Path, subject: &str) -> Result<Self, PushError> {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| PushError::Config(format!("reading {}: {e}", path.display())))?;
        let secret = SecretKey::from_pkcs8_pem(&pem)
            .or_else(|_| SecretKey::from_sec1_pem(&pem))
            .map_err(|_| {
                PushError::Config(format!(
                    "{} is not a P-256 private key in PEM",
                    path.display()
                ))
            })?;
        Self::new(&secret, subject)
    }

    fn new(secret: &SecretKey, subject: &str) -> Result<Self, PushError> {
        if !(subject.starts_with("mailto:") || subject.starts_with("https:")) {
            return Err(PushError::Config(format!(
                "the VAPID subject {subject:?} must be a mailto: or https: URI"
            )));
        }
        let der = secret
            .to_pkcs8_der()
            .map_err(|e| PushError::Config(format!("VAPID key: {e}")))?;
        let public = secret.public_key().to_sec1_point(false);
        Ok(Vapid {
            key: EncodingKey::from_ec_der(der.as_bytes()),
            public_key: URL_SAFE_NO_PAD.encode(public.as_bytes()),
            subject: subject.to_owned(),
        })
    }

    /// The `Authorization` value for a request to `origin` (`https://host[:port]`).
    pub(crate) fn authorization(&self, origin: &str) -> Result<String, PushError> {
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(TOKEN_LIFETIME)
            .as_secs();
        let claims = Claims {
            aud: origin,
            exp,
            sub: &self.subject,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.key)
            .map_err(|e| PushError::Config(format!("signing the VAPID token: {e}")))?;
        Ok(format!("vapid t={token}, k={}", self.public_key))
    }
}

#[cfg(test)]
impl Vapid {
    pub(crate) fn for_tests() -> Self {
        let key = SecretKey::from_slice(&[9u8; 32]).expect("a valid scalar");
        Self::new(&key, "mailto:tests@example.com").expect("a valid subject")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_must_be_a_contact_uri() {
        let key = SecretKey::from_slice(&[9u8; 32]).expect("scalar");
        assert!(Vapid::new(&key, "ops@example.com").is_err());
        let vapid = Vapid::new(&key, "mailto:ops@example.com").expect("valid");
        let header = vapid.authorization("https://push.example").expect("signs");
        assert!(header.starts_with("vapid t="));
        assert!(header.ends_with(&format!(", k={}", vapid.public_key)));
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(&vapid.public_key)
                .expect("b64")
                .len(),
            65
        );
    }
}
