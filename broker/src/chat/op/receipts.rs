//! Read receipts: `chat.delivered` (also what a recipient's ACK of a chat message becomes) and
//! `chat.read` (everything up to a message, in one conversation). Each status change is told
//! to the message's sender on `/user/queue/receipts`.

use std::sync::Arc;

use crate::chat::effect::Effect;
use crate::chat::error::AppError;
use crate::chat::model::{self, ReceiptOut, rfc3339};
use crate::chat::reply_queue::ReplyQueue;
use crate::chat::sequencer::Outcome;
use crate::chat::state::ChatCore;
use crate::clock::now_ms;
use crate::router::Priority;

pub(super) async fn delivered(
    core: Arc<ChatCore>,
    user: String,
    message_ids: Vec<u64>,
) -> Result<Outcome, AppError> {
    let changes = core
        .store
        .mark_delivered(&user, &message_ids, now_ms())
        .await?;
    let effects = changes
        .into_iter()
        .map(|c| Effect::ToUser {
            users: vec![c.sender_id.clone()],
            queue: ReplyQueue::Receipts,
            priority: Priority::Normal,
            payload: core.payload(
                serde_json::to_value(ReceiptOut {
                    message_id: c.message_id,
                    conversation_id: &c.conversation_id,
                    user_id: &c.user_id,
                    status: c.status,
                    at: rfc3339(c.at_ms),
                    up_to_message_id: None,
                })
                .unwrap_or_default(),
            ),
        })
        .collect();
    Ok(Outcome {
        effects,
        ..Outcome::default()
    })
}

pub(super) async fn read(
    core: Arc<ChatCore>,
    user: String,
    request: model::Read,
) -> Result<Outcome, AppError> {
    core.membership(&user, &request.conversation_id).await?;
    let Some(mark) = core
        .store
        .mark_read(
            &user,
            &request.conversation_id,
            request.message_id.0,
            now_ms(),
        )
        .await?
    else {
        return Ok(Outcome::default());
    };
    let effects = mark
        .senders
        .iter()
        .map(|sender| Effect::ToUser {
            users: vec![sender.clone()],
            queue: ReplyQueue::Receipts,
            priority: Priority::Normal,
            payload: core.payload(
                serde_json::to_value(ReceiptOut {
                    message_id: mark.up_to,
                    conversation_id: &mark.conversation_id,
                    user_id: &mark.user_id,
                    status: chat_store::ReceiptStatus::Read,
                    at: rfc3339(mark.at_ms),
                    up_to_message_id: Some(mark.up_to.to_string()),
                })
                .unwrap_or_default(),
            ),
        })
        .collect();
    Ok(Outcome {
        effects,
        ..Outcome::default()
    })
}
