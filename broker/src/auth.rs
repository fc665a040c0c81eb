//! Client authentication: the check rumqttd calls for every CONNECT that carries a login.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Password;

/// Checks username/password pairs against the configured users.
#[derive(Debug, Clone)]
pub struct Authenticator {
    users: Arc<BTreeMap<String, Password>>,
}

impl Authenticator {
    pub fn new(users: BTreeMap<String, Password>) -> Self {
        Self {
            users: Arc::new(users),
        }
    }

    /// True when `username` exists and `password` matches. The comparison
    /// takes the same time wherever the first wrong byte is, so a LAN
    /// attacker cannot guess a password byte by byte from response times.
    pub fn verify(&self, username: &str, password: &str) -> bool {
        match self.users.get(username) {
            Some(stored) => constant_time_eq(stored.expose().as_bytes(), password.as_bytes()),
            None => {
                // Spend the same effort on unknown users as on known ones.
                let _ = constant_time_eq(password.as_bytes(), password.as_bytes());
                false
            }
        }
    }
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
}
