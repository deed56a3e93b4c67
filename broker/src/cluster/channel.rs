//! The Redis channel scheme: which channel carries what, and the coarse glob a wildcard
//! `/topic` subscription listens on; and the names a `/queue`'s stream is read under.
//!
//! | channel | carries | a node subscribes while |
//! |---|---|---|
//! | `sbx:t:<topic>` | `/topic/<topic>` publishes and chat room copies | a local session subscribes to exactly `<topic>` |
//! | glob `sbx:t:<literal prefix>*` (PSUBSCRIBE) | the same, for wildcard subscriptions | a local session holds a pattern with that literal prefix |
//! | `sbx:u:<user>` | every `/user/<user>/queue/*` delivery, chat events included | `<user>` has a local `/user/queue/*` subscription |
//! | `sbx:r:<conversation>` | a GROUP's messages for its members' `/user/queue/messages`, once for all of them (the envelope lists them) | a member of it has a local `/user/queue/*` subscription (`rooms.rs`) |
//! | `sbx:ctl` | conversation membership changes (cache invalidation) | always |
//!
//! One channel per user, not per (user, queue): a user's devices usually subscribe to all the
//! chat queues at once, so finer channels would only multiply SUBSCRIBE traffic.

use std::fmt;

/// Prefix of every key and channel Stompbox uses, so a shared Redis stays readable.
pub const PREFIX: &str = "sbx:";
const TOPIC: &str = "sbx:t:";
/// Prefix of the per-user channels; the receiver reads the user from the channel name.
pub const USER: &str = "sbx:u:";
/// Prefix of the per-room (GROUP conversation) channels.
pub const ROOM: &str = "sbx:r:";
/// Conversation changes, subscribed by every node for the life of its connection.
pub const CONTROL: &str = "sbx:ctl";
/// The consumer group every node reads a `/queue`'s stream in (see `stream.rs`).
pub const GROUP: &str = "sbx";
/// The stream entry field holding the envelope.
pub const FIELD: &str = "e";

/// Something a node may SUBSCRIBE (or PSUBSCRIBE) to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Topic(String),
    User(String),
    /// A GROUP conversation's members' copies (its id).
    Room(String),
    /// A PSUBSCRIBE glob standing for wildcard topic patterns; the string is the glob itself.
    TopicGlob(String),
}

/// Whether a channel goes on sharded pub/sub (SSUBSCRIBE/SPUBLISH) on a Redis Cluster: user
/// and room channels, the bulk of chat traffic, each wanted by few nodes. Topics and the
/// control channel stay classic (wildcards need PSUBSCRIBE; control goes to every node).
pub fn is_sharded(name: &str) -> bool {
    name.starts_with(USER) || name.starts_with(ROOM)
}

impl Channel {
    pub fn sharded(&self) -> bool {
        matches!(self, Channel::User(_) | Channel::Room(_))
    }

    /// The glob covering a RabbitMQ-style pattern: its literal segments before the first
    /// wildcard, then `*`. Coarse on purpose (`a.*.c` listens to all of `a…`): the exact
    /// matcher runs locally, and a coarse glob keeps Redis's per-message pattern work small.
    pub fn glob_for(pattern: &str) -> Channel {
        let literal: Vec<&str> = pattern
            .split('.')
            .take_while(|s| *s != "*" && *s != "#")
            .collect();
        let mut glob = String::from(TOPIC);
        for ch in literal.join(".").chars() {
            // Redis glob specials must not widen or break the pattern.
            if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
                glob.push('\\');
            }
            glob.push(ch);
        }
        glob.push('*');
        Channel::TopicGlob(glob)
    }

    pub fn is_glob(&self) -> bool {
        matches!(self, Channel::TopicGlob(_))
    }

    /// The topic name carried on a `sbx:t:` channel name.
    pub fn topic_of(channel: &str) -> Option<&str> {
        channel.strip_prefix(TOPIC)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Topic(name) => write!(f, "{TOPIC}{name}"),
            Channel::User(user) => write!(f, "{USER}{user}"),
            Channel::Room(conversation) => write!(f, "{ROOM}{conversation}"),
            Channel::TopicGlob(glob) => f.write_str(glob),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_keep_the_literal_prefix_only() {
        assert_eq!(Channel::glob_for("chat.*.room").to_string(), "sbx:t:chat*");
        assert_eq!(Channel::glob_for("a.b.#").to_string(), "sbx:t:a.b*");
        assert_eq!(Channel::glob_for("#").to_string(), "sbx:t:*");
        assert_eq!(
            Channel::glob_for("x[1]?.*").to_string(),
            "sbx:t:x\\[1\\]\\?*"
        );
        assert_eq!(Channel::Topic("a.b".into()).to_string(), "sbx:t:a.b");
        assert_eq!(Channel::topic_of("sbx:t:a.b"), Some("a.b"));
    }
}
