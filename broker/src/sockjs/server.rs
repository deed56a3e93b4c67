//! What the SockJS handlers share: the listener's `Entry`, the session [`Registry`], and the
//! path every receiving request takes (find or open the session, attach, stream frames) with
//! the headers every response carries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::cors;
pub use super::entry::Entry;
use super::frame::Frame;
use super::receiver::{self, Mode, Pace, Wrapping};
use super::refused::Refused;
use super::session::Registry;
use crate::admission::AdmissionPermit;
use crate::config::Config;
use crate::transport::tls::TlsPeer;

/// What the SockJS handlers share: the listener's entry and its sessions.
#[derive(Clone)]
pub struct SockJs {
    pub(super) gate: Entry,
    pub(super) registry: Arc<Registry>,
}

impl SockJs {
    pub fn new(gate: Entry) -> Self {
        let registry = Registry::start(&gate);
        Self { gate, registry }
    }
}

/// The `{server}` and `{session}` segments, when SockJS would accept them: non-empty and
/// without dots.
pub(super) fn session_id(server: &str, session: &str) -> Option<String> {
    let valid = |s: &str| !s.is_empty() && !s.contains('.');
    (valid(server) && valid(session)).then(|| session.to_owned())
}

/// Who is asking: the connection's peer, and over HTTPS the TLS layer's word on it.
struct Client {
    peer: SocketAddr,
    tls: Option<TlsPeer>,
}

/// How a receiving transport answers: each frame wrapped by `wrapping`, after `prelude`, for
/// one frame or until the streaming limit (`mode`).
pub struct Receive {
    pub wrapping: Wrapping,
    pub mode: Mode,
    pub prelude: String,
    pub content_type: &'static str,
}

/// A receiving transport: how it wraps and paces frames, from the settings and the query.
pub trait Receiving {
    fn receive(config: &Config, query: &HashMap<String, String>) -> Result<Receive, Refused>;
}

/// The handler of every receiving transport `T`: finds the session (or opens it, answering
/// `o`), attaches as its receiver and streams its frames.
pub async fn receive<T: Receiving>(
    State(sockjs): State<SockJs>,
    Path(ids): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    tls: Option<Extension<TlsPeer>>,
    headers: HeaderMap,
) -> Response {
    let client = Client {
        peer,
        tls: tls.map(|Extension(tls)| tls),
    };
    T::receive(&sockjs.gate.broker.config, &query)
        .and_then(|receive| sockjs.try_receive(ids, client, &headers, receive))
        .unwrap_or_else(IntoResponse::into_response)
}

impl SockJs {
    fn try_receive(
        &self,
        (server, session): (String, String),
        client: Client,
        headers: &HeaderMap,
        receive: Receive,
    ) -> Result<Response, Refused> {
        let id = session_id(&server, &session).ok_or(Refused::NotFound)?;
        let Receive {
            wrapping,
            mode,
            prelude,
            content_type,
        } = receive;
        let (attached, opened) = match self.registry.get(&id) {
            Some(existing) => {
                cors::check_origin(&self.gate.broker.config.ws_allowed_origins, headers)?;
                let Some(attached) = existing.attach() else {
                    let body = receiver::refused(&wrapping, prelude);
                    return Ok(self.respond(headers, content_type, body));
                };
                (attached, false)
            }
            None => {
                let permit = self.admit(client.peer, headers)?;
                let attached = self.registry.open(&self.gate, &id, permit, client.tls);
                (attached, true)
            }
        };
        let first = if opened {
            prelude + &wrapping.wrap(&Frame::Open)
        } else {
            prelude
        };
        let pace = Pace {
            heartbeat: self.gate.broker.config.sockjs.heartbeat,
            stopping: self.gate.broker.stopping.clone(),
        };
        let body = receiver::body(attached, wrapping, mode, pace, first, opened);
        Ok(self.respond(headers, content_type, body))
    }

    /// The admission of a new session: its origin allowed, the broker not stopping, the
    /// client (the one a trusted proxy names) within its limits.
    pub(super) fn admit(
        &self,
        peer: SocketAddr,
        headers: &HeaderMap,
    ) -> Result<AdmissionPermit, Refused> {
        cors::check_origin(&self.gate.broker.config.ws_allowed_origins, headers)?;
        if self.gate.broker.stopping.is_cancelled() {
            return Err(Refused::ShuttingDown);
        }
        let client = self.gate.admission.client_address(peer.ip(), headers);
        Ok(self.gate.admission.admit(client)?)
    }

    /// `body` with the headers of every SockJS session response.
    pub(super) fn respond(
        &self,
        request: &HeaderMap,
        content_type: &'static str,
        body: Body,
    ) -> Response {
        let mut response = body.into_response();
        let out = response.headers_mut();
        cors::content_type(out, content_type);
        cors::add_cors(request, out);
        cors::add_cookie(request, out);
        cors::add_no_cache(out);
        response
    }
}
