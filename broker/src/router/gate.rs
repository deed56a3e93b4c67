//! The gate of a `/topic` subscription resuming from a history shared by several nodes (see
//! `shared.rs`): the seam between its replay and its live messages.
//!
//! The replay comes from Redis, asynchronously, while live copies already arrive: the
//! subscription is registered first (so nothing published from then on can be missed), and
//! its gate holds the live copies until the replay is in the outbox. Opening the gate pushes
//! the replay, then the held copies the replay did not already contain (by `offset`), then
//! the subscription's RECEIPT with `recovered`. From then on it only drops copies at or
//! below the last offset delivered: no duplicate and no gap at the seam, in offset order.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use stomp_codec::{Command, Frame};

use super::fanout::{admits, delivery};
use super::position::Position;
use super::topic::{Pass, Subscriber};
use crate::message::Message;
use crate::outbox::Outbound;

/// Live copies a gate holds while its replay is on its way: a replay normally takes one Redis
/// round trip, so this is seconds of a fast topic; past it the resume is reported as not
/// recovered (the client reloads) rather than holding memory without bound.
const HELD_MAX: usize = 10_000;
/// Bytes of held copies, for the same reason (16 MiB is thousands of chat messages).
const HELD_MAX_BYTES: usize = 16 * 1024 * 1024;

/// One replayed message: the message and, for a chat room copy, the members it is for.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub message: Arc<Message>,
    pub members: Option<Vec<String>>,
}

/// How a resuming SUBSCRIBE went.
#[derive(Debug)]
pub enum Resumed {
    /// Replayed already (from this node's history): whether it was complete.
    Done(bool),
    /// The replay is on its way from the shared history; its gate sends the receipt.
    Pending(Arc<Gate>),
}

/// A resuming subscription's seam between replay and live.
#[derive(Debug)]
pub struct Gate {
    /// The subscription, as the replay and held copies are pushed to it.
    subscriber: Subscriber,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Live copies waiting for the replay (`None` once open).
    held: Option<VecDeque<Arc<Message>>>,
    held_bytes: usize,
    /// More arrived than may be held: the resume cannot be complete.
    overflowed: bool,
    /// The position of the last message pushed (the resume position until then).
    at: Position,
    /// The SUBSCRIBE's receipt, sent once the replay is in the outbox.
    receipt: Option<String>,
    /// Set once open: whether the replay was complete.
    recovered: Option<bool>,
}

impl Gate {
    /// A closed gate for `subscriber`, resuming after `from`.
    pub fn new(subscriber: Subscriber, from: Position) -> Arc<Self> {
        Arc::new(Self {
            subscriber,
            state: Mutex::new(State {
                held: Some(VecDeque::new()),
                held_bytes: 0,
                overflowed: false,
                at: from,
                receipt: None,
                recovered: None,
            }),
        })
    }

    /// The replay arrived (`None`: the history cannot give everything after the position:
    /// another epoch, trimmed, or Redis unreachable): pushes it, then the held copies, then
    /// the receipt, and opens.
    pub fn open(&self, replay: Option<Vec<Replayed>>) {
        let mut state = self.state.lock();
        let Some(held) = state.held.take() else {
            return;
        };
        let principal = self.subscriber.session.principal.name();
        let recovered = replay.is_some() && !state.overflowed;
        for entry in replay.into_iter().flatten() {
            if admits(entry.members.as_deref(), principal) {
                state.push_if_new(&self.subscriber, &entry.message);
            } else {
                // Not for this member, but the position moves past it all the same.
                state.advance(&entry.message);
            }
        }
        for message in held {
            state.push_if_new(&self.subscriber, &message);
        }
        state.held_bytes = 0;
        state.recovered = Some(recovered);
        if let Some(id) = state.receipt.take() {
            self.send_receipt(id, recovered);
        }
    }

    /// The SUBSCRIBE asked for a receipt: sent now if the gate is open (behind the replay,
    /// already in the outbox), else when it opens.
    pub fn receipt(&self, id: String) {
        let mut state = self.state.lock();
        match state.recovered {
            Some(recovered) => self.send_receipt(id, recovered),
            None => state.receipt = Some(id),
        }
    }

    fn send_receipt(&self, id: String, recovered: bool) {
        let frame = Frame::new(Command::Receipt)
            .header("receipt-id", id)
            .header("recovered", recovered.to_string());
        let _ = self
            .subscriber
            .session
            .outbox
            .try_push(Outbound::Frame(frame));
    }
}

impl Pass for Gate {
    /// A live copy for the subscription (its members already admitted): held while closed,
    /// pushed when open unless the replay already carried it.
    fn pass(&self, message: &Arc<Message>) -> bool {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if let Some(held) = state.held.as_mut() {
            if held.len() >= HELD_MAX || state.held_bytes >= HELD_MAX_BYTES {
                state.overflowed = true;
                return false;
            }
            held.push_back(Arc::clone(message));
            state.held_bytes += message.weight();
            return true;
        }
        state.push_if_new(&self.subscriber, message)
    }
}

impl State {
    /// Pushes `message` unless it is at or before the last position pushed (in the same
    /// epoch). A message of another epoch (the history was lost and began again) is new.
    fn push_if_new(&mut self, subscriber: &Subscriber, message: &Arc<Message>) -> bool {
        if !self.advance(message) {
            return false;
        }
        // A full outbox is the slow-consumer policy's, as for any live message.
        subscriber
            .session
            .outbox
            .try_push(delivery(subscriber, message))
            .is_ok()
    }

    /// Moves the position to `message`'s; false when it is not past the current one.
    fn advance(&mut self, message: &Message) -> bool {
        let Some(position) = Position::of(message) else {
            return true;
        };
        if position.epoch == self.at.epoch && position.offset <= self.at.offset {
            return false;
        }
        self.at = position;
        true
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use stomp_codec::Headers;

    use super::*;
    use crate::auth::Principal;
    use crate::config::SlowConsumerPolicy;
    use crate::handle::SessionHandle;
    use crate::outbox::Outbox;
    use crate::subscription_id::SubscriptionId;

    fn at(epoch: &str, offset: u64) -> Arc<Message> {
        Arc::new(
            Message::new(
                offset,
                Arc::from("/topic/t"),
                &Headers::default(),
                Bytes::from_static(b"x"),
            )
            .positioned(epoch, offset),
        )
    }

    fn gate(from: u64) -> (Arc<Gate>, Arc<SessionHandle>) {
        let session = Arc::new(SessionHandle {
            id: 1,
            name: crate::handle::SessionName(1),
            principal: Principal(Arc::from("ann")),
            outbox: Outbox::new(64, 1 << 20, SlowConsumerPolicy::Disconnect),
            record: Default::default(),
        });
        let subscriber = Subscriber {
            session: Arc::clone(&session),
            subscription: SubscriptionId::from("0"),
            gate: None,
        };
        let from = Position {
            epoch: "e".into(),
            offset: from,
        };
        (Gate::new(subscriber, from), session)
    }

    /// Offsets of the deliveries in the outbox, and whether a RECEIPT came last.
    fn pushed(session: &SessionHandle) -> (Vec<u64>, Option<String>) {
        let mut offsets = Vec::new();
        let mut receipt = None;
        for item in session.outbox.drain().items {
            match item {
                Outbound::Deliver(d) => {
                    offsets.push(Position::of(&d.message).expect("positioned").offset)
                }
                Outbound::Frame(f) => {
                    receipt = f.headers.get("recovered").map(str::to_string);
                }
                Outbound::Run(..) => panic!("a gate pushes messages one by one"),
            }
        }
        (offsets, receipt)
    }

    #[test]
    fn replay_then_held_copies_without_duplicates_then_receipt() {
        let (gate, session) = gate(3);
        gate.receipt("r".into());
        // Live copies 6 and 7 arrive before the replay, which read up to 6.
        assert!(gate.pass(&at("e", 6)));
        assert!(gate.pass(&at("e", 7)));
        let replay = (4..=6)
            .map(|o| Replayed {
                message: at("e", o),
                members: None,
            })
            .collect();
        gate.open(Some(replay));
        assert!(
            !gate.pass(&at("e", 7)),
            "the replay and the held copies had it"
        );
        gate.pass(&at("e", 8));
        assert_eq!(pushed(&session), (vec![4, 5, 6, 7, 8], Some("true".into())));
    }

    #[test]
    fn no_replay_is_not_recovered_and_a_new_epoch_is_new() {
        let (gate, session) = gate(3);
        gate.pass(&at("f", 1));
        gate.open(None);
        gate.pass(&at("f", 2));
        gate.receipt("r".into());
        assert_eq!(pushed(&session), (vec![1, 2], Some("false".into())));
    }

    #[test]
    fn a_replayed_room_copy_reaches_members_only() {
        let (gate, session) = gate(0);
        gate.open(Some(vec![
            Replayed {
                message: at("e", 1),
                members: Some(vec!["bob".into()]),
            },
            Replayed {
                message: at("e", 2),
                members: Some(vec!["ann".into()]),
            },
        ]));
        assert_eq!(pushed(&session).0, vec![2]);
    }
}
