//! JWT bearer tokens carried in the CONNECT `passcode` header.
//!
//! Keys: an HS256 secret (`--jwt-secret`), a PEM public key (`--jwt-public-key`: RSA → RS256,
//! EC P-256 → ES256, Ed25519 → EdDSA, detected from the file), and a JWKS URL
//! (`--jwt-jwks-url`), any combination. Each key is bound to its algorithm ([`BoundKey`]) and
//! the token's `alg` only selects among the keys configured, so a public key can never be
//! used as an HMAC secret (algorithm confusion) and `alg: none` matches nothing. A token with
//! a `kid` is verified against the JWKS when one is configured; a token without one against
//! the static keys.
//!
//! Claims: `sub` (the principal name) and `exp` are required; `exp` and, when present, `nbf`
//! are checked with [`LEEWAY_SECS`] of clock skew. With `--jwt-issuer`/`--jwt-audience` set,
//! `iss`/`aud` must be present and match; without them they are not checked, so a deployment
//! must then not share its signing key with services whose tokens should not open a session.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::error::AuthError;
use super::jwks::{Jwks, JwksSource, NoKey};
use super::key::BoundKey;
use super::principal::Principal;
use crate::config::AuthConfig;

/// Allowed clock skew between the token issuer and the broker. Small, because a token that
/// outlives its `exp` is a credential that should already be dead; 30 s covers NTP-synced
/// hosts with room to spare.
pub const LEEWAY_SECS: u64 = 30;

/// Secrets shorter than this are accepted but logged: HS256 wants at least 256 bits of key.
const MIN_RECOMMENDED_SECRET_LEN: usize = 32;

/// Verifies tokens with the configured keys.
#[derive(Debug)]
pub(crate) struct JwtVerifier {
    /// `--jwt-secret` and `--jwt-public-key`, each bound to its algorithm.
    keys: Vec<BoundKey>,
    jwks: Option<Arc<Jwks>>,
    issuer: Option<String>,
    audience: Option<String>,
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

/// A verified token: who, and until when (Unix seconds, leeway not included).
#[derive(Debug)]
pub(crate) struct VerifiedToken {
    pub(crate) principal: Principal,
    pub(crate) exp: u64,
}

impl JwtVerifier {
    /// Builds a verifier from the configured keys; `None` if there are none.
    pub(crate) fn from_config(config: &AuthConfig) -> Result<Option<Self>, AuthError> {
        let mut keys = Vec::new();
        match config.jwt_secret.as_deref() {
            None => {}
            Some("") => return Err(AuthError::EmptyJwtSecret),
            Some(secret) => {
                if secret.len() < MIN_RECOMMENDED_SECRET_LEN {
                    tracing::warn!(
                        len = secret.len(),
                        "JWT secret is shorter than {MIN_RECOMMENDED_SECRET_LEN} bytes; \
                         use a longer random secret"
                    );
                }
                keys.push(BoundKey::hs256(secret)?);
            }
        }
        if let Some(path) = &config.jwt_public_key {
            keys.push(BoundKey::from_pem_file(path)?);
        }
        let jwks = match &config.jwt_jwks_url {
            None if config.jwt_jwks_ca.is_some() => {
                return Err(AuthError::JwksUrl {
                    url: String::new(),
                    reason: "--jwt-jwks-ca is set without --jwt-jwks-url".into(),
                });
            }
            None => None,
            Some(url) => Some(Arc::new(Jwks::new(JwksSource::new(
                url,
                config.jwt_jwks_ca.as_deref(),
            )?))),
        };
        if keys.is_empty() && jwks.is_none() {
            return Ok(None);
        }
        let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        Ok(Some(Self {
            keys,
            jwks,
            issuer: nonempty(&config.jwt_issuer),
            audience: nonempty(&config.jwt_audience),
        }))
    }

    /// Starts the JWKS refresher, if a JWKS is configured.
    pub(crate) fn start(&self, tasks: &TaskTracker, done: CancellationToken) {
        if let Some(jwks) = &self.jwks {
            tasks.spawn(Arc::clone(jwks).run(done));
        }
    }

    /// Verifies `token` and returns its principal (`sub`) and expiry. Awaits only when the
    /// token names a `kid` the JWKS cache does not hold (one rate-limited refetch).
    pub(crate) async fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        let alg = header.alg;
        let key = match (&header.kid, &self.jwks) {
            (Some(kid), Some(jwks)) => jwks.key(kid, alg).await.map_err(|e| match e {
                NoKey::Unknown => AuthError::UnknownKey,
                NoKey::WrongAlgorithm => AuthError::InvalidToken,
            })?,
            _ => Arc::new(
                self.keys
                    .iter()
                    .find(|k| k.verifies(alg))
                    .ok_or(AuthError::InvalidToken)?
                    .clone(),
            ),
        };
        self.check(token, alg, &key)
    }

    fn check(
        &self,
        token: &str,
        alg: Algorithm,
        key: &BoundKey,
    ) -> Result<VerifiedToken, AuthError> {
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &self.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);

        let data = jsonwebtoken::decode::<Claims>(token, key.decoding_key(), &validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::TokenExpired,
                ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
                ErrorKind::InvalidAudience => AuthError::WrongAudience,
                ErrorKind::MissingRequiredClaim(c) if c == "iss" => AuthError::WrongIssuer,
                ErrorKind::MissingRequiredClaim(c) if c == "aud" => AuthError::WrongAudience,
                _ => AuthError::InvalidToken,
            },
        )?;
        Ok(VerifiedToken {
            principal: Principal::try_from(data.claims.sub.as_str())?,
            exp: data.claims.exp,
        })
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
        assert!(matches!(
            JwtVerifier::from_config(&AuthConfig::default()),
            Ok(None)
        ));
    }

    #[test]
    fn empty_secret_is_refused() {
        let config = AuthConfig {
            jwt_secret: Some(String::new()),
            ..AuthConfig::default()
        };
        assert!(matches!(
            JwtVerifier::from_config(&config),
            Err(AuthError::EmptyJwtSecret)
        ));
    }

    #[test]
    fn unreadable_public_key_is_a_startup_error() {
        let config = AuthConfig {
            jwt_public_key: Some("/nonexistent/key.pem".into()),
            ..AuthConfig::default()
        };
        let err = JwtVerifier::from_config(&config).expect_err("missing file");
        assert!(matches!(err, AuthError::ReadFile { .. }));
    }

    #[test]
    fn jwks_url_over_plain_http_beyond_loopback_is_a_startup_error() {
        let config = AuthConfig {
            jwt_jwks_url: Some("http://keys.example.com/jwks.json".into()),
            ..AuthConfig::default()
        };
        let err = JwtVerifier::from_config(&config).expect_err("refused");
        assert!(matches!(err, AuthError::JwksUrl { .. }));
    }
}
