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
    /// PEM file with an RS256 public key for JWTs carried in `passcode`.
    jwt_public_key: Option<PathBuf> = None,
        "FILE", "PEM file with the RS256 public key for JWTs sent as the CONNECT passcode";
    /// Permit binding a non-loopback address with no authentication configured.
    allow_anonymous: bool = false,
        "BOOL", "Allow listening beyond loopback with no authentication configured (dev mode: any login is believed). Takes an optional =true/=false";
}

impl AuthConfig {
    /// True when any credential source is configured; otherwise the broker is in dev mode.
    pub fn is_configured(&self) -> bool {
        self.users_file.is_some() || self.jwt_secret.is_some() || self.jwt_public_key.is_some()
    }
}
