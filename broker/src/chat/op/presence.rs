//! `presence.query` (who of these users is online, answered to the asking session on
//! `/user/queue/presence`, for the asker's contacts only) and the announcement of a user's change of status to their
//! contacts. Who is online is kept by `chat/presence.rs`.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;

use crate::chat::effect::Effect;
use crate::chat::error::AppError;
use crate::chat::model::{self, MAX_MEMBERS, rfc3339};
use crate::chat::presence::Change;
use crate::chat::reply_queue::ReplyQueue;
use crate::chat::sequencer::{Outcome, Work, later};
use crate::chat::state::ChatCore;
use crate::handle::SessionHandle;
use crate::router::Priority;

fn presence_body(user: &str, (online, last_seen): (bool, Option<u64>)) -> serde_json::Value {
    json!({
        "userId": user,
        "status": if online { "online" } else { "offline" },
        "lastSeen": last_seen.map(rfc3339),
    })
}

pub(super) async fn query(
    core: Arc<ChatCore>,
    session: Arc<SessionHandle>,
    request: model::PresenceQuery,
) -> Result<Outcome, AppError> {
    let users: Vec<String> = request.user_ids.into_iter().take(MAX_MEMBERS).collect();
    // Presence is for contacts, as its events are: a stranger reads as a user never seen
    // (offline, no last seen), so a query cannot watch anyone the asker shares no conversation
    // with.
    let asker = session.principal.name();
    let contacts: HashSet<String> = core.store.contacts_of(asker).await?.into_iter().collect();
    let visible = |u: &String| u == asker || contacts.contains(u);
    let statuses = core.presence.statuses(&users).await;
    let effects = users
        .iter()
        .zip(statuses)
        .map(|(u, status)| {
            if visible(u) {
                (u, status)
            } else {
                (u, (false, None))
            }
        })
        .map(|(u, status)| Effect::ToSession {
            session: Arc::clone(&session),
            queue: ReplyQueue::Presence,
            payload: core.payload(presence_body(u, status)),
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
        queue: ReplyQueue::Presence,
        payload: core.payload(body),
        priority: Priority::Normal,
    }];
    Ok(Outcome {
        effects,
        ..Outcome::default()
    })
}
