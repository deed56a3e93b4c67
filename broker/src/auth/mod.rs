//! Who a connection is: credential checks at CONNECT, producing the [`Principal`] that `/user`
//! destinations and authorization use for the rest of the session, and the [`Proof`] of it
//! that the session keeps (when a token expires, whether a password still stands).
//!
//! [`Authenticator`] owns the credential sources:
//! - nothing configured: dev mode, the `login` header is believed as-is (`guest` if absent);
//! - a users file of argon2 hashes ([`users`]), checked against `login`/`passcode`, re-read
//!   on SIGHUP ([`Authenticator::reload_users`]);
//! - JWT keys ([`jwt`]: a secret, a PEM public key, a JWKS URL), the token travelling in
//!   `passcode` and naming the user in `sub`;
//! - on a TLS listener with `--tls-client-ca`, a verified client certificate
//!   ([`certificate`]), which takes precedence over all of the above.
//!
//! With both a users file and JWT keys, a passcode shaped like a JWT goes to the JWT check and
//! anything else to the users file. [`Authenticator::route`] says which check a CONNECT needs,
//! so the caller runs the slow password check on the blocking pool and the token check (which
//! may await a JWKS fetch) on the runtime. [`LoginThrottle`] refuses CONNECTs for users and
//! addresses with too many recent failures before their credentials are checked.
//! Authorization (who may send or subscribe where) is not here but in `acl`.

mod certificate;
mod error;
mod jwks;
mod jwt;
mod key;
mod principal;
mod throttle;
mod users;

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use certificate::ClientIdentity;
pub use error::AuthError;
pub use jwks::{DEFAULT_MAX_AGE, MAX_MAX_AGE, MIN_MAX_AGE, UNKNOWN_KID_REFETCH_EVERY};
pub use jwt::LEEWAY_SECS as JWT_LEEWAY_SECS;
pub use principal::{MAX_NAME_CHARS, Principal};
pub use throttle::{Attempt, LoginThrottle, Policy as ThrottlePolicy, Throttled};
pub use users::hash_password;

use crate::config::AuthConfig;
use jwt::JwtVerifier;
use users::UserStore;

/// The principal of a dev-mode connection that sends no `login`.
pub const GUEST: &str = "guest";

/// A successful check: who, and what vouched for it.
#[derive(Debug)]
pub struct Authenticated {
    pub principal: Principal,
    pub proof: Proof,
}

/// What vouched for a session's principal; the session keeps it to learn when that ends.
#[derive(Debug, Clone)]
pub enum Proof {
    /// Dev mode: the `login` header, believed.
    Believed,
    /// A users-file password; the PHC string it matched, so a reload can tell whether that
    /// user is still there with the same password.
    Password(Arc<str>),
    /// A JWT; its `exp` in Unix seconds (without the leeway).
    Token { exp: u64 },
    /// A TLS client certificate, verified at the handshake against `--tls-client-ca`.
    Certificate,
    /// No credentials at all, mapped to `--default-user`.
    DefaultUser,
}

/// Which check a CONNECT's credentials need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Dev mode: [`Authenticator::believe`], instant.
    Believe,
    /// [`Authenticator::verify_password`]: argon2, slow and blocking.
    Password,
    /// [`Authenticator::verify_token`]: async, may wait for a JWKS refetch.
    Token,
    /// No login and no passcode, with `--default-user` set: [`Authenticator::default_user`].
    DefaultUser,
}

/// A re-read users file, checked, not yet in force.
#[derive(Debug)]
pub struct UsersUpdate(UserStore);

impl UsersUpdate {
    /// Number of users in it.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }
}

/// The users file and its current contents.
#[derive(Debug)]
struct Users {
    path: PathBuf,
    store: ArcSwap<UserStore>,
}

/// Checks CONNECT credentials against the configured sources.
#[derive(Debug)]
pub struct Authenticator {
    users: Option<Users>,
    jwt: Option<JwtVerifier>,
    /// `--default-user`: who a CONNECT without credentials is, if anyone.
    default_user: Option<Principal>,
}

impl Authenticator {
    /// Reads the users file and key files named in `config`. Fails on any unreadable or
    /// malformed file, so a misconfiguration stops the broker instead of locking users out.
    /// A JWKS URL is only checked here; its keys are fetched once [`start`](Self::start)ed.
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthError> {
        let users = match &config.users_file {
            None => None,
            Some(path) => Some(Users {
                store: ArcSwap::from_pointee(UserStore::load(path)?),
                path: path.clone(),
            }),
        };
        let jwt = JwtVerifier::from_config(config)?;
        let default_user = config
            .default_user
            .as_deref()
            .map(Principal::try_from)
            .transpose()?;
        Ok(Self {
            users,
            jwt,
            default_user,
        })
    }

    /// Starts the background work (the JWKS refresher), stopped by `done`.
    pub fn start(&self, tasks: &TaskTracker, done: CancellationToken) {
        if let Some(jwt) = &self.jwt {
            jwt.start(tasks, done);
        }
    }

    /// True when no credential source is configured: every `login` is believed.
    pub fn is_dev_mode(&self) -> bool {
        self.users.is_none() && self.jwt.is_none()
    }

    /// Which check these CONNECT headers need. Empty headers count as absent (some clients
    /// always send both).
    pub fn route(&self, login: Option<&str>, passcode: Option<&str>) -> Result<Route, AuthError> {
        if self.is_dev_mode() {
            return Ok(Route::Believe);
        }
        let login = login.filter(|l| !l.is_empty());
        let passcode = passcode.filter(|p| !p.is_empty());
        if login.is_none() && passcode.is_none() && self.default_user.is_some() {
            return Ok(Route::DefaultUser);
        }
        let passcode = passcode.ok_or(AuthError::MissingCredentials)?;
        Ok(match (&self.users, &self.jwt) {
            (None, _) => Route::Token,
            (Some(_), Some(_)) if jwt::looks_like_jwt(passcode) => Route::Token,
            (Some(_), _) => Route::Password,
        })
    }

    /// Dev mode: the `login` (or [`GUEST`]) as the principal.
    pub fn believe(&self, login: Option<&str>) -> Result<Authenticated, AuthError> {
        let login = login.filter(|l| !l.is_empty()).unwrap_or(GUEST);
        Ok(Authenticated {
            principal: Principal::try_from(login)?,
            proof: Proof::Believed,
        })
    }

    /// `--default-user`, for a CONNECT that carries no credentials at all.
    pub fn default_user(&self) -> Result<Authenticated, AuthError> {
        let principal = self
            .default_user
            .clone()
            .ok_or(AuthError::MissingCredentials)?;
        Ok(Authenticated {
            principal,
            proof: Proof::DefaultUser,
        })
    }

    /// Checks a users-file password. Deliberately slow (argon2 costs tens of milliseconds and
    /// ~19 MiB per check, to make offline guessing expensive): call it from
    /// `tokio::task::spawn_blocking`, never on a runtime worker.
    pub fn verify_password(
        &self,
        login: Option<&str>,
        passcode: Option<&str>,
    ) -> Result<Authenticated, AuthError> {
        let login = login
            .filter(|l| !l.is_empty())
            .ok_or(AuthError::MissingCredentials)?;
        let passcode = passcode
            .filter(|p| !p.is_empty())
            .ok_or(AuthError::MissingCredentials)?;
        // Not reachable without a users file (`route` says Token or Believe then); refusing
        // is the safe answer should that ever change.
        let users = self.users.as_ref().ok_or(AuthError::BadCredentials)?;
        let (principal, phc) = users.store.load().verify(login, passcode)?;
        Ok(Authenticated {
            principal,
            proof: Proof::Password(phc),
        })
    }

    /// Checks a JWT; a `login`, when given, must equal its `sub`. Async: a token naming an
    /// unknown `kid` waits for one (rate-limited) JWKS refetch.
    pub async fn verify_token(
        &self,
        login: Option<&str>,
        token: Option<&str>,
    ) -> Result<Authenticated, AuthError> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MissingCredentials)?;
        let jwt = self.jwt.as_ref().ok_or(AuthError::InvalidToken)?;
        let verified = jwt.verify(token).await?;
        if let Some(login) = login.filter(|l| !l.is_empty())
            && login != verified.principal.name()
        {
            return Err(AuthError::LoginMismatch);
        }
        Ok(Authenticated {
            principal: verified.principal,
            proof: Proof::Token { exp: verified.exp },
        })
    }

    /// Re-reads the users file, not yet in force ([`install_users`](Self::install_users)
    /// does that), so a reload can check everything before changing anything. `Ok(None)`
    /// without a users file.
    pub fn read_users(&self) -> Result<Option<UsersUpdate>, AuthError> {
        let Some(users) = &self.users else {
            return Ok(None);
        };
        Ok(Some(UsersUpdate(UserStore::load(&users.path)?)))
    }

    /// Puts a re-read users file in force for the CONNECTs that follow.
    pub fn install_users(&self, update: UsersUpdate) {
        if let Some(users) = &self.users {
            users.store.store(Arc::new(update.0));
        }
    }

    /// Whether a session's proof still stands after a reload: a password session's user must
    /// still be in the users file with the same hash (a changed password ends the sessions
    /// opened with the old one: changing it is how a leaked password is answered). Tokens,
    /// client certificates and dev-mode logins are not affected by the users file.
    pub fn still_valid(&self, principal: &Principal, proof: &Proof) -> bool {
        match (proof, &self.users) {
            (Proof::Password(phc), Some(users)) => {
                users.store.load().hash_of(principal.name()) == Some(&**phc)
            }
            (Proof::Password(_), None) => false,
            (
                Proof::Believed | Proof::Token { .. } | Proof::Certificate | Proof::DefaultUser,
                _,
            ) => true,
        }
    }

    /// Every check in one call, for tests: the password check runs inline.
    #[cfg(test)]
    pub(crate) async fn authenticate(
        &self,
        login: Option<&str>,
        passcode: Option<&str>,
    ) -> Result<Principal, AuthError> {
        let authenticated = match self.route(login, passcode)? {
            Route::Believe => self.believe(login),
            Route::DefaultUser => self.default_user(),
            Route::Password => self.verify_password(login, passcode),
            Route::Token => self.verify_token(login, passcode).await,
        }?;
        Ok(authenticated.principal)
    }
}

#[cfg(test)]
mod tests;
