//! The authenticated user name, validated once so it is safe wherever it is embedded
//! (destinations, log lines, Redis keys).

use std::sync::Arc;

use super::error::AuthError;

/// Longest principal name. Names are embedded in destinations and log lines; 128 is far
/// beyond any real user name and keeps `/user/<name>/...` destinations short.
pub const MAX_NAME_CHARS: usize = 128;

/// The authenticated user name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal(pub Arc<str>);

impl Principal {
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Principal {
    type Error = AuthError;

    /// Accepts a name that is safe inside a destination: 1 to [`MAX_NAME_CHARS`] characters,
    /// no `/` (it would let `/user/a/b` impersonate a path under user `a`) and no control
    /// characters (they would corrupt frames and logs).
    fn try_from(name: &str) -> Result<Self, Self::Error> {
        if name.is_empty() {
            return Err(AuthError::InvalidName("empty"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(AuthError::InvalidName("longer than 128 characters"));
        }
        if name.contains('/') {
            return Err(AuthError::InvalidName("contains '/'"));
        }
        if name.chars().any(char::is_control) {
            return Err(AuthError::InvalidName("contains a control character"));
        }
        Ok(Self(name.into()))
    }
}
