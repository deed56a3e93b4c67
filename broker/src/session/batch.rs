//! A publisher's consecutive SENDs to one topic, gathered while the frames of one socket read
//! are handled and routed together as a run (`Router::publish_topic_run`): at 1→100 the cost of
//! a delivery was the locked instructions of pushing it (the message's reference count, the
//! outbox's lock), and a run pays them once per subscriber instead of once per message.
//!
//! Only a SEND to a `/topic` outside any transaction and without a receipt joins a run. Any
//! other frame routes the run first, so everything the session does keeps the order its frames
//! came in: a SUBSCRIBE, an UNSUBSCRIBE, a SEND elsewhere or with a receipt (its RECEIPT still
//! follows every SEND before it), a COMMIT, an error. The run is also routed when the read's
//! frames are all handled, so nothing waits for the next read; a run never outlives
//! `process_input`, and an idle session holds nothing for it.

use std::sync::Arc;

use super::state::Session;
use crate::command::{ClientCommand, Request};
use crate::config::AclAction;
use crate::destination::Destination;
use crate::error::StompError;
use crate::message::Message;

/// Most messages in one run: enough to pay the per-run costs once per read at 128-byte bodies
/// (a 64 KiB read holds ≈ 300 such SENDs), few enough that a run fits a subscriber's outbox
/// (4,096 frames by default) whole, which is when it is pushed in one piece.
const MAX_MESSAGES: usize = 256;

/// Most bytes (message weights) in one run, for the same reason against the outbox's bytes.
const MAX_BYTES: usize = 256 * 1024;

/// The run being gathered.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// The topic's name (without `/topic/`).
    topic: String,
    messages: Vec<Arc<Message>>,
    bytes: usize,
}

impl Session {
    /// Adds `request` to `batch` when it is a SEND that may join a run (`None`: taken);
    /// otherwise routes the batch first and gives `request` back to be handled as usual. A
    /// SEND refused here (not allowed, a bad destination) routes the batch before the error.
    pub(super) fn gather(
        &mut self,
        batch: &mut Batch,
        request: Request,
    ) -> Result<Option<Request>, StompError> {
        let publish = match request {
            Request {
                command: ClientCommand::Send(publish),
                receipt: None,
            } if publish.transaction.is_none() && publish.destination.starts_with("/topic/") => {
                publish
            }
            request => {
                self.route_batch(batch);
                return Ok(Some(request));
            }
        };
        let name = match self.check(AclAction::Send, &publish.destination) {
            Ok(Destination::Topic(name)) => name,
            refused_or_other => {
                self.route_batch(batch);
                refused_or_other?;
                // Not a topic after all: handled as any other frame.
                return Ok(Some(Request {
                    command: ClientCommand::Send(publish),
                    receipt: None,
                }));
            }
        };
        if batch.topic != name || batch.messages.len() >= MAX_MESSAGES || batch.bytes >= MAX_BYTES {
            self.route_batch(batch);
            batch.topic = name;
        }
        let message = self.accept(publish.destination, publish.headers, publish.body);
        batch.bytes += message.weight();
        batch.messages.push(message);
        Ok(None)
    }

    /// Routes what `batch` holds, as one run, and leaves it empty.
    pub(super) fn route_batch(&mut self, batch: &mut Batch) {
        if batch.messages.is_empty() {
            return;
        }
        let messages = std::mem::take(&mut batch.messages);
        batch.bytes = 0;
        let fan_out = self.broker.router.publish_topic_run(&batch.topic, messages);
        self.throttle
            .after_publish(fan_out.pressed, &self.broker.clock);
    }
}
