//! The chat operations, one per `/app/<action>`: a synchronous part (parse, validate, take an
//! id: done when the request arrives, so order is fixed then) and an asynchronous part (the
//! store) whose [`Outcome`] the sequencer applies.

use std::sync::Arc;

use bytes::Bytes;
use chat_store::{Appended, ConversationKind, NewConversation, StoredMessage, direct_id};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::time::Instant;

use super::effect::{Effect, Payload};
use super::error::AppError;
use super::model::{self, ConversationOut, MessageOut, ReceiptOut, rfc3339};
use super::presence::Change;
use super::{ChatCore, Durable, Outcome};
use crate::handle::SessionHandle;
use crate::id;
use crate::router::Priority;

/// Longest replay one sync request returns; the client asks again while `more` is true.
const MAX_SYNC: usize = 500;
/// Largest history page.
const MAX_HISTORY: usize = 100;
/// Longest group.
const MAX_MEMBERS: usize = 1000;
/// A typing indicator repeating the same state within this window is coalesced away.
const TYPING_COALESCE: std::time::Duration = std::time::Duration::from_millis(1000);

/// An operation's asynchronous half, built when the sequencer takes the request: the moment
/// that fixes its place in line, so a message id taken then is in arrival order.
pub type Work = Box<dyn FnOnce() -> BoxFuture<'static, Result<Outcome, AppError>> + Send>;

/// Work whose future can be built now (it only needs its place in line, not an id).
fn later(
    future: impl std::future::Future<Output = Result<Outcome, AppError>> + Send + 'static,
) -> Work {
    Box::new(move || future.boxed())
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    Ok(serde_json::from_slice(body)?)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn payload_of(core: &ChatCore, value: serde_json::Value) -> Payload {
    core.payload(value)
}

/// The synchronous half of an operation. For a send, `client_message_id` is set (even when
/// the request is refused, if the body names one) so errors can say which message failed.
pub fn prepare(
    core: &Arc<ChatCore>,
    user: &str,
    session: Option<&Arc<SessionHandle>>,
    action: &str,
    body: &[u8],
    client_message_id: &mut Option<String>,
) -> Result<Work, AppError> {
    let core = Arc::clone(core);
    let user = user.to_string();
    let session = session.cloned();
    Ok(match action {
        "chat.send" => {
            let request: model::SendMessage = match parse(body) {
                Ok(request) => request,
                Err(e) => {
                    // Only on this error path is the body read a second time, loosely.
                    *client_message_id = serde_json::from_slice::<serde_json::Value>(body)
                        .ok()
                        .and_then(|v| v.get("clientMessageId")?.as_str().map(str::to_string));
                    return Err(e);
                }
            };
            client_message_id.clone_from(&request.client_message_id);
            check_rate(&core, &user)?;
            let limit = core.config.max_content;
            if request.content.len() > limit {
                return Err(AppError::ContentTooLarge {
                    size: request.content.len(),
                    limit,
                });
            }
            // The id is taken when the sequencer takes the request, so id order is arrival
            // order is delivery order on this node, whichever session sent it.
            Box::new(move || {
                let message_id = core.ids.next_id();
                send(core, user, request, message_id).boxed()
            })
        }
        "chat.delivered" => {
            let request: model::Delivered = parse(body)?;
            later(delivered(core, user, request))
        }
        "chat.read" => {
            let request: model::Read = parse(body)?;
            later(read(core, user, request))
        }
        "chat.typing" => {
            let request: model::Typing = parse(body)?;
            later(typing(core, user, request))
        }
        "chat.sync" => {
            let request: model::Sync = parse(body)?;
            let session = session.ok_or(AppError::UnknownAction(action.into()))?;
            later(sync(core, user, session, request))
        }
        "chat.history" => {
            let request: model::History = parse(body)?;
            later(history(core, user, session, request))
        }
        "conversation.create" => {
            let request: model::CreateConversation = parse(body)?;
            let group_id = format!("g:{}", core.ids.next_id());
            later(create(core, user, request, group_id))
        }
        "conversation.members" => {
            let request: model::UpdateMembers = parse(body)?;
            later(members(core, user, request))
        }
        "conversation.list" => later(list(core, user, session)),
        "presence.query" => {
            let request: model::PresenceQuery = parse(body)?;
            let session = session.ok_or(AppError::UnknownAction(action.into()))?;
            later(presence_query(core, session, request))
        }
        other => return Err(AppError::UnknownAction(other.to_string())),
    })
}

/// Token bucket per user: `rate_per_sec` sustained, `rate_burst` at once.
fn check_rate(core: &ChatCore, user: &str) -> Result<(), AppError> {
    let (rate, burst) = (core.config.rate_per_sec, core.config.rate_burst);
    if rate <= 0.0 {
        return Ok(());
    }
    let now = Instant::now();
    let mut entry = core.rate.entry(user.to_string()).or_insert((burst, now));
    let (tokens, last) = *entry;
    let refilled = (tokens + now.duration_since(last).as_secs_f64() * rate).min(burst);
    if refilled < 1.0 {
        *entry = (refilled, now);
        return Err(AppError::RateLimited);
    }
    *entry = (refilled - 1.0, now);
    Ok(())
}

/// The conversation, from the cache or the store; the user must be a member.
async fn membership(
    core: &ChatCore,
    user: &str,
    id: &str,
) -> Result<Arc<chat_store::Conversation>, AppError> {
    let conversation = match core.cached(id) {
        Some(c) => c,
        None => match core.store.conversation(id).await? {
            Some(c) => core.remember(c),
            None => return Err(AppError::UnknownConversation(id.to_string())),
        },
    };
    if !conversation.is_member(user) {
        return Err(AppError::NotAMember(id.to_string()));
    }
    Ok(conversation)
}

fn reply_to(
    session: Option<Arc<SessionHandle>>,
    user: &str,
    queue: &'static str,
    payload: Payload,
) -> Effect {
    match session {
        Some(session) => Effect::ToSession {
            session,
            queue,
            payload,
        },
        None => Effect::ToUser {
            users: vec![user.to_string()],
            queue,
            payload,
            priority: Priority::Normal,
        },
    }
}

async fn send(
    core: Arc<ChatCore>,
    user: String,
    request: model::SendMessage,
    message_id: u64,
) -> Result<Outcome, AppError> {
    let conversation = match (&request.conversation_id, &request.recipient_id) {
        (Some(id), None) => membership(&core, &user, id).await?,
        (None, Some(recipient)) => {
            if crate::auth::Principal::try_from(recipient.as_str()).is_err() {
                return Err(AppError::BadRequest(format!(
                    "recipientId {recipient:?} is not a valid user name"
                )));
            }
            let id = direct_id(&user, recipient);
            match membership(&core, &user, &id).await {
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
    let (appended, durable) = core.store.accept(stored.clone()).await?;
    let stored = match appended {
        Appended::Stored => stored,
        // A retry: the original id, and nothing stored twice.
        Appended::Duplicate { original } => {
            // In a cluster the node that stored the original may have died before delivering
            // it, and members who stayed connected elsewhere would never see it: deliver it
            // again (members drop copies by messageId). A single node delivers right after
            // storing, so there nothing is delivered twice.
            let effects = if core.peers.redeliver_duplicates() {
                deliveries(&conversation, &original)
            } else {
                Vec::new()
            };
            return Ok(Outcome {
                effects,
                reply: Some(json!({
                    "messageId": original.message_id.to_string(),
                    "conversationId": original.conversation_id,
                    "timestamp": rfc3339(original.timestamp_ms),
                    "duplicate": true,
                })),
                message_id: Some(original.message_id),
                // A store may send the original again (it was in doubt): answer once it holds.
                durable: durable.map(Durable),
            });
        }
    };
    let mut effects = Vec::with_capacity(conversation.members.len() + 2);
    let members: Vec<String> = conversation
        .members
        .iter()
        .map(|m| m.user_id.clone())
        .collect();
    let statuses = core.presence.statuses(&members).await;
    for (member, (online, _)) in members.iter().zip(statuses) {
        if *member != user && !online {
            effects.push(Effect::Offline {
                user: member.clone(),
                message_id: stored.message_id,
                conversation_id: stored.conversation_id.clone(),
            });
        }
    }
    effects.extend(deliveries(&conversation, &stored));
    Ok(Outcome {
        effects,
        reply: Some(json!({
            "messageId": stored.message_id.to_string(),
            "conversationId": stored.conversation_id,
            "timestamp": rfc3339(stored.timestamp_ms),
        })),
        message_id: Some(stored.message_id),
        durable: durable.map(Durable),
    })
}

/// The live copies of a stored message: every member's `/user/queue/messages`, and the room.
fn deliveries(conversation: &chat_store::Conversation, stored: &StoredMessage) -> Vec<Effect> {
    let json = Bytes::from(serde_json::to_vec(&MessageOut::from(stored)).unwrap_or_default());
    let payload = Payload {
        id: stored.message_id,
        json,
        chat: true,
    };
    let members: Vec<String> = conversation
        .members
        .iter()
        .map(|m| m.user_id.clone())
        .collect();
    vec![
        Effect::ToUser {
            users: members.clone(),
            queue: "messages",
            payload: payload.clone(),
            priority: Priority::Normal,
        },
        Effect::ToTopic {
            name: format!("conversation.{}", stored.conversation_id),
            members,
            payload,
        },
    ]
}

async fn delivered(
    core: Arc<ChatCore>,
    user: String,
    request: model::Delivered,
) -> Result<Outcome, AppError> {
    let ids: Vec<u64> = request.message_ids.iter().map(|i| i.0).collect();
    let changes = core.store.mark_delivered(&user, &ids, now_ms()).await?;
    let effects = changes
        .into_iter()
        .map(|c| Effect::ToUser {
            users: vec![c.sender_id.clone()],
            queue: "receipts",
            priority: Priority::Normal,
            payload: payload_of(
                &core,
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

async fn read(
    core: Arc<ChatCore>,
    user: String,
    request: model::Read,
) -> Result<Outcome, AppError> {
    membership(&core, &user, &request.conversation_id).await?;
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
            queue: "receipts",
            priority: Priority::Normal,
            payload: payload_of(
                &core,
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

async fn typing(
    core: Arc<ChatCore>,
    user: String,
    request: model::Typing,
) -> Result<Outcome, AppError> {
    let conversation = membership(&core, &user, &request.conversation_id).await?;
    let key = (user.clone(), request.conversation_id.clone());
    let now = Instant::now();
    if let Some(last) = core.typing.get(&key)
        && last.0 == request.typing
        && now.duration_since(last.1) < TYPING_COALESCE
    {
        return Ok(Outcome::default());
    }
    core.typing.insert(key, (request.typing, now));
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
        queue: "typing",
        payload: payload_of(&core, body),
        priority: Priority::Droppable,
    }];
    Ok(Outcome {
        effects,
        ..Outcome::default()
    })
}

async fn sync(
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
            queue: "messages",
            payload: Payload {
                id: m.message_id,
                json: Bytes::from(serde_json::to_vec(&MessageOut::from(m)).unwrap_or_default()),
                chat: true,
            },
        });
    }
    let done = json!({"upToMessageId": up_to.to_string(), "more": more});
    effects.push(Effect::ToSession {
        session,
        queue: "sync",
        payload: payload_of(&core, done.clone()),
    });
    Ok(Outcome {
        effects,
        reply: Some(done),
        ..Outcome::default()
    })
}

async fn history(
    core: Arc<ChatCore>,
    user: String,
    session: Option<Arc<SessionHandle>>,
    request: model::History,
) -> Result<Outcome, AppError> {
    membership(&core, &user, &request.conversation_id).await?;
    let limit = request.limit.unwrap_or(50).clamp(1, MAX_HISTORY);
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
        effects: vec![reply_to(
            session,
            &user,
            "history",
            payload_of(&core, out.clone()),
        )],
        reply: Some(out),
        ..Outcome::default()
    })
}

fn conversation_event(core: &ChatCore, event: &str, c: &chat_store::Conversation) -> Payload {
    payload_of(
        core,
        json!({"event": event, "conversation": ConversationOut::from(c)}),
    )
}

async fn create(
    core: Arc<ChatCore>,
    user: String,
    request: model::CreateConversation,
    group_id: String,
) -> Result<Outcome, AppError> {
    let mut members: Vec<String> = request.members;
    if !members.contains(&user) {
        members.push(user.clone());
    }
    members.sort();
    members.dedup();
    if members
        .iter()
        .any(|m| crate::auth::Principal::try_from(m.as_str()).is_err())
    {
        return Err(AppError::BadRequest(
            "member names must be valid user names".into(),
        ));
    }
    let (id, name) = match request.kind {
        ConversationKind::Direct => {
            if members.len() != 2 {
                return Err(AppError::BadRequest(
                    "a DIRECT conversation has exactly two members".into(),
                ));
            }
            let other = members
                .iter()
                .find(|m| **m != user)
                .cloned()
                .unwrap_or_default();
            (direct_id(&user, &other), None)
        }
        ConversationKind::Group => {
            if members.len() > MAX_MEMBERS {
                return Err(AppError::BadRequest(format!(
                    "a group has at most {MAX_MEMBERS} members"
                )));
            }
            (group_id, request.name)
        }
    };
    let conversation = core
        .store
        .create_conversation(NewConversation {
            id,
            kind: request.kind,
            name,
            creator: user.clone(),
            members,
            at_ms: now_ms(),
        })
        .await?;
    let conversation = core.changed(conversation);
    let effects = vec![Effect::ToUser {
        users: conversation
            .members
            .iter()
            .map(|m| m.user_id.clone())
            .collect(),
        queue: "conversations",
        payload: conversation_event(&core, "created", &conversation),
        priority: Priority::Normal,
    }];
    Ok(Outcome {
        effects,
        reply: Some(json!(ConversationOut::from(&*conversation))),
        ..Outcome::default()
    })
}

async fn members(
    core: Arc<ChatCore>,
    user: String,
    request: model::UpdateMembers,
) -> Result<Outcome, AppError> {
    let before = membership(&core, &user, &request.conversation_id).await?;
    if before.kind != ConversationKind::Group {
        return Err(AppError::Forbidden(
            "a DIRECT conversation's members are fixed".into(),
        ));
    }
    if !before.is_admin(&user) && before.creator != user {
        return Err(AppError::Forbidden(
            "only the group's creator or admins change members".into(),
        ));
    }
    if request
        .add
        .iter()
        .any(|m| crate::auth::Principal::try_from(m.as_str()).is_err())
    {
        return Err(AppError::BadRequest(
            "member names must be valid user names".into(),
        ));
    }
    let after = core
        .store
        .update_members(
            &request.conversation_id,
            &request.add,
            &request.remove,
            now_ms(),
        )
        .await?;
    if after.members.len() > MAX_MEMBERS {
        return Err(AppError::BadRequest(format!(
            "a group has at most {MAX_MEMBERS} members"
        )));
    }
    let after = core.changed(after);
    let mut told: Vec<&str> = before.members.iter().map(|m| m.user_id.as_str()).collect();
    told.extend(after.members.iter().map(|m| m.user_id.as_str()));
    told.sort_unstable();
    told.dedup();
    let effects = vec![Effect::ToUser {
        users: told.into_iter().map(str::to_string).collect(),
        queue: "conversations",
        payload: conversation_event(&core, "updated", &after),
        priority: Priority::Normal,
    }];
    Ok(Outcome {
        effects,
        reply: Some(json!(ConversationOut::from(&*after))),
        ..Outcome::default()
    })
}

async fn list(
    core: Arc<ChatCore>,
    user: String,
    session: Option<Arc<SessionHandle>>,
) -> Result<Outcome, AppError> {
    let list = core.store.conversations_of(&user).await?;
    let out = json!({
        "conversations": list.iter().map(ConversationOut::from).collect::<Vec<_>>()
    });
    for c in list {
        core.remember(c);
    }
    Ok(Outcome {
        effects: vec![reply_to(
            session,
            &user,
            "conversations",
            payload_of(&core, out.clone()),
        )],
        reply: Some(out),
        ..Outcome::default()
    })
}

fn presence_body(user: &str, (online, last_seen): (bool, Option<u64>)) -> serde_json::Value {
    json!({
        "userId": user,
        "status": if online { "online" } else { "offline" },
        "lastSeen": last_seen.map(rfc3339),
    })
}

async fn presence_query(
    core: Arc<ChatCore>,
    session: Arc<SessionHandle>,
    request: model::PresenceQuery,
) -> Result<Outcome, AppError> {
    let users: Vec<String> = request.user_ids.into_iter().take(MAX_MEMBERS).collect();
    let statuses = core.presence.statuses(&users).await;
    let effects = users
        .iter()
        .zip(statuses)
        .map(|(u, status)| Effect::ToSession {
            session: Arc::clone(&session),
            queue: "presence",
            payload: payload_of(&core, presence_body(u, status)),
        })
        .collect();
    Ok(Outcome {
        effects,
        ..Outcome::default()
    })
}

/// A user came online or went offline: tell their contacts.
pub fn presence_change(core: Arc<ChatCore>, change: Change) -> Work {
    later(tell_contacts(core, change))
}

async fn tell_contacts(core: Arc<ChatCore>, change: Change) -> Result<Outcome, AppError> {
    let contacts = core.store.contacts_of(&change.user).await?;
    // In a cluster another node may have seen the opposite change meanwhile (a user leaving
    // one node as they join another): announce only what is still true, so contacts do not
    // end on a stale "offline" that overtook the "online". (One node's single sequencer
    // already keeps its changes in order.)
    if !core.presence.still_holds(&change).await {
        return Ok(Outcome::default());
    }
    let body = json!({
        "userId": change.user,
        "status": if change.online { "online" } else { "offline" },
        "lastSeen": rfc3339(change.last_seen_ms),
    });
    let effects = vec![Effect::ToUser {
        users: contacts,
        queue: "presence",
        payload: payload_of(&core, body),
        priority: Priority::Normal,
    }];
    Ok(Outcome {
        effects,
        ..Outcome::default()
    })
}
