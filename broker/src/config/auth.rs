//! Authentication settings: where credentials come from (users file, JWT keys), and whether
//! dev mode may listen beyond loopback.

use std::path::PathBuf;

use super::setting::settings;

settings! {
    /// Where credentials come from; none configured is dev mode (the `login` is believed).
    pub struct AuthConfig, layer AuthLayer, heading Some("Authentication");

    /// TOML file of `name = "<argon2 PHC hash>"` lines under `[users]`.
    users_file: Option<PathBuf> = None,
        "FILE", "Users file: TOML [users] table of name = \"<argon2 PHC hash>\"";
    /// HS256 secret for JWTs carried in `passcode`.
    jwt_secret: Option<String> = None,
        "SECRET", "HS256 secret for JWTs sent as the CONNECT passcode (prefer the env var: flags show in `ps`)",
        hide_env_values(true);
    /// PEM file with a public key (RSA, EC P-256, Ed25519) for JWTs carried in `passcode`.
    jwt_public_key: Option<PathBuf> = None,
        "FILE", "PEM file with the public key for JWTs sent as the CONNECT passcode: RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA), detected from the file";
    /// JWKS (RFC 7517) URL whose keys verify JWTs that name a `kid`.
    jwt_jwks_url: Option<String> = None,
        "URL", "JWKS URL (https; plain http only to loopback) whose keys verify JWTs naming a kid; cached per Cache-Control max-age, refetched on an unknown kid at most every 30 s";
    /// PEM CA certificates trusted for the JWKS host instead of the built-in web roots.
    jwt_jwks_ca: Option<PathBuf> = None,
        "FILE", "PEM file of CA certificates to trust for the JWKS host instead of the built-in web roots (a private CA)";
    /// Required `iss` of every JWT.
    jwt_issuer: Option<String> = None,
        "ISSUER", "Required iss claim of every JWT; a token without it or with another is refused";
    /// Required `aud` of every JWT.
    jwt_audience: Option<String> = None,
        "AUDIENCE", "Required aud claim of every JWT (one of its values); a token without it or with another is refused";
    /// The user a CONNECT with neither `login` nor `passcode` becomes (RabbitMQ's STOMP
    /// `default_user`), when credentials are configured; off by default.
    default_user: Option<String> = None,
        "NAME", "With credentials configured, a CONNECT with neither login nor passcode becomes this user (its ACL rules apply); off by default";
    /// Permit binding a non-loopback address with no authentication configured.
    allow_anonymous: bool = false,
        "BOOL", "Allow listening beyond loopback with no authentication configured (dev mode: any login is believed). Takes an optional =true/=false";
    /// Bearer token of the operators' HTTP API at `/admin/...`; unset: no admin API.
    admin_token: Option<String> = None,
        "TOKEN", "Bearer token of the admin HTTP API at /admin (sessions, disconnects, drain); unset disables it (prefer the env var: flags show in `ps`)",
        hide_env_values(true);
}

impl AuthConfig {
    /// True when any credential source is configured; otherwise the broker is in dev mode.
    pub fn is_configured(&self) -> bool {
        self.users_file.is_some()
            || self.jwt_secret.is_some()
            || self.jwt_public_key.is_some()
            || self.jwt_jwks_url.is_some()
    }
}
