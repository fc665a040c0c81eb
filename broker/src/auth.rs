//! Client authentication: the check rumqttd calls for every CONNECT that carries a login.
//!
//! Users come from two places: the password file (`[broker] password_file`,
//! argon2id hashes, see [`crate::passwd`]) and `[broker.users]` (plain text,
//! still accepted, warned about at startup). Two rules hold for both:
//!
//! - Timing says nothing about which user names exist. When any hashed user
//!   exists, every login costs exactly one argon2 verification: unknown users
//!   and plain-text users are verified against a dummy hash with the same
//!   parameters.
//! - Credentials are never logged: only the user name and client id are.
//!
//! argon2 takes tens of milliseconds of CPU and 19 MiB, so [`Authenticator::check`]
//! runs it on tokio's blocking pool, never on the executor threads that
//! serve every other client, and at most [`MAX_CONCURRENT_VERIFICATIONS`] at
//! a time so a login flood cannot exhaust a Pi's memory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use argon2::PasswordVerifier;
use argon2::password_hash::PasswordHash;
use tokio::sync::Semaphore;

use crate::config::{BrokerConfig, Password};
use crate::passwd::{self, PasswdError, PasswordFile};

/// argon2 verifications running at once (each holds 19 MiB).
pub const MAX_CONCURRENT_VERIFICATIONS: usize = 2;
/// How long a login waits for a verification slot before it is refused.
/// Bounds the queue of logins in time: under a flood, late logins fail
/// fast instead of piling up.
pub const VERIFY_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the configured users cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    PasswordFile(#[from] PasswdError),
    #[error(
        "user {user:?} is both in the password file {file} and in [broker.users]; keep one \
         (the password file is preferred: its passwords are hashed)"
    )]
    DefinedTwice { user: String, file: PathBuf },
    #[error("password file {0} has no users and [broker.users] is empty: nobody could connect")]
    NoUsers(PathBuf),
}

/// How one user's password is stored.
#[derive(Clone, PartialEq, Eq)]
enum Credential {
    /// From `[broker.users]`.
    Plain(Password),
    /// An argon2 PHC string from the password file.
    Hashed(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain(_) => "Plain(***)",
            Self::Hashed(_) => "Hashed(***)",
        })
    }
}

/// Checks username/password pairs against the configured users.
#[derive(Clone)]
pub struct Authenticator {
    users: Arc<BTreeMap<String, Credential>>,
    /// A hash of a random password with the parameters of the file's hashes,
    /// verified for unknown and plain-text users when any user is hashed.
    dummy: Option<Arc<String>>,
    slots: Arc<Semaphore>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("users", &self.users)
            .field("hashed", &self.dummy.is_some())
            .finish()
    }
}

impl Authenticator {
    /// Plain-text users only (`[broker.users]`).
    pub fn new(users: BTreeMap<String, Password>) -> Self {
        let users = users
            .into_iter()
            .map(|(u, p)| (u, Credential::Plain(p)))
            .collect();
        Self::build(users, None)
    }

    /// Users from `config`: the password file (if set) merged with
    /// `[broker.users]`. Logs a warning naming each plain-text user.
    pub fn from_config(config: &BrokerConfig) -> Result<Self, AuthError> {
        let mut users: BTreeMap<String, Credential> = BTreeMap::new();
        let mut dummy_params = None;
        if let Some(path) = &config.password_file {
            let file = PasswordFile::load(path)?;
            for (user, hash) in file.users() {
                if config.users.contains_key(user) {
                    return Err(AuthError::DefinedTwice {
                        user: user.to_owned(),
                        file: path.clone(),
                    });
                }
                dummy_params.get_or_insert_with(|| hash.to_owned());
                users.insert(user.to_owned(), Credential::Hashed(hash.to_owned()));
            }
            if file.is_empty() && config.users.is_empty() {
                return Err(AuthError::NoUsers(path.clone()));
            }
            tracing::info!(file = %path.display(), users = file.len(), "password file loaded");
        }
        for (user, password) in &config.users {
            tracing::warn!(
                user = %user,
                "user has a plain-text password in [broker.users]; store a hash instead: \
                 `hearth-broker passwd /etc/hearth/passwd {user}` and set [broker] password_file"
            );
            users.insert(user.clone(), Credential::Plain(password.clone()));
        }
        let dummy = match dummy_params {
            Some(example) => Some(dummy_hash(&example)?),
            None => None,
        };
        Ok(Self::build(users, dummy))
    }

    fn build(users: BTreeMap<String, Credential>, dummy: Option<String>) -> Self {
        Self {
            users: Arc::new(users),
            dummy: dummy.map(Arc::new),
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT_VERIFICATIONS)),
        }
    }

    /// How many users can log in.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// True when `username` exists and `password` matches. Blocking: with
    /// hashed users this costs one argon2 verification (tens of ms). The
    /// comparison of plain-text passwords takes the same time wherever the
    /// first wrong byte is, so a LAN attacker cannot guess a password byte
    /// by byte from response times.
    pub fn verify(&self, username: &str, password: &str) -> bool {
        match self.users.get(username) {
            Some(Credential::Hashed(hash)) => verify_hash(hash, password),
            Some(Credential::Plain(stored)) => {
                let ok = constant_time_eq(stored.expose().as_bytes(), password.as_bytes());
                self.burn_dummy(password);
                ok
            }
            None => {
                // Spend the same effort on unknown users as on known ones.
                let _ = constant_time_eq(password.as_bytes(), password.as_bytes());
                self.burn_dummy(password);
                false
            }
        }
    }

    /// [`Self::verify`] off the async executor: argon2 runs on the blocking
    /// pool, at most [`MAX_CONCURRENT_VERIFICATIONS`] at once. A login that
    /// waits longer than [`VERIFY_QUEUE_TIMEOUT`] for its turn is refused.
    pub async fn check(&self, username: String, password: String) -> bool {
        if self.dummy.is_none() {
            // Plain-text users only: microseconds, no need to leave the executor.
            return self.verify(&username, &password);
        }
        let permit = match tokio::time::timeout(
            VERIFY_QUEUE_TIMEOUT,
            Arc::clone(&self.slots).acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(username = %username, "login refused: too many logins waiting for verification");
                return false;
            }
        };
        let auth = self.clone();
        let verified = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            auth.verify(&username, &password)
        })
        .await;
        verified.unwrap_or(false)
    }

    fn burn_dummy(&self, password: &str) {
        if let Some(dummy) = &self.dummy {
            let _ = verify_hash(dummy, password);
        }
    }
}

/// One argon2 verification against a PHC string (parameters from the string).
fn verify_hash(phc: &str, password: &str) -> bool {
    #[cfg(test)]
    tests::record_verification(phc);
    match PasswordHash::new(phc) {
        Ok(hash) => passwd::hasher()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password using the same algorithm and parameters as
/// `example`, so verifying against it costs what a real user costs.
fn dummy_hash(example: &str) -> Result<String, AuthError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let hash_error =
        |e: argon2::password_hash::Error| AuthError::PasswordFile(PasswdError::Hash(e.to_string()));
    let parsed = PasswordHash::new(example).map_err(hash_error)?;
    let params = argon2::Params::try_from(&parsed).map_err(hash_error)?;
    let algorithm = argon2::Algorithm::try_from(parsed.algorithm).map_err(hash_error)?;
    let version = parsed
        .version
        .and_then(|v| argon2::Version::try_from(v).ok())
        .unwrap_or_default();
    let argon = argon2::Argon2::new(algorithm, version, params);
    let random: [u8; 32] = rand::random();
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(hash_error)?;
    argon
        .hash_password(&random, &salt)
        .map(|h| h.to_string())
        .map_err(hash_error)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    thread_local! {
        /// The cost parameters (algorithm, version, m/t/p) of every argon2
        /// verification this thread ran: what a login costs, without a clock.
        static VERIFIED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn record_verification(phc: &str) {
        let cost = PasswordHash::new(phc).map_or_else(
            |e| format!("unparsable: {e}"),
            |h| format!("{}$v={:?}${}", h.algorithm, h.version, h.params),
        );
        VERIFIED.with(|v| v.borrow_mut().push(cost));
    }

    /// The argon2 verifications `f` ran on this thread.
    fn verifications(f: impl FnOnce()) -> Vec<String> {
        VERIFIED.with(|v| v.borrow_mut().clear());
        f();
        VERIFIED.with(|v| v.take())
    }

    #[test]
    fn only_the_right_pair_passes() {
        let auth = Authenticator::new(BTreeMap::from([
            ("hub".to_owned(), Password::new("s3cret")),
            ("ha".to_owned(), Password::new("other")),
        ]));
        assert!(auth.verify("hub", "s3cret"));
        assert!(!auth.verify("hub", "s3cre"));
        assert!(!auth.verify("hub", "s3cret!"));
        assert!(!auth.verify("hub", "other"));
        assert!(!auth.verify("nobody", "s3cret"));
        assert!(!auth.verify("", ""));
    }

    fn mixed() -> (tempfile::TempDir, BrokerConfig) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        let mut file = PasswordFile::default();
        file.set("hub", "hashed-pw").unwrap();
        file.set("pi-1", "node-pw").unwrap();
        file.save(&path).unwrap();
        let config = BrokerConfig {
            password_file: Some(path),
            users: BTreeMap::from([("legacy".to_owned(), Password::new("plain-pw"))]),
            ..BrokerConfig::default()
        };
        (dir, config)
    }

    #[test]
    fn hashed_and_plain_users_both_log_in() {
        let (_dir, config) = mixed();
        let auth = Authenticator::from_config(&config).unwrap();
        assert_eq!(auth.len(), 3);
        assert!(auth.verify("hub", "hashed-pw"));
        assert!(auth.verify("pi-1", "node-pw"));
        assert!(auth.verify("legacy", "plain-pw"));
        assert!(!auth.verify("hub", "node-pw"));
        assert!(!auth.verify("legacy", "hashed-pw"));
        assert!(!auth.verify("nobody", "hashed-pw"));
        assert!(!format!("{auth:?}").contains("argon2"));
    }

    #[test]
    fn a_user_in_both_places_is_refused_by_name() {
        let (_dir, mut config) = mixed();
        config
            .users
            .insert("hub".to_owned(), Password::new("other"));
        let err = Authenticator::from_config(&config).unwrap_err();
        assert!(matches!(err, AuthError::DefinedTwice { ref user, .. } if user == "hub"));
    }

    #[test]
    fn unknown_users_cost_what_known_users_cost() {
        let (_dir, config) = mixed();
        let auth = Authenticator::from_config(&config).unwrap();
        // Counted, not timed: exactly one argon2 verification with the file's
        // parameters per login, whoever logs in. Without the dummy hash an
        // unknown or plain-text user would cost none (~1000x faster).
        let cost = |user: &str, password: &str| {
            verifications(|| {
                auth.verify(user, password);
            })
        };
        let known = cost("hub", "wrong");
        assert_eq!(known.len(), 1, "a known user's login ran {known:?}");
        assert!(known[0].starts_with("argon2id$"), "{known:?}");
        for (what, user, password) in [
            ("right password", "hub", "hashed-pw"),
            ("unknown", "nobody", "wrong"),
            ("plain, wrong password", "legacy", "wrong"),
            ("plain, right password", "legacy", "plain-pw"),
        ] {
            assert_eq!(
                cost(user, password),
                known,
                "{what} user: timing would reveal who exists"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn check_runs_off_the_executor_and_agrees_with_verify() {
        let (_dir, config) = mixed();
        let auth = Authenticator::from_config(&config).unwrap();
        // One login at a time: each gets a verification slot at once. Five at
        // once made the later ones wait for a slot, and a debug-build argon2
        // on a busy machine outlasted VERIFY_QUEUE_TIMEOUT, refusing the
        // right password (seen: "legacy" false). The queue has its own test
        // in tests/credentials.rs.
        for (user, pw, want) in [
            ("hub", "hashed-pw", true),
            ("hub", "x", false),
            ("legacy", "plain-pw", true),
            ("nobody", "x", false),
            ("pi-1", "node-pw", true),
        ] {
            let auth = auth.clone();
            let got = tokio::spawn(async move { auth.check(user.into(), pw.into()).await })
                .await
                .unwrap();
            assert_eq!(got, want, "{user}/{pw}");
        }
    }
}
