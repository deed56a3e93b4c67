//! `chat.sync`: after a reconnect, replay to the asking session every message of the user's
//! conversations after the last one it has, a page at a time, then say where it got to on
//! `/user/queue/sync` (`more` while pages remain).

use std::sync::Arc;

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

pub(super) async fn sync(
    core: Arc<ChatCore>,
    user: String,
    session: Arc<SessionHandle>,
    request: model::Sync,
) -> Result<Outcome, AppError> {
    let limit = request.limit.unwrap_or(MAX_SYNC).clamp(1, MAX_SYNC);
    // Gap-free across nodes: live delivery from other nodes must be on before the read.
    core.peers.until_user_live(&user).await;
    let (messages, more) = core
        .store
        .messages_after(&user, request.after_message_id.0, limit)
        .await?;
    let up_to = messages
        .last()
        .map_or(request.after_message_id.0, |m| m.message_id);
    let mut effects = Vec::with_capacity(messages.len() + 1);
    for m in &messages {
        effects.push(Effect::ToSession {
            session: Arc::clone(&session),
            queue: ReplyQueue::Messages,
            payload: Payload::message(m),
        });
    }
    let done = json!({"upToMessageId": up_to.to_string(), "more": more});
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
