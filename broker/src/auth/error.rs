//! Why authentication failed, or why the authenticator could not be built.
//!
//! The `Display` of the per-CONNECT variants goes verbatim into the `message` header of the
//! STOMP ERROR frame, so it is short, names no secret, and never says which of user name or
//! password was wrong (that would let a client enumerate users). Startup variants name files
//! and are only for the operator's log.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    // --- per CONNECT: sent to the client ---
    /// Unknown user or wrong password; deliberately indistinguishable.
    #[error("bad credentials")]
    BadCredentials,
    /// Authentication is configured and the CONNECT frame lacks `login` or `passcode`.
    #[error("login and passcode required")]
    MissingCredentials,
    /// The name would be unsafe as a principal (it appears inside `/user/<name>/...`).
    #[error("invalid user name: {0}")]
    InvalidName(&'static str),
    /// Malformed JWT, bad signature, unknown algorithm or missing claims.
    #[error("invalid token")]
    InvalidToken,
    /// A JWT whose `exp` is past (beyond the leeway); the client should fetch a new one.
    #[error("token expired")]
    TokenExpired,
    /// The token's `kid` is in no key set held, even after a (rate-limited) JWKS refetch.
    #[error("token signing key unknown")]
    UnknownKey,
    /// `--jwt-issuer` is set and the token's `iss` is absent or different.
    #[error("token issuer not accepted")]
    WrongIssuer,
    /// `--jwt-audience` is set and the token's `aud` is absent or does not contain it.
    #[error("token audience not accepted")]
    WrongAudience,
    /// Both `login` and a JWT were given and `login` differs from the token's `sub`.
    #[error("login does not match token subject")]
    LoginMismatch,
    /// A verified client certificate names one user and `login` names another.
    #[error("login does not match the client certificate")]
    CertificateLoginMismatch,
    /// A verified client certificate whose subject names no usable user.
    #[error("the client certificate names no user: {0}")]
    CertificateUnnamed(&'static str),

    // --- at startup: for the operator ---
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("users file {path} is not valid: {source}")]
    UsersFileSyntax {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("users file {path}: user {user:?}: {reason}")]
    UsersFileEntry {
        path: PathBuf,
        user: String,
        reason: String,
    },
    #[error("JWT public key {path} is not usable: {reason}")]
    JwtPublicKey { path: PathBuf, reason: String },
    #[error("JWKS URL {url:?}: {reason}")]
    JwksUrl { url: String, reason: String },
    #[error("JWKS CA file {path}: {reason}")]
    JwksCa { path: PathBuf, reason: String },
    #[error("JWT secret must not be empty")]
    EmptyJwtSecret,
    /// Hashing a password (the `hash-password` subcommand) failed.
    #[error("cannot hash password: {0}")]
    Hash(String),
}

impl AuthError {
    /// The failure's kind for `stompbox_auth_failures_total{reason}`: a fixed set of names,
    /// never the detail (which may carry a user name).
    pub fn label(&self) -> &'static str {
        match self {
            AuthError::BadCredentials => "bad_credentials",
            AuthError::MissingCredentials => "missing_credentials",
            AuthError::InvalidName(_) => "invalid_name",
            AuthError::InvalidToken => "invalid_token",
            AuthError::TokenExpired => "token_expired",
            AuthError::UnknownKey => "unknown_key",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::LoginMismatch => "login_mismatch",
            AuthError::CertificateLoginMismatch => "certificate_login_mismatch",
            AuthError::CertificateUnnamed(_) => "certificate_unnamed",
            _ => "other",
        }
    }
}
