//! The chat operations, one file each. Every operation has a synchronous half, run as the
//! request arrives (checks that need no store, and ids that fix its place in line), and an
//! asynchronous half (the store) whose [`Outcome`] the sequencer applies in arrival order.

mod conversations;
mod history;
mod presence;
mod receipts;
mod send;
mod sync;
mod typing;

use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::ChatCore;
use super::effect::{Effect, Payload};
use super::error::AppError;
use super::request::{Action, ChatRequest};
use super::sequencer::Outcome;
use crate::router::Priority;
use crate::session::handle::SessionHandle;

pub use presence::presence_change;
pub use typing::TYPING_COALESCE;

/// Longest group.
const MAX_MEMBERS: usize = 1000;

/// An operation's asynchronous half, built when the sequencer takes the request: the moment
/// that fixes its place in line, so a message id taken then is in arrival order.
pub type Work = Box<dyn FnOnce() -> BoxFuture<'static, Result<Outcome, AppError>> + Send>;

/// Work whose future can be built now (it only needs its place in line, not an id).
fn later(
    future: impl std::future::Future<Output = Result<Outcome, AppError>> + Send + 'static,
) -> Work {
    Box::new(move || future.boxed())
}

/// The synchronous half of `request` from `user` (through `session`, unless it came from the
/// HTTP API).
pub fn prepare(
    core: &Arc<ChatCore>,
    user: &str,
    session: Option<&Arc<SessionHandle>>,
    request: ChatRequest,
) -> Result<Work, AppError> {
    let core = Arc::clone(core);
    let user = user.to_string();
    let session = session.cloned();
    // Replies of these go to the one session that asked: there is none on the HTTP API.
    let session_only = |action: Action| {
        session
            .clone()
            .ok_or_else(|| AppError::UnknownAction(action.to_string()))
    };
    Ok(match request {
        ChatRequest::Send(request) => send::prepare(core, user, request)?,
        ChatRequest::Delivered(ids) => later(receipts::delivered(core, user, ids)),
        ChatRequest::Read(request) => later(receipts::read(core, user, request)),
        ChatRequest::Typing(request) => later(typing::typing(core, user, request)),
        ChatRequest::Sync(request) => {
            let session = session_only(Action::Sync)?;
            later(sync::sync(core, user, session, request))
        }
        ChatRequest::History(request) => later(history::history(core, user, session, request)),
        ChatRequest::CreateConversation(request) => {
            let group_id = format!("g:{}", core.ids.next_id());
            later(conversations::create(core, user, request, group_id))
        }
        ChatRequest::UpdateMembers(request) => later(conversations::members(core, user, request)),
        ChatRequest::ListConversations => later(conversations::list(core, user, session)),
        ChatRequest::PresenceQuery(request) => {
            let session = session_only(Action::PresenceQuery)?;
            later(presence::query(core, session, request))
        }
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
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

/// A reply to the session that asked, or (HTTP API) to every session of the user.
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

/// User ids of a conversation's members.
fn member_ids(conversation: &chat_store::Conversation) -> Vec<String> {
    conversation
        .members
        .iter()
        .map(|m| m.user_id.clone())
        .collect()
}
