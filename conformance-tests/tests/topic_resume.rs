//! Resumable `/topic` subscriptions: a topic with history stamps every MESSAGE with `offset`
//! and `epoch`; a SUBSCRIBE with `resume-offset` and `resume-epoch` replays what came after
//! that position, then goes live, with no duplicate and no gap at the seam; its RECEIPT says
//! `recovered:true`, or `recovered:false` when the history cannot give it all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use conformance_tests::frame::{send, subscribe};
use conformance_tests::{Broker, Command, Frame, FrameExt, TcpClient};
use serde_json::{Value, json};

/// `feed.*` keeps the last 100 messages; the fast test's topic keeps far more than it sends.
const HISTORY: &[&str] = &[
    "--topic-history",
    "/topic/feed.*=100/10000000/1h",
    "--topic-history",
    "/topic/fast=1000000/1000000000/1h",
];

fn offset(message: &Frame) -> u64 {
    message
        .value("offset")
        .parse()
        .unwrap_or_else(|_| panic!("numeric offset: {}", message.describe()))
}

/// SUBSCRIBE resuming from (`epoch`, `offset`) with a receipt: the MESSAGEs that came before
/// the RECEIPT, and the RECEIPT's `recovered`.
async fn resume(
    client: &mut TcpClient,
    destination: &str,
    epoch: &str,
    offset: u64,
) -> (Vec<Frame>, String) {
    let frame = subscribe("r", destination)
        .header("resume-epoch", epoch)
        .header("resume-offset", offset.to_string())
        .header("receipt", "resumed");
    client.send(&frame).await;
    let mut replay = Vec::new();
    loop {
        let f = client.recv_frame().await;
        match f.command {
            Command::Receipt => {
                assert_eq!(f.value("receipt-id"), "resumed");
                return (replay, f.value("recovered").to_owned());
            }
            Command::Message => replay.push(f),
            _ => panic!("resuming SUBSCRIBE got {}", f.describe()),
        }
    }
}

#[tokio::test]
async fn a_resume_after_a_gap_gets_exactly_the_missed_messages_then_live() {
    let broker = Broker::start(HISTORY);
    let mut publisher = broker.client("pub").await;
    let mut first = broker.client("sub").await;
    first.subscribe("s", "/topic/feed.a").await;
    for i in 1..=3 {
        publisher.publish("/topic/feed.a", format!("m{i}")).await;
    }
    let mut seen = Vec::new();
    for _ in 1..=3 {
        seen.push(first.expect_message().await);
    }
    assert_eq!(seen.iter().map(offset).collect::<Vec<_>>(), [1, 2, 3]);
    let epoch = seen[0].value("epoch").to_owned();
    assert!(!epoch.is_empty());
    assert!(seen.iter().all(|m| m.value("epoch") == epoch));
    drop(first);

    for i in 4..=6 {
        publisher.publish("/topic/feed.a", format!("m{i}")).await;
    }
    let mut back = broker.client("sub").await;
    let (replay, recovered) = resume(&mut back, "/topic/feed.a", &epoch, 3).await;
    assert_eq!(recovered, "true");
    let bodies: Vec<String> = replay.iter().map(|m| m.text()).collect();
    assert_eq!(bodies, ["m4", "m5", "m6"]);
    assert_eq!(replay.iter().map(offset).collect::<Vec<_>>(), [4, 5, 6]);
    assert!(replay.iter().all(|m| m.value("subscription") == "r"));

    publisher.publish("/topic/feed.a", "m7").await;
    let live = back.expect_message().await;
    assert_eq!((live.text().as_str(), offset(&live)), ("m7", 7));
    back.expect_no_frame().await;

    // Offsets count per topic: another topic of the same rule starts at 1.
    back.subscribe("b", "/topic/feed.b").await;
    publisher.publish("/topic/feed.b", "b1").await;
    assert_eq!(offset(&back.expect_message().await), 1);
}

#[tokio::test]
async fn a_resume_while_the_publisher_runs_flat_out_has_no_duplicate_and_no_gap() {
    let broker = Broker::start(&[
        HISTORY[2],
        HISTORY[3],
        // Room for the replay (the broker slows the publisher once an outbox is half full).
        "--outbound-max-frames",
        "100000",
    ]);
    let mut first = broker.client("sub").await;
    first.subscribe("s", "/topic/fast").await;

    // Publishes without waiting for anything until told to stop, then an `end` it waits for.
    let stop = Arc::new(AtomicBool::new(false));
    let mut publisher = broker.client("pub").await;
    let publishing = tokio::spawn({
        let stop = Arc::clone(&stop);
        async move {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..50 {
                    sent += 1;
                    publisher.send(&send("/topic/fast", sent.to_string())).await;
                }
                tokio::task::yield_now().await;
            }
            publisher.publish("/topic/fast", "end").await;
            sent
        }
    });

    let mut last = 0;
    for _ in 0..500 {
        let m = first.expect_message().await;
        assert_eq!(offset(&m), last + 1, "contiguous before the break");
        last = offset(&m);
    }
    let epoch = first.expect_message().await.value("epoch").to_owned();
    last += 1;
    // The connection drops with messages in flight; the publisher keeps going.
    drop(first);
    let mut back = broker.client("sub").await;
    let (replay, recovered) = resume(&mut back, "/topic/fast", &epoch, last).await;
    assert_eq!(recovered, "true");
    let mut received = replay.len();
    for m in &replay {
        assert_eq!(
            offset(m),
            last + 1,
            "replay contiguous from the resume point"
        );
        last = offset(m);
    }
    // Live messages after the seam, while the publisher is still running.
    for _ in 0..500 {
        let m = back.expect_message().await;
        assert_eq!(offset(&m), last + 1, "no gap or duplicate at the seam");
        last = offset(&m);
        received += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let sent = publishing.await.expect("publisher");
    loop {
        let m = back.expect_message().await;
        assert_eq!(offset(&m), last + 1, "contiguous to the end");
        last = offset(&m);
        if m.text() == "end" {
            break;
        }
        assert_eq!(
            m.text(),
            offset(&m).to_string(),
            "offset n is the n-th publish"
        );
    }
    assert_eq!(last, sent + 1, "every publish and the end, each once");
    println!("replayed {} then {received} live before stop", replay.len());
}

#[tokio::test]
async fn a_position_older_than_the_history_or_of_no_history_is_not_recovered() {
    let broker = Broker::start(HISTORY);
    let mut publisher = broker.client("pub").await;
    let mut watcher = broker.client("watch").await;
    watcher.subscribe("w", "/topic/feed.old").await;
    for i in 1..=150 {
        publisher.publish("/topic/feed.old", i.to_string()).await;
    }
    let mut epoch = String::new();
    for _ in 1..=150 {
        epoch = watcher.expect_message().await.value("epoch").to_owned();
    }

    // The history keeps 51..=150: from 50 it is complete, from 49 it misses 50.
    let mut edge = broker.client("edge").await;
    let (replay, recovered) = resume(&mut edge, "/topic/feed.old", &epoch, 50).await;
    assert_eq!((recovered.as_str(), replay.len()), ("true", 100));
    assert_eq!(offset(&replay[0]), 51);

    let mut late = broker.client("late").await;
    let (replay, recovered) = resume(&mut late, "/topic/feed.old", &epoch, 49).await;
    assert_eq!(recovered, "false");
    assert!(
        replay.is_empty(),
        "no partial replay: the client must reload"
    );
    publisher.publish("/topic/feed.old", "live").await;
    let live = late.expect_message().await;
    assert_eq!((live.text().as_str(), offset(&live)), ("live", 151));
    assert_eq!(watcher.expect_message().await.text(), "live");

    // An offset the epoch never reached, an unknown epoch, a topic without history: false.
    for (topic, epoch, offset) in [
        ("/topic/feed.old", epoch.as_str(), 999),
        ("/topic/feed.old", "not-an-epoch", 100),
        ("/topic/plain", epoch.as_str(), 1),
    ] {
        let mut client = broker.client("other").await;
        let (replay, recovered) = resume(&mut client, topic, epoch, offset).await;
        assert_eq!((recovered.as_str(), replay.len()), ("false", 0), "{topic}");
    }
    // A topic without history carries no position.
    watcher.subscribe("p", "/topic/plain").await;
    publisher.publish("/topic/plain", "x").await;
    let plain = watcher.expect_message().await;
    assert_eq!(plain.opt("offset"), None, "{}", plain.describe());
}

#[tokio::test]
async fn a_restart_changes_the_epoch_and_a_resume_across_it_is_not_recovered() {
    let mut before = Broker::start(HISTORY);
    let mut publisher = before.client("pub").await;
    let mut subscriber = before.client("sub").await;
    subscriber.subscribe("s", "/topic/feed.r").await;
    publisher.publish("/topic/feed.r", "before").await;
    let old = subscriber.expect_message().await;
    before.kill();

    let after = Broker::start(HISTORY);
    let mut publisher = after.client("pub").await;
    publisher.publish("/topic/feed.r", "after").await;
    let mut back = after.client("sub").await;
    let (replay, recovered) = resume(&mut back, "/topic/feed.r", old.value("epoch"), 1).await;
    assert_eq!((recovered.as_str(), replay.len()), ("false", 0));
    publisher.publish("/topic/feed.r", "live").await;
    let live = back.expect_message().await;
    assert_ne!(
        live.value("epoch"),
        old.value("epoch"),
        "a restart is a new epoch"
    );
    assert_eq!(offset(&live), 2);
}

/// `/app/<action>` with a receipt: the MESSAGEs that came first, then the RECEIPT.
async fn app(client: &mut TcpClient, action: &str, body: Value) -> Vec<Frame> {
    client
        .send(&send(&format!("/app/{action}"), body.to_string()).header("receipt", action))
        .await;
    let mut before = Vec::new();
    loop {
        let f = client.recv_frame().await;
        match f.command {
            Command::Receipt => return before,
            Command::Message => before.push(f),
            _ => panic!("{action} got {}", f.describe()),
        }
    }
}

#[tokio::test]
async fn chat_rooms_keep_history_by_default_and_a_member_resumes() {
    let broker = Broker::start(&[]);
    let mut alice = broker.client("alice").await;
    alice.subscribe("c", "/user/queue/conversations").await;
    let created = app(
        &mut alice,
        "conversation.create",
        json!({"type": "GROUP", "name": "g", "members": ["bob"]}),
    )
    .await;
    let created: Value = serde_json::from_slice(&created[0].body).expect("JSON");
    let id = created["conversation"]["conversationId"]
        .as_str()
        .expect("conversation id")
        .to_owned();
    let room = format!("/topic/conversation.{id}");
    let mut bob = broker.client("bob").await;
    bob.subscribe("room", &room).await;
    let sent = json!({"conversationId": id, "content": "hello"});
    app(&mut alice, "chat.send", sent).await;
    let copy = bob.expect_message().await;
    assert_eq!(offset(&copy), 1, "{}", copy.describe());
    let epoch = copy.value("epoch").to_owned();
    drop(bob);

    app(
        &mut alice,
        "chat.send",
        json!({"conversationId": id, "content": "while you were away"}),
    )
    .await;
    let mut bob = broker.client("bob").await;
    let (replay, recovered) = resume(&mut bob, &room, &epoch, 1).await;
    assert_eq!(recovered, "true");
    assert_eq!(replay.len(), 1);
    assert_eq!(offset(&replay[0]), 2);
    let body: Value = serde_json::from_slice(&replay[0].body).expect("JSON");
    assert_eq!(body["content"], "while you were away", "{body}");
}
