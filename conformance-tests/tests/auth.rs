//! Authentication (users file, HS256 JWT) and authorization (`[[acl]]` rules): the principal
//! in CONNECTED, `authentication failed`, and `access denied`.

use std::time::{SystemTime, UNIX_EPOCH};

use conformance_tests::client::connect_frame;
use conformance_tests::frame::{send, subscribe};
use conformance_tests::{Broker, Command, Frame, FrameExt, TcpClient, WAIT, broker, scratch_file};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

const JWT_SECRET: &str = "conformance-secret-0123456789abcdef";

fn broker_with_users() -> Broker {
    let users = format!("[users]\nalice = \"{}\"\n", broker::hash_password("s3cret"));
    let path = scratch_file("users.toml", &users);
    Broker::start(&["--users-file", path.to_str().expect("UTF-8 path")])
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn token(claims: serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()).expect("HMAC key"),
    )
    .expect("JWT encodes")
}

fn valid_token(sub: &str) -> String {
    token(json!({ "sub": sub, "exp": now() + 3600 }), JWT_SECRET)
}

async fn attempt(broker: &Broker, headers: &[(&str, &str)]) -> (TcpClient, Frame) {
    let mut client = TcpClient::open(broker.stomp_addr).await;
    let mut all = vec![("accept-version", "1.2"), ("host", "localhost")];
    all.extend_from_slice(headers);
    let reply = client
        .handshake(connect_frame(Command::Connect, &all))
        .await;
    (client, reply)
}

async fn assert_refused(broker: &Broker, headers: &[(&str, &str)]) {
    let (mut client, reply) = attempt(broker, headers).await;
    assert_eq!(
        reply.command,
        Command::Error,
        "{headers:?}: {}",
        reply.describe()
    );
    assert_eq!(
        reply.value("message"),
        "authentication failed",
        "{headers:?}"
    );
    client.expect_closed(WAIT).await;
}

#[tokio::test]
async fn users_file_accepts_the_right_password() {
    let broker = broker_with_users();
    let (_client, reply) = attempt(&broker, &[("login", "alice"), ("passcode", "s3cret")]).await;
    assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
    assert_eq!(reply.value("user-name"), "alice");
}

#[tokio::test]
async fn users_file_refuses_bad_credentials() {
    let broker = broker_with_users();
    assert_refused(&broker, &[("login", "alice"), ("passcode", "wrong")]).await;
    assert_refused(&broker, &[("login", "mallory"), ("passcode", "s3cret")]).await;
    assert_refused(&broker, &[("login", "alice")]).await;
    assert_refused(&broker, &[]).await;
    // Dev mode is off: being refused does not stop the right password from working.
    let (_client, reply) = attempt(&broker, &[("login", "alice"), ("passcode", "s3cret")]).await;
    assert_eq!(reply.command, Command::Connected);
}

/// Issue 17, item 6: `--default-user` (RabbitMQ's STOMP `default_user`, opt-in) makes a
/// CONNECT with neither login nor passcode that user; a CONNECT naming a user still needs its
/// password, and the default user's ACL rules apply.
#[tokio::test]
async fn default_user_takes_connects_without_credentials_only() {
    let users = format!("[users]\nalice = \"{}\"\n", broker::hash_password("s3cret"));
    let users = scratch_file("users-default.toml", &users);
    let acl = scratch_file(
        "acl-default.toml",
        "[[acl]]\nuser = \"anon\"\naction = \"send\"\nprefix = \"/topic/\"\nallow = false\n",
    );
    let broker = Broker::start(&[
        "--users-file",
        users.to_str().expect("UTF-8 path"),
        "--config",
        acl.to_str().expect("UTF-8 path"),
        "--default-user",
        "anon",
    ]);
    let (mut anon, reply) = attempt(&broker, &[]).await;
    assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
    assert_eq!(reply.value("user-name"), "anon");
    assert_refused(&broker, &[("login", "alice")]).await;
    assert_refused(&broker, &[("login", "alice"), ("passcode", "wrong")]).await;
    let (_alice, reply) = attempt(&broker, &[("login", "alice"), ("passcode", "s3cret")]).await;
    assert_eq!(reply.value("user-name"), "alice");
    anon.send_raw(b"SEND\ndestination:/topic/x\n\nno\0").await;
    anon.expect_error("access denied").await;
}

/// Password checks are slow and large by design (argon2): past `--max-auth-checks` at once, a
/// CONNECT waits at most `--auth-queue-timeout` for a slot and then gets ERROR `server busy`,
/// instead of every check running at once.
#[tokio::test]
async fn password_checks_beyond_the_cap_get_server_busy() {
    let users = format!("[users]\nalice = \"{}\"\n", broker::hash_password("s3cret"));
    let path = scratch_file("users.toml", &users);
    let broker = Broker::start(&[
        "--users-file",
        path.to_str().expect("UTF-8 path"),
        "--max-auth-checks",
        "1",
        "--auth-queue-timeout",
        "1ms",
    ]);
    let credentials = [("login", "alice"), ("passcode", "s3cret")];
    let (first, second) = tokio::join!(
        attempt(&broker, &credentials),
        attempt(&broker, &credentials)
    );
    let mut replies = [first.1, second.1];
    replies.sort_by_key(|reply| reply.command != Command::Connected);
    assert_eq!(
        replies[0].command,
        Command::Connected,
        "{}",
        replies[0].describe()
    );
    assert_eq!(
        replies[1].command,
        Command::Error,
        "{}",
        replies[1].describe()
    );
    assert_eq!(replies[1].value("message"), "server busy");
    // The slot is free again once the running check ends.
    let (_, reply) = attempt(&broker, &credentials).await;
    assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
}

#[tokio::test]
async fn jwt_in_passcode_names_the_principal() {
    let broker = Broker::start(&["--jwt-secret", JWT_SECRET]);
    let jwt = valid_token("carol");
    let (_client, reply) = attempt(&broker, &[("passcode", &jwt)]).await;
    assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
    assert_eq!(reply.value("user-name"), "carol");
    let (_client, reply) = attempt(&broker, &[("login", "carol"), ("passcode", &jwt)]).await;
    assert_eq!(reply.command, Command::Connected, "{}", reply.describe());
}

#[tokio::test]
async fn jwt_login_must_equal_sub() {
    let broker = Broker::start(&["--jwt-secret", JWT_SECRET]);
    let jwt = valid_token("carol");
    assert_refused(&broker, &[("login", "mallory"), ("passcode", &jwt)]).await;
}

#[tokio::test]
async fn bad_jwts_are_refused() {
    let broker = Broker::start(&["--jwt-secret", JWT_SECRET]);
    let expired = token(json!({ "sub": "carol", "exp": now() - 3600 }), JWT_SECRET);
    let no_exp = token(json!({ "sub": "carol" }), JWT_SECRET);
    let wrong_key = token(
        json!({ "sub": "carol", "exp": now() + 3600 }),
        "another-secret-entirely",
    );
    for jwt in [&expired, &no_exp, &wrong_key, &"not.a.jwt".to_owned()] {
        assert_refused(&broker, &[("passcode", jwt)]).await;
    }
    assert_refused(&broker, &[("login", "carol")]).await;
    assert_broker_serves_with_jwt(&broker).await;
}

/// `assert_broker_serves` for a broker that requires JWTs.
async fn assert_broker_serves_with_jwt(broker: &Broker) {
    let jwt = valid_token("dave");
    let headers = [
        ("accept-version", "1.2"),
        ("host", "localhost"),
        ("passcode", jwt.as_str()),
    ];
    let mut client = TcpClient::connect_with(broker.stomp_addr, &headers).await;
    client.subscribe("s", "/topic/jwt.alive").await;
    client.publish("/topic/jwt.alive", "yes").await;
    assert_eq!(client.expect_message().await.text(), "yes");
}

const ACL: &str = r#"
[[acl]]
user = "*"
action = "send"
prefix = "/queue/{user}."
allow = true

[[acl]]
user = "admin"
action = "send"
prefix = "/topic/"
allow = true

[[acl]]
user = "*"
action = "send"
prefix = "/topic/public."
allow = true

[[acl]]
user = "*"
action = "subscribe"
prefix = "/topic/secret."
allow = false

[[acl]]
user = "*"
action = "subscribe"
prefix = "/"
allow = true
"#;

fn broker_with_acl() -> Broker {
    let path = scratch_file("stompbox.toml", ACL);
    Broker::start(&["--config", path.to_str().expect("UTF-8 path")])
}

#[tokio::test]
async fn acl_allows_matching_sends_and_subscriptions() {
    let broker = broker_with_acl();
    let mut bob = broker.client("bob").await;
    bob.subscribe("p", "/topic/public.news").await;
    bob.publish("/topic/public.news", "hello").await;
    assert_eq!(bob.expect_message().await.text(), "hello");
    bob.publish("/queue/bob.inbox", "own queue").await;
    let mut admin = broker.client("admin").await;
    admin.publish("/topic/anything", "admin may").await;
}

#[tokio::test]
async fn acl_denies_send_no_rule_allows() {
    let broker = broker_with_acl();
    let mut bob = broker.client("bob").await;
    bob.send(&send("/topic/private", "no")).await;
    bob.expect_error("access denied").await;
    bob.expect_closed(WAIT).await;
    // Others are still served where the rules allow.
    let mut carol = broker.client("carol").await;
    carol.subscribe("p", "/topic/public.after").await;
    carol.publish("/topic/public.after", "served").await;
    assert_eq!(carol.expect_message().await.text(), "served");
}

#[tokio::test]
async fn acl_user_placeholder_is_the_principal() {
    let broker = broker_with_acl();
    let mut bob = broker.client("bob").await;
    bob.send(&send("/queue/alice.inbox", "not yours")).await;
    bob.expect_error("access denied").await;
}

#[tokio::test]
async fn acl_denies_subscription_by_rule() {
    let broker = broker_with_acl();
    let mut bob = broker.client("bob").await;
    bob.send(&subscribe("s", "/topic/secret.plans")).await;
    bob.expect_error("access denied").await;
    bob.expect_closed(WAIT).await;
}
