//! Topic history shared by every node, in Redis: the cluster's [`SharedHistory`].
//!
//! Per topic with a history rule, three keys under the topic's hash tag (`{<topic>}`, so the
//! scripts touching them run on one slot of a Redis Cluster):
//! - `sbx:hm:{<topic>}`, a hash: `e` the epoch, `n` the last offset given, `b` the bytes held;
//! - `sbx:hs:{<topic>}`, a stream whose entry ids are the offsets (`<offset>-0`), each holding
//!   `t` (Redis time in ms) and `p` the positioned payload: `#<epoch> <offset>\n<envelope>`;
//! - `sbx:he:{<topic>}`, the counter that keeps the topic's epochs unique (all three expire
//!   together).
//!
//! A publish is one script ([`APPEND`]) run by the publisher task in its pipeline: it takes
//! the next offset, appends, trims to the rule's bounds and PUBLISHes the positioned payload
//! on the topic's channel, all atomically, so the order of offsets is the order every node
//! hears the channel in, and no message is in the history without having been published or
//! the reverse. The publishing node hears its own copy back like any other node (see
//! `inbound.rs`): a position exists only once Redis gave it.
//!
//! Epochs: made when the hash is missing (first publish, Redis restarted without the data,
//! or the keys expired after the rule's age without a publish) from Redis's clock and a
//! counter, so no two histories of a topic share one and an old offset is never taken for a
//! position in a new history. Both keys expire after the rule's age without a publish.
//!
//! A resume ([`SharedHistory::replay`]) waits until this node hears the topic's channel (its
//! gate holds the live copies meanwhile), then reads everything after the position in one
//! script ([`READ`]); the gate drops what both gave.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tracing::{debug, warn};

use super::Cluster;
use super::channel::Channel;
use super::envelope::{Envelope, Kind};
use super::positioned::Payload;
use super::publisher::{Eval, Lua, Outgoing};
use super::redis_link::hash_tag;
use crate::config::HistoryRule;
use crate::router::gate::{Gate, Replayed};
use crate::router::history::Position;
use crate::router::shared::{Publish, SharedHistory};

/// Prefix of the hash with a topic's epoch, last offset and bytes.
const META: &str = "sbx:hm:";
/// Prefix of the stream of a topic's retained messages.
const STREAM: &str = "sbx:hs:";
/// Prefix of the counter that makes a topic's epochs unique even within one Redis clock
/// microsecond.
const EPOCHS: &str = "sbx:he:";

/// A topic's keys (meta, stream, epochs), under one hash tag.
fn keys(topic: &str) -> [String; 3] {
    let tag = hash_tag(topic);
    [
        format!("{META}{tag}"),
        format!("{STREAM}{tag}"),
        format!("{EPOCHS}{tag}"),
    ]
}
/// Longest a resume waits for this node to hear the topic's channel: normally a
/// millisecond; past it the replay is read anyway and the gate still removes duplicates,
/// but a message published in between could be missing, so it is not `recovered`.
const LIVE_WAIT: Duration = Duration::from_secs(2);

/// Drops the oldest entries past the bounds (`ARGV` of the calling script: max messages,
/// max bytes, max age in ms). The newest stays when it alone is over the byte bound, as on
/// one node (`router/history.rs`).
const TRIM: &str = r"
local function trim(meta, stream, max_n, max_b, max_age, now)
  while true do
    local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
    if not first then return end
    local len = redis.call('XLEN', stream)
    local b = tonumber(redis.call('HGET', meta, 'b') or '0')
    local f = first[2]
    if not (len > max_n or (b > max_b and len > 1) or now - tonumber(f[2]) > max_age) then
      return
    end
    redis.call('XDEL', stream, first[1])
    redis.call('HINCRBY', meta, 'b', -#f[4])
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// KEYS: meta, stream, epochs counter. ARGV: envelope, channel, max messages, max bytes, max
/// age (ms).
const APPEND_BODY: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  redis.call('DEL', KEYS[2])
  epoch = t[1] .. '.' .. t[2] .. '.' .. redis.call('INCR', KEYS[3])
  redis.call('HSET', KEYS[1], 'e', epoch, 'n', 0, 'b', 0)
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local p = '#' .. epoch .. ' ' .. n .. '\n' .. ARGV[1]
redis.call('XADD', KEYS[2], n .. '-0', 't', now, 'p', p)
redis.call('HINCRBY', KEYS[1], 'b', #p)
trim(KEYS[1], KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), now)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
redis.call('PUBLISH', ARGV[2], p)
";

/// KEYS: meta, stream. ARGV: first offset wanted, max messages, max bytes, max age (ms).
/// Returns `{}` when there is no history, else `{epoch, last offset, payloads...}`.
const READ_BODY: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then return {} end
trim(KEYS[1], KEYS[2], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), now)
local out = {epoch, redis.call('HGET', KEYS[1], 'n')}
for _, e in ipairs(redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', '+')) do
  out[#out + 1] = e[2][4]
end
return out
";

/// The append script, run by the pipelined publisher (EVALSHA, EVAL again where the server's
/// script cache lacks it: `publisher::Eval`).
static APPEND: std::sync::LazyLock<Lua> =
    std::sync::LazyLock::new(|| Lua::new(format!("{TRIM}{APPEND_BODY}")));
static READ: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(&format!("{TRIM}{READ_BODY}")));

/// A rule's bounds as the scripts take them: messages, bytes, age in ms.
fn bounds(rule: &HistoryRule) -> [u64; 3] {
    let age = u64::try_from(rule.max_age.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    [rule.max_messages as u64, rule.max_bytes as u64, age]
}

/// The script call positioning one publish of `topic` (see [`APPEND`]).
fn append(topic: &str, envelope: Bytes, bounds: [u64; 3]) -> Eval {
    let number = |n: u64| Bytes::from(n.to_string());
    Eval {
        script: &APPEND,
        keys: keys(topic).into(),
        args: vec![
            envelope,
            Bytes::from(Channel::Topic(topic.to_string()).to_string()),
            number(bounds[0]),
            number(bounds[1]),
            number(bounds[2]),
        ],
    }
}

impl SharedHistory for Cluster {
    fn append(&self, publish: Publish<'_>) -> bool {
        let Publish {
            name,
            message,
            members,
            rule,
        } = publish;
        let mut envelope = Envelope::of(self.node_id, Kind::Topic, name, message, false);
        if let Some(members) = members {
            envelope.kind = Kind::Room;
            envelope.members = members.to_vec();
        }
        match envelope.encode() {
            Ok(bytes) => self.publish_tx.send(
                &self.health,
                Outgoing::Eval(append(name, bytes, bounds(rule))),
            ),
            Err(e) => {
                warn!(topic = name, error = %e, "message not positioned in the topic history")
            }
        }
        self.publish_tx.pressed()
    }

    fn replay(&self, name: &str, from: &Position, rule: &HistoryRule, gate: Arc<Gate>) {
        let mut conn = self.conn.clone();
        let interest = Arc::clone(&self.interest);
        let (name, from, bounds) = (name.to_string(), from.clone(), bounds(rule));
        tokio::spawn(async move {
            let channel = Channel::Topic(name.clone());
            let live = interest.until_live(&channel, LIVE_WAIT).await;
            let [meta, stream, _] = keys(&name);
            let read = READ
                .key(meta)
                .key(stream)
                .arg(from.offset.saturating_add(1))
                .arg(bounds[0])
                .arg(bounds[1])
                .arg(bounds[2])
                .invoke_async::<Vec<Vec<u8>>>(&mut conn)
                .await;
            let replay = match read {
                Ok(read) => complete_after(&read, &from).filter(|_| live),
                Err(e) => {
                    debug!(topic = %name, error = %e, "topic history not read: resume not recovered");
                    None
                }
            };
            gate.open(replay);
        });
    }
}

/// What the read script returned, when it is everything after `from`: the same epoch, a
/// position it reached, and an unbroken run of offsets from the next one.
fn complete_after(read: &[Vec<u8>], from: &Position) -> Option<Vec<Replayed>> {
    let [epoch, last, payloads @ ..] = read else {
        return None;
    };
    let last: u64 = std::str::from_utf8(last).ok()?.parse().ok()?;
    if epoch[..] != *from.epoch.as_bytes() || from.offset > last {
        return None;
    }
    let mut next = from.offset + 1;
    let mut replay = Vec::with_capacity(payloads.len());
    for bytes in payloads {
        let payload = Payload::try_from(&bytes[..]).ok()?;
        if payload.position.as_ref().map(|p| p.offset) != Some(next) {
            return None;
        }
        next += 1;
        let members =
            (payload.envelope.kind == Kind::Room).then(|| payload.envelope.members.clone());
        replay.push(Replayed {
            message: payload.message(),
            members,
        });
    }
    (next == last + 1).then_some(replay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::positioned::tests::positioned;

    fn at(offset: u64) -> Position {
        Position {
            epoch: "e".into(),
            offset,
        }
    }

    #[test]
    fn a_read_is_complete_only_when_unbroken_and_in_the_same_epoch() {
        let read = |last: &str, offsets: &[u64]| {
            let mut read = vec![b"e".to_vec(), last.as_bytes().to_vec()];
            read.extend(offsets.iter().map(|o| positioned("e", *o)));
            read
        };
        let offsets = |replay: Option<Vec<Replayed>>| {
            replay.map(|r| {
                r.iter()
                    .map(|e| Position::of(&e.message).expect("positioned").offset)
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            offsets(complete_after(&read("5", &[4, 5]), &at(3))),
            Some(vec![4, 5])
        );
        assert_eq!(
            offsets(complete_after(&read("5", &[]), &at(5))),
            Some(vec![])
        );
        assert!(
            complete_after(&read("5", &[5]), &at(3)).is_none(),
            "4 was trimmed"
        );
        assert!(
            complete_after(&read("5", &[]), &at(3)).is_none(),
            "all trimmed"
        );
        assert!(
            complete_after(&read("5", &[]), &at(6)).is_none(),
            "never reached"
        );
        let other = Position {
            epoch: "f".into(),
            offset: 3,
        };
        assert!(complete_after(&read("5", &[4, 5]), &other).is_none());
        assert!(complete_after(&[], &at(0)).is_none(), "no history");
    }
}
