//! Conversations and their members, and the derivation of DIRECT conversation ids.

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// A user's principal name, as authenticated by the broker.
pub type UserId = String;
/// A conversation's id: derived for DIRECT ([`direct_id`]), chosen by the caller for GROUP.
pub type ConversationId = String;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConversationKind {
    /// Exactly two users; the id is derived from the pair.
    Direct,
    /// A named set of members with a creator and admins.
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user_id: UserId,
    pub role: Role,
    pub joined_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: ConversationId,
    pub kind: ConversationKind,
    pub name: Option<String>,
    pub creator: UserId,
    /// In the order they joined.
    pub members: Vec<Member>,
    pub created_at_ms: u64,
}

impl Conversation {
    /// Whether `user` is currently a member.
    pub fn is_member(&self, user: &str) -> bool {
        self.members.iter().any(|m| m.user_id == user)
    }

    /// Whether `user` is a member with the admin role (a GROUP's creator starts as one).
    pub fn is_admin(&self, user: &str) -> bool {
        self.members
            .iter()
            .any(|m| m.user_id == user && m.role == Role::Admin)
    }
}

/// What [`crate::ChatStore::create_conversation`] is asked to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConversation {
    /// For DIRECT it must equal `direct_id` of the two members.
    pub id: ConversationId,
    pub kind: ConversationKind,
    pub name: Option<String>,
    pub creator: UserId,
    /// The creator included (by the caller).
    pub members: Vec<UserId>,
    pub at_ms: u64,
}

impl NewConversation {
    /// Checks the rules every store enforces before creating (creator among the members, a
    /// non-empty id, DIRECT: exactly two members and their `direct_id`, GROUP: not shaped like
    /// a direct id) and returns the distinct members in order.
    pub fn checked_members(&self) -> Result<Vec<UserId>, StoreError> {
        let invalid = |why: &str| Err(StoreError::Invalid(why.to_string()));
        let mut members: Vec<UserId> = Vec::with_capacity(self.members.len());
        for user in &self.members {
            if !members.contains(user) {
                members.push(user.clone());
            }
        }
        if !members.contains(&self.creator) {
            return invalid("the creator must be a member");
        }
        if self.id.is_empty() {
            return invalid("a conversation id must not be empty");
        }
        match self.kind {
            ConversationKind::Direct => {
                let [a, b] = members.as_slice() else {
                    return invalid("a direct conversation has exactly two members");
                };
                if self.id != direct_id(a, b) {
                    return invalid("a direct conversation's id must be direct_id of its members");
                }
            }
            ConversationKind::Group => {
                if direct_pair(&self.id).is_some() {
                    return invalid("a group id must not have the form of a direct id");
                }
            }
        }
        Ok(members)
    }

    /// The role `user` gets at creation: a group's creator is its admin.
    pub fn role_of(&self, user: &str) -> Role {
        if self.kind == ConversationKind::Group && user == self.creator {
            Role::Admin
        } else {
            Role::Member
        }
    }
}

/// The DIRECT conversation id of a pair of users, the same for both orders:
/// `d:<byte length of the smaller>:<smaller>:<larger>`.
///
/// User names may contain ':', so a plain `d:a:b` would be ambiguous (`a:b` + `c` vs `a` +
/// `b:c`); the length prefix of the first name makes the split point explicit, and the second
/// name is simply the rest.
pub fn direct_id(a: &str, b: &str) -> ConversationId {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    format!("d:{}:{first}:{second}", first.len())
}

/// The pair a [`direct_id`] was derived from, smaller first; `None` for any other id.
pub fn direct_pair(id: &str) -> Option<(&str, &str)> {
    let rest = id.strip_prefix("d:")?;
    let (len, rest) = rest.split_once(':')?;
    let len: usize = len.parse().ok()?;
    let first = rest.get(..len)?;
    let second = rest.get(len..)?.strip_prefix(':')?;
    Some((first, second))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_id_is_symmetric_and_unambiguous_with_colons() {
        assert_eq!(direct_id("bob", "alice"), direct_id("alice", "bob"));
        assert_eq!(direct_id("alice", "bob"), "d:5:alice:bob");
        assert_ne!(direct_id("a:b", "c"), direct_id("a", "b:c"));
        assert_eq!(direct_pair(&direct_id("x:y", "a:b")), Some(("a:b", "x:y")));
        assert_eq!(direct_pair("general"), None);
        assert_eq!(direct_pair("d:9:ab"), None);
    }
}
