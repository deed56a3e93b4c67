//! The polling transports: `xhr` (POST, frames as lines) and `jsonp` (GET, frames as calls of
//! the page's callback). Each request carries one frame (or `o` when it opened the session)
//! and ends; the client polls again at once.

use std::collections::HashMap;

use axum::http::HeaderMap;
use axum::response::Response;

use super::cors;
use super::receiver::{Mode, Wrapping};
use super::refused::Refused;
use super::server::{Receive, Receiving};
use crate::config::Config;

pub struct Xhr;

impl Receiving for Xhr {
    fn receive(_: &Config, _: &HashMap<String, String>) -> Result<Receive, Refused> {
        Ok(Receive {
            wrapping: Wrapping::Xhr,
            mode: Mode::Polling,
            prelude: String::new(),
            content_type: "application/javascript;charset=UTF-8",
        })
    }
}

pub struct Jsonp;

impl Receiving for Jsonp {
    fn receive(_: &Config, query: &HashMap<String, String>) -> Result<Receive, Refused> {
        Ok(Receive {
            wrapping: Wrapping::Jsonp(callback(query)?),
            mode: Mode::Polling,
            prelude: String::new(),
            content_type: "application/javascript;charset=UTF-8",
        })
    }
}

/// The CORS preflight of the POST transports.
pub async fn preflight(headers: HeaderMap) -> Response {
    cors::preflight(&headers, "OPTIONS, POST")
}

/// The `c` query parameter naming the page's callback (`htmlfile`, `jsonp`): required, and
/// only characters that cannot break out of the script it is written into.
pub fn callback(query: &HashMap<String, String>) -> Result<String, Refused> {
    let callback = query.get("c").ok_or(Refused::CallbackRequired)?;
    let valid = !callback.is_empty()
        && callback
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    valid
        .then(|| callback.clone())
        .ok_or(Refused::CallbackInvalid)
}
