//! `chat.typing`: a member starts or stops typing; the other members who are online hear it
//! on `/user/queue/typing` (droppable: a late indicator is worth nothing). The same state
//! repeated within [`TYPING_COALESCE`] is dropped here.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::chat::effect::Effect;
use crate::chat::error::AppError;
use crate::chat::model::{self, rfc3339};
use crate::chat::reply_queue::ReplyQueue;
use crate::chat::sequencer::Outcome;
use crate::chat::state::ChatCore;
use crate::clock::now_ms;
use crate::router::Priority;

/// A typing indicator repeating the same state within this window is coalesced away (so the
/// last state sent per (user, conversation) matters this long and no longer).
pub const TYPING_COALESCE: Duration = Duration::from_millis(1000);

pub(super) async fn typing(
    core: Arc<ChatCore>,
    user: String,
    request: model::Typing,
) -> Result<Outcome, AppError> {
    let conversation = core.membership(&user, &request.conversation_id).await?;
    let key = (user.clone(), request.conversation_id.clone());
    let now = Instant::now();
    if let Some((typing, at)) = core.typing.get(&key)
        && typing == request.typing
        && now.duration_since(at) < TYPING_COALESCE
    {
        return Ok(Outcome::default());
    }
    core.typing.insert(key, (request.typing, now), now);
    let at = rfc3339(now_ms());
    let body = json!({
        "conversationId": request.conversation_id,
        "userId": user,
        "typing": request.typing,
        "at": at,
    });
    let others: Vec<String> = conversation
        .members
        .iter()
        .filter(|m| m.user_id != user)
        .map(|m| m.user_id.clone())
        .collect();
    let statuses = core.presence.statuses(&others).await;
    let users = others
        .into_iter()
        .zip(statuses)
        .filter_map(|(u, (online, _))| online.then_some(u))
        .collect();
    let effects = vec![Effect::ToUser {
        users,
        queue: ReplyQueue::Typing,
        payload: core.payload(body),
        priority: Priority::Droppable,
    }];
    Ok(Outcome {
        effects,
        ..Outcome::default()
    })
}
