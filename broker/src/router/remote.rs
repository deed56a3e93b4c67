//! The router's cluster side: every subscription change is also local interest in a Redis
//! channel, and every publish reaches local sessions directly and the other nodes through
//! Redis. Without a cluster these are the plain local operations.

use std::sync::Arc;

use bytes::Bytes;

use super::topic::Subscriber;
use super::{FanOut, Priority, Router, Select};
use crate::cluster::{Channel, Envelope, Kind};
use crate::message::Message;

impl Router {
    /// The channel a `/topic` subscription to `name` (exact or pattern) listens on.
    fn topic_channel(&self, name: &str) -> Channel {
        if self.topics.is_pattern(name) {
            Channel::glob_for(name)
        } else {
            Channel::Topic(name.to_string())
        }
    }

    pub fn subscribe_topic(&self, name: &str, subscriber: Subscriber) {
        self.topics.subscribe(name, subscriber);
        if let Some(cluster) = &self.cluster {
            cluster.interest().add(self.topic_channel(name));
        }
    }

    pub fn unsubscribe_topic(&self, name: &str, session: u64, subscription: &str) {
        self.topics.unsubscribe(name, session, subscription);
        if let Some(cluster) = &self.cluster {
            cluster.interest().remove(&self.topic_channel(name));
        }
    }

    /// `user`'s subscription to `/user/queue/<name>`, keyed `key` ([`Router::user_key`]).
    pub fn subscribe_user(&self, user: &str, key: &str, subscriber: Subscriber) {
        self.users.subscribe(key, subscriber);
        if let Some(cluster) = &self.cluster {
            cluster.interest().add(Channel::User(user.to_string()));
        }
    }

    pub fn unsubscribe_user(&self, key: &str, session: u64, subscription: &str) {
        self.users.unsubscribe(key, session, subscription);
        if let Some(cluster) = &self.cluster
            && let Some((user, _)) = key.split_once('/')
        {
            cluster.interest().remove(&Channel::User(user.to_string()));
        }
    }

    /// A `/topic/<name>` publish: local subscribers now, other nodes through Redis.
    pub fn publish_topic(&self, name: &str, message: &Arc<Message>) -> FanOut {
        self.publish_room(name, message, None)
    }

    /// A chat room copy on `/topic/<name>`, delivered only to sessions of `members` (`None`:
    /// everyone, a plain topic publish).
    pub fn publish_room(
        &self,
        name: &str,
        message: &Arc<Message>,
        members: Option<&[String]>,
    ) -> FanOut {
        let fan_out = self.fan_out_local(
            &self.topics,
            name,
            message,
            Select::All,
            Priority::Normal,
            |principal| members.is_none_or(|m| m.iter().any(|member| member == principal)),
        );
        if let Some(cluster) = &self.cluster {
            let mut envelope = Envelope::of(cluster.node_id(), Kind::Topic, name, message, false);
            if let Some(members) = members {
                envelope.kind = Kind::Room;
                envelope.members = members.to_vec();
            }
            cluster.publish(&Channel::Topic(name.to_string()), &envelope);
        }
        fan_out
    }

    /// A delivery to `/user/<user>/queue/<queue>` for each of `users`: local sessions now,
    /// other nodes through each user's channel (one encoding shared by all of them).
    pub fn publish_users(
        &self,
        users: &[String],
        queue: &str,
        message: &Arc<Message>,
        priority: Priority,
    ) -> FanOut {
        let mut total = FanOut::default();
        for user in users {
            let key = Router::user_key(user, queue);
            let fan_out =
                self.fan_out_local(&self.users, &key, message, Select::All, priority, |_| true);
            total.delivered += fan_out.delivered;
            total.pressed |= fan_out.pressed;
        }
        if let Some(cluster) = &self.cluster {
            let droppable = priority == Priority::Droppable;
            let envelope = Envelope::of(cluster.node_id(), Kind::User, queue, message, droppable);
            match envelope.encode() {
                Ok(bytes) => {
                    for user in users {
                        cluster.publish_bytes(&Channel::User(user.clone()), Bytes::clone(&bytes));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "user delivery not sent to other nodes"),
            }
        }
        total
    }
}
