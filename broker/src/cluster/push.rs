//! Push coalescing windows in Redis, shared by every node (`push::window::Windows`): messages
//! to one offline user stored on any node fold into one window, and exactly one node fires it.
//!
//! Keys, both touched only by the two scripts below (so each step is atomic):
//! - `sbx:push:w:{<user>}`: HASH of the pending window: `count`, and the newest message's
//!   `newest` id, `conversation`, `sender`, `group`, `grouped`, `content`; `mixed` once two
//!   conversations were seen. Expires a while after its last message, so a window whose owner
//!   died does not linger.
//! - `sbx:push:c:{<user>}`: the window's claim, `SET NX PX`: the node whose event opened the
//!   window holds it (a token unique per claim) and fires the window after `--push-coalesce`.
//!
//! The take script hands the window over only to the claim's holder and deletes both keys in
//! the same step, so a window is sent at most once. A node killed mid-window sends nothing;
//! its claim lapses after the window plus [`GRACE`] and the next message to the user opens a
//! new window with the pending count carried over.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::redis_link::{Conn, hash_tag};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tracing::warn;

use super::channel::PREFIX;
use crate::chat::OfflineEvent;
use crate::push::window::{Claim, Window, Windows};

/// How long after its window a claim still holds: the owner's timer may be late by this much
/// (a busy runtime, a slow Redis) before another node may open the window again.
const GRACE: Duration = Duration::from_secs(10);

// KEYS: window hash, claim. ARGV: id, conversation, sender, group, grouped (0/1), content,
// claim token, claim ms, hash ttl ms. Ids are compared as decimal strings (Lua numbers are
// doubles: a 64-bit id would lose its low bits). Returns 1 when this call took the claim.
const ADD: &str = r"
local newest = redis.call('HGET', KEYS[1], 'newest')
redis.call('HINCRBY', KEYS[1], 'count', 1)
if newest and redis.call('HGET', KEYS[1], 'conversation') ~= ARGV[2] then
  redis.call('HSET', KEYS[1], 'mixed', '1')
end
if (not newest) or #ARGV[1] > #newest or (#ARGV[1] == #newest and ARGV[1] > newest) then
  redis.call('HSET', KEYS[1], 'newest', ARGV[1], 'conversation', ARGV[2], 'sender', ARGV[3],
    'group', ARGV[4], 'grouped', ARGV[5], 'content', ARGV[6])
end
redis.call('PEXPIRE', KEYS[1], ARGV[9])
if redis.call('SET', KEYS[2], ARGV[7], 'NX', 'PX', ARGV[8]) then return 1 end
return 0";

// KEYS: window hash, claim. ARGV: claim token. The window's fields, or nothing when the
// claim is not (any longer) this token's.
const TAKE: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {} end
local fields = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
return fields";

#[derive(Debug)]
pub struct SharedWindows {
    conn: Conn,
    add: redis::Script,
    take: redis::Script,
    /// This node and process: claims are `<prefix><n>`.
    token_prefix: String,
    next: AtomicU64,
}

impl SharedWindows {
    pub fn new(conn: Conn, node_id: u16) -> Self {
        Self {
            conn,
            add: redis::Script::new(ADD),
            take: redis::Script::new(TAKE),
            token_prefix: format!("{node_id}:{:x}:", rand::random::<u64>()),
            next: AtomicU64::new(0),
        }
    }
}

// Both keys carry the user's hash tag: the scripts touch both, so on a Redis Cluster they must
// share a slot.
fn window_key(user: &str) -> String {
    format!("{PREFIX}push:w:{}", hash_tag(user))
}

fn claim_key(user: &str) -> String {
    format!("{PREFIX}push:c:{}", hash_tag(user))
}

impl Windows for SharedWindows {
    fn add<'a>(
        &'a self,
        event: &'a OfflineEvent,
        window: Duration,
    ) -> BoxFuture<'a, Option<Claim>> {
        async move {
            let token = format!(
                "{}{}",
                self.token_prefix,
                self.next.fetch_add(1, Ordering::Relaxed)
            );
            let claim_ms = (window + GRACE).as_millis() as u64;
            let claimed: redis::RedisResult<i64> = self
                .add
                .key(window_key(&event.user))
                .key(claim_key(&event.user))
                .arg(event.message_id.to_string())
                .arg(&event.conversation_id)
                .arg(&event.sender_id)
                .arg(event.group_name.as_deref().unwrap_or_default())
                .arg(if event.group_name.is_some() { "1" } else { "0" })
                .arg(&*event.content)
                .arg(&token)
                .arg(claim_ms)
                .arg(claim_ms + window.as_millis() as u64)
                .invoke_async(&mut self.conn.clone())
                .await;
            match claimed {
                Ok(1) => Some(Claim(token)),
                Ok(_) => None,
                Err(e) => {
                    warn!(user = %event.user, error = %e, "push window not recorded in Redis");
                    None
                }
            }
        }
        .boxed()
    }

    fn take<'a>(&'a self, user: &'a str, claim: &'a Claim) -> BoxFuture<'a, Option<Window>> {
        async move {
            let fields: redis::RedisResult<Vec<(String, String)>> = self
                .take
                .key(window_key(user))
                .key(claim_key(user))
                .arg(&claim.0)
                .invoke_async(&mut self.conn.clone())
                .await;
            match fields {
                Ok(fields) => window(fields),
                Err(e) => {
                    warn!(%user, error = %e, "push window not taken from Redis: not sent");
                    None
                }
            }
        }
        .boxed()
    }
}

/// The hash's fields as a window; `None` for an empty or damaged one.
fn window(fields: Vec<(String, String)>) -> Option<Window> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    Some(Window {
        count: field("count")?.parse().ok()?,
        newest: field("newest")?.parse().ok()?,
        conversation_id: field("conversation")?,
        sender_id: field("sender")?,
        group_name: match field("grouped").as_deref() {
            Some("1") => field("group"),
            _ => None,
        },
        content: field("content").unwrap_or_default(),
        mixed: field("mixed").as_deref() == Some("1"),
    })
}
