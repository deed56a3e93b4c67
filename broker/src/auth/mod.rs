//! Who a connection is: credential checks at CONNECT, producing the [`Principal`] that `/user`
//! destinations and authorization use for the rest of the session.
//!
//! (Interface fixed; implementation in progress.)

use std::sync::Arc;

/// The authenticated user name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal(pub Arc<str>);

impl Principal {
    pub fn name(&self) -> &str {
        &self.0
    }
}
