//! JWT keys beyond HS256/RS256, issuer and audience, and the end of a session whose token
//! expires: ES256 and EdDSA tokens open sessions; a token whose `alg` fits no configured key
//! (algorithm confusion, `none`) is refused; `--jwt-issuer`/`--jwt-audience` refuse tokens
//! without or with other `iss`/`aud`; a session gets ERROR `token expired` when its token's
//! `exp` (plus the 30 s leeway) passes, and the connection closes.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conformance_tests::client::connect_frame;
use conformance_tests::{Broker, Command, Frame, FrameExt, TcpClient, WAIT};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const SECRET: &str = "conformance-secret-0123456789abcdef";
/// The broker's clock-skew allowance (`auth::JWT_LEEWAY_SECS`).
const LEEWAY_SECS: u64 = 30;

fn key_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../broker/tests/data")
        .join(name)
}

fn key_arg(name: &str) -> String {
    key_file(name).to_str().expect("UTF-8 path").to_owned()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: serde_json::Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), &claims, key).expect("JWT encodes")
}

fn pem_key(alg: Algorithm, private_pem: &str) -> EncodingKey {
    let pem = std::fs::read(key_file(private_pem)).expect("test key present");
    match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        other => panic!("no PEM key for {other:?}"),
    }
    .expect("valid test key")
}

fn claims(sub: &str) -> serde_json::Value {
    json!({ "sub": sub, "exp": now() + 3600 })
}

async fn attempt(broker: &Broker, token: &str) -> (TcpClient, Frame) {
    let mut client = TcpClient::open(broker.stomp_addr).await;
    let reply = client
        .handshake(connect_frame(
            Command::Connect,
            &[
                ("accept-version", "1.2"),
                ("host", "localhost"),
                ("passcode", token),
                ("heart-beat", "0,0"),
            ],
        ))
        .await;
    (client, reply)
}

async fn assert_accepted(broker: &Broker, token: &str, user: &str) -> TcpClient {
    let (client, reply) = attempt(broker, token).await;
    assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
    assert_eq!(reply.value("user-name"), user);
    client
}

async fn assert_refused(broker: &Broker, token: &str, why: &str) {
    let (mut client, reply) = attempt(broker, token).await;
    assert_eq!(reply.command, Command::Error, "{why}: {}", reply.describe());
    assert_eq!(reply.value("message"), "authentication failed", "{why}");
    client.expect_closed(WAIT).await;
}

#[tokio::test]
async fn es256_token_opens_a_session_and_other_algorithms_are_refused() {
    let broker = Broker::start(&["--jwt-public-key", &key_arg("jwt-test-ec-public.pem")]);
    let es256 = pem_key(Algorithm::ES256, "jwt-test-ec-private.pem");
    assert_accepted(
        &broker,
        &sign(Algorithm::ES256, &es256, claims("erin")),
        "erin",
    )
    .await;

    // Algorithm confusion: HMAC "signed" with the public key's PEM bytes.
    let public_pem = std::fs::read(key_file("jwt-test-ec-public.pem")).expect("present");
    let confused = EncodingKey::from_secret(&public_pem).expect("HMAC key");
    let hs256 = sign(Algorithm::HS256, &confused, claims("erin"));
    assert_refused(&broker, &hs256, "HS256 with the public key as secret").await;
    // A key of another type, and no signature at all.
    let ed = pem_key(Algorithm::EdDSA, "jwt-test-ed25519-private.pem");
    let eddsa = sign(Algorithm::EdDSA, &ed, claims("erin"));
    assert_refused(&broker, &eddsa, "EdDSA token, EC key configured").await;
    assert_refused(&broker, &unsigned("erin"), "alg none").await;
}

#[tokio::test]
async fn eddsa_token_opens_a_session_and_es256_is_refused() {
    let broker = Broker::start(&["--jwt-public-key", &key_arg("jwt-test-ed25519-public.pem")]);
    let ed = pem_key(Algorithm::EdDSA, "jwt-test-ed25519-private.pem");
    assert_accepted(
        &broker,
        &sign(Algorithm::EdDSA, &ed, claims("eddie")),
        "eddie",
    )
    .await;
    let es256 = pem_key(Algorithm::ES256, "jwt-test-ec-private.pem");
    let wrong = sign(Algorithm::ES256, &es256, claims("eddie"));
    assert_refused(&broker, &wrong, "ES256 token, Ed25519 key configured").await;
    assert_refused(&broker, &unsigned("eddie"), "alg none").await;
}

/// `{"alg":"none"}` with an empty signature.
fn unsigned(sub: &str) -> String {
    use base64_url as b64;
    let header = b64::encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64::encode(claims(sub).to_string().as_bytes());
    format!("{header}.{payload}.")
}

/// Unpadded base64url, enough for a hand-made token.
mod base64_url {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }
}

#[tokio::test]
async fn issuer_and_audience_are_required_when_configured() {
    let broker = Broker::start(&[
        "--jwt-secret",
        SECRET,
        "--jwt-issuer",
        "https://login.test/",
        "--jwt-audience",
        "stompbox",
    ]);
    let key = EncodingKey::from_secret(SECRET.as_bytes()).expect("HMAC key");
    let token = |claims: serde_json::Value| sign(Algorithm::HS256, &key, claims);
    let exp = now() + 3600;
    let good = json!({"sub": "ivy", "exp": exp, "iss": "https://login.test/", "aud": "stompbox"});
    assert_accepted(&broker, &token(good), "ivy").await;
    // `aud` may be a list; one match is enough.
    let listed = json!({"sub": "ivy", "exp": exp, "iss": "https://login.test/",
        "aud": ["other", "stompbox"]});
    assert_accepted(&broker, &token(listed), "ivy").await;

    for (why, claims) in [
        (
            "other issuer",
            json!({"sub": "ivy", "exp": exp, "iss": "https://evil.test/", "aud": "stompbox"}),
        ),
        (
            "no issuer",
            json!({"sub": "ivy", "exp": exp, "aud": "stompbox"}),
        ),
        (
            "other audience",
            json!({"sub": "ivy", "exp": exp, "iss": "https://login.test/", "aud": "billing"}),
        ),
        (
            "no audience",
            json!({"sub": "ivy", "exp": exp, "iss": "https://login.test/"}),
        ),
    ] {
        assert_refused(&broker, &token(claims), why).await;
    }
}

#[tokio::test]
async fn session_ends_with_token_expired_when_its_token_expires() {
    let broker = Broker::start(&["--jwt-secret", SECRET]);
    let key = EncodingKey::from_secret(SECRET.as_bytes()).expect("HMAC key");
    // Already past `exp`, but within the leeway for 3 more seconds: accepted now, due soon.
    let due_in = 3;
    let short = sign(
        Algorithm::HS256,
        &key,
        json!({"sub": "shorty", "exp": now() + due_in - LEEWAY_SECS}),
    );
    let long = sign(Algorithm::HS256, &key, claims("longy"));
    let started = tokio::time::Instant::now();
    let mut expiring = assert_accepted(&broker, &short, "shorty").await;
    let mut lasting = assert_accepted(&broker, &long, "longy").await;
    expiring.subscribe("s", "/topic/t").await;
    lasting.subscribe("s", "/topic/t").await;

    let error = tokio::time::timeout(
        Duration::from_secs(due_in) + WAIT,
        expiring.expect_error("token expired"),
    )
    .await
    .expect("ERROR token expired in time");
    let after = started.elapsed();
    assert!(
        after >= Duration::from_secs(due_in - 1),
        "closed after {after:?}, before the token expired: {}",
        error.describe()
    );
    expiring.expect_closed(WAIT).await;

    // The other session goes on.
    lasting.expect_no_frame().await;
    let mut publisher = assert_accepted(&broker, &long, "longy").await;
    publisher.publish("/topic/t", "still here").await;
    assert_eq!(lasting.expect_message().await.text(), "still here");
    // The close reason is logged (a moment after the socket closed).
    let deadline = tokio::time::Instant::now() + WAIT;
    while !broker.log().contains("reason=token expired") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "close reason not logged:\n{}",
            broker.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
