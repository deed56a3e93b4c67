//! Authorization: may this principal SEND to, or SUBSCRIBE to, this destination?
//!
//! The rules come from `[[acl]]` tables in the config file ([`AclRule`]). They are checked in
//! order and the first rule whose user matches (the exact name, or `*`) and whose prefix
//! starts the destination decides. A prefix may contain `{user}`, replaced by the principal's
//! name, so one rule can give every user their own subtree (`/user/{user}/`). With no rules at
//! all everything is allowed, which keeps dev mode frictionless; once any rule exists, a
//! destination no rule covers is denied, so forgetting a rule fails closed.
//!
//! Prefixes match as plain strings: `/topic/chat` also covers `/topic/chatroom`. End a prefix
//! with `/` to stop at a path segment. `{user}` cannot widen a match across segments because
//! principal names never contain `/` (see `auth`).

use crate::config::{AclAction, AclRule};

/// The placeholder in a rule prefix that stands for the principal's name.
const USER_PLACEHOLDER: &str = "{user}";

/// Compiled authorization rules; cheap to share behind an `Arc` and to query per frame.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    rules: Vec<CompiledRule>,
}

/// A rule with its prefix pre-split around `{user}`, so a check allocates nothing.
#[derive(Debug, Clone)]
struct CompiledRule {
    user: UserMatch,
    action: AclAction,
    /// Literal pieces of the prefix; the principal's name goes between consecutive pieces.
    prefix_parts: Vec<String>,
    allow: bool,
}

#[derive(Debug, Clone)]
enum UserMatch {
    Anyone,
    Named(String),
}

impl Acl {
    /// Compiles `rules`, keeping their order (first match wins).
    pub fn new(rules: &[AclRule]) -> Self {
        let rules = rules
            .iter()
            .map(|rule| CompiledRule {
                user: if rule.user == "*" {
                    UserMatch::Anyone
                } else {
                    UserMatch::Named(rule.user.clone())
                },
                action: rule.action,
                prefix_parts: rule
                    .prefix
                    .split(USER_PLACEHOLDER)
                    .map(str::to_owned)
                    .collect(),
                allow: rule.allow,
            })
            .collect();
        Self { rules }
    }

    /// True when no rules are configured, i.e. everything is allowed.
    pub fn is_open(&self) -> bool {
        self.rules.is_empty()
    }

    /// Decides whether `user` may perform `action` on `destination`.
    pub fn allows(&self, user: &str, action: AclAction, destination: &str) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        self.rules
            .iter()
            .find(|rule| rule.matches(user, action, destination))
            .is_some_and(|rule| rule.allow)
    }
}

impl From<&[AclRule]> for Acl {
    fn from(rules: &[AclRule]) -> Self {
        Self::new(rules)
    }
}

impl CompiledRule {
    fn matches(&self, user: &str, action: AclAction, destination: &str) -> bool {
        let user_matches = match &self.user {
            UserMatch::Anyone => true,
            UserMatch::Named(name) => name == user,
        };
        user_matches && self.action == action && self.prefixes(user, destination)
    }

    /// Whether the prefix, with every `{user}` replaced by `user`, starts `destination`.
    fn prefixes(&self, user: &str, destination: &str) -> bool {
        let mut rest = destination;
        for (index, part) in self.prefix_parts.iter().enumerate() {
            if index > 0 {
                match rest.strip_prefix(user) {
                    Some(after) => rest = after,
                    None => return false,
                }
            }
            match rest.strip_prefix(part.as_str()) {
                Some(after) => rest = after,
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(user: &str, action: AclAction, prefix: &str, allow: bool) -> AclRule {
        AclRule {
            user: user.to_owned(),
            action,
            prefix: prefix.to_owned(),
            allow,
        }
    }

    #[test]
    fn no_rules_allow_everything() {
        let acl = Acl::new(&[]);
        assert!(acl.is_open());
        assert!(acl.allows("alice", AclAction::Send, "/topic/anything"));
        assert!(acl.allows("bob", AclAction::Subscribe, "/queue/x"));
    }

    #[test]
    fn rules_present_but_none_matching_deny() {
        let acl = Acl::new(&[rule("*", AclAction::Send, "/topic/chat/", true)]);
        assert!(acl.allows("alice", AclAction::Send, "/topic/chat/general"));
        assert!(!acl.allows("alice", AclAction::Send, "/topic/admin"));
        // The rule governs SEND only, so SUBSCRIBE falls through to the default deny.
        assert!(!acl.allows("alice", AclAction::Subscribe, "/topic/chat/general"));
    }

    #[test]
    fn first_matching_rule_decides() {
        let acl = Acl::new(&[
            rule("*", AclAction::Send, "/topic/chat/announce", false),
            rule("*", AclAction::Send, "/topic/chat/", true),
        ]);
        assert!(!acl.allows("alice", AclAction::Send, "/topic/chat/announce"));
        assert!(acl.allows("alice", AclAction::Send, "/topic/chat/random"));

        let reversed = Acl::new(&[
            rule("*", AclAction::Send, "/topic/chat/", true),
            rule("*", AclAction::Send, "/topic/chat/announce", false),
        ]);
        assert!(reversed.allows("alice", AclAction::Send, "/topic/chat/announce"));
    }

    #[test]
    fn exact_user_rule_applies_only_to_that_user() {
        let acl = Acl::new(&[
            rule("admin", AclAction::Send, "/topic/chat/announce", true),
            rule("*", AclAction::Send, "/topic/chat/announce", false),
            rule("*", AclAction::Send, "/topic/", true),
        ]);
        assert!(acl.allows("admin", AclAction::Send, "/topic/chat/announce"));
        assert!(!acl.allows("alice", AclAction::Send, "/topic/chat/announce"));
        assert!(acl.allows("alice", AclAction::Send, "/topic/other"));
    }

    #[test]
    fn user_placeholder_is_replaced_by_the_principal_name() {
        let acl = Acl::new(&[
            rule("*", AclAction::Subscribe, "/user/{user}/", true),
            rule("*", AclAction::Subscribe, "/user/", false),
        ]);
        assert!(acl.allows("alice", AclAction::Subscribe, "/user/alice/queue/inbox"));
        assert!(!acl.allows("alice", AclAction::Subscribe, "/user/bob/queue/inbox"));
        // "ali" is a prefix of "alice" but the trailing '/' keeps the match to one segment.
        assert!(!acl.allows("ali", AclAction::Subscribe, "/user/alice/queue/inbox"));
    }

    #[test]
    fn placeholder_can_appear_more_than_once_and_at_the_end() {
        let acl = Acl::new(&[
            rule("*", AclAction::Send, "/dm/{user}/to/{user}", true),
            rule("*", AclAction::Send, "/home/{user}", true),
        ]);
        assert!(acl.allows("bob", AclAction::Send, "/dm/bob/to/bob"));
        assert!(!acl.allows("bob", AclAction::Send, "/dm/bob/to/eve"));
        assert!(acl.allows("bob", AclAction::Send, "/home/bob"));
        assert!(acl.allows("bob", AclAction::Send, "/home/bobby"));
        assert!(!acl.allows("bob", AclAction::Send, "/home/bo"));
    }

    #[test]
    fn empty_prefix_matches_every_destination() {
        let acl = Acl::new(&[rule("guest", AclAction::Send, "", false)]);
        assert!(!acl.allows("guest", AclAction::Send, "/topic/x"));
        // No rule covers other users once rules exist.
        assert!(!acl.allows("alice", AclAction::Send, "/topic/x"));
    }

    #[test]
    fn built_from_a_rule_slice() {
        let rules = vec![rule("*", AclAction::Send, "/topic/", true)];
        let acl = Acl::from(rules.as_slice());
        assert!(acl.allows("x", AclAction::Send, "/topic/a"));
    }
}
