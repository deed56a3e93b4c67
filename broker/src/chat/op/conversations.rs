//! `conversation.create` (and `POST /api/conversations`), `conversation.members` (and
//! `POST /api/conversations/{id}/members`), `conversation.list`: conversations and who is in
//! them. Every change is cached for the membership checks that cannot wait for the store and
//! told to the members on `/user/queue/conversations`.

use std::collections::HashSet;
use std::sync::Arc;

use chat_store::{Conversation, ConversationKind, NewConversation, direct_id};
use serde_json::json;

use crate::chat::effect::{Effect, Payload};
use crate::chat::error::AppError;
use crate::chat::model::{self, ConversationOut, MAX_MEMBERS};
use crate::chat::reply_queue::ReplyQueue;
use crate::chat::sequencer::Outcome;
use crate::chat::state::ChatCore;
use crate::clock::now_ms;
use crate::handle::SessionHandle;
use crate::router::Priority;

fn conversation_event(core: &ChatCore, event: &str, c: &chat_store::Conversation) -> Payload {
    core.payload(json!({"event": event, "conversation": ConversationOut::from(c)}))
}

fn valid_user_names(names: &[String]) -> Result<(), AppError> {
    if names
        .iter()
        .any(|m| crate::auth::Principal::try_from(m.as_str()).is_err())
    {
        return Err(AppError::BadRequest(
            "member names must be valid user names".into(),
        ));
    }
    Ok(())
}

/// `group_id` was taken when the request arrived (used if it creates a group).
pub(super) async fn create(
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
    valid_user_names(&members)?;
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
        queue: ReplyQueue::Conversations,
        payload: conversation_event(&core, "created", &conversation),
        priority: Priority::Normal,
    }];
    Ok(Outcome {
        effects,
        reply: Some(json!(ConversationOut::from(&*conversation))),
        ..Outcome::default()
    })
}

pub(super) async fn members(
    core: Arc<ChatCore>,
    user: String,
    request: model::UpdateMembers,
) -> Result<Outcome, AppError> {
    let before = core.membership(&user, &request.conversation_id).await?;
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
    valid_user_names(&request.add)?;
    // The cap is checked before anything is stored: a refused change must change nothing.
    // (Two changes running at once both check against the membership before either; the
    // group may then end a batch above the cap, told to every member as any change is.)
    if members_after(&before, &request).len() > MAX_MEMBERS {
        return Err(AppError::BadRequest(format!(
            "a group has at most {MAX_MEMBERS} members"
        )));
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
    let after = core.changed(after);
    let mut told: Vec<&str> = before.members.iter().map(|m| m.user_id.as_str()).collect();
    told.extend(after.members.iter().map(|m| m.user_id.as_str()));
    told.sort_unstable();
    told.dedup();
    let effects = vec![Effect::ToUser {
        users: told.into_iter().map(str::to_string).collect(),
        queue: ReplyQueue::Conversations,
        payload: conversation_event(&core, "updated", &after),
        priority: Priority::Normal,
    }];
    Ok(Outcome {
        effects,
        reply: Some(json!(ConversationOut::from(&*after))),
        ..Outcome::default()
    })
}

/// The members `request` would leave: the current ones, those added, minus those removed.
fn members_after<'a>(
    before: &'a Conversation,
    request: &'a model::UpdateMembers,
) -> HashSet<&'a str> {
    let mut members: HashSet<&str> = before.members.iter().map(|m| m.user_id.as_str()).collect();
    members.extend(request.add.iter().map(String::as_str));
    for removed in &request.remove {
        members.remove(removed.as_str());
    }
    members
}

pub(super) async fn list(
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
        effects: vec![Effect::reply(
            session,
            &user,
            ReplyQueue::Conversations,
            core.payload(out.clone()),
        )],
        reply: Some(out),
        ..Outcome::default()
    })
}
