//! The chat as the broker's application: what the STOMP core's sessions tell it and ask it
//! ([`Application`]), mapped onto the chat's requests, presence and rooms.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::request::ChatRequest;
use super::{Chat, reply_queue, room};
use crate::app::{Application, CommitShare, Refused, Settled};
use crate::destination::Destination;
use crate::handle::SessionHandle;

impl Application for Chat {
    /// Loads the user's conversations (membership checks at SUBSCRIBE are synchronous) and
    /// marks the session present.
    fn connected<'a>(&'a self, session: &'a Arc<SessionHandle>) -> BoxFuture<'a, ()> {
        self.session_started(session).boxed()
    }

    fn send(
        &self,
        session: &Arc<SessionHandle>,
        action: &str,
        body: Bytes,
        receipt: Option<String>,
        commit: Option<CommitShare>,
    ) {
        let request = ChatRequest::try_from((action, &body[..]));
        self.dispatch(session, request, receipt, commit);
    }

    /// A recipient's ACK of chat messages is their DELIVERED receipt; a NACK means nothing.
    fn settled(&self, session: &Arc<SessionHandle>, settled: Settled, message_ids: Vec<u64>) {
        if settled == Settled::Ack {
            self.dispatch(session, Ok(ChatRequest::Acked(message_ids)), None, None);
        }
    }

    fn may_subscribe(
        &self,
        user: &str,
        raw: &str,
        destination: &Destination,
    ) -> Result<(), Refused> {
        match room::conversation_of(destination) {
            Some(conversation) if !self.core().may_watch(user, conversation) => {
                Err(room::refused(raw))
            }
            _ => Ok(()),
        }
    }

    /// The chat's own destinations are the chat's: a client publishes neither on a
    /// conversation's room nor on anyone's reply queues (it would speak for the chat).
    fn may_send(&self, _user: &str, raw: &str, destination: &Destination) -> Result<(), Refused> {
        if room::conversation_of(destination).is_some() {
            return Err(room::refused(raw));
        }
        if reply_queue::reserved(destination).is_some() {
            return Err(reply_queue::refused(raw));
        }
        Ok(())
    }

    /// Presence refreshes a few times per TTL: often enough that a live session never lapses.
    fn activity_interval(&self) -> Option<Duration> {
        Some(self.core().presence.ttl() / 3)
    }

    fn active(&self, session: &Arc<SessionHandle>) {
        self.presence_touch(session);
    }

    fn closed(&self, session: &Arc<SessionHandle>) {
        self.session_ended(session);
    }

    fn routes(&self) -> axum::Router {
        super::http::routes(self.clone(), self.core().config.service_token.as_deref())
    }
}
