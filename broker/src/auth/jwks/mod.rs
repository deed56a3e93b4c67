//! The JWKS key cache (`--jwt-jwks-url`, RFC 7517): the issuer's published verification keys,
//! selected by a token's `kid`.
//!
//! - Fetched in the background ([`Jwks::run`]) at startup and again when the cached copy
//!   ages out: the answer's `Cache-Control: max-age`, clamped to [`MIN_MAX_AGE`] ..
//!   [`MAX_MAX_AGE`], or [`DEFAULT_MAX_AGE`] without one. A failed fetch keeps the keys
//!   already held and retries with backoff ([`RETRY_MIN`] doubling to [`RETRY_MAX`]), so an
//!   unreachable key server at startup or later locks out only tokens signed by keys never
//!   seen, and the broker starts regardless (it logs every failure).
//! - A token whose `kid` is not in the cache triggers one immediate refetch (key rotation:
//!   the issuer published a new key and signs with it at once), at most once per
//!   [`UNKNOWN_KID_REFETCH_EVERY`]: tokens with made-up `kid`s cost the key server nothing
//!   beyond that. Fetches are single-flight: CONNECTs arriving during a fetch wait for its
//!   result instead of starting their own.
//!
//! All of it is async I/O on the runtime; nothing here blocks a worker.

mod fetch;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::JwkSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub(crate) use fetch::JwksSource;

use super::key::BoundKey;

/// Cache lifetime without a `max-age`: new keys are picked up within this even when nobody
/// presents their `kid` (unknown `kid`s are fetched at once anyway).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(10 * 60);
/// Shortest honoured `max-age`: `no-cache` or `max-age=0` must not turn into a fetch loop.
pub const MIN_MAX_AGE: Duration = Duration::from_secs(60);
/// Longest honoured `max-age`: a removed (compromised) key leaves the cache within a day even
/// if the server asked for a year.
pub const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// At most one refetch for an unknown `kid` per this interval: a flood of tokens with random
/// `kid`s becomes at most one request to the key server per interval, while a real rotation
/// is picked up by the first token that carries the new `kid`.
pub const UNKNOWN_KID_REFETCH_EVERY: Duration = Duration::from_secs(30);
/// First retry after a failed scheduled fetch.
const RETRY_MIN: Duration = Duration::from_secs(1);
/// Retries back off to this; a key server that is down is asked once a minute.
const RETRY_MAX: Duration = Duration::from_secs(60);

/// Keys by `kid`.
type KeySet = HashMap<String, Arc<BoundKey>>;

/// Fetch bookkeeping, under the single-flight lock.
#[derive(Debug, Default)]
struct FetchState {
    /// When a refetch for an unknown `kid` last went out.
    last_unknown_kid_fetch: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct Jwks {
    source: JwksSource,
    keys: ArcSwap<KeySet>,
    /// Bumped on every successful fetch, so a CONNECT that waited for the lock sees whether
    /// the keys changed meanwhile.
    generation: AtomicU64,
    /// Single flight: one fetch at a time; waiting CONNECTs queue here.
    fetch: tokio::sync::Mutex<FetchState>,
}

/// Why no key was found for a `kid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoKey {
    /// The key set (refetched if the rate limit allowed) has no such `kid`.
    Unknown,
    /// The `kid` exists but is bound to another algorithm than the token's `alg`.
    WrongAlgorithm,
}

impl Jwks {
    pub(crate) fn new(source: JwksSource) -> Self {
        Self {
            source,
            keys: ArcSwap::from_pointee(KeySet::new()),
            generation: AtomicU64::new(0),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
        }
    }

    /// The key for `kid` that verifies `alg`, refetching the set once if `kid` is unknown
    /// and the rate limit allows.
    pub(crate) async fn key(
        &self,
        kid: &str,
        alg: jsonwebtoken::Algorithm,
    ) -> Result<Arc<BoundKey>, NoKey> {
        let seen = self.generation.load(Ordering::Acquire);
        if let Some(found) = self.lookup(kid, alg) {
            return found;
        }
        let mut state = self.fetch.lock().await;
        if self.generation.load(Ordering::Acquire) != seen
            && let Some(found) = self.lookup(kid, alg)
        {
            return found;
        }
        let now = Instant::now();
        if state
            .last_unknown_kid_fetch
            .is_some_and(|at| now.duration_since(at) < UNKNOWN_KID_REFETCH_EVERY)
        {
            return Err(NoKey::Unknown);
        }
        state.last_unknown_kid_fetch = Some(now);
        info!(kid, "JWKS: unknown kid, refetching the key set");
        // A failure is logged inside; the lookup below then finds nothing new.
        let _ = self.refresh().await;
        drop(state);
        self.lookup(kid, alg).unwrap_or(Err(NoKey::Unknown))
    }

    fn lookup(
        &self,
        kid: &str,
        alg: jsonwebtoken::Algorithm,
    ) -> Option<Result<Arc<BoundKey>, NoKey>> {
        let keys = self.keys.load();
        let key = keys.get(kid)?;
        Some(if key.verifies(alg) {
            Ok(Arc::clone(key))
        } else {
            Err(NoKey::WrongAlgorithm)
        })
    }

    /// Keeps the cache fresh until `done`: fetches now, then whenever the cached copy ages
    /// out, retrying failures with backoff.
    pub(crate) async fn run(self: Arc<Self>, done: CancellationToken) {
        let mut retry = RETRY_MIN;
        loop {
            let wait = {
                let _state = self.fetch.lock().await;
                match self.refresh().await {
                    Ok(max_age) => {
                        retry = RETRY_MIN;
                        max_age
                    }
                    Err(()) => {
                        let wait = retry;
                        retry = (retry * 2).min(RETRY_MAX);
                        wait
                    }
                }
            };
            tokio::select! {
                () = done.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Fetches and installs the key set; the caller holds the single-flight lock. Returns how
    /// long to keep it.
    async fn refresh(&self) -> Result<Duration, ()> {
        let fetched = match self.source.get().await {
            Ok(fetched) => fetched,
            Err(e) => {
                warn!(source = ?self.source, error = %e, "JWKS fetch failed; keeping the keys held");
                return Err(());
            }
        };
        let set: JwkSet = match serde_json::from_slice(&fetched.body) {
            Ok(set) => set,
            Err(e) => {
                warn!(error = %e, "JWKS document is not a JWK set; keeping the keys held");
                return Err(());
            }
        };
        let keys = usable_keys(&set);
        info!(keys = keys.len(), "JWKS fetched");
        self.keys.store(Arc::new(keys));
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(fetched
            .max_age
            .unwrap_or(DEFAULT_MAX_AGE)
            .clamp(MIN_MAX_AGE, MAX_MAX_AGE))
    }
}

/// The set's signing keys that have a `kid`, by `kid`; others are skipped with a warning
/// (tokens must name their key: with rotation, "try every key" would be a guess).
fn usable_keys(set: &JwkSet) -> KeySet {
    let mut keys = KeySet::new();
    for jwk in &set.keys {
        let Some(kid) = &jwk.common.key_id else {
            warn!("JWKS key without kid skipped");
            continue;
        };
        match BoundKey::from_jwk(jwk) {
            Ok(key) => {
                keys.insert(kid.clone(), Arc::new(key));
            }
            Err(why) => warn!(kid, why, "JWKS key skipped"),
        }
    }
    keys
}
