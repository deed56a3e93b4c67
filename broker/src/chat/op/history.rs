//! `chat.history` (and `GET /api/conversations/{id}/messages`): a page of a conversation's
//! messages before a given one, newest last, for a member.

use std::sync::Arc;

use crate::chat::effect::Effect;
use crate::chat::error::AppError;
use crate::chat::model::{self, MessageOut};
use crate::chat::reply_queue::ReplyQueue;
use crate::chat::sequencer::Outcome;
use crate::chat::state::ChatCore;
use crate::handle::SessionHandle;

/// Largest history page.
const MAX_HISTORY: usize = 100;
/// The page size when the request names none.
const DEFAULT_HISTORY: usize = 50;

pub(super) async fn history(
    core: Arc<ChatCore>,
    user: String,
    session: Option<Arc<SessionHandle>>,
    request: model::History,
) -> Result<Outcome, AppError> {
    core.membership(&user, &request.conversation_id).await?;
    let limit = request
        .limit
        .unwrap_or(DEFAULT_HISTORY)
        .clamp(1, MAX_HISTORY);
    let (messages, has_more) = core
        .store
        .history(
            &request.conversation_id,
            request.before_message_id.map(|i| i.0),
            limit,
        )
        .await?;
    let out = serde_json::to_value(model::HistoryOut {
        conversation_id: &request.conversation_id,
        messages: messages.iter().map(MessageOut::from).collect(),
        has_more,
    })
    .unwrap_or_default();
    Ok(Outcome {
        effects: vec![Effect::reply(
            session,
            &user,
            ReplyQueue::History,
            core.payload(out.clone()),
        )],
        reply: Some(out),
        ..Outcome::default()
    })
}
