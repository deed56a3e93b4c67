//! `chat.send` (and `POST /api/messages`): store a message in a conversation (a DIRECT one is
//! created on first use), deliver it live to every member's sessions and the conversation's
//! room, and tell the push seam about members who are offline.

use std::sync::Arc;

use chat_store::{Appended, ConversationKind, NewConversation, StoredMessage, direct_id};
use futures_util::FutureExt;

use crate::chat::effect::{Effect, OfflineEvent, Payload};
use crate::chat::error::AppError;
use crate::chat::model;
use crate::chat::reply::Sent;
use crate::chat::reply_queue::ReplyQueue;
use crate::chat::room;
use crate::chat::sequencer::{Durable, Outcome, Work};
use crate::chat::state::ChatCore;
use crate::chat::turn::Turn;
use crate::id;
use crate::router::Priority;

/// Checks the content's size, then takes the message id when the sequencer takes the
/// request, so id order is arrival order is delivery order on this node, whichever session
/// sent it.
pub(super) fn prepare(
    core: Arc<ChatCore>,
    user: String,
    request: model::SendMessage,
) -> Result<Work, AppError> {
    let limit = core.config.max_content;
    if request.content.len() > limit {
        return Err(AppError::ContentTooLarge {
            size: request.content.len(),
            limit,
        });
    }
    Ok(Box::new(move || {
        let message_id = core.ids.next_id();
        // The conversation's place in line too, in the same order (chat/turn.rs).
        let conversation = match (&request.conversation_id, &request.recipient_id) {
            (Some(id), _) => id.clone(),
            (None, Some(recipient)) => direct_id(&user, recipient),
            (None, None) => String::new(),
        };
        let turn = core.turns.take(&conversation);
        send(core, user, request, message_id, conversation, turn).boxed()
    }))
}

/// `id`: the conversation's id as [`prepare`] derived it (a DIRECT one from the pair: once per
/// send, not again here); `turn`: the send's place in its line.
async fn send(
    core: Arc<ChatCore>,
    user: String,
    request: model::SendMessage,
    message_id: u64,
    id: String,
    mut turn: Turn,
) -> Result<Outcome, AppError> {
    let conversation = match (&request.conversation_id, &request.recipient_id) {
        (Some(_), None) => core.membership(&user, &id).await?,
        (None, Some(recipient)) => {
            if crate::auth::Principal::try_from(recipient.as_str()).is_err() {
                return Err(AppError::BadRequest(format!(
                    "recipientId {recipient:?} is not a valid user name"
                )));
            }
            match core.membership(&user, &id).await {
                Ok(c) => c,
                Err(AppError::UnknownConversation(_)) => {
                    let created = core
                        .store
                        .create_conversation(NewConversation {
                            id,
                            kind: ConversationKind::Direct,
                            name: None,
                            creator: user.clone(),
                            members: vec![user.clone(), recipient.clone()],
                            at_ms: id::timestamp_ms(message_id),
                        })
                        .await?;
                    core.changed(created)
                }
                Err(e) => return Err(e),
            }
        }
        _ => {
            return Err(AppError::BadRequest(
                "give exactly one of conversationId and recipientId".into(),
            ));
        }
    };
    let stored = StoredMessage {
        message_id,
        conversation_id: conversation.id.clone(),
        sender_id: user.clone(),
        content: request.content,
        content_type: request.content_type.unwrap_or_else(|| "text/plain".into()),
        client_message_id: request.client_message_id,
        timestamp_ms: id::timestamp_ms(message_id),
    };
    // Sends to one conversation reach the store in id order even when their membership
    // checks above finished out of order (a conversation not cached: each asked the store).
    turn.ready().await;
    let accepted = accept_in_turn(&core, stored.clone(), turn).await;
    let (appended, durable) = match accepted {
        Ok(accepted) => accepted,
        Err(e) => {
            // The store may hold it all the same (a commit whose answer was lost): its retry
            // must deliver it, since nothing was delivered now.
            core.redelivery.write_failed(message_id);
            return Err(e.into());
        }
    };
    let (stored, seq) = match appended {
        Appended::Stored { seq } => (stored, seq),
        // A retry: the original id, and nothing stored twice.
        Appended::Duplicate { original } => {
            // Delivered again only where this node cannot know the original was delivered
            // (chat/redelivery.rs); members drop copies by messageId.
            let clustered = core.peers.redeliver_duplicates();
            let effects = if core
                .redelivery
                .needed(&core.ids, clustered, original.message_id)
            {
                deliveries(&core, &conversation, &original, None)
            } else {
                Vec::new()
            };
            return Ok(Outcome {
                effects,
                reply: None,
                sent: Some(Sent {
                    message_id: original.message_id,
                    conversation_id: original.conversation_id.clone(),
                    timestamp_ms: original.timestamp_ms,
                    duplicate: true,
                }),
                message_id: Some(original.message_id),
                // A store may send the original again (it was in doubt): answer once it holds.
                durable: durable.map(|ack| Durable {
                    ack,
                    conversation: original.conversation_id.clone(),
                }),
            });
        }
    };
    let mut effects = Vec::with_capacity(conversation.members.len() + 2);
    // Only the push service hears offline events: without it, no presence lookup (a Redis
    // round trip in a cluster) and no per-recipient copies on every send.
    if core.offline_tx.receiver_count() > 0 {
        let members: Vec<String> = conversation
            .members
            .iter()
            .map(|m| m.user_id.clone())
            .collect();
        // Presence is cluster-wide in cluster mode: offline here means no session on any node.
        let statuses = core.presence.statuses(&members).await;
        let group_name = match conversation.kind {
            ConversationKind::Group => Some(
                conversation
                    .name
                    .clone()
                    .unwrap_or_else(|| conversation.id.clone()),
            ),
            ConversationKind::Direct => None,
        };
        let content: Arc<str> = Arc::from(stored.content.as_str());
        for (member, (online, _)) in members.iter().zip(statuses) {
            if *member != user && !online {
                effects.push(Effect::Offline(OfflineEvent {
                    user: member.clone(),
                    message_id: stored.message_id,
                    conversation_id: stored.conversation_id.clone(),
                    sender_id: stored.sender_id.clone(),
                    group_name: group_name.clone(),
                    content: Arc::clone(&content),
                }));
            }
        }
    }
    effects.extend(deliveries(&core, &conversation, &stored, seq));
    Ok(Outcome {
        effects,
        reply: None,
        sent: Some(Sent {
            message_id: stored.message_id,
            conversation_id: stored.conversation_id.clone(),
            timestamp_ms: stored.timestamp_ms,
            duplicate: false,
        }),
        message_id: Some(stored.message_id),
        durable: durable.map(|ack| Durable {
            ack,
            conversation: stored.conversation_id.clone(),
        }),
    })
}

/// Calls the store with the conversation's turn held: until the store answers where it places
/// concurrent appends itself (PostgreSQL: the first to lock the conversation's row is placed
/// first), or only until the call has entered the store's queue where the store places
/// messages in the order it is called (the embedded writer's queue, the streamed store's
/// accept line): its first poll. The next send of the conversation then goes at once, so a
/// conversation's sends are not a chain of store round trips there.
///
/// The first poll runs outside tokio's cooperative budget: the sequencer polls every send in
/// one task, and once that task's budget is spent a queue that has room still answers
/// `Pending` (and wakes the send again behind later ones), which let a later message of the
/// conversation into the store first. A queue that is really full is fair (first come, first
/// served), so waiting there keeps the order.
async fn accept_in_turn(
    core: &ChatCore,
    stored: StoredMessage,
    turn: Turn,
) -> Result<(Appended, Option<chat_store::Durability>), chat_store::StoreError> {
    if core.store.places_concurrent_appends() {
        let accepted = core.store.accept(stored).await;
        drop(turn);
        return accepted;
    }
    let mut accepting = std::pin::pin!(tokio::task::unconstrained(core.store.accept(stored)));
    let first = futures_util::poll!(accepting.as_mut());
    drop(turn);
    match first {
        std::task::Poll::Ready(accepted) => accepted,
        std::task::Poll::Pending => accepting.await,
    }
}

/// The live copies of a stored message: every member's `/user/queue/messages`, and the room.
/// A GROUP's copies cross nodes as one for the room (chat/room.rs `split_joined`).
fn deliveries(
    core: &ChatCore,
    conversation: &chat_store::Conversation,
    stored: &StoredMessage,
    seq: Option<u64>,
) -> Vec<Effect> {
    let payload = Payload::placed(stored, seq);
    let members: Vec<String> = conversation
        .members
        .iter()
        .map(|m| m.user_id.clone())
        .collect();
    let to_members = match conversation.kind {
        ConversationKind::Group => {
            let (settled, joined) = room::split_joined(
                conversation,
                stored.timestamp_ms,
                core.config.room_join_grace,
            );
            Effect::ToRoomMembers {
                room: conversation.id.clone(),
                members: settled,
                joined,
                queue: ReplyQueue::Messages,
                payload: payload.clone(),
            }
        }
        ConversationKind::Direct => Effect::ToUser {
            users: members.clone(),
            queue: ReplyQueue::Messages,
            payload: payload.clone(),
            priority: Priority::Normal,
        },
    };
    vec![
        to_members,
        Effect::ToTopic {
            name: room::topic(&stored.conversation_id),
            members,
            payload,
        },
    ]
}
