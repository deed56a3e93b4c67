//! Authorization rules as the config file writes them (`[[acl]]`); `crate::acl` applies them.
//! File only: a list of rules does not fit a flag.

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AclAction {
    Send,
    Subscribe,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct AclRule {
    /// A user name, or `*` for everyone.
    pub user: String,
    /// Which frame the rule governs.
    pub action: AclAction,
    /// Destination prefix; `{user}` is replaced by the principal's name.
    pub prefix: String,
    /// `true` to allow, `false` to deny.
    pub allow: bool,
}
