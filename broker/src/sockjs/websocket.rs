//! SockJS over a WebSocket (`/ws/{server}/{session}/websocket`): the client's messages come as
//! JSON arrays of strings, the server's frames go as `o`, `h`, `a[...]`, `c[...]`. The
//! WebSocket is the session's only receiver for its whole life, so it needs no registry entry:
//! one task pumps the socket and the link both ways until either end closes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::frame::{Close, Frame, Payload};
use super::refused::Refused;
use super::server::{SockJs, session_id};
use super::session::MAX_PENDING;
use crate::transport::Transport;
use crate::transport::sockjs::{INBOUND_MESSAGES, Link, SockJsTransport};
use crate::transport::tls::TlsPeer;

pub async fn upgrade(
    State(sockjs): State<SockJs>,
    Path((server, session)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    tls: Option<Extension<TlsPeer>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if session_id(&server, &session).is_none() {
        return Refused::NotFound.into_response();
    }
    let permit = match sockjs.admit(peer, &headers) {
        Ok(permit) => permit,
        Err(refused) => return refused.into_response(),
    };
    let gate = sockjs.gate;
    // Frames are JSON-escaped STOMP frames: up to twice the size, and then some.
    let max_message = gate.broker.config.limits.max_frame_size * 2 + 64 * 1024;
    let heartbeat = gate.broker.config.sockjs.heartbeat;
    ws.max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| async move {
            let link = Link::new(MAX_PENDING);
            let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_MESSAGES);
            let transport = Transport::SockJs(SockJsTransport::new(
                Arc::clone(&link),
                inbound_rx,
                tls.map(|Extension(tls)| tls),
            ));
            tokio::spawn(gate.session(transport, permit));
            pump(socket, &link, inbound_tx, heartbeat).await;
            link.abandon();
        })
}

/// Moves frames between the socket and the session until either side ends. Reads from the
/// socket stop while the session's inbound queue is full (backpressure), but frames keep
/// flowing out meanwhile, so a session waiting to write is never stuck behind its own input.
async fn pump(
    mut socket: WebSocket,
    link: &Link,
    inbound_tx: mpsc::Sender<Bytes>,
    heartbeat: Duration,
) {
    if send(&mut socket, &Frame::Open).await.is_err() {
        return;
    }
    let mut to_session: VecDeque<String> = VecDeque::new();
    loop {
        let changed = link.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let taken = link.take(MAX_PENDING);
        if !taken.messages.is_empty()
            && send(&mut socket, &Frame::Messages(&taken.messages))
                .await
                .is_err()
        {
            return;
        }
        if taken.closed {
            let _ = send(&mut socket, &Frame::Close(Close::GoAway)).await;
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        if link.is_ready() {
            continue;
        }
        tokio::select! {
            () = &mut changed => {}
            permit = inbound_tx.reserve(), if !to_session.is_empty() => {
                let Ok(permit) = permit else { return };
                if let Some(message) = to_session.pop_front() {
                    permit.send(Bytes::from(message));
                }
            }
            message = socket.recv(), if to_session.is_empty() => match message {
                Some(Ok(Message::Text(text))) => match text.as_str().parse::<Payload>() {
                    Ok(Payload(messages)) => to_session.extend(messages),
                    // As Spring does: a client that breaks the framing is closed.
                    Err(_) => return,
                },
                Some(Ok(Message::Binary(_))) => return,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                None | Some(Ok(Message::Close(_)) | Err(_)) => return,
            },
            () = tokio::time::sleep(heartbeat) => {
                if send(&mut socket, &Frame::Heartbeat).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn send(socket: &mut WebSocket, frame: &Frame<'_>) -> Result<(), axum::Error> {
    socket.send(Message::Text(frame.to_string().into())).await
}
