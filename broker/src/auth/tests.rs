//! The authenticator against real files and tokens: every source, its refusals, and which
//! check a passcode is routed to.

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
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &Claims { sub, exp }, &key).expect("signs")
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

#[tokio::test]
async fn dev_mode_believes_login_and_defaults_to_guest() {
    let auth = Authenticator::from_config(&AuthConfig::default()).expect("builds");
    assert!(auth.is_dev_mode());
    let alice = auth
        .authenticate(Some("alice"), None)
        .await
        .expect("accepted");
    assert_eq!(alice.name(), "alice");
    // The passcode is not checked in dev mode.
    let alice = auth
        .authenticate(Some("alice"), Some("anything"))
        .await
        .expect("ok");
    assert_eq!(alice.name(), "alice");
    assert_eq!(
        auth.authenticate(None, None).await.expect("ok").name(),
        GUEST
    );
    assert_eq!(
        auth.authenticate(Some(""), None).await.expect("ok").name(),
        GUEST
    );
}

#[tokio::test]
async fn dev_mode_still_validates_names() {
    let auth = Authenticator::from_config(&AuthConfig::default()).expect("builds");
    let err = auth
        .authenticate(Some("../bob"), None)
        .await
        .expect_err("rejected");
    assert!(matches!(err, AuthError::InvalidName(_)));
}

#[tokio::test]
async fn users_file_accepts_right_password_and_hides_which_part_was_wrong() {
    let file = TempUsersFile::new("users", &[("alice", "wonderland")]);
    let auth = Authenticator::from_config(&AuthConfig {
        users_file: Some(file.0.clone()),
        ..AuthConfig::default()
    })
    .expect("builds");
    assert!(!auth.is_dev_mode());
    let ok = auth.authenticate(Some("alice"), Some("wonderland")).await;
    assert_eq!(ok.expect("accepted").name(), "alice");
    let wrong = auth
        .authenticate(Some("alice"), Some("x"))
        .await
        .expect_err("no");
    let unknown = auth
        .authenticate(Some("eve"), Some("wonderland"))
        .await
        .expect_err("no");
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert!(matches!(
        auth.authenticate(Some("alice"), None).await,
        Err(AuthError::MissingCredentials)
    ));
    assert!(matches!(
        auth.authenticate(None, Some("wonderland")).await,
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

#[tokio::test]
async fn hs256_token_names_the_principal() {
    let auth = hs256_auth();
    let token = hs256_token(SECRET, "alice", now() + 300);
    assert_eq!(
        auth.authenticate(None, Some(&token))
            .await
            .expect("ok")
            .name(),
        "alice"
    );
    // A matching login is fine.
    let with_login = auth.authenticate(Some("alice"), Some(&token)).await;
    assert_eq!(with_login.expect("ok").name(), "alice");
}

#[tokio::test]
async fn hs256_token_signed_with_another_secret_is_rejected() {
    let token = hs256_token(
        "some-other-secret-that-is-long-enough!!",
        "alice",
        now() + 300,
    );
    assert!(matches!(
        hs256_auth().authenticate(None, Some(&token)).await,
        Err(AuthError::InvalidToken)
    ));
}

#[tokio::test]
async fn expired_token_is_rejected() {
    let token = hs256_token(SECRET, "alice", now() - 2 * JWT_LEEWAY_SECS);
    assert!(matches!(
        hs256_auth().authenticate(None, Some(&token)).await,
        Err(AuthError::TokenExpired)
    ));
}

#[tokio::test]
async fn token_within_leeway_is_accepted() {
    let token = hs256_token(SECRET, "alice", now() - JWT_LEEWAY_SECS / 3);
    assert!(hs256_auth().authenticate(None, Some(&token)).await.is_ok());
}

#[tokio::test]
async fn token_without_exp_is_rejected() {
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
        hs256_auth().authenticate(None, Some(&token)).await,
        Err(AuthError::InvalidToken)
    ));
}

#[tokio::test]
async fn login_that_differs_from_sub_is_rejected() {
    let token = hs256_token(SECRET, "alice", now() + 300);
    assert!(matches!(
        hs256_auth().authenticate(Some("bob"), Some(&token)).await,
        Err(AuthError::LoginMismatch)
    ));
}

#[tokio::test]
async fn sub_must_be_a_valid_name() {
    let token = hs256_token(SECRET, "alice/queue", now() + 300);
    assert!(matches!(
        hs256_auth().authenticate(None, Some(&token)).await,
        Err(AuthError::InvalidName(_))
    ));
}

#[tokio::test]
async fn rs256_token_verifies_with_the_public_key() {
    let token = rs256_token("jwt-test-rsa-private.pem", "bob", now() + 300);
    assert_eq!(
        rs256_auth()
            .authenticate(None, Some(&token))
            .await
            .expect("ok")
            .name(),
        "bob"
    );
}

#[tokio::test]
async fn rs256_token_signed_with_another_key_is_rejected() {
    let token = rs256_token("jwt-test-rsa-other-private.pem", "bob", now() + 300);
    assert!(matches!(
        rs256_auth().authenticate(None, Some(&token)).await,
        Err(AuthError::InvalidToken)
    ));
}

#[tokio::test]
async fn algorithm_without_a_configured_key_is_rejected() {
    // Only RS256 is configured, so an HS256 token is refused whatever it is signed with;
    // in particular signing with the public key's bytes (algorithm confusion) fails.
    let public_pem =
        std::fs::read_to_string(data_file("jwt-test-rsa-public.pem")).expect("present");
    let token = hs256_token(&public_pem, "bob", now() + 300);
    assert!(matches!(
        rs256_auth().authenticate(None, Some(&token)).await,
        Err(AuthError::InvalidToken)
    ));
}

#[tokio::test]
async fn jwt_only_mode_requires_a_token() {
    let auth = hs256_auth();
    assert!(matches!(
        auth.authenticate(Some("alice"), None).await,
        Err(AuthError::MissingCredentials)
    ));
    assert!(matches!(
        auth.authenticate(Some("alice"), Some("password")).await,
        Err(AuthError::InvalidToken)
    ));
}

#[tokio::test]
async fn with_both_sources_the_passcode_shape_picks_the_check() {
    let file = TempUsersFile::new("both", &[("alice", "wonderland")]);
    let auth = Authenticator::from_config(&AuthConfig {
        users_file: Some(file.0.clone()),
        jwt_secret: Some(SECRET.to_owned()),
        ..AuthConfig::default()
    })
    .expect("builds");
    let by_password = auth.authenticate(Some("alice"), Some("wonderland")).await;
    assert_eq!(by_password.expect("ok").name(), "alice");
    // "carol" is in no users file: the token alone vouches for her.
    let token = hs256_token(SECRET, "carol", now() + 300);
    assert_eq!(
        auth.authenticate(None, Some(&token))
            .await
            .expect("ok")
            .name(),
        "carol"
    );
    let bad_token = hs256_token(
        "wrong-secret-wrong-secret-wrong-secret",
        "carol",
        now() + 300,
    );
    assert!(matches!(
        auth.authenticate(None, Some(&bad_token)).await,
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

fn pem_token(alg: Algorithm, private_pem_file: &str, sub: &str, exp: u64) -> String {
    let pem = std::fs::read(data_file(private_pem_file)).expect("test key present");
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        _ => EncodingKey::from_rsa_pem(&pem),
    }
    .expect("valid test key");
    jsonwebtoken::encode(&Header::new(alg), &Claims { sub, exp }, &key).expect("signs")
}

fn public_key_auth(file: &str) -> Authenticator {
    Authenticator::from_config(&AuthConfig {
        jwt_public_key: Some(data_file(file)),
        ..AuthConfig::default()
    })
    .expect("builds")
}

#[tokio::test]
async fn the_public_key_type_decides_the_one_algorithm_accepted() {
    let cases = [
        (
            "jwt-test-ec-public.pem",
            Algorithm::ES256,
            "jwt-test-ec-private.pem",
        ),
        (
            "jwt-test-ed25519-public.pem",
            Algorithm::EdDSA,
            "jwt-test-ed25519-private.pem",
        ),
        (
            "jwt-test-rsa-public.pem",
            Algorithm::RS256,
            "jwt-test-rsa-private.pem",
        ),
    ];
    for (public, alg, _) in cases {
        let auth = public_key_auth(public);
        for (_, other_alg, private) in cases {
            let token = pem_token(other_alg, private, "kim", now() + 300);
            let result = auth.authenticate(None, Some(&token)).await;
            if other_alg == alg {
                assert_eq!(result.expect("accepted").name(), "kim", "{public}");
            } else {
                assert!(
                    matches!(result, Err(AuthError::InvalidToken)),
                    "{public} accepted {other_alg:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_token_session_knows_its_expiry() {
    let exp = now() + 300;
    let token = hs256_token(SECRET, "alice", exp);
    let authenticated = hs256_auth()
        .verify_token(None, Some(&token))
        .await
        .expect("accepted");
    assert!(matches!(authenticated.proof, Proof::Token { exp: e } if e == exp));
}

#[test]
fn a_reload_revokes_removed_users_and_changed_passwords_only() {
    let file = TempUsersFile::new(
        "reload",
        &[("alice", "a-pw"), ("bob", "b-pw"), ("carol", "c-pw")],
    );
    let auth = Authenticator::from_config(&AuthConfig {
        users_file: Some(file.0.clone()),
        ..AuthConfig::default()
    })
    .expect("builds");
    let alice = auth
        .verify_password(Some("alice"), Some("a-pw"))
        .expect("ok");
    let bob = auth.verify_password(Some("bob"), Some("b-pw")).expect("ok");
    let carol = auth
        .verify_password(Some("carol"), Some("c-pw"))
        .expect("ok");

    // Rewritten: bob gone, carol with a new password (a fresh salt: a new hash).
    let text = format!(
        "[users]\nalice = \"{}\"\ncarol = \"{}\"\n",
        std::fs::read_to_string(&file.0)
            .expect("readable")
            .lines()
            .find_map(|l| l.strip_prefix("alice = \""))
            .and_then(|l| l.strip_suffix('"'))
            .expect("alice's line"),
        users::cheap_hash("c-new")
    );
    std::fs::write(&file.0, text).expect("writable");
    let update = auth.read_users().expect("valid").expect("a users file");
    assert_eq!(update.len(), 2);
    // Not in force before it is installed.
    assert!(auth.still_valid(&bob.principal, &bob.proof));
    auth.install_users(update);

    assert!(auth.still_valid(&alice.principal, &alice.proof));
    assert!(!auth.still_valid(&bob.principal, &bob.proof));
    assert!(!auth.still_valid(&carol.principal, &carol.proof));
    assert!(auth.verify_password(Some("carol"), Some("c-new")).is_ok());
    // Tokens and dev-mode logins do not depend on the users file.
    assert!(auth.still_valid(&bob.principal, &Proof::Token { exp: 0 }));
    assert!(auth.still_valid(&bob.principal, &Proof::Believed));

    // A broken file is an error and changes nothing.
    std::fs::write(&file.0, "[users]\nalice = \"not a hash\"\n").expect("writable");
    assert!(auth.read_users().is_err());
    assert!(auth.verify_password(Some("alice"), Some("a-pw")).is_ok());
}
