//! `chat.sync`: after a reconnect, replay to the asking session every message of the user's
//! conversations after the point it has, a page at a time, then say where it got to on
//! `/user/queue/sync` (`more` while pages remain).
//!
//! Two starting points. A `cursor` (per conversation, the last position the client holds) is
//! exact in a cluster: positions are given in the order the store makes messages visible
//! (`chat_store::Cursor`), so nothing can appear behind a position already answered, whatever
//! the nodes' clocks. `afterMessageId` alone is the older form, kept for old clients: ids come
//! from each node's clock, so across nodes a message can be stored with an id below one the
//! client already saw.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chat_store::Cursor;
use serde_json::json;

use crate::chat::effect::{Effect, Payload};
use crate::chat::error::AppError;
use crate::chat::model;
use crate::chat::reply_queue::ReplyQueue;
use crate::chat::sequencer::Outcome;
use crate::chat::state::ChatCore;
use crate::handle::SessionHandle;

/// Longest replay one sync request returns; the client asks again while `more` is true.
const MAX_SYNC: usize = 500;
/// Ids of `seen` honoured, at most: a client that got more live since its last sync gets some
/// of them again (and drops them by messageId), rather than the server hashing an unbounded
/// list.
const MAX_SEEN: usize = 4096;

pub(super) async fn sync(
    core: Arc<ChatCore>,
    user: String,
    session: Arc<SessionHandle>,
    request: model::Sync,
) -> Result<Outcome, AppError> {
    let limit = request.limit.unwrap_or(MAX_SYNC).clamp(1, MAX_SYNC);
    let after = request.after_message_id.map(|id| id.0);
    if request.cursor.is_none() && after.is_none() {
        return Err(AppError::BadRequest(
            "chat.sync needs a cursor or an afterMessageId".into(),
        ));
    }
    // Gap-free across nodes: live delivery from other nodes must be on before the read.
    core.peers.until_user_live(&user).await;
    let (payloads, done) = match request.cursor {
        Some(positions) => {
            let cursor = Cursor {
                positions,
                after_message_id: after.unwrap_or(0),
            };
            let (messages, more) = core.store.messages_since(&user, &cursor, limit).await?;
            let up_to = messages
                .iter()
                .map(|m| m.message.message_id)
                .max()
                .unwrap_or(cursor.after_message_id);
            let next = cursor.advanced(&messages);
            let seen: HashSet<u64> = request
                .seen
                .unwrap_or_default()
                .into_iter()
                .take(MAX_SEEN)
                .map(|id| id.0)
                .collect();
            let (held, fresh): (Vec<_>, Vec<_>) = messages
                .iter()
                .partition(|m| seen.contains(&m.message.message_id));
            let payloads: Vec<Payload> = fresh.into_iter().map(Payload::sequenced).collect();
            // What the client got live, it may not know the place of (the streamed store
            // numbers messages after delivering them): the positions, without the bodies.
            let positions: BTreeMap<String, u64> = held
                .iter()
                .map(|m| (m.message.message_id.to_string(), m.seq))
                .collect();
            let done = json!({
                "upToMessageId": up_to.to_string(),
                "more": more,
                "cursor": next.positions,
                "positions": positions,
            });
            (payloads, done)
        }
        None => {
            let after = after.unwrap_or(0);
            let (messages, more) = core.store.messages_after(&user, after, limit).await?;
            let up_to = messages.last().map_or(after, |m| m.message_id);
            let payloads: Vec<Payload> = messages.iter().map(Payload::message).collect();
            (
                payloads,
                json!({"upToMessageId": up_to.to_string(), "more": more}),
            )
        }
    };
    let mut effects = Vec::with_capacity(payloads.len() + 1);
    for payload in payloads {
        effects.push(Effect::ToSession {
            session: Arc::clone(&session),
            queue: ReplyQueue::Messages,
            payload,
        });
    }
    effects.push(Effect::ToSession {
        session,
        queue: ReplyQueue::Sync,
        payload: core.payload(done.clone()),
    });
    Ok(Outcome {
        effects,
        reply: Some(done),
        ..Outcome::default()
    })
}
