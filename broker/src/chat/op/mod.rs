//! The chat operations, one file each. Every operation has a synchronous half, run as the
//! request arrives (checks that need no store, and ids that fix its place in line), and an
//! asynchronous half (the store) whose outcome the sequencer applies in arrival order.

mod conversations;
mod history;
mod presence;
mod push;
mod receipts;
mod send;
mod sync;
mod typing;

use std::sync::Arc;

use super::error::AppError;
use super::request::{Action, ChatRequest};
use super::sequencer::{Work, later};
use super::state::ChatCore;
use crate::handle::SessionHandle;

pub use presence::presence_change;
pub use typing::TYPING_COALESCE;

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
        ChatRequest::Delivered(ids) | ChatRequest::Acked(ids) => {
            later(receipts::delivered(core, user, ids))
        }
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
        ChatRequest::PushRegister(device) => later(push::register(core, user, device)),
        ChatRequest::PushUnregister(device) => later(push::unregister(core, user, device)),
        ChatRequest::PresenceQuery(request) => {
            let session = session_only(Action::PresenceQuery)?;
            later(presence::query(core, session, request))
        }
    })
}
