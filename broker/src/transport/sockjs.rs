//! STOMP over a SockJS session: the pipe between the session task and whichever HTTP requests
//! (polls, streams, a WebSocket) currently carry the SockJS session (`crate::sockjs`).
//!
//! Inbound, each SockJS message the client sent (an `xhr_send` body holds several) arrives on
//! a bounded channel and is appended to the session's byte buffer, like a WebSocket message.
//! Outbound, each STOMP frame becomes one SockJS message, queued in the [`Link`] until a
//! receiver takes it. The queue is bounded in bytes: a write waits for room, exactly as a TCP
//! write waits on a full socket, so a poller that stops polling backs up into the session's
//! outbox and is treated as the slow consumer it is. A session whose client went away (no
//! receiver for the disconnect delay) fails the write and reads end of stream.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc};

use super::outcome::ReadOutcome;
use super::tls::TlsPeer;

/// Messages the client sent that the session has not read yet. Small: each may be a whole
/// `xhr_send` body's worth of frames, and a full channel holds the sender back (its HTTP
/// request waits), which is the backpressure a TCP client would feel.
pub const INBOUND_MESSAGES: usize = 16;

/// The queue between a session and its receivers.
#[derive(Debug)]
pub struct Link {
    outgoing: Mutex<Outgoing>,
    /// Woken on every change: a message queued or taken, the session closed, the client gone.
    changed: Notify,
    /// Most bytes queued for receivers before a write waits.
    max_pending: usize,
}

#[derive(Debug, Default)]
struct Outgoing {
    messages: VecDeque<String>,
    bytes: usize,
    /// The STOMP session ended: receivers send what is left, then the close frame.
    closed: bool,
    /// The client went away: nothing will take the queue.
    gone: bool,
}

/// What a receiver took from the queue.
#[derive(Debug, Default)]
pub struct Taken {
    pub messages: Vec<String>,
    /// The session has ended and everything it wrote has been taken.
    pub closed: bool,
}

impl Link {
    pub fn new(max_pending: usize) -> Arc<Self> {
        Arc::new(Self {
            outgoing: Mutex::new(Outgoing::default()),
            changed: Notify::new(),
            max_pending,
        })
    }

    /// Takes queued messages, at least one if any, then more while they stay within `budget`
    /// bytes.
    pub fn take(&self, budget: usize) -> Taken {
        let mut out = self.outgoing.lock();
        let mut taken = Taken::default();
        let mut bytes = 0;
        while let Some(first) = out.messages.front() {
            if !taken.messages.is_empty() && bytes + first.len() > budget {
                break;
            }
            bytes += first.len();
            let message = out.messages.pop_front().unwrap_or_default();
            taken.messages.push(message);
        }
        out.bytes -= bytes;
        taken.closed = out.closed && out.messages.is_empty();
        drop(out);
        if bytes > 0 {
            self.changed.notify_waiters();
        }
        taken
    }

    /// Whether anything is waiting for a receiver (messages, or the close).
    pub fn is_ready(&self) -> bool {
        let out = self.outgoing.lock();
        !out.messages.is_empty() || out.closed
    }

    /// Resolves at the next change. Create it before checking the state it waits for, so a
    /// change in between is not missed.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// The client went away: writes fail from now on.
    pub fn abandon(&self) {
        let mut out = self.outgoing.lock();
        out.gone = true;
        out.messages.clear();
        out.bytes = 0;
        drop(out);
        self.changed.notify_waiters();
    }

    fn close(&self) {
        self.outgoing.lock().closed = true;
        self.changed.notify_waiters();
    }

    /// Queues one message, waiting while the queue is over its bound (an empty queue always
    /// takes one, however large).
    async fn push(&self, message: String) -> io::Result<()> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut out = self.outgoing.lock();
                if out.gone {
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                if out.messages.is_empty() || out.bytes + message.len() <= self.max_pending {
                    out.bytes += message.len();
                    out.messages.push_back(message);
                    drop(out);
                    self.changed.notify_waiters();
                    return Ok(());
                }
            }
            changed.await;
        }
    }
}

/// The session's side of a SockJS session.
#[derive(Debug)]
pub struct SockJsTransport {
    link: Arc<Link>,
    inbound_rx: mpsc::Receiver<Bytes>,
    /// Set when the request that opened the session came over HTTPS.
    tls: Option<TlsPeer>,
}

impl SockJsTransport {
    pub fn new(link: Arc<Link>, inbound_rx: mpsc::Receiver<Bytes>, tls: Option<TlsPeer>) -> Self {
        Self {
            link,
            inbound_rx,
            tls,
        }
    }

    pub fn tls(&self) -> Option<&TlsPeer> {
        self.tls.as_ref()
    }

    /// Cancel-safe (`mpsc::Receiver::recv` is).
    pub async fn read(&mut self, buf: &mut BytesMut) -> io::Result<ReadOutcome> {
        match self.inbound_rx.recv().await {
            Some(message) => {
                buf.extend_from_slice(&message);
                Ok(ReadOutcome::Data)
            }
            None => Ok(ReadOutcome::Eof),
        }
    }

    /// Each frame is one SockJS message. SockJS carries text only: a body that is not UTF-8
    /// is carried lossily (clients that need binary bodies use the WebSocket).
    pub async fn write(&mut self, batch: &[u8], frame_ends: &[usize]) -> io::Result<()> {
        let mut start = 0;
        for &end in frame_ends {
            let frame = String::from_utf8_lossy(&batch[start..end]).into_owned();
            start = end;
            self.link.push(frame).await?;
        }
        Ok(())
    }

    /// The session ended: receivers deliver what is queued, then the SockJS close frame.
    pub fn close(&mut self) {
        self.link.close();
    }
}
