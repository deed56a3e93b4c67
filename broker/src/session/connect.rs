//! The first exchange of a connection: CONNECT or STOMP in, authentication, version and
//! heart-beat negotiation, CONNECTED out.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stomp_codec::{Command, Frame, Item, Version};
use tokio::time::{Instant, sleep_until};
use tracing::info;

use super::failure::Failure;
use super::heartbeat::Heartbeat;
use super::state::{Acks, Session};
use super::subscription::Subscriptions;
use super::wire::Wire;
use crate::auth::{Attempt, AuthError, Authenticated, JWT_LEEWAY_SECS, Proof, Route};
use crate::broker::Broker;
use crate::close::CloseReason;
use crate::command::{ClientCommand, Connect, Request};
use crate::error::StompError;
use crate::handle::{SessionHandle, SessionName, SessionRecord};
use crate::moment::Moment;
use crate::outbox::Outbox;
use crate::transport::ReadOutcome;
use crate::wakeup::Wakeup;

/// Waits (bounded by the CONNECT timeout) for CONNECT/STOMP, authenticates, negotiates, and
/// answers CONNECTED.
///
/// `client` is the client's address; `address` the same for the failed-login throttle,
/// `None` when it is exempt from per-address limits.
pub(super) async fn handshake(
    wire: &mut Wire,
    broker: &Arc<Broker>,
    client: IpAddr,
    address: Option<IpAddr>,
) -> Result<Session, CloseReason> {
    let timeout = broker.config.limits.connect_timeout;
    let deadline = Instant::now() + timeout;
    let frame = loop {
        match wire.decode() {
            Ok(Some(Item::Frame(frame))) => break frame,
            Ok(Some(Item::HeartBeat)) => continue,
            Ok(None) => {}
            Err(e) => return Err(wire.fail(StompError::from(e).into()).await),
        }
        tokio::select! {
            read = wire.read() => match read {
                Ok(ReadOutcome::Data | ReadOutcome::Liveness) => {}
                Ok(ReadOutcome::Eof) => return Err(CloseReason::PeerClosed),
                Err(e) => return Err(CloseReason::Io(e.to_string())),
            },
            () = sleep_until(deadline) => {
                let error = StompError::ConnectTimeout(timeout.as_millis() as u64);
                return Err(wire.fail(error.into()).await);
            }
            () = broker.stopping.cancelled() => {
                return Err(wire.fail(StompError::ShuttingDown.into()).await);
            }
        }
    };
    let receipt = frame.headers.get("receipt").map(str::to_string);
    match connect(wire, broker, frame, client, address).await {
        Ok(session) => Ok(session),
        Err(error) => Err(wire.fail(Failure { error, receipt }).await),
    }
}

fn negotiate_version(accept: Option<&str>) -> Result<Version, StompError> {
    let Some(accept) = accept else {
        return Ok(Version::V1_0);
    };
    accept
        .split(',')
        .filter_map(|v| v.parse::<Version>().ok())
        .max()
        .ok_or_else(|| StompError::UnsupportedVersion(accept.to_string()))
}

async fn connect(
    wire: &mut Wire,
    broker: &Arc<Broker>,
    frame: Frame,
    client: IpAddr,
    address: Option<IpAddr>,
) -> Result<Session, StompError> {
    if !matches!(frame.command, Command::Connect | Command::Stomp) {
        return Err(StompError::NotConnected);
    }
    let Request {
        command: ClientCommand::Connect(connect),
        ..
    } = Request::from_frame(frame, Version::V1_0)?
    else {
        return Err(StompError::NotConnected);
    };
    let Connect {
        accept_version,
        login,
        passcode,
        heart_beat,
    } = connect;
    let version = negotiate_version(accept_version.as_deref())?;

    let Authenticated { principal, proof } = match wire.identity() {
        // A verified client certificate is the proof: no passcode, no credential check, and
        // nothing for the failed-login throttle to count (no guess is possible).
        Some(identity) => identity
            .authenticate(login.as_deref())
            .map_err(auth_failed)?,
        None => authenticate(broker, login, passcode, address).await?,
    };

    if broker.stopping.is_cancelled() {
        return Err(StompError::ShuttingDown);
    }
    let now = broker.clock.now();
    let (heart_beat_header, heartbeat) =
        Heartbeat::negotiate(heart_beat, &broker.config.heartbeat, now);
    let limits = &broker.config.limits;
    let handle = Arc::new(SessionHandle {
        id: broker.next_session_id(),
        name: SessionName(rand::random()),
        principal,
        outbox: Outbox::new(
            limits.outbound_max_frames,
            limits.outbound_max_bytes,
            broker.config.slow_consumer,
        ),
        record: SessionRecord::new(wire.transport_kind(), client, unix_ms()),
    });
    broker.router.register(Arc::clone(&handle));
    if let Some(app) = &broker.app {
        app.connected(&handle).await;
    }

    wire.set_version(version);
    let connected = Frame::new(Command::Connected)
        .header("version", version.as_str())
        .header("session", handle.name.to_string())
        .header("server", concat!("stompbox/", env!("CARGO_PKG_VERSION")))
        .header("heart-beat", heart_beat_header)
        .header("user-name", handle.principal.name());
    wire.push(&connected);
    info!(
        session = %handle.name,
        user = %handle.principal.name(),
        %version,
        transport = wire.kind(),
        "session connected"
    );
    Ok(Session {
        broker: Arc::clone(broker),
        handle,
        heartbeat,
        subscriptions: Subscriptions::default(),
        acks: Acks::default(),
        transactions: Default::default(),
        reply_token: None,
        activity_reported: now,
        throttle: Default::default(),
        expires_at: expiry(&proof, now),
        proof,
        wakeup: Wakeup::default(),
        quiet_after: Some(now + super::park::QUIET),
    })
}

/// A refused CONNECT's error, counted by reason.
fn auth_failed(e: AuthError) -> StompError {
    crate::metrics::get().session.auth_failed(e.label());
    StompError::AuthFailed(e.to_string())
}

/// Runs the check the credentials need: dev mode at once, a token on the runtime (it may
/// await a JWKS refetch), a password on the blocking pool; a token or a password only if the
/// failed-login throttle does not refuse the attempt first.
async fn authenticate(
    broker: &Arc<Broker>,
    login: Option<String>,
    passcode: Option<String>,
    address: Option<IpAddr>,
) -> Result<Authenticated, StompError> {
    let auth = &broker.auth;
    let failed = auth_failed;
    let route = auth
        .route(login.as_deref(), passcode.as_deref())
        .map_err(failed)?;
    match route {
        Route::Believe => return auth.believe(login.as_deref()).map_err(failed),
        Route::DefaultUser => return auth.default_user().map_err(failed),
        Route::Password | Route::Token => {}
    }
    let throttle = &broker.login_throttle;
    let attempt = Attempt {
        login: login.as_deref(),
        address,
    };
    throttle
        .check(attempt, std::time::Instant::now())
        .inspect_err(|_| crate::metrics::get().session.auth_failed("throttled"))?;
    let checked = match route {
        Route::Believe | Route::DefaultUser | Route::Token => {
            auth.verify_token(login.as_deref(), passcode.as_deref())
                .await
        }
        Route::Password => {
            // Password hashing is deliberately slow (and ~19 MiB each): keep it off the I/O
            // threads, and only so many at once. The slot goes with the check, so a client
            // that hangs up mid-check does not free it early. The throttle is asked again once
            // the slot is ours: failures recorded while this CONNECT queued count against it.
            let limits = &broker.config.limits;
            let slot = tokio::time::timeout(
                limits.auth_queue_timeout,
                Arc::clone(&broker.auth_checks).acquire_owned(),
            )
            .await
            .map_err(|_| {
                StompError::ServerBusy(format!(
                    "{} credential checks are running and none finished within {:?}; retry later",
                    limits.max_auth_checks, limits.auth_queue_timeout
                ))
            })?
            .map_err(|_| StompError::ShuttingDown)?;
            throttle
                .check(attempt, std::time::Instant::now())
                .inspect_err(|_| crate::metrics::get().session.auth_failed("throttled"))?;
            let auth_broker = Arc::clone(broker);
            let (checked_login, checked_passcode) = (login.clone(), passcode.clone());
            tokio::task::spawn_blocking(move || {
                let _slot = slot;
                auth_broker
                    .auth
                    .verify_password(checked_login.as_deref(), checked_passcode.as_deref())
            })
            .await
            .map_err(|_| StompError::AuthFailed("authentication aborted".into()))?
        }
    };
    match checked {
        Ok(authenticated) => {
            throttle.succeeded(attempt.login);
            Ok(authenticated)
        }
        Err(e) => {
            throttle.failed(attempt, std::time::Instant::now());
            Err(failed(e))
        }
    }
}

/// When a token-authenticated session must end: its `exp` plus the leeway the CONNECT check
/// allowed, as a runtime instant (the wall clock is read once, here).
fn expiry(proof: &Proof, now_moment: Moment) -> Option<Moment> {
    let Proof::Token { exp } = proof else {
        return None;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let left = exp.saturating_add(JWT_LEEWAY_SECS).saturating_sub(now);
    Some(now_moment + Duration::from_secs(left))
}

/// The wall clock in Unix milliseconds (when a session connected, for operators).
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
