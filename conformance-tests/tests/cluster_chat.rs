//! Cluster mode and the chat application: messages, idempotent retries, membership changes
//! and presence work across nodes. The nodes share one embedded store here, standing in for
//! the shared PostgreSQL of a real deployment.

use std::time::{Duration, Instant};

use conformance_tests::cluster::{Database, node, subscribed};
use conformance_tests::frame;
use conformance_tests::{Broker, Command, Frame, FrameExt, QUIET, Redis, TcpClient, WAIT};
use serde_json::{Value, json};

/// A scratch store directory shared by the nodes of one test, removed on drop.
struct Store(std::path::PathBuf);

impl Store {
    fn new(tag: &str) -> Store {
        let dir = std::env::temp_dir().join(format!(
            "stompbox-cluster-store-{}-{tag}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("scratch directory can be created");
        Store(dir)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// SEND `/app/<action>` with a receipt; returns the RECEIPT (the next frame must be it,
/// after any MESSAGE the action delivered to this very session, which is returned too).
async fn app(client: &mut TcpClient, action: &str, body: Value) -> (Vec<Frame>, Frame) {
    let receipt = format!("r-{action}-{}", rand_suffix());
    let send =
        frame::send(&format!("/app/{action}"), body.to_string()).header("receipt", receipt.clone());
    client.send(&send).await;
    let mut before = Vec::new();
    loop {
        let f = client.recv_frame().await;
        match f.command {
            Command::Receipt => {
                assert_eq!(f.value("receipt-id"), receipt);
                return (before, f);
            }
            Command::Message => before.push(f),
            _ => panic!("{action} got {}", f.describe()),
        }
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn json_of(f: &Frame) -> Value {
    serde_json::from_slice(&f.body).unwrap_or_else(|_| panic!("JSON body: {}", f.describe()))
}

/// Reads presence events until `user` is reported `status`; panics after `within`.
async fn expect_presence(client: &mut TcpClient, user: &str, status: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let f = client
            .recv_frame_within(left)
            .await
            .unwrap_or_else(|e| panic!("no presence {status} for {user} within {within:?}: {e}"));
        let v = json_of(&f);
        if v["userId"] == user && v["status"] == status {
            return;
        }
    }
}

#[tokio::test]
async fn chat_messages_retries_and_membership_changes_cross_nodes() {
    let redis = Redis::start();
    let store = Store::new("chat");
    let a = node(&redis, Some(&store.0), &[]);
    let b = node(&redis, Some(&store.0), &[]);
    chat_across(&redis, &a, &b).await;
}

/// The same on the store a real cluster shares: PostgreSQL (skipped when none is running).
#[tokio::test]
async fn chat_across_nodes_on_postgres() {
    let Some(database) = Database::create("chat_across_nodes_on_postgres") else {
        return;
    };
    let redis = Redis::start();
    let a = node(&redis, None, &["--postgres-url", &database.url]);
    let b = node(&redis, None, &["--postgres-url", &database.url]);
    chat_across(&redis, &a, &b).await;
}

/// A RECEIPT says the message is stored *and* that its copies for other nodes have left for
/// Redis. Redis stopped (SIGSTOP: it stalls instead of refusing) holds the RECEIPT back; once
/// it runs again the RECEIPT comes and the member on the other node has the message. An
/// earlier broker answered before publishing (here, right after its 250 ms presence lookup
/// gave up), so a node killed between the two lost the copies for members connected
/// elsewhere, who stayed connected and never synced for it.
#[tokio::test]
async fn a_receipt_waits_until_the_copies_for_other_nodes_have_left() {
    let redis = Redis::start();
    let store = Store::new("receipt");
    let a = node(&redis, Some(&store.0), &[]);
    let b = node(&redis, Some(&store.0), &[]);
    let mut bob = b.client("bob").await;
    bob.subscribe("m", "/user/queue/messages").await;
    subscribed(&redis, "sbx:u:bob").await;
    let mut alice = a.client("alice").await;
    let first = json!({"recipientId": "bob", "content": "first"});
    app(&mut alice, "chat.send", first).await;
    assert_eq!(json_of(&bob.expect_message().await)["content"], "first");

    redis.pause();
    let held = json!({"recipientId": "bob", "content": "held"});
    let send = frame::send("/app/chat.send", held.to_string()).header("receipt", "held");
    alice.send(&send).await;
    alice.expect_silence(Duration::from_millis(1000)).await;
    redis.resume();
    let receipt = alice.recv_frame().await;
    assert_eq!(
        (receipt.command, receipt.value("receipt-id")),
        (Command::Receipt, "held"),
        "{}",
        receipt.describe()
    );
    let m = json_of(&bob.expect_message().await);
    assert_eq!(m["content"], "held");
    assert_eq!(m["messageId"], receipt.value("message-id"));
}

async fn chat_across(redis: &Redis, a: &Broker, b: &Broker) {
    let mut bob = b.client("bob").await;
    bob.subscribe("m", "/user/queue/messages").await;
    subscribed(redis, "sbx:u:bob").await;
    let mut alice = a.client("alice").await;
    let send = json!({"recipientId": "bob", "content": "hi", "clientMessageId": "c1"});
    let (_, receipt) = app(&mut alice, "chat.send", send.clone()).await;
    let id = receipt.value("message-id").to_string();
    let m = json_of(&bob.expect_message().await);
    assert_eq!(
        (m["content"].as_str(), m["senderId"].as_str()),
        (Some("hi"), Some("alice"))
    );
    assert_eq!(m["messageId"], id.as_str());

    // Typing indicators (droppable deliveries) cross too, to online members only.
    bob.subscribe("t", "/user/queue/typing").await;
    let typing = json!({"conversationId": m["conversationId"], "typing": true});
    app(&mut alice, "chat.typing", typing).await;
    let t = json_of(&bob.expect_message().await);
    assert_eq!(
        (t["userId"].as_str(), t["typing"].as_bool()),
        (Some("alice"), Some(true))
    );

    // A new session of bob on the other node: sync replays, and live delivery follows.
    let mut bob_a = a.client("bob").await;
    bob_a.subscribe("m", "/user/queue/messages").await;
    bob_a.subscribe("s", "/user/queue/sync").await;
    // The replay and its end marker come before the RECEIPT.
    let (replay, _) = app(&mut bob_a, "chat.sync", json!({"afterMessageId": "0"})).await;
    assert_eq!(replay.len(), 2, "{replay:?}");
    assert_eq!(json_of(&replay[0])["messageId"], id.as_str());
    assert_eq!(json_of(&replay[1])["more"], false);

    // The same clientMessageId through the other node: the original id, nothing stored twice,
    // and the original delivered again (its node may have died before delivering it); a
    // member tells the copy by its messageId.
    let mut alice_b = b.client("alice").await;
    let (_, retry) = app(&mut alice_b, "chat.send", send).await;
    assert_eq!(retry.value("message-id"), id);
    let copy = json_of(&bob.expect_message().await);
    assert_eq!(copy["messageId"], id.as_str());
    bob.expect_silence(QUIET).await;

    // A group made on node A; carol, on node B, is added later.
    alice.subscribe("c", "/user/queue/conversations").await;
    let (mine, _) = app(
        &mut alice,
        "conversation.create",
        json!({"type": "GROUP", "name": "g", "members": ["bob"]}),
    )
    .await;
    let group = json_of(&mine[0])["conversation"]["conversationId"]
        .as_str()
        .expect("conversation id")
        .to_string();
    let room = format!("/topic/conversation.{group}");
    let mut carol = b.client("carol").await;
    carol.subscribe("c", "/user/queue/conversations").await;
    subscribed(redis, "sbx:u:carol").await;
    let mut outsider = b.client("carol").await;
    outsider.send(&frame::subscribe("r", &room)).await;
    outsider.expect_error("access denied").await;

    app(
        &mut alice,
        "conversation.members",
        json!({"conversationId": group, "add": ["carol"]}),
    )
    .await;
    let updated = json_of(&carol.expect_message().await);
    assert_eq!(updated["event"], "updated");
    // Node B's cache got the new membership before the event: the room opens to carol there.
    carol.subscribe("r", &room).await;
    subscribed(redis, &format!("sbx:t:conversation.{group}")).await;
    app(
        &mut alice,
        "chat.send",
        json!({"conversationId": group, "content": "welcome"}),
    )
    .await;
    assert_eq!(json_of(&carol.expect_message().await)["content"], "welcome");

    app(
        &mut alice,
        "conversation.members",
        json!({"conversationId": group, "remove": ["carol"]}),
    )
    .await;
    assert_eq!(json_of(&carol.expect_message().await)["event"], "updated");
    app(
        &mut alice,
        "chat.send",
        json!({"conversationId": group, "content": "members only"}),
    )
    .await;
    carol.expect_silence(QUIET).await;
}

#[tokio::test]
async fn presence_spans_nodes_and_a_killed_nodes_users_go_offline_within_the_ttl() {
    let redis = Redis::start();
    let store = Store::new("presence");
    let ttl = Duration::from_secs(2);
    let args = ["--presence-ttl", "2s"];
    let a = node(&redis, Some(&store.0), &args);
    let b = node(&redis, Some(&store.0), &args);
    let mut c = node(&redis, Some(&store.0), &args);

    // Make alice and bob contacts.
    let mut bob_b = b.client("bob").await;
    app(
        &mut bob_b,
        "chat.send",
        json!({"recipientId": "alice", "content": "hey"}),
    )
    .await;
    bob_b.disconnect().await;

    let mut alice = a.client("alice").await;
    alice.subscribe("p", "/user/queue/presence").await;
    subscribed(&redis, "sbx:u:alice").await;
    let mut bob = c.client("bob").await;
    expect_presence(&mut alice, "bob", "online", WAIT).await;

    // Alive (heart-beats) for longer than the TTL: bob stays online.
    let alive_until = Instant::now() + ttl + Duration::from_millis(800);
    while Instant::now() < alive_until {
        bob.send_raw(b"\n").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (answers, _) = app(&mut alice, "presence.query", json!({"userIds": ["bob"]})).await;
    let answer = answers.last().map(json_of).expect("a presence answer");
    assert_eq!(answer["status"], "online", "{answers:?}");
    for event in &answers[..answers.len() - 1] {
        assert_ne!(
            json_of(event)["status"],
            "offline",
            "bob went offline while alive"
        );
    }

    // Node C dies: nobody says goodbye, bob's session lapses and another node reports it.
    c.kill();
    let killed = Instant::now();
    expect_presence(&mut alice, "bob", "offline", ttl + Duration::from_secs(3)).await;
    assert!(
        killed.elapsed() <= ttl + Duration::from_secs(2),
        "{:?}",
        killed.elapsed()
    );
    let (answers, _) = app(&mut alice, "presence.query", json!({"userIds": ["bob"]})).await;
    assert_eq!(
        json_of(answers.last().expect("answer"))["status"],
        "offline"
    );

    // Back on another node, then a clean disconnect: offline at once, not after the TTL.
    let bob = b.client("bob").await;
    expect_presence(&mut alice, "bob", "online", WAIT).await;
    let left = Instant::now();
    bob.disconnect().await;
    expect_presence(&mut alice, "bob", "offline", WAIT).await;
    assert!(left.elapsed() < ttl, "{:?}", left.elapsed());
}
