//! The users file: names with argon2 password hashes, checked against `login`/`passcode`.
//!
//! Format (TOML), one PHC string per user, as printed by `stompbox hash-password`:
//!
//! ```toml
//! [users]
//! alice = "$argon2id$v=19$m=19456,t=2,p=1$...$..."
//! ```
//!
//! Every entry is parsed and checked when the file is loaded, so a typo stops the broker at
//! startup rather than failing one user's CONNECT at 3 a.m. The hash parameters come from each
//! PHC string; any argon2 variant verifies, `hash-password` writes argon2id.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier};

use super::error::AuthError;
use super::principal::Principal;

/// Loaded users file: principal name to parsed PHC hash, and the PHC string as written (what
/// a password session remembers, to tell after a reload whether its password still stands).
pub(crate) struct UserStore {
    users: HashMap<String, (PasswordHash, Arc<str>)>,
}

impl std::fmt::Debug for UserStore {
    // Hashes stay out of logs: they are offline-guessable.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserStore")
            .field("users", &self.users.len())
            .finish()
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: HashMap<String, String>,
}

impl UserStore {
    /// Reads and validates the users file at `path`.
    pub(crate) fn load(path: &Path) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses users-file text; `path` is only for error messages.
    fn parse(text: &str, path: &Path) -> Result<Self, AuthError> {
        let file: UsersFile =
            toml::from_str(text).map_err(|source| AuthError::UsersFileSyntax {
                path: path.to_owned(),
                source,
            })?;
        let entry_error = |user: &str, reason: String| AuthError::UsersFileEntry {
            path: path.to_owned(),
            user: user.to_owned(),
            reason,
        };
        let mut users = HashMap::with_capacity(file.users.len());
        for (name, phc) in file.users {
            Principal::try_from(name.as_str()).map_err(|e| entry_error(&name, e.to_string()))?;
            let hash = PasswordHash::new(&phc)
                .map_err(|e| entry_error(&name, format!("not a PHC hash string ({e})")))?;
            Algorithm::try_from(hash.algorithm.as_str()).map_err(|_| {
                entry_error(
                    &name,
                    format!("algorithm {} is not argon2", hash.algorithm.as_str()),
                )
            })?;
            Params::try_from(&hash)
                .map_err(|e| entry_error(&name, format!("bad argon2 parameters ({e})")))?;
            if hash.salt.is_none() || hash.hash.is_none() {
                return Err(entry_error(&name, "hash lacks salt or output".to_owned()));
            }
            users.insert(name, (hash, Arc::from(phc)));
        }
        Ok(Self { users })
    }

    /// Checks `password` for `login`; the principal and the PHC string that matched. Slow by
    /// design (argon2): call off the async runtime.
    pub(crate) fn verify(
        &self,
        login: &str,
        password: &str,
    ) -> Result<(Principal, Arc<str>), AuthError> {
        let argon2 = Argon2::default();
        match self.users.get_key_value(login) {
            Some((name, (hash, phc))) => {
                match argon2.verify_password(password.as_bytes(), hash) {
                    Ok(()) => Ok((Principal(name.as_str().into()), Arc::clone(phc))),
                    Err(argon2::password_hash::Error::PasswordInvalid) => {
                        Err(AuthError::BadCredentials)
                    }
                    Err(e) => {
                        // Parameters were checked at load, so this is unexpected; the client
                        // still only learns "bad credentials".
                        tracing::warn!(user = %name, error = %e, "password verification failed");
                        Err(AuthError::BadCredentials)
                    }
                }
            }
            None => {
                // Spend the same argon2 work as for a real user so response time does not
                // reveal which names exist. The result is ignored: the user is unknown.
                if let Some((decoy, _)) = self.users.values().next() {
                    let _ = argon2.verify_password(password.as_bytes(), decoy);
                }
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// Number of users.
    pub(crate) fn len(&self) -> usize {
        self.users.len()
    }

    /// The PHC string of `name`, as the file writes it.
    pub(crate) fn hash_of(&self, name: &str) -> Option<&str> {
        self.users.get(name).map(|(_, phc)| &**phc)
    }

    #[cfg(test)]
    pub(crate) fn from_text(text: &str) -> Result<Self, AuthError> {
        Self::parse(text, Path::new("<test>"))
    }
}

/// Hashes `password` with argon2id and the crate's recommended parameters (19 MiB, t=2, p=1,
/// the OWASP baseline) and a random salt, as a PHC string for the users file.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// A hash with cheap parameters so the debug-build tests stay fast; verification reads the
/// parameters from the PHC string, so the code path is the production one.
#[cfg(test)]
pub(crate) fn cheap_hash(password: &str) -> String {
    let params = Params::new(256, 1, 1, None).expect("valid test params");
    Argon2::from(params)
        .hash_password(password.as_bytes())
        .expect("hashing succeeds")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(entries: &[(&str, &str)]) -> UserStore {
        let mut text = String::from("[users]\n");
        for (name, password) in entries {
            text.push_str(&format!("{name} = \"{}\"\n", cheap_hash(password)));
        }
        UserStore::from_text(&text).expect("valid users file")
    }

    #[test]
    fn correct_password_yields_the_principal() {
        let users = store(&[("alice", "wonderland"), ("bob", "builder")]);
        let (principal, _) = users.verify("alice", "wonderland").expect("accepted");
        assert_eq!(principal.name(), "alice");
    }

    #[test]
    fn unknown_user_and_wrong_password_look_the_same() {
        let users = store(&[("alice", "wonderland")]);
        let wrong = users.verify("alice", "nope").expect_err("rejected");
        let unknown = users.verify("mallory", "wonderland").expect_err("rejected");
        assert!(matches!(wrong, AuthError::BadCredentials));
        assert!(matches!(unknown, AuthError::BadCredentials));
        assert_eq!(wrong.to_string(), unknown.to_string());
    }

    #[test]
    fn hash_password_output_verifies_and_is_argon2id() {
        let phc = hash_password("s3cret").expect("hashes");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        let users = UserStore::from_text(&format!("[users]\ncarol = \"{phc}\"\n")).expect("loads");
        assert!(users.verify("carol", "s3cret").is_ok());
    }

    #[test]
    fn malformed_hash_is_rejected_at_load() {
        let err = UserStore::from_text("[users]\nalice = \"plaintext\"\n").expect_err("bad");
        assert!(matches!(err, AuthError::UsersFileEntry { ref user, .. } if user == "alice"));
    }

    #[test]
    fn non_argon2_hash_is_rejected_at_load() {
        let err = UserStore::from_text(
            "[users]\nalice = \"$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo\"\n",
        )
        .expect_err("bad");
        assert!(err.to_string().contains("not argon2"), "{err}");
    }

    #[test]
    fn unsafe_user_name_is_rejected_at_load() {
        let text = format!("[users]\n\"a/b\" = \"{}\"\n", cheap_hash("x"));
        assert!(UserStore::from_text(&text).is_err());
    }

    #[test]
    fn unknown_top_level_key_is_rejected() {
        assert!(matches!(
            UserStore::from_text("[user]\nalice = \"x\"\n"),
            Err(AuthError::UsersFileSyntax { .. })
        ));
    }
}
