//! A token-verification key bound to the algorithms it may verify.
//!
//! The binding is what makes algorithm confusion impossible: a token's `alg` header only ever
//! selects among keys that were configured for that algorithm, so an RSA or EC public key is
//! never fed to HMAC as a secret, and `none` matches no key at all. The binding comes from the
//! key itself (its PEM object identifier, or a JWK's `kty`/`crv`), never from the token.

use std::path::Path;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::error::AuthError;

/// Length of an uncompressed P-256 point (`0x04 || X || Y`), as a PEM EC key yields it.
const P256_POINT_LEN: usize = 65;
/// Length of an uncompressed P-384 point.
const P384_POINT_LEN: usize = 97;

/// A decoding key and the one algorithm it verifies.
#[derive(Clone)]
pub(crate) struct BoundKey {
    key: DecodingKey,
    alg: Algorithm,
}

impl std::fmt::Debug for BoundKey {
    // The key material stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundKey").field("alg", &self.alg).finish()
    }
}

impl BoundKey {
    /// An HS256 shared secret.
    pub(crate) fn hs256(secret: &str) -> Result<Self, AuthError> {
        let key =
            DecodingKey::from_secret(secret.as_bytes()).map_err(|_| AuthError::EmptyJwtSecret)?;
        Ok(Self {
            key,
            alg: Algorithm::HS256,
        })
    }

    /// A PEM public key file, its type detected: RSA → RS256, EC P-256 → ES256 (P-384 →
    /// ES384), Ed25519 → EdDSA.
    pub(crate) fn from_pem_file(path: &Path) -> Result<Self, AuthError> {
        let pem = std::fs::read(path).map_err(|source| AuthError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        let unusable = |reason: String| AuthError::JwtPublicKey {
            path: path.to_owned(),
            reason,
        };
        // Each constructor checks the PEM's key-type object identifier, so at most one of
        // them accepts a given file.
        if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
            return Ok(Self {
                key,
                alg: Algorithm::RS256,
            });
        }
        if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
            let alg = match key.try_get_as_bytes().map(<[u8]>::len) {
                Ok(P256_POINT_LEN) => Algorithm::ES256,
                Ok(P384_POINT_LEN) => Algorithm::ES384,
                _ => {
                    return Err(unusable(
                        "EC key on a curve other than P-256 or P-384".into(),
                    ));
                }
            };
            return Ok(Self { key, alg });
        }
        if let Ok(key) = DecodingKey::from_ed_pem(&pem) {
            return Ok(Self {
                key,
                alg: Algorithm::EdDSA,
            });
        }
        Err(unusable(
            "not an RSA, EC (P-256/P-384) or Ed25519 public key in PEM".into(),
        ))
    }

    /// A key of a JWKS, or why it is skipped: symmetric keys (`oct`), encryption keys, curves
    /// and algorithms the broker does not verify. A key's `alg`, when present, must agree
    /// with its type; when absent the type decides.
    pub(crate) fn from_jwk(jwk: &Jwk) -> Result<Self, String> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return Err("an encryption key (use=enc)".into());
        }
        let by_type = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                ref other => return Err(format!("EC curve {other:?} is not supported")),
            },
            AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
                EllipticCurve::Ed25519 => Algorithm::EdDSA,
                ref other => return Err(format!("OKP curve {other:?} is not supported")),
            },
            // A shared secret has no place in a published key set.
            AlgorithmParameters::OctetKey(_) => return Err("a symmetric (oct) key".into()),
            _ => return Err("an unsupported key type".into()),
        };
        let alg = match jwk.common.key_algorithm {
            None => by_type,
            Some(declared) => {
                let declared = algorithm_of(declared)
                    .ok_or_else(|| format!("algorithm {declared:?} is not supported"))?;
                let same_family = match by_type {
                    Algorithm::RS256 => matches!(
                        declared,
                        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512
                    ),
                    other => declared == other,
                };
                if !same_family {
                    return Err(format!(
                        "alg {declared:?} does not fit its key type ({by_type:?})"
                    ));
                }
                declared
            }
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable key: {e}"))?;
        Ok(Self { key, alg })
    }

    /// Whether this key verifies tokens that say `alg`.
    pub(crate) fn verifies(&self, alg: Algorithm) -> bool {
        self.alg == alg
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

/// The signature algorithms a JWK may name that the broker verifies.
fn algorithm_of(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(json: serde_json::Value) -> Jwk {
        serde_json::from_value(json).expect("a JWK")
    }

    #[test]
    fn symmetric_and_encryption_keys_are_skipped() {
        let oct = jwk(serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "kid": "s"}));
        assert!(BoundKey::from_jwk(&oct).is_err());
        let enc = jwk(serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "use": "enc",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        }));
        assert!(BoundKey::from_jwk(&enc).is_err());
    }

    #[test]
    fn okp_key_verifies_eddsa_only() {
        let okp = jwk(serde_json::json!({
            "kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        }));
        let key = BoundKey::from_jwk(&okp).expect("usable");
        assert!(key.verifies(Algorithm::EdDSA));
        assert!(!key.verifies(Algorithm::HS256));
    }

    #[test]
    fn declared_alg_must_fit_the_key_type() {
        let okp = jwk(serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "HS256",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        }));
        assert!(BoundKey::from_jwk(&okp).is_err());
    }
}
