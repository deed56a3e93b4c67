//! One subscription of a session: where it is registered, how it acknowledges, and the
//! messages delivered on it that still await ACK.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::command::AckMode;
use crate::message::{Delivery, Message};
use crate::router::queue::Queue;

#[derive(Debug)]
pub enum Registration {
    /// A `/topic` name or pattern.
    Topic(String),
    Queue(Arc<Queue>),
    /// Key in the router's user table.
    User(String),
    /// An explicit SUBSCRIBE to `/temp-queue/<name>`: replies then carry this id.
    TempQueue(String),
}

#[derive(Debug)]
pub struct Subscription {
    pub id: Arc<str>,
    pub registration: Registration,
    /// The MESSAGE `destination` when it differs from the sent one (`/user/queue/x`).
    pub destination: Option<Arc<str>>,
    pub ack: AckMode,
    /// 0 = unlimited.
    pub prefetch: u32,
    /// Delivered, awaiting ACK, by ack tag (tags increase with delivery order).
    pub pending: BTreeMap<u64, Arc<Message>>,
    /// Topic deliveries waiting for the prefetch window to open.
    pub backlog: VecDeque<Delivery>,
}

impl Subscription {
    pub fn new(
        id: Arc<str>,
        registration: Registration,
        destination: Option<Arc<str>>,
        ack: AckMode,
        prefetch: u32,
    ) -> Self {
        Self {
            id,
            registration,
            destination,
            ack,
            prefetch,
            pending: BTreeMap::new(),
            backlog: VecDeque::new(),
        }
    }

    /// Whether another delivery must wait for an ACK first.
    pub fn window_full(&self) -> bool {
        self.ack.tracks_acks() && self.prefetch > 0 && self.pending.len() >= self.prefetch as usize
    }

    pub fn queue(&self) -> Option<&Arc<Queue>> {
        match &self.registration {
            Registration::Queue(q) => Some(q),
            _ => None,
        }
    }

    /// Removes and returns what an ACK/NACK of `tag` settles: just `tag` for
    /// client-individual, `tag` and everything delivered before it for client.
    pub fn settle(&mut self, tag: u64) -> Vec<(u64, Arc<Message>)> {
        match self.ack {
            AckMode::ClientIndividual => self
                .pending
                .remove(&tag)
                .map(|m| vec![(tag, m)])
                .unwrap_or_default(),
            _ => {
                let rest = self.pending.split_off(&(tag + 1));
                let settled = std::mem::replace(&mut self.pending, rest);
                settled.into_iter().collect()
            }
        }
    }

    /// The ack tag of the pending message with this message id (1.0/1.1 ACK by message-id).
    pub fn tag_of(&self, message_id: u64) -> Option<u64> {
        self.pending
            .iter()
            .find(|(_, m)| m.id == message_id)
            .map(|(tag, _)| *tag)
    }
}
