//! Who a connection is: credential checks at CONNECT, producing the [`Principal`] that `/user`
//! destinations and authorization use for the rest of the session.
//!
//! [`Authenticator`] owns the credential sources, all read once at startup:
//! - nothing configured: dev mode, the `login` header is believed as-is (`guest` if absent);
//! - a users file of argon2 hashes ([`users`]), checked against `login`/`passcode`;
//! - JWT keys ([`jwt`]), the token travelling in `passcode` and naming the user in `sub`.
//!
//! With both a users file and JWT keys, a passcode shaped like a JWT goes to the JWT check and
//! anything else to the users file. Authorization (who may send or subscribe where) is not
//! here but in `acl`. [`LoginThrottle`] refuses CONNECTs for users and addresses with too many
//! recent failures before their credentials are checked.

mod error;
mod jwt;
mod principal;
mod throttle;
mod users;

pub use error::AuthError;
pub use jwt::LEEWAY_SECS as JWT_LEEWAY_SECS;
pub use principal::{MAX_NAME_CHARS, Principal};
pub use throttle::{Attempt, LoginThrottle, Policy as ThrottlePolicy, Throttled};
pub use users::hash_password;

use crate::config::AuthConfig;
use jwt::JwtVerifier;
use users::UserStore;

/// The principal of a dev-mode connection that sends no `login`.
pub const GUEST: &str = "guest";

/// Checks CONNECT credentials against the configured sources.
///
/// [`authenticate`](Self::authenticate) is synchronous and, with a users file, deliberately
/// slow (argon2 costs tens of milliseconds and ~19 MiB per check, to make offline guessing
/// expensive): call it from `tokio::task::spawn_blocking`, never on a runtime worker.
#[derive(Debug)]
pub struct Authenticator {
    users: Option<UserStore>,
    jwt: Option<JwtVerifier>,
}

impl Authenticator {
    /// Reads the users file and key files named in `config`. Fails on any unreadable or
    /// malformed file, so a misconfiguration stops the broker instead of locking users out.
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthError> {
        let users = config
            .users_file
            .as_deref()
            .map(UserStore::load)
            .transpose()?;
        let jwt = JwtVerifier::from_config(
            config.jwt_secret.as_deref(),
            config.jwt_public_key.as_deref(),
        )?;
        Ok(Self { users, jwt })
    }

    /// True when no credential source is configured: every `login` is believed.
    pub fn is_dev_mode(&self) -> bool {
        self.users.is_none() && self.jwt.is_none()
    }

    /// Turns the CONNECT `login` and `passcode` headers into a principal. Empty headers count
    /// as absent (some clients always send both). Blocking; see the type's docs.
    pub fn authenticate(
        &self,
        login: Option<&str>,
        passcode: Option<&str>,
    ) -> Result<Principal, AuthError> {
        let login = login.filter(|l| !l.is_empty());
        let passcode = passcode.filter(|p| !p.is_empty());
        if self.is_dev_mode() {
            return Principal::try_from(login.unwrap_or(GUEST));
        }
        let passcode = passcode.ok_or(AuthError::MissingCredentials)?;

        if let Some(jwt) = &self.jwt
            && (self.users.is_none() || jwt::looks_like_jwt(passcode))
        {
            let principal = jwt.verify(passcode)?;
            if let Some(login) = login
                && login != principal.name()
            {
                return Err(AuthError::LoginMismatch);
            }
            return Ok(principal);
        }
        match &self.users {
            Some(users) => users.verify(login.ok_or(AuthError::MissingCredentials)?, passcode),
            // Not reachable: no users and no JWT is dev mode, handled above. Refusing is the
            // safe answer should that ever change.
            None => Err(AuthError::BadCredentials),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::{SystemTime, UNIX_EPOCH};

    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    use super::*;

    const SECRET: &str = "an-hs256-test-secret-of-at-least-32-bytes";

    fn data_file(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name)
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs()
    }

    #[derive(serde::Serialize)]
    struct Claims<'a> {
        sub: &'a str,
        exp: u64,
    }

    fn hs256_token(secret: &str, sub: &str, exp: u64) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims { sub, exp },
            &EncodingKey::from_secret(secret.as_bytes()).expect("hmac key"),
        )
        .expect("signs")
    }

    fn rs256_token(private_pem_file: &str, sub: &str, exp: u64) -> String {
        let pem = std::fs::read(data_file(private_pem_file)).expect("test key present");
        let key = EncodingKey::from_rsa_pem(&pem).expect("valid test key");
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &Claims { sub, exp }, &key)
            .expect("signs")
    }

    /// A users file in a temp dir, removed when dropped.
    struct TempUsersFile(PathBuf);

    impl TempUsersFile {
        fn new(tag: &str, entries: &[(&str, &str)]) -> Self {
            let mut text = String::from("[users]\n");
            for (name, password) in entries {
                text.push_str(&format!("{name} = \"{}\"\n", users::cheap_hash(password)));
            }
            let path = std::env::temp_dir().join(format!(
                "stompbox-auth-test-{}-{tag}.toml",
                std::process::id()
            ));
            std::fs::write(&path, text).expect("temp dir writable");
            Self(path)
        }
    }

    impl Drop for TempUsersFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn hs256_auth() -> Authenticator {
        Authenticator::from_config(&AuthConfig {
            jwt_secret: Some(SECRET.to_owned()),
            ..AuthConfig::default()
        })
        .expect("builds")
    }

    fn rs256_auth() -> Authenticator {
        Authenticator::from_config(&AuthConfig {
            jwt_public_key: Some(data_file("jwt-test-rsa-public.pem")),
            ..AuthConfig::default()
        })
        .expect("builds")
    }

    #[test]
    fn principal_names_are_validated() {
        assert!(Principal::try_from("alice").is_ok());
        assert!(Principal::try_from("Zoë Ünicode").is_ok());
        assert!(Principal::try_from("x".repeat(128).as_str()).is_ok());
        assert!(Principal::try_from("x".repeat(129).as_str()).is_err());
        assert!(Principal::try_from("").is_err());
        assert!(Principal::try_from("a/b").is_err());
        assert!(Principal::try_from("a\nb").is_err());
        assert!(Principal::try_from("a\0b").is_err());
    }

    #[test]
    fn dev_mode_believes_login_and_defaults_to_guest() {
        let auth = Authenticator::from_config(&AuthConfig::default()).expect("builds");
        assert!(auth.is_dev_mode());
        let alice = auth.authenticate(Some("alice"), None).expect("accepted");
        assert_eq!(alice.name(), "alice");
        // The passcode is not checked in dev mode.
        let alice = auth
            .authenticate(Some("alice"), Some("anything"))
            .expect("ok");
        assert_eq!(alice.name(), "alice");
        assert_eq!(auth.authenticate(None, None).expect("ok").name(), GUEST);
        assert_eq!(auth.authenticate(Some(""), None).expect("ok").name(), GUEST);
    }

    #[test]
    fn dev_mode_still_validates_names() {
        let auth = Authenticator::from_config(&AuthConfig::default()).expect("builds");
        let err = auth
            .authenticate(Some("../bob"), None)
            .expect_err("rejected");
        assert!(matches!(err, AuthError::InvalidName(_)));
    }

    #[test]
    fn users_file_accepts_right_password_and_hides_which_part_was_wrong() {
        let file = TempUsersFile::new("users", &[("alice", "wonderland")]);
        let auth = Authenticator::from_config(&AuthConfig {
            users_file: Some(file.0.clone()),
            ..AuthConfig::default()
        })
        .expect("builds");
        assert!(!auth.is_dev_mode());
        let ok = auth.authenticate(Some("alice"), Some("wonderland"));
        assert_eq!(ok.expect("accepted").name(), "alice");
        let wrong = auth.authenticate(Some("alice"), Some("x")).expect_err("no");
        let unknown = auth
            .authenticate(Some("eve"), Some("wonderland"))
            .expect_err("no");
        assert_eq!(wrong.to_string(), unknown.to_string());
        assert!(matches!(
            auth.authenticate(Some("alice"), None),
            Err(AuthError::MissingCredentials)
        ));
        assert!(matches!(
            auth.authenticate(None, Some("wonderland")),
            Err(AuthError::MissingCredentials)
        ));
    }

    #[test]
    fn missing_users_file_fails_at_startup() {
        let err = Authenticator::from_config(&AuthConfig {
            users_file: Some(PathBuf::from("/nonexistent/users.toml")),
            ..AuthConfig::default()
        })
        .expect_err("missing file");
        assert!(matches!(err, AuthError::ReadFile { .. }));
    }

    #[test]
    fn hs256_token_names_the_principal() {
        let auth = hs256_auth();
        let token = hs256_token(SECRET, "alice", now() + 300);
        assert_eq!(
            auth.authenticate(None, Some(&token)).expect("ok").name(),
            "alice"
        );
        // A matching login is fine.
        let with_login = auth.authenticate(Some("alice"), Some(&token));
        assert_eq!(with_login.expect("ok").name(), "alice");
    }

    #[test]
    fn hs256_token_signed_with_another_secret_is_rejected() {
        let token = hs256_token(
            "some-other-secret-that-is-long-enough!!",
            "alice",
            now() + 300,
        );
        assert!(matches!(
            hs256_auth().authenticate(None, Some(&token)),
            Err(AuthError::InvalidToken)
        ));
    }

    #[test]
    fn expired_token_is_rejected() {
        let token = hs256_token(SECRET, "alice", now() - 2 * JWT_LEEWAY_SECS);
        assert!(matches!(
            hs256_auth().authenticate(None, Some(&token)),
            Err(AuthError::TokenExpired)
        ));
    }

    #[test]
    fn token_within_leeway_is_accepted() {
        let token = hs256_token(SECRET, "alice", now() - JWT_LEEWAY_SECS / 3);
        assert!(hs256_auth().authenticate(None, Some(&token)).is_ok());
    }

    #[test]
    fn token_without_exp_is_rejected() {
        #[derive(serde::Serialize)]
        struct NoExp<'a> {
            sub: &'a str,
        }
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &NoExp { sub: "alice" },
            &EncodingKey::from_secret(SECRET.as_bytes()).expect("hmac key"),
        )
        .expect("signs");
        assert!(matches!(
            hs256_auth().authenticate(None, Some(&token)),
            Err(AuthError::InvalidToken)
        ));
    }

    #[test]
    fn login_that_differs_from_sub_is_rejected() {
        let token = hs256_token(SECRET, "alice", now() + 300);
        assert!(matches!(
            hs256_auth().authenticate(Some("bob"), Some(&token)),
            Err(AuthError::LoginMismatch)
        ));
    }

    #[test]
    fn sub_must_be_a_valid_name() {
        let token = hs256_token(SECRET, "alice/queue", now() + 300);
        assert!(matches!(
            hs256_auth().authenticate(None, Some(&token)),
            Err(AuthError::InvalidName(_))
        ));
    }

    #[test]
    fn rs256_token_verifies_with_the_public_key() {
        let token = rs256_token("jwt-test-rsa-private.pem", "bob", now() + 300);
        assert_eq!(
            rs256_auth()
                .authenticate(None, Some(&token))
                .expect("ok")
                .name(),
            "bob"
        );
    }

    #[test]
    fn rs256_token_signed_with_another_key_is_rejected() {
        let token = rs256_token("jwt-test-rsa-other-private.pem", "bob", now() + 300);
        assert!(matches!(
            rs256_auth().authenticate(None, Some(&token)),
            Err(AuthError::InvalidToken)
        ));
    }

    #[test]
    fn algorithm_without_a_configured_key_is_rejected() {
        // Only RS256 is configured, so an HS256 token is refused whatever it is signed with;
        // in particular signing with the public key's bytes (algorithm confusion) fails.
        let public_pem =
            std::fs::read_to_string(data_file("jwt-test-rsa-public.pem")).expect("present");
        let token = hs256_token(&public_pem, "bob", now() + 300);
        assert!(matches!(
            rs256_auth().authenticate(None, Some(&token)),
            Err(AuthError::InvalidToken)
        ));
    }

    #[test]
    fn jwt_only_mode_requires_a_token() {
        let auth = hs256_auth();
        assert!(matches!(
            auth.authenticate(Some("alice"), None),
            Err(AuthError::MissingCredentials)
        ));
        assert!(matches!(
            auth.authenticate(Some("alice"), Some("password")),
            Err(AuthError::InvalidToken)
        ));
    }

    #[test]
    fn with_both_sources_the_passcode_shape_picks_the_check() {
        let file = TempUsersFile::new("both", &[("alice", "wonderland")]);
        let auth = Authenticator::from_config(&AuthConfig {
            users_file: Some(file.0.clone()),
            jwt_secret: Some(SECRET.to_owned()),
            ..AuthConfig::default()
        })
        .expect("builds");
        let by_password = auth.authenticate(Some("alice"), Some("wonderland"));
        assert_eq!(by_password.expect("ok").name(), "alice");
        // "carol" is in no users file: the token alone vouches for her.
        let token = hs256_token(SECRET, "carol", now() + 300);
        assert_eq!(
            auth.authenticate(None, Some(&token)).expect("ok").name(),
            "carol"
        );
        let bad_token = hs256_token(
            "wrong-secret-wrong-secret-wrong-secret",
            "carol",
            now() + 300,
        );
        assert!(matches!(
            auth.authenticate(None, Some(&bad_token)),
            Err(AuthError::InvalidToken)
        ));
    }

    #[test]
    fn bad_public_key_file_fails_at_startup() {
        let err = Authenticator::from_config(&AuthConfig {
            // Any file that is not an RSA public key in PEM.
            jwt_public_key: Some(data_file("README.md")),
            ..AuthConfig::default()
        })
        .expect_err("not a key");
        assert!(matches!(err, AuthError::JwtPublicKey { .. }));
    }
}
