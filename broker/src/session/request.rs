//! What each client command does to the session and the router.

use std::sync::Arc;

use stomp_codec::{Command, Frame};

use super::revocation::subscribed_to;
use super::state::{Session, Transaction, TxOp};
use super::subscription::{Registration, Subscription};
use super::wire::Wire;
use crate::app::{CommitShare, Refused};
use crate::command::{AckMode, AckRef, ClientCommand, Publish};
use crate::config::AclAction;
use crate::destination::Destination;
use crate::error::StompError;
use crate::message::{Message, SENDER_HEADER};
use crate::router::Router;
use crate::router::gate::Resumed;
use crate::router::history::Position;
use crate::router::topic::Subscriber;
use crate::subscription_id::SubscriptionId;

impl Session {
    /// Carries out one client command. `Ok(true)` after DISCONNECT.
    /// A RECEIPT the command answers later itself (an `/app` SEND, once stored) is taken out of
    /// `receipt`.
    pub(super) fn handle_request(
        &mut self,
        wire: &mut Wire,
        command: ClientCommand,
        receipt: &mut Option<String>,
    ) -> Result<bool, StompError> {
        match command {
            ClientCommand::Connect(_) => return Err(StompError::AlreadyConnected),
            ClientCommand::Disconnect => {
                // Everything routed to us before DISCONNECT goes out before its RECEIPT.
                self.drain_outbox(wire).map_err(|f| f.error)?;
                return Ok(true);
            }
            ClientCommand::Send(publish) => {
                // Validate now, so a bad SEND fails where it was sent, not at COMMIT.
                let destination = self.check(AclAction::Send, &publish.destination)?;
                match publish.transaction.clone() {
                    Some(tx) => self.in_transaction(&tx, TxOp::Send(publish))?,
                    None => {
                        let deferred = matches!(destination, Destination::App(_))
                            .then(|| receipt.take())
                            .flatten();
                        self.send(publish, destination, deferred, None)?;
                    }
                }
            }
            ClientCommand::Subscribe {
                id,
                destination,
                ack,
                prefetch,
                resume,
            } => {
                let resumed = self.subscribe(id, destination, ack, prefetch, resume.as_ref())?;
                // A resume's RECEIPT says whether the replay (already in the outbox, so ahead
                // of the RECEIPT) is complete; a shared history's gate sends it once it is.
                match resumed {
                    Some(Resumed::Done(recovered)) => {
                        if let Some(id) = receipt.take() {
                            self.drain_outbox(wire).map_err(|f| f.error)?;
                            wire.push(
                                &Frame::new(Command::Receipt)
                                    .header("receipt-id", id)
                                    .header("recovered", recovered.to_string()),
                            );
                        }
                    }
                    Some(Resumed::Pending(gate)) => {
                        if let Some(id) = receipt.take() {
                            gate.receipt(id);
                        }
                    }
                    None => {}
                }
            }
            ClientCommand::Unsubscribe { id } => {
                self.remove_subscription(&id)
                    .ok_or(StompError::UnknownSubscription(id))?;
            }
            ClientCommand::Ack {
                target,
                transaction,
            } => self.ack_or_nack(wire, target, transaction, false)?,
            ClientCommand::Nack {
                target,
                transaction,
            } => self.ack_or_nack(wire, target, transaction, true)?,
            ClientCommand::Begin { transaction } => {
                if self.transactions.contains_key(&transaction) {
                    return Err(StompError::DuplicateTransaction(transaction));
                }
                let max = self.broker.config.limits.max_transactions;
                if self.transactions.len() >= max {
                    return Err(StompError::TooManyTransactions(format!(
                        "a session may hold at most {max} open transactions"
                    )));
                }
                self.transactions
                    .insert(transaction, Transaction::default());
            }
            ClientCommand::Commit { transaction } => {
                let held = self
                    .transactions
                    .remove(&transaction)
                    .ok_or(StompError::UnknownTransaction(transaction))?;
                // With `/app` SENDs inside, the RECEIPT waits until the application has done
                // every one of them (a chat message is stored), not only until they are routed.
                let commit = held
                    .ops
                    .iter()
                    .any(TxOp::is_app_send)
                    .then(|| receipt.take())
                    .flatten()
                    .map(|id| CommitShare::new(Arc::clone(&self.handle), id));
                for op in held.ops {
                    match op {
                        TxOp::Send(publish) => {
                            let destination = Destination::parse(&publish.destination)?;
                            let share = commit.as_ref().map(CommitShare::share);
                            self.send(publish, destination, None, share)?;
                        }
                        TxOp::Ack(target) => self.settle_if_pending(wire, &target, false),
                        TxOp::Nack(target) => self.settle_if_pending(wire, &target, true),
                    }
                }
                // Deliveries this COMMIT routed to us are in the outbox already, ahead of it.
                if let Some(commit) = commit {
                    commit.answered();
                }
            }
            ClientCommand::Abort { transaction } => {
                self.transactions
                    .remove(&transaction)
                    .ok_or(StompError::UnknownTransaction(transaction))?;
            }
        }
        Ok(false)
    }

    /// Parses a destination and checks the principal may use it for `action`.
    pub(super) fn check(&self, action: AclAction, raw: &str) -> Result<Destination, StompError> {
        let destination = Destination::parse(raw)?;
        let user = self.handle.principal.name();
        match &self.broker.app {
            // The application's own rules first (the chat's conversation rooms).
            Some(app) => match action {
                AclAction::Subscribe => app.may_subscribe(user, raw, &destination),
                AclAction::Send => app.may_send(user, raw, &destination),
            }
            .map_err(|Refused(why)| StompError::AccessDenied(why))?,
            // No application: `/app/...` is a destination like any unknown one.
            None if action == AclAction::Send && matches!(destination, Destination::App(_)) => {
                return Err(StompError::UnknownDestination(raw.to_string()));
            }
            None => {}
        }
        if !self.broker.acl.load().allows(user, action, raw) {
            return Err(StompError::AccessDenied(format!(
                "user {user:?} may not {} {raw:?}",
                match action {
                    AclAction::Send => "send to",
                    AclAction::Subscribe => "subscribe to",
                }
            )));
        }
        Ok(destination)
    }

    fn in_transaction(&mut self, transaction: &str, op: TxOp) -> Result<(), StompError> {
        let limits = &self.broker.config.limits;
        let held = self
            .transactions
            .get_mut(transaction)
            .ok_or_else(|| StompError::UnknownTransaction(transaction.to_string()))?;
        let max = limits.max_transaction_frames;
        if held.ops.len() >= max {
            return Err(StompError::TooManyTransactions(format!(
                "transaction {transaction:?} holds its maximum of {max} frames"
            )));
        }
        let (weight, max) = (op.weight(), limits.max_transaction_bytes);
        if held.bytes + weight > max {
            return Err(StompError::TooManyTransactions(format!(
                "transaction {transaction:?} would hold more than its maximum of {max} bytes"
            )));
        }
        held.bytes += weight;
        held.ops.push(op);
        Ok(())
    }

    fn ack_or_nack(
        &mut self,
        wire: &mut Wire,
        target: AckRef,
        transaction: Option<String>,
        nack: bool,
    ) -> Result<(), StompError> {
        let Some(tx) = transaction else {
            return self.acknowledge(wire, &target, nack);
        };
        if self.resolve(&target).is_none() {
            return Err(StompError::UnknownAckId(target.describe()));
        }
        let op = if nack {
            TxOp::Nack(target)
        } else {
            TxOp::Ack(target)
        };
        self.in_transaction(&tx, op)
    }

    /// The token of this session's `/reply-queue`, registered on first use.
    fn reply_token(&mut self) -> String {
        if let Some(token) = &self.reply_token {
            return token.to_string();
        }
        let token = format!("{:032x}", rand::random::<u128>());
        self.broker
            .router
            .add_reply_token(token.clone(), Arc::clone(&self.handle));
        self.reply_token = Some(token.as_str().into());
        token
    }

    /// Routes a SEND, or hands an `/app` one to the application with the RECEIPT (`receipt`)
    /// or the share of a COMMIT's RECEIPT (`commit`) it owes once done.
    fn send(
        &mut self,
        publish: Publish,
        destination: Destination,
        receipt: Option<String>,
        commit: Option<CommitShare>,
    ) -> Result<(), StompError> {
        let Publish {
            destination: raw,
            headers,
            body,
            ..
        } = publish;
        if let Destination::App(action) = &destination {
            let app = self
                .broker
                .app
                .as_ref()
                .ok_or_else(|| StompError::UnknownDestination(raw.clone()))?;
            app.send(&self.handle, action, body, receipt, commit);
            return Ok(());
        }
        let message = self.accept(raw, headers, body);
        let router = &self.broker.router;
        let fan_out = router.route(destination, message, self.handle.principal.name())?;
        self.throttle
            .after_publish(fan_out.pressed, &self.broker.clock);
        Ok(())
    }

    /// The message a SEND (not to `/app`) publishes: `reply-to` rewritten to this session's
    /// `/reply-queue`, the sender's `user-id` set, the user's send rate charged (past it,
    /// reading pauses until it is repaid).
    pub(super) fn accept(
        &mut self,
        raw: String,
        mut headers: stomp_codec::Headers,
        body: bytes::Bytes,
    ) -> Arc<Message> {
        if let Some(name) = headers
            .get("reply-to")
            .and_then(|r| r.strip_prefix("/temp-queue/"))
            .map(str::to_string)
        {
            let token = self.reply_token();
            headers.set("reply-to", format!("/reply-queue/{token}/{name}"));
        }
        // Who sent it is the broker's to say: a client's own value is replaced.
        let user = self.handle.principal.name();
        headers.set(SENDER_HEADER, user);
        // Past the user's send rate: routed, then nothing more is read until it is repaid.
        if let Some(debt) = self.broker.send_rate.borrow(user) {
            self.throttle.pause_for(debt, &self.broker.clock);
        }
        Arc::new(Message::new(
            self.broker.ids.next_id(),
            Arc::from(raw),
            &headers,
            body,
        ))
    }

    fn subscribe(
        &mut self,
        id: String,
        raw: String,
        ack: AckMode,
        prefetch: u32,
        resume: Option<&Position>,
    ) -> Result<Option<Resumed>, StompError> {
        if self.subscriptions.contains(&id) {
            return Err(StompError::DuplicateSubscription(id));
        }
        let max = self.broker.config.limits.max_subscriptions;
        if self.subscriptions.len() >= max {
            return Err(StompError::TooManySubscriptions(max));
        }
        let destination = self.check(AclAction::Subscribe, &raw)?;
        let id: Arc<str> = Arc::from(id);
        let router = &self.broker.router;
        let subscriber = || Subscriber {
            session: Arc::clone(&self.handle),
            subscription: SubscriptionId::from(&id),
            gate: None,
        };
        let principal = self.handle.principal.name();
        // Only a `/topic` with history can resume; anywhere else a resume is not recovered.
        let mut recovered = resume.map(|_| Resumed::Done(false));
        let (registration, shown_as) = match destination {
            Destination::Topic(name) => {
                match resume {
                    Some(from) => {
                        recovered = Some(router.subscribe_topic_from(&name, subscriber(), from));
                    }
                    None => router.subscribe_topic(&name, subscriber()),
                }
                (Registration::Topic(name), None)
            }
            Destination::Queue(name) => (Registration::Queue(router.queue(&name)?), None),
            Destination::User { user, name } => {
                if let Some(owner) = user.as_deref()
                    && owner != principal
                {
                    return Err(StompError::AccessDenied(format!(
                        "only {owner:?} may subscribe to {raw:?}; you are {principal:?}"
                    )));
                }
                let key = Router::user_key(principal, &name);
                router.subscribe_user(principal, &key, subscriber());
                (Registration::User(key), Some(router.common_name(&raw)))
            }
            Destination::TempQueue(name) => (Registration::TempQueue(name), None),
            Destination::ReplyQueue { .. } | Destination::App(_) => {
                return Err(StompError::UnknownDestination(raw));
            }
        };
        let queue = match &registration {
            Registration::Queue(q) => Some(Arc::clone(q)),
            _ => None,
        };
        let subscription =
            Subscription::new(Arc::clone(&id), registration, shown_as, ack, prefetch);
        if let Some(destination) = subscribed_to(&subscription) {
            self.handle.record.subscribed(&id, destination);
        }
        self.subscriptions.insert(subscription);
        // Only now may the queue dispatch to us: deliveries need the subscription in place.
        if let Some(queue) = queue {
            queue.add_consumer(Arc::clone(&self.handle), id, prefetch, ack.tracks_acks());
        }
        Ok(recovered)
    }
}
