//! The router's unit tests.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use stomp_codec::Headers;

use super::history::History;
use super::queue::{Consumption, QueueFull, QueueLimits, Queues};
use super::topic::Subscriber;
use super::{Peers, Priority, Route, Router, Select};
use crate::auth::Principal;
use crate::config::{HistoryRule, SlowConsumerPolicy};
use crate::handle::SessionHandle;
use crate::message::Message;
use crate::outbox::Outbox;
use crate::subscription_id::SubscriptionId;

/// Peers that write down what the router told them.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    fn log(&self, line: String) {
        self.0.lock().push(line);
    }
}

impl Consumption for Recorder {
    fn consumed(&self, queue: &str, ids: &[u64]) {
        self.log(format!("consumed {queue} {ids:?}"));
    }
}

impl Peers for Recorder {
    fn interest_added(&self, route: Route<'_>) {
        self.log(format!("+{route:?}"));
    }
    fn interest_removed(&self, route: Route<'_>) {
        self.log(format!("-{route:?}"));
    }
    fn publish_topic(&self, name: &str, _: &Message, members: Option<&[String]>) {
        self.log(format!("topic {name} {members:?}"));
    }
    fn publish_users(&self, users: &[String], queue: &str, _: &Message, _: Priority) {
        self.log(format!("users {users:?} {queue}"));
    }
    fn enqueue(&self, _: &Queues, queue: &str, _: Arc<Message>) -> Result<(), QueueFull> {
        self.log(format!("enqueue {queue}"));
        Ok(())
    }
    fn queue_expired(&self, queue: &str) {
        self.log(format!("expired {queue}"));
    }
}

fn session(id: u64, user: &str) -> Arc<SessionHandle> {
    Arc::new(SessionHandle {
        id,
        name: crate::handle::SessionName(id),
        principal: Principal(Arc::from(user)),
        outbox: Outbox::new(16, 1 << 20, SlowConsumerPolicy::Disconnect),
        record: Default::default(),
    })
}

fn subscriber(session: &Arc<SessionHandle>, id: &str) -> Subscriber {
    Subscriber {
        session: Arc::clone(session),
        subscription: SubscriptionId::from(id),
        gate: None,
    }
}

fn message(destination: &str) -> Arc<Message> {
    numbered(1, destination)
}

#[test]
fn peers_hear_interest_and_publishes_and_peer_copies_stay_local() {
    let peers = Arc::new(Recorder::default());
    let router = Router::new(QueueLimits::counting(8), Arc::clone(&peers) as _);
    let ann = session(1, "ann");
    let sub = |id: &str| subscriber(&ann, id);
    router.subscribe_topic("a.b", sub("0"));
    router.subscribe_topic("a.*", sub("1"));
    router.subscribe_user("ann", &Router::user_key("ann", "q"), sub("2"));

    let published = router.publish_topic("a.b", &message("/topic/a.b"));
    assert_eq!(published.delivered, 2, "exact and pattern subscription");
    router.publish_users(
        &["ann".into()],
        "q",
        &message("/user/queue/q"),
        Priority::Normal,
    );
    router
        .send_to_queue("jobs", message("/queue/jobs"))
        .expect("taken");

    let from_peer = router.deliver_topic_from_peer(
        "a.b",
        &message("/topic/a.b"),
        Select::Patterns(&|pattern| pattern == "a.*"),
        None,
    );
    assert_eq!(
        from_peer.delivered, 1,
        "only the pattern the copy stands for"
    );
    let to_member = router.deliver_topic_from_peer(
        "a.b",
        &message("/topic/a.b"),
        Select::Exact,
        Some(&["bob".to_string()]),
    );
    assert_eq!(to_member.delivered, 0, "a room copy reaches members only");
    let user =
        router.deliver_user_from_peer("ann", "q", &message("/user/queue/q"), Priority::Normal);
    assert_eq!(user.delivered, 1);

    router.unsubscribe_topic("a.*", 1, "1");
    router.unsubscribe_user(&Router::user_key("ann", "q"), 1, "2");
    assert_eq!(
        *peers.0.lock(),
        [
            "+Topic(\"a.b\")",
            "+Pattern(\"a.*\")",
            "+User(\"ann\")",
            "topic a.b None",
            "users [\"ann\"] q",
            "enqueue jobs",
            "-Pattern(\"a.*\")",
            "-User(\"ann\")",
        ],
        "peer copies are never published again"
    );
    assert_eq!(ann.outbox.drain().items.len(), 5);
}

/// The halves a Kafka-mode chat message is delivered in (`chat/to_peers.rs`): this node's
/// sessions now, with nothing told to the peers, which hear of it only when sent later.
#[test]
fn local_delivery_tells_the_peers_nothing() {
    let peers = Arc::new(Recorder::default());
    let router = Router::new(QueueLimits::counting(8), Arc::clone(&peers) as _);
    let ann = session(1, "ann");
    let sub = |id: &str| subscriber(&ann, id);
    router.subscribe_topic("room", sub("0"));
    router.subscribe_user("ann", &Router::user_key("ann", "q"), sub("1"));
    peers.0.lock().clear();

    let to_users = message("/user/queue/q");
    let users = ["ann".to_string(), "bob".to_string()];
    let local = router.deliver_users(&users, "q", &to_users, Priority::Normal);
    assert_eq!(local.delivered, 1, "ann's session here");
    let (room, copy) = router.deliver_room("room", &message("/topic/room"), Some(&users));
    assert_eq!(room.delivered, 1);
    assert!(peers.0.lock().is_empty(), "peers hear nothing yet");

    router
        .peers()
        .publish_users(&users, "q", &to_users, Priority::Normal);
    router.peers().publish_topic("room", &copy, Some(&users));
    assert_eq!(
        *peers.0.lock(),
        [
            "users [\"ann\", \"bob\"] q",
            "topic room Some([\"ann\", \"bob\"])",
        ]
    );
    assert_eq!(ann.outbox.drain().items.len(), 2, "no second local copy");
}

/// Ids of what `session`'s outbox holds, runs unrolled, with the subscription each is for; and
/// how many items held them.
fn queued(session: &SessionHandle) -> (Vec<(String, u64)>, usize) {
    let drained = session.outbox.drain();
    let mut out = Vec::new();
    for item in &drained.items {
        match item {
            crate::outbox::Outbound::Deliver(d) => match &d.target {
                crate::message::Target::Subscription(id) => {
                    out.push((id.as_str().to_string(), d.message.id));
                }
                other => panic!("unexpected target {other:?}"),
            },
            crate::outbox::Outbound::Run(id, run) => {
                out.extend(run.messages.iter().map(|m| (id.as_str().to_string(), m.id)));
            }
            crate::outbox::Outbound::Frame(f) => panic!("unexpected frame {f:?}"),
        }
    }
    (out, drained.items.len())
}

fn numbered(id: u64, destination: &str) -> Arc<Message> {
    Arc::new(Message::new(
        id,
        Arc::from(destination),
        &Headers::default(),
        Bytes::from_static(b"x"),
    ))
}

#[test]
fn a_run_reaches_exact_and_pattern_subscriptions_whole_and_the_peers_message_by_message() {
    let peers = Arc::new(Recorder::default());
    let router = Router::new(QueueLimits::counting(8), Arc::clone(&peers) as _);
    let (ann, bob) = (session(1, "ann"), session(2, "bob"));
    router.subscribe_topic("a.b", subscriber(&ann, "0"));
    router.subscribe_topic("a.*", subscriber(&ann, "1"));
    router.subscribe_topic("a.c", subscriber(&bob, "0"));
    peers.0.lock().clear();

    let run: Vec<_> = (1..=3).map(|id| numbered(id, "/topic/a.b")).collect();
    let fan_out = router.publish_topic_run("a.b", run);
    assert_eq!(fan_out.delivered, 6, "3 messages to 2 subscriptions");
    let (ids, items) = queued(&ann);
    let expected: Vec<_> = ["0", "1"]
        .into_iter()
        .flat_map(|sub| (1..=3).map(move |id| (sub.to_string(), id)))
        .collect();
    assert_eq!(ids, expected, "in order on each subscription");
    assert_eq!(items, 2, "one push per subscription");
    assert_eq!(queued(&bob).0, vec![], "a.c matches no message of a.b");
    assert_eq!(
        *peers.0.lock(),
        ["topic a.b None"; 3],
        "each message once, in order"
    );
}

#[test]
fn a_run_to_a_topic_with_history_is_positioned_message_by_message() {
    let rule = HistoryRule {
        pattern: "h.*".into(),
        max_messages: 10,
        max_bytes: 1 << 20,
        max_age: std::time::Duration::from_secs(60),
    };
    let router = Router::new(QueueLimits::counting(8), Arc::new(Recorder::default()) as _)
        .with_history(History::new(vec![rule]));
    let ann = session(1, "ann");
    router.subscribe_topic("h.x", subscriber(&ann, "0"));
    let run: Vec<_> = (1..=3).map(|id| numbered(id, "/topic/h.x")).collect();
    assert_eq!(router.publish_topic_run("h.x", run).delivered, 3);
    let offsets: Vec<u64> = ann
        .outbox
        .drain()
        .items
        .into_iter()
        .map(|item| match item {
            crate::outbox::Outbound::Deliver(d) => {
                super::Position::of(&d.message).expect("positioned").offset
            }
            other => panic!("a history topic's messages go one by one: {other:?}"),
        })
        .collect();
    assert_eq!(offsets, [1, 2, 3]);
}
