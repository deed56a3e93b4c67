//! The router's seam to a topic history shared by several nodes (cluster mode implements it
//! over Redis: `cluster/history.rs`).
//!
//! On one node a topic's history is a ring in this process (`history.rs`), and its lock
//! orders publishes. Shared by several nodes, the order must be decided in one place for all
//! of them: the shared history gives each publish its `offset` and `epoch` and only then
//! delivers it, to every node's subscribers including the publishing node's, so every node
//! shows the same positions for the same messages. A resuming subscription is registered
//! behind a [`Gate`] and the replay is read from the shared history asynchronously.

use std::sync::Arc;

use super::gate::Gate;
use super::position::Position;
use crate::config::HistoryRule;
use crate::message::Message;

/// A publish to a topic with a shared history.
#[derive(Debug, Clone, Copy)]
pub struct Publish<'a> {
    /// The topic name (without `/topic/`).
    pub name: &'a str,
    pub message: &'a Message,
    /// A chat room copy's members (`None`: a plain publish, for every subscriber).
    pub members: Option<&'a [String]>,
    pub rule: &'a HistoryRule,
}

/// A history several nodes share. Both methods return at once (the router never waits on
/// the network); what they start finishes in the background.
pub trait SharedHistory: Send + Sync + std::fmt::Debug {
    /// Positions `publish.message` in its topic's history, bounded by `publish.rule`, and
    /// delivers it to every node's subscribers, this node's included. Not delivered locally
    /// before: only the history knows its position. True when the way to the history is
    /// filling up (the publisher should slow down, as for a subscriber's outbox past half
    /// full).
    fn append(&self, publish: Publish<'_>) -> bool;

    /// Reads what the history holds of `name` after `from` once this node hears the topic's
    /// live copies, and opens `gate` with it (`None` when it cannot give all of it).
    fn replay(&self, name: &str, from: &Position, rule: &HistoryRule, gate: Arc<Gate>);
}
