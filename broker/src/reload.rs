//! SIGHUP: re-reads the users file and the config file's `[[acl]]` rules, puts them in force,
//! and has every session recheck itself against them (`session::revocation`); and, with TLS
//! listeners, re-reads their certificate, key and client CA (`tls::TlsAcceptor::reload`).
//!
//! All or nothing: both files are read and checked first, and only if both are good is either
//! replaced, so a typo in one never leaves the broker half-reloaded; a failed reload logs the
//! error and keeps everything as it was. New CONNECTs and SUBSCRIBEs use the new state at
//! once. Existing sessions: one whose user was removed from the users file, or whose password
//! changed, is closed with ERROR `credentials revoked`; one holding a subscription the new
//! rules deny is closed with ERROR `access denied`. Sessions opened with a token or in dev
//! mode are not affected by the users file. Other settings in the config file are not
//! reloaded (they need a restart); the listener is installed before the ready line, so a
//! SIGHUP never kills the process.
//!
//! The TLS files are their own unit: a bad certificate keeps the previous certificates (and
//! logs why) without holding back a good users file, and the other way round. New handshakes
//! use the new certificates; sessions already open keep theirs.

use std::sync::Arc;

use thiserror::Error;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::{error, info};

use crate::acl::Acl;
use crate::auth::AuthError;
use crate::broker::Broker;
use crate::config::{self, ConfigError};
use crate::tls::TlsAcceptor;

/// Why a reload changed nothing.
#[derive(Debug, Error)]
pub enum ReloadError {
    #[error("users file: {0}")]
    Users(#[from] AuthError),
    #[error("ACL rules: {0}")]
    Acl(#[from] ConfigError),
}

/// The SIGHUP listener, installed at startup and run with the server.
#[derive(Debug)]
pub struct Reloader {
    hangup: Signal,
}

impl Reloader {
    /// Installs the SIGHUP handler (from now on SIGHUP no longer terminates the process).
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Reloads on every SIGHUP until the broker stops; `tls`, the TLS listeners' certificates.
    pub async fn run(mut self, broker: Arc<Broker>, tls: Option<Arc<TlsAcceptor>>) {
        loop {
            tokio::select! {
                () = broker.stopping.cancelled() => return,
                received = self.hangup.recv() => {
                    if received.is_none() {
                        return;
                    }
                }
            }
            info!("SIGHUP: reloading the users file and the ACL rules");
            let reloading = Arc::clone(&broker);
            // File reads and parsing: off the runtime's workers.
            match tokio::task::spawn_blocking(move || reload(&reloading)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => error!(error = %e, "reload failed; the previous state stays"),
                Err(e) => error!(error = %e, "reload task failed; the previous state stays"),
            }
            if let Some(tls) = &tls {
                let tls = Arc::clone(tls);
                match tokio::task::spawn_blocking(move || tls.reload()).await {
                    Ok(Ok(())) => {
                        info!("SIGHUP: TLS certificates reloaded; new handshakes use them");
                    }
                    Ok(Err(e)) => error!(
                        error = %e,
                        "SIGHUP: TLS reload failed; keeping the previous certificates"
                    ),
                    Err(e) => {
                        error!(error = %e, "TLS reload task failed; keeping the certificates")
                    }
                }
            }
        }
    }
}

/// Reads both files, and only when both are good puts them in force and tells the sessions.
pub fn reload(broker: &Broker) -> Result<(), ReloadError> {
    let users = broker.auth.read_users()?;
    let rules = match &broker.config.config_file {
        Some(path) => Some(config::acl_rules(path)?),
        None => None,
    };
    if let Some(users) = users {
        info!(users = users.len(), "users file reloaded");
        broker.auth.install_users(users);
    }
    if let Some(rules) = rules {
        info!(rules = rules.len(), "ACL rules reloaded");
        broker.acl.store(Arc::new(Acl::new(&rules)));
    }
    // Every session rechecks its credentials and subscriptions.
    for session in broker.router.sessions() {
        session.recheck();
    }
    Ok(())
}
