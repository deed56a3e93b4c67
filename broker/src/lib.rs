//! Stompbox: a STOMP 1.0–1.2 broker for real-time chat.
//!
//! Map (details in docs/architecture.md): `listener` accepts TCP and WebSocket connections;
//! each runs a `session` over a `transport`; sessions turn frames into `command`s and hand
//! messages to the `router`, which pushes them into other sessions' bounded `outbox`es (as
//! `message::Delivery`s, reaching each session through its `handle`). The router knows only
//! this node; other nodes are behind `router::Peers` and the chat's `chat::peers::ChatPeers`,
//! which `cluster` implements and `broker` wires in.

pub mod acl;
pub mod admin;
pub mod admission;
pub mod app;
pub mod auth;
pub mod bearer;
pub mod broker;
pub mod chat;
pub mod chore;
pub mod cli;
pub mod clock;
pub mod close;
pub mod cluster;
pub mod command;
pub mod config;
pub mod destination;
pub mod drain;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod handle;
pub mod health;
pub mod id;
pub mod idle;
pub mod listener;
pub mod message;
pub mod metrics;
pub mod moment;
pub mod outbox;
pub mod publish;
pub mod push;
pub mod rate;
pub mod readiness;
pub mod reload;
pub mod router;
pub mod session;
pub mod sockjs;
pub mod subscription_id;
pub mod tls;
pub mod transport;
pub mod wakeup;
pub mod web_root;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::admission::Admission;
use crate::broker::Broker;
use crate::config::Config;
use crate::listener::Gate;
use crate::reload::Reloader;
use crate::tls::TlsListeners;

/// A broker with its listeners bound, not yet serving.
pub struct Server {
    broker: Arc<Broker>,
    stomp: TcpListener,
    http: TcpListener,
    reloader: Reloader,
    /// STOMP over TLS and HTTPS, when configured.
    tls: Option<TlsListeners>,
}

impl Server {
    pub async fn bind(config: Config) -> anyhow::Result<Self> {
        let stomp = listener::bind(config.stomp_listen).await?;
        let http = listener::bind(config.http_listen).await?;
        let tls = TlsListeners::bind(&config).await?;
        let broker = Arc::new(Broker::open(config).await?);
        // Before the ready line: from then on a SIGHUP reloads instead of killing.
        let reloader = Reloader::install()?;
        Ok(Self {
            broker,
            stomp,
            http,
            reloader,
            tls,
        })
    }

    pub fn stomp_addr(&self) -> std::io::Result<SocketAddr> {
        self.stomp.local_addr()
    }

    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    /// STOMP over TLS, if configured.
    pub fn stomp_tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(TlsListeners::stomp_addr)
    }

    /// HTTPS (WSS at `/ws`), if configured.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(TlsListeners::https_addr)
    }

    /// Serves until `shutdown` resolves or an operator asks for a drain, then drains
    /// (`drain.rs`: not ready, stop accepting, close sessions gradually with an ERROR that
    /// says why, wait for them) and stops the background work.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            broker,
            stomp,
            http,
            reloader,
            tls,
        } = self;
        if broker.auth.is_dev_mode() {
            warn!(
                "DEV MODE: no authentication configured; the login header is trusted as the \
                 user name. Configure --users-file or --jwt-secret/--jwt-public-key/--jwt-jwks-url before \
                 exposing this broker."
            );
        }
        let tracker = broker.sessions.clone();
        let gate = Gate {
            broker: Arc::clone(&broker),
            admission: Admission::new(&broker.config.limits, &broker.config.admission),
            tracker: tracker.clone(),
        };
        let tls_acceptor = tls.as_ref().map(TlsListeners::acceptor);
        let reload = tokio::spawn(reloader.run(Arc::clone(&broker), tls_acceptor));
        let accept = tokio::spawn(listener::accept_tcp(stomp, gate.clone()));
        let tls = tls.map(|tls| tls.spawn(&gate)).unwrap_or_default();
        let http = tokio::spawn(listener::serve_http(http, gate));

        // A signal, or an operator's `POST /admin/drain`.
        tokio::select! {
            () = shutdown => {}
            () = broker.readiness.draining() => {}
        }
        let mut listeners = vec![accept, http, reload];
        listeners.extend(tls);
        drain::drain(&broker, listeners, &tracker).await;
        // Background work (chat sequencer, cluster tasks) ends after the sessions it serves.
        broker.done.cancel();
        broker.stopped().await;
        info!("stopped");
    }
}
