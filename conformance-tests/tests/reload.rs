//! SIGHUP reloads the users file and the `[[acl]]` rules without a restart: a session whose
//! user was removed or whose password changed gets ERROR `credentials revoked` and is closed,
//! the others go on; a session holding a subscription the new rules deny gets ERROR `access
//! denied`; new SUBSCRIBEs follow the new rules; a reload that fails changes nothing.

use std::path::Path;
use std::process::Command as Process;
use std::time::Duration;

use conformance_tests::client::connect_frame;
use conformance_tests::frame::subscribe;
use conformance_tests::{Broker, Command, FrameExt, TcpClient, WAIT, broker, scratch_file};

fn users_file(entries: &[(&str, &str)]) -> String {
    let mut text = String::from("[users]\n");
    for (name, hash) in entries {
        text.push_str(&format!("{name} = \"{hash}\"\n"));
    }
    text
}

fn sighup(broker: &Broker) {
    let status = Process::new("kill")
        .args(["-HUP", &broker.pid().to_string()])
        .status()
        .expect("kill(1) can be run");
    assert!(status.success(), "kill -HUP failed");
}

/// Replaces `path`'s contents in one step (write aside, rename), as an operator's tooling
/// would, so a reload never reads half a file.
fn replace(path: &Path, contents: &str) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, contents).expect("writable");
    std::fs::rename(&aside, path).expect("renamable");
}

async fn login(broker: &Broker, user: &str, password: &str) -> Result<TcpClient, String> {
    let mut client = TcpClient::open(broker.stomp_addr).await;
    let reply = client
        .handshake(connect_frame(
            Command::Connect,
            &[
                ("accept-version", "1.2"),
                ("host", "localhost"),
                ("login", user),
                ("passcode", password),
                ("heart-beat", "0,0"),
            ],
        ))
        .await;
    match reply.command {
        Command::Connected => Ok(client),
        _ => Err(reply.describe()),
    }
}

async fn wait_for_log(broker: &Broker, needle: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !broker.log().contains(needle) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broker never logged {needle:?}:\n{}",
            broker.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sighup_closes_sessions_of_removed_users_and_changed_passwords_only() {
    let (alice, bob, carol) = (
        broker::hash_password("alice-pw"),
        broker::hash_password("bob-pw"),
        broker::hash_password("carol-pw"),
    );
    let path = scratch_file(
        "users.toml",
        &users_file(&[("alice", &alice), ("bob", &bob), ("carol", &carol)]),
    );
    let broker = Broker::start(&["--users-file", path.to_str().expect("UTF-8 path")]);
    let mut alice_session = login(&broker, "alice", "alice-pw").await.expect("alice");
    let mut bob_session = login(&broker, "bob", "bob-pw").await.expect("bob");
    let mut carol_session = login(&broker, "carol", "carol-pw").await.expect("carol");
    alice_session.subscribe("s", "/topic/news").await;

    // A broken file: the reload fails, nothing changes, nobody is closed.
    replace(&path, "[users]\nbob = \"not a hash\"\n");
    sighup(&broker);
    wait_for_log(&broker, "reload failed").await;
    bob_session.expect_no_frame().await;
    assert!(
        login(&broker, "alice", "alice-pw").await.is_ok(),
        "old users stay"
    );

    // Bob removed, carol's password changed, alice untouched.
    let carol_new = broker::hash_password("carol-new-pw");
    replace(
        &path,
        &users_file(&[("alice", &alice), ("carol", &carol_new)]),
    );
    sighup(&broker);
    let error = bob_session.expect_error("credentials revoked").await;
    println!("{}", error.describe());
    bob_session.expect_closed(WAIT).await;
    carol_session.expect_error("credentials revoked").await;
    carol_session.expect_closed(WAIT).await;

    alice_session.expect_no_frame().await;
    let mut publisher = login(&broker, "alice", "alice-pw")
        .await
        .expect("alice again");
    publisher.publish("/topic/news", "alice stays").await;
    assert_eq!(alice_session.expect_message().await.text(), "alice stays");

    assert!(
        login(&broker, "bob", "bob-pw").await.is_err(),
        "bob is gone"
    );
    assert!(
        login(&broker, "carol", "carol-pw").await.is_err(),
        "old password"
    );
    assert!(
        login(&broker, "carol", "carol-new-pw").await.is_ok(),
        "new password"
    );
}

fn acl_config(subscribe_prefix: &str) -> String {
    format!(
        "[[acl]]\nuser = \"*\"\naction = \"subscribe\"\nprefix = \"{subscribe_prefix}\"\n\
         allow = true\n\n[[acl]]\nuser = \"*\"\naction = \"send\"\nprefix = \"/topic/\"\n\
         allow = true\n"
    )
}

#[tokio::test]
async fn sighup_reloads_the_acl_rules() {
    let path = scratch_file("stompbox.toml", &acl_config("/topic/old/"));
    let broker = Broker::start(&["--config", path.to_str().expect("UTF-8 path")]);
    let mut old_reader = broker.client("olga").await;
    old_reader.subscribe("s", "/topic/old/news").await;
    let mut other = broker.client("nina").await;
    other.send(&subscribe("s", "/topic/new/news")).await;
    other.expect_error("access denied").await;

    replace(&path, &acl_config("/topic/new/"));
    sighup(&broker);
    // A subscription the new rules deny ends its session.
    let error = old_reader.expect_error("access denied").await;
    assert!(
        error.text().contains("/topic/old/news"),
        "the ERROR names the subscription: {}",
        error.describe()
    );
    old_reader.expect_closed(WAIT).await;

    // New subscriptions follow the new rules.
    let mut new_reader = broker.client("nina").await;
    new_reader.subscribe("s", "/topic/new/news").await;
    let mut again = broker.client("olga").await;
    again.send(&subscribe("s", "/topic/old/news")).await;
    again.expect_error("access denied").await;
    let mut publisher = broker.client("pat").await;
    publisher.publish("/topic/new/news", "rules changed").await;
    assert_eq!(new_reader.expect_message().await.text(), "rules changed");
}
