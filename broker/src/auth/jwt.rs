//! JWT bearer tokens carried in the CONNECT `passcode` header.
//!
//! HS256 with a shared secret and RS256 with a PEM public key are supported, either or both.
//! Each key is bound to its own algorithm and the token's `alg` only selects among the keys
//! configured, so an RS256 public key can never be used as an HMAC secret (the classic
//! algorithm-confusion attack) and `alg: none` is not accepted.
//!
//! Claims: `sub` (the principal name) and `exp` are required; `exp` and, when present, `nbf`
//! are checked with [`LEEWAY_SECS`] of clock skew. `aud` and `iss` are not checked: the
//! broker has no audience or issuer setting yet, so a deployment must not share its signing
//! key with services whose tokens should not open a broker session.

use std::path::Path;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::error::AuthError;
use super::principal::Principal;

/// Allowed clock skew between the token issuer and the broker. Small, because a token that
/// outlives its `exp` is a credential that should already be dead; 30 s covers NTP-synced
/// hosts with room to spare.
pub const LEEWAY_SECS: u64 = 30;

/// Secrets shorter than this are accepted but logged: HS256 wants at least 256 bits of key.
const MIN_RECOMMENDED_SECRET_LEN: usize = 32;

/// Verifies tokens with the configured keys.
pub(crate) struct JwtVerifier {
    hs256: Option<DecodingKey>,
    rs256: Option<DecodingKey>,
}

impl std::fmt::Debug for JwtVerifier {
    // Keys stay out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("hs256", &self.hs256.is_some())
            .field("rs256", &self.rs256.is_some())
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
}

impl JwtVerifier {
    /// Builds a verifier from the configured secret and/or public key file; `None` if neither.
    pub(crate) fn from_config(
        secret: Option<&str>,
        public_key: Option<&Path>,
    ) -> Result<Option<Self>, AuthError> {
        let hs256 = match secret {
            None => None,
            Some("") => return Err(AuthError::EmptyJwtSecret),
            Some(secret) => {
                if secret.len() < MIN_RECOMMENDED_SECRET_LEN {
                    tracing::warn!(
                        len = secret.len(),
                        "JWT secret is shorter than {MIN_RECOMMENDED_SECRET_LEN} bytes; \
                         use a longer random secret"
                    );
                }
                Some(
                    DecodingKey::from_secret(secret.as_bytes())
                        .map_err(|_| AuthError::EmptyJwtSecret)?,
                )
            }
        };
        let rs256 = match public_key {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| AuthError::ReadFile {
                    path: path.to_owned(),
                    source,
                })?;
                Some(
                    DecodingKey::from_rsa_pem(&pem).map_err(|e| AuthError::JwtPublicKey {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })?,
                )
            }
        };
        if hs256.is_none() && rs256.is_none() {
            return Ok(None);
        }
        Ok(Some(Self { hs256, rs256 }))
    }

    /// Verifies `token` and returns the principal named by its `sub` claim.
    pub(crate) fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        let key = match header.alg {
            Algorithm::HS256 => self.hs256.as_ref(),
            Algorithm::RS256 => self.rs256.as_ref(),
            _ => None,
        }
        .ok_or(AuthError::InvalidToken)?;

        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);

        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| match e
            .kind()
        {
            ErrorKind::ExpiredSignature => AuthError::TokenExpired,
            _ => AuthError::InvalidToken,
        })?;
        Principal::try_from(data.claims.sub.as_str())
    }
}

/// Whether `passcode` has the shape of a compact JWS: three non-empty base64url parts.
///
/// Used only to route a passcode when both a users file and JWT keys are configured; the
/// signature check decides validity.
pub(crate) fn looks_like_jwt(passcode: &str) -> bool {
    let mut parts = 0;
    for part in passcode.split('.') {
        parts += 1;
        let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if part.is_empty() || !part.bytes().all(base64url) {
            return false;
        }
    }
    parts == 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shape_is_three_base64url_parts() {
        assert!(looks_like_jwt(
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.abc-_1"
        ));
        assert!(!looks_like_jwt("hunter2"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt("my.pass word.x"));
        assert!(!looks_like_jwt("a.b.c="));
    }

    #[test]
    fn no_keys_means_no_verifier() {
        assert!(matches!(JwtVerifier::from_config(None, None), Ok(None)));
    }

    #[test]
    fn empty_secret_is_refused() {
        assert!(matches!(
            JwtVerifier::from_config(Some(""), None),
            Err(AuthError::EmptyJwtSecret)
        ));
    }

    #[test]
    fn unreadable_public_key_is_a_startup_error() {
        let err = JwtVerifier::from_config(None, Some(Path::new("/nonexistent/key.pem")))
            .expect_err("missing file");
        assert!(matches!(err, AuthError::ReadFile { .. }));
    }
}
