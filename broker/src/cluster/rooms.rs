//! Which room channels (`sbx:r:<conversation>`) this node listens to: those of the GROUP
//! conversations that have a member with a local `/user/queue/*` subscription. Each such
//! (user, conversation) pair counts once in [`Interest`], so the subscriber follows rooms as it
//! follows every other channel, and the last member leaving unsubscribes.
//!
//! What a node knows of its users' conversations: the list the chat loads when a session starts
//! ([`Rooms::loaded`]), then every membership change, made here (`ChatPeers::
//! conversation_changed`) or on another node (its snapshot on the control channel).
//!
//! The gaps, and what closes them: a member whose node subscribes to the room only now misses
//! what was published before the subscription took effect. After a connect the client's sync
//! waits until the user's rooms are live (`Cluster::until_user_live`), so the replay covers it;
//! after a join the sender's node sends the member their own copy for `--room-join-grace`
//! (`chat/room.rs`).

use std::collections::{HashMap, HashSet, VecDeque};

use chat_store::{Conversation, ConversationKind};
use parking_lot::Mutex;

use super::channel::Channel;
use super::interest::Interest;

/// Users without a `/user/queue/*` subscription here whose rooms are still remembered, at
/// most: a session that is starting (loaded, not yet subscribed) or subscribing again needs
/// them; past this many the oldest are forgotten (their next session loads them again).
const MAX_IDLE: usize = 65_536;

#[derive(Debug, Default)]
pub struct Rooms {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Local `/user/queue/*` subscriptions per user.
    subscribed: HashMap<String, usize>,
    /// The GROUP conversations of users with sessions on this node, as last loaded or changed.
    of_user: HashMap<String, HashSet<String>>,
    /// The same, by conversation: which of those users are its members.
    by_room: HashMap<String, HashSet<String>>,
    /// Users whose last subscription here ended, oldest first (some may be back since).
    idle: VecDeque<String>,
}

impl Rooms {
    /// A local `/user/queue/*` subscription of `user` began: the first one counts the user's
    /// rooms in `interest`.
    pub fn user_subscribed(&self, interest: &Interest, user: &str) {
        let mut inner = self.inner.lock();
        let count = inner.subscribed.entry(user.to_string()).or_insert(0);
        *count += 1;
        if *count == 1 {
            for room in inner.of_user.get(user).into_iter().flatten() {
                interest.add(Channel::Room(room.clone()));
            }
        }
    }

    /// One ended: the last one uncounts the user's rooms (remembered a while: a session of
    /// theirs may be starting here right now).
    pub fn user_unsubscribed(&self, interest: &Interest, user: &str) {
        let mut inner = self.inner.lock();
        let Some(count) = inner.subscribed.get_mut(user) else {
            return;
        };
        *count -= 1;
        if *count > 0 {
            return;
        }
        inner.subscribed.remove(user);
        for room in inner.of_user.get(user).into_iter().flatten() {
            interest.remove(&Channel::Room(room.clone()));
        }
        inner.idle.push_back(user.to_string());
        while inner.idle.len() > MAX_IDLE {
            if let Some(oldest) = inner.idle.pop_front()
                && !inner.subscribed.contains_key(&oldest)
            {
                inner.drop_user(&oldest);
            }
        }
    }

    /// `user`'s conversations as a session of theirs starts (the whole list). Adds only: the
    /// list may have been read before a change whose snapshot this node already applied, and
    /// a room kept too long costs a subscription, never a delivery (room envelopes name their
    /// members); removals come from the snapshots.
    pub fn loaded(&self, interest: &Interest, user: &str, conversations: &[Conversation]) {
        let mut inner = self.inner.lock();
        // Known from now on, rooms or none: a group made later joins it.
        inner.of_user.entry(user.to_string()).or_default();
        let rooms = conversations
            .iter()
            .filter(|c| c.kind == ConversationKind::Group && c.is_member(user));
        for conversation in rooms {
            inner.join(interest, user, &conversation.id);
        }
    }

    /// A conversation's new membership (changed here or on another node).
    pub fn changed(&self, interest: &Interest, conversation: &Conversation) {
        if conversation.kind != ConversationKind::Group {
            return;
        }
        let room = &conversation.id;
        let mut inner = self.inner.lock();
        let tracked = inner.by_room.get(room).cloned().unwrap_or_default();
        for user in tracked.iter().filter(|u| !conversation.is_member(u)) {
            inner.leave(interest, user, room);
        }
        for member in &conversation.members {
            let user = &member.user_id;
            if !tracked.contains(user) && inner.of_user.contains_key(user) {
                inner.join(interest, user, room);
            }
        }
    }

    /// The room channels `user`'s deliveries may come on, now.
    pub fn of(&self, user: &str) -> Vec<Channel> {
        let inner = self.inner.lock();
        inner
            .of_user
            .get(user)
            .into_iter()
            .flatten()
            .map(|room| Channel::Room(room.clone()))
            .collect()
    }
}

impl Inner {
    fn drop_user(&mut self, user: &str) {
        for room in self.of_user.remove(user).into_iter().flatten() {
            self.forget(&room, user);
        }
    }

    fn join(&mut self, interest: &Interest, user: &str, room: &str) {
        let added = self
            .of_user
            .entry(user.to_string())
            .or_default()
            .insert(room.to_string());
        self.by_room
            .entry(room.to_string())
            .or_default()
            .insert(user.to_string());
        if added && self.subscribed.contains_key(user) {
            interest.add(Channel::Room(room.to_string()));
        }
    }

    fn leave(&mut self, interest: &Interest, user: &str, room: &str) {
        let removed = self
            .of_user
            .get_mut(user)
            .is_some_and(|rooms| rooms.remove(room));
        self.forget(room, user);
        if removed && self.subscribed.contains_key(user) {
            interest.remove(&Channel::Room(room.to_string()));
        }
    }

    fn forget(&mut self, room: &str, user: &str) {
        if let Some(users) = self.by_room.get_mut(room) {
            users.remove(user);
            if users.is_empty() {
                self.by_room.remove(room);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_store::{Member, Role};

    fn group(id: &str, members: &[&str]) -> Conversation {
        Conversation {
            id: id.into(),
            kind: ConversationKind::Group,
            name: None,
            creator: members[0].into(),
            members: members
                .iter()
                .map(|m| Member {
                    user_id: (*m).into(),
                    role: Role::Member,
                    joined_at_ms: 0,
                })
                .collect(),
            created_at_ms: 0,
        }
    }

    #[test]
    fn a_room_is_wanted_while_a_subscribed_member_is_here() {
        let (rooms, interest) = (Rooms::default(), Interest::default());
        let g = Channel::Room("g".into());
        rooms.loaded(&interest, "ann", &[group("g", &["ann", "ben"])]);
        assert!(!interest.wanted(&g), "loaded, not subscribed yet");
        rooms.user_subscribed(&interest, "ann");
        rooms.user_subscribed(&interest, "ann"); // a second queue
        assert!(interest.wanted(&g));
        rooms.loaded(&interest, "ben", &[group("g", &["ann", "ben"])]);
        rooms.user_subscribed(&interest, "ben");
        rooms.user_unsubscribed(&interest, "ann");
        rooms.user_unsubscribed(&interest, "ann");
        assert!(interest.wanted(&g), "ben is still here");
        assert_eq!(
            rooms.of("ann"),
            vec![g.clone()],
            "kept for her next session"
        );
        // ben removed from the group elsewhere: the room goes.
        rooms.changed(&interest, &group("g", &["ann", "cid"]));
        assert!(!interest.wanted(&g));
        // ... and added back.
        rooms.changed(&interest, &group("g", &["ann", "ben"]));
        assert!(interest.wanted(&g));
        assert_eq!(rooms.of("ben"), vec![g.clone()]);
        rooms.user_unsubscribed(&interest, "ben");
        assert!(!interest.wanted(&g));
    }

    #[test]
    fn a_group_made_after_the_session_started_is_joined() {
        let (rooms, interest) = (Rooms::default(), Interest::default());
        rooms.loaded(&interest, "ann", &[]);
        rooms.user_subscribed(&interest, "ann");
        rooms.changed(&interest, &group("g", &["ann", "ben"]));
        assert!(interest.wanted(&Channel::Room("g".into())));
    }

    #[test]
    fn a_session_starting_as_the_last_one_ends_keeps_the_rooms() {
        let (rooms, interest) = (Rooms::default(), Interest::default());
        let g = Channel::Room("g".into());
        rooms.loaded(&interest, "ann", &[group("g", &["ann"])]);
        rooms.user_subscribed(&interest, "ann");
        rooms.loaded(&interest, "ann", &[group("g", &["ann"])]); // her next session
        rooms.user_unsubscribed(&interest, "ann"); // the old one ends
        assert!(!interest.wanted(&g));
        rooms.user_subscribed(&interest, "ann"); // the new one subscribes
        assert!(interest.wanted(&g));
    }

    #[test]
    fn a_list_read_before_a_change_does_not_undo_it() {
        let (rooms, interest) = (Rooms::default(), Interest::default());
        rooms.loaded(&interest, "ann", &[]);
        rooms.user_subscribed(&interest, "ann");
        rooms.changed(&interest, &group("g", &["ann"])); // added, snapshot applied
        rooms.loaded(&interest, "ann", &[]); // her second session's list, read just before
        assert!(interest.wanted(&Channel::Room("g".into())));
    }

    #[test]
    fn direct_conversations_have_no_room_channel() {
        let (rooms, interest) = (Rooms::default(), Interest::default());
        let mut direct = group("d:a:b", &["a", "b"]);
        direct.kind = ConversationKind::Direct;
        rooms.loaded(&interest, "a", &[direct.clone()]);
        rooms.user_subscribed(&interest, "a");
        rooms.changed(&interest, &direct);
        assert!(
            interest
                .all()
                .iter()
                .all(|c| !matches!(c, Channel::Room(_)))
        );
    }
}
