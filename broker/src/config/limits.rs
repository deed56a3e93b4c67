//! Limits: every buffer a peer can fill is bounded, and these are the bounds.

use std::time::Duration;

use super::error::ConfigError;
use super::history::HistoryRule;
use super::setting::settings;

settings! {
    /// Bounds on what one peer can make the broker hold.
    pub struct Limits, layer LimitsLayer, heading Some("Limits");

    /// Whole frame (command + headers + body). 4 MiB admits the 1 MiB messages clients send
    /// in practice with room to spare, and bounds what one peer can make us buffer.
    max_frame_size: usize = 4 * 1024 * 1024,
        "BYTES", "Largest whole frame in bytes";
    /// Headers per frame; real clients send under 15.
    max_headers: usize = 64,
        "N", "Most headers in one frame";
    /// One header line; JWTs in `passcode` are the longest legitimate values (a few KiB).
    max_header_line: usize = 16 * 1024,
        "BYTES", "Longest header line in bytes";
    /// Body size.
    max_body: usize = 4 * 1024 * 1024,
        "BYTES", "Largest body in bytes";
    /// Concurrent connections over all listeners; stays under the 20,000 descriptors a process
    /// may hold here, leaving room for files and outbound sockets.
    max_connections: usize = 18_000,
        "N", "Concurrent connections over all listeners";
    /// Subscriptions one session may hold.
    max_subscriptions: usize = 1024,
        "N", "Subscriptions per session";
    /// Time a new connection has to send CONNECT (guards against idle sockets).
    connect_timeout: Duration = Duration::from_secs(10),
        "DURATION", "Time a new connection has to send CONNECT";
    /// Outbound queue of one session, in frames.
    outbound_max_frames: usize = 4096,
        "N", "Outbound queue per session, in frames";
    /// Outbound queue of one session, in bytes.
    outbound_max_bytes: usize = 16 * 1024 * 1024,
        "BYTES", "Outbound queue per session, in bytes";
    /// Messages a `/queue` holds while no consumer takes them.
    queue_max_messages: usize = 100_000,
        "N", "Messages a /queue holds while no consumer takes them";
    /// Frames buffered by one open transaction.
    max_transaction_frames: usize = 10_000,
        "N", "Frames buffered by one open transaction";
    /// Bytes buffered by one open transaction (bodies and headers): with the frame count, what
    /// a transaction can make the broker hold is bounded in bytes too, not only in frames.
    max_transaction_bytes: usize = 16 * 1024 * 1024,
        "BYTES", "Bytes buffered by one open transaction";
    /// Open transactions per session.
    max_transactions: usize = 16,
        "N", "Open transactions per session";
    /// Credential checks running at once (argon2 password hashes, JWT signatures). A password
    /// check holds ~19 MiB and a core for tens of milliseconds by design, so a flood of
    /// CONNECTs queues here instead of exhausting memory and the blocking thread pool.
    max_auth_checks: usize = 4,
        "N", "Credential checks (password hashes, JWT signatures) running at once";
    /// How long a CONNECT waits for a credential check to start before ERROR `server busy`
    /// (the client retries later, or elsewhere).
    auth_queue_timeout: Duration = Duration::from_secs(5),
        "DURATION", "Longest a CONNECT waits for its credential check to start";
    /// Bytes a `/queue` holds (bodies, headers and 256 bytes of bookkeeping per message): with
    /// the message count, a queue nobody consumes is bounded in memory, whatever the sizes.
    queue_max_bytes: usize = 64 * 1024 * 1024,
        "BYTES", "Bytes a /queue holds while no consumer takes them";
    /// Bytes every `/queue` of the node holds together: many queues, each under its own bound,
    /// cannot add up to more than this.
    queue_budget_bytes: usize = 1024 * 1024 * 1024,
        "BYTES", "Bytes all /queues of this node hold together";
    /// Queues a node keeps at once: a client cannot make millions of queue names (each holds
    /// a few hundred bytes even when empty).
    max_queues: usize = 100_000,
        "N", "Queues this node keeps at once";
    /// An empty `/queue` with no subscriber is removed after this long unused, its memory
    /// returned (0 = never): queue names a client made up do not stay forever.
    queue_idle_expiry: Duration = Duration::from_secs(300),
        "DURATION", "An empty /queue without subscribers is removed after this long; 0 = never";
    /// Sustained SENDs per second per user to destinations other than `/app` (0: no limit).
    /// Past it the user's sessions are slowed, not refused: the broker stops reading their
    /// sockets until the rate allows the next SEND (flow control, as TCP would give it). Off by
    /// default: backend services and load tests publish tens of thousands a second under one
    /// principal; set it where every principal is a person.
    send_rate: f64 = 0.0,
        "PER_SEC", "Sustained plain SENDs per second per user (slowed past it); 0 disables";
    /// SENDs a user may make at once before `send_rate` applies.
    send_burst: f64 = 1000.0,
        "N", "Plain SENDs a user may make in a burst";
    /// Messages a client-ack subscriber holds unacknowledged (and, for topics, waiting for its
    /// prefetch window), whatever its prefetch says: a `/queue` consumer at the bound gets
    /// nothing more until it ACKs; a session past it over its topic and user subscriptions
    /// gets ERROR `too many unacknowledged` (a topic cannot hold its messages back).
    max_unacked: usize = 10_000,
        "N", "Unacknowledged messages one /queue consumer, or one session's topic subscriptions, hold";
    /// The same bound in bytes (bodies, headers, 256 bytes of bookkeeping per message).
    max_unacked_bytes: usize = 32 * 1024 * 1024,
        "BYTES", "Bytes of unacknowledged messages one /queue consumer, or one session's topic subscriptions, hold";
    /// Topics that keep a recent history a SUBSCRIBE can resume from (`resume-offset`,
    /// `resume-epoch`), as `/topic/<pattern>=<messages>/<bytes>/<age>`, first match wins. Chat
    /// rooms keep one by default; other topics none, as most topics are fire-and-forget and
    /// history costs memory per topic. In a cluster the histories are in Redis, shared by every node.
    topic_history: Vec<HistoryRule> = HistoryRule::conversations(),
        "RULE", "Topics that keep a resumable history: /topic/<pattern>=<messages>/<bytes>/<age>, repeatable";
    /// All topic histories of one node together, in bytes: each rule bounds one topic, but
    /// thousands of busy chat rooms would add up; past this the oldest message of any topic
    /// is evicted first (a resume from before it is then not recovered). 256 MiB holds the
    /// default 1 MiB per room for 256 busy rooms. A cluster's histories are in Redis, bounded
    /// per topic by the rules; this bound is this node's memory.
    topic_history_max_bytes: usize = 256 * 1024 * 1024,
        "BYTES", "Bytes all topic histories of this node hold together; past it the oldest message of any topic goes";
}

impl Limits {
    /// A bound of 0 would refuse everything (or time every connection out at once).
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let nonzero = [
            ("max_frame_size", self.max_frame_size),
            ("max_headers", self.max_headers),
            ("max_header_line", self.max_header_line),
            ("max_body", self.max_body),
            ("max_connections", self.max_connections),
            ("max_subscriptions", self.max_subscriptions),
            ("outbound_max_frames", self.outbound_max_frames),
            ("outbound_max_bytes", self.outbound_max_bytes),
            ("queue_max_messages", self.queue_max_messages),
            ("max_auth_checks", self.max_auth_checks),
            ("max_transaction_bytes", self.max_transaction_bytes),
            ("queue_max_bytes", self.queue_max_bytes),
            ("queue_budget_bytes", self.queue_budget_bytes),
            ("max_queues", self.max_queues),
            ("max_unacked", self.max_unacked),
            ("max_unacked_bytes", self.max_unacked_bytes),
            ("topic_history_max_bytes", self.topic_history_max_bytes),
        ];
        for (key, value) in nonzero {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be at least 1".to_owned(),
                });
            }
        }
        if !(self.send_rate.is_finite() && self.send_rate >= 0.0) {
            return Err(ConfigError::Invalid {
                key: "send_rate",
                reason: "must be a number of SENDs per second, 0 or more".to_owned(),
            });
        }
        if self.send_rate > 0.0 && !(self.send_burst.is_finite() && self.send_burst >= 1.0) {
            return Err(ConfigError::Invalid {
                key: "send_burst",
                reason: "must be at least 1 (no SEND could ever pass)".to_owned(),
            });
        }
        if self.connect_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                key: "connect_timeout",
                reason: "must be longer than 0 (every connection would time out at once)"
                    .to_owned(),
            });
        }
        Ok(())
    }
}
