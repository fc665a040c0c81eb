//! Confining each connection: the authorizer rumqttd's router asks (our
//! vendored patch), built from the ACL, and the counters of what it refused.
//!
//! rumqttd knows nothing of the ACL format: per connection it gets a
//! closure `(Access, &str) -> bool` from [`factory`]. Refusals are logged
//! here, at warn, with user, client id and topic (never a password), and
//! counted in [`Refusals`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rumqttd::{Access, Authorizer, AuthorizerFactory};

use crate::acl::Acl;

/// What the broker refused since it started.
#[derive(Debug, Default)]
pub struct Refusals {
    publish: AtomicU64,
    subscribe: AtomicU64,
    client_id: AtomicU64,
    login: AtomicU64,
}

/// A snapshot of [`Refusals`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefusalCounts {
    /// PUBLISH (and last wills) dropped by the ACL.
    pub publish: u64,
    /// SUBSCRIBE filters answered with 0x80 (MQTT 5: 0x87).
    pub subscribe: u64,
    /// CONNECTs refused for their client id (CONNACK 0x02).
    pub client_id: u64,
    /// CONNECTs refused for their user name or password.
    pub login: u64,
}

impl Refusals {
    pub fn counts(&self) -> RefusalCounts {
        RefusalCounts {
            publish: self.publish.load(Ordering::Relaxed),
            subscribe: self.subscribe.load(Ordering::Relaxed),
            client_id: self.client_id.load(Ordering::Relaxed),
            login: self.login.load(Ordering::Relaxed),
        }
    }

    /// Counts a CONNECT refused for its login.
    pub fn login_refused(&self) {
        self.login.fetch_add(1, Ordering::Relaxed);
    }
}

/// The per-connection checks: `acl` (None: every topic allowed), client ids
/// kept by their user, and with `prefix_user` client ids that start with
/// the user name.
pub fn factory(
    acl: Option<Arc<Acl>>,
    prefix_user: bool,
    refusals: Arc<Refusals>,
) -> AuthorizerFactory {
    Arc::new(move |user: Option<&str>, client_id: &str| {
        let user = user.map(str::to_owned);
        let client_id = client_id.to_owned();
        let shown = user.clone().unwrap_or_default();
        if prefix_user && !client_id.starts_with(&shown) {
            refusals.client_id.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(user = %shown, %client_id, "client id refused: it must start with the user name");
            return None;
        }
        let acl = acl.clone();
        let refusals = refusals.clone();
        let authorizer: Authorizer = Arc::new(move |access: Access, topic: &str| {
            let user = user.as_deref();
            let allowed = match (access, &acl) {
                (Access::TakeOver, _) => topic == user.unwrap_or_default(),
                (_, None) => true,
                (Access::Publish, Some(acl)) => acl.may_publish(user, &client_id, topic),
                (Access::Subscribe, Some(acl)) => acl.may_subscribe(user, &client_id, topic),
            };
            if !allowed {
                let user = user.unwrap_or_default();
                match access {
                    Access::Publish => {
                        refusals.publish.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%user, %client_id, %topic, "publish refused by the ACL");
                    }
                    Access::Subscribe => {
                        refusals.subscribe.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%user, %client_id, %topic, "subscribe refused by the ACL");
                    }
                    Access::TakeOver => {
                        refusals.client_id.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%user, %client_id, owner = %topic, "client id refused: another user's connection uses it");
                    }
                }
            }
            allowed
        });
        Some(authorizer)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_by_kind_and_own_takeover_passes() {
        let acl = Acl::parse("user a\ntopic write x\ntopic read y\n").unwrap();
        let refusals = Arc::new(Refusals::default());
        let factory = factory(Some(Arc::new(acl)), false, refusals.clone());
        let authorize = factory(Some("a"), "c").expect("no prefix rule");
        assert!(authorize(Access::Publish, "x"));
        assert!(!authorize(Access::Publish, "y"));
        assert!(authorize(Access::Subscribe, "y"));
        assert!(!authorize(Access::Subscribe, "x"));
        assert!(!authorize(Access::Subscribe, "#"));
        assert!(authorize(Access::TakeOver, "a"));
        assert!(!authorize(Access::TakeOver, "b"));
        assert!(!authorize(Access::TakeOver, ""));
        let want = RefusalCounts {
            publish: 1,
            subscribe: 2,
            client_id: 2,
            login: 0,
        };
        assert_eq!(refusals.counts(), want);
    }

    #[test]
    fn the_prefix_rule_refuses_other_ids_and_no_acl_allows_every_topic() {
        let refusals = Arc::new(Refusals::default());
        let factory = factory(None, true, refusals.clone());
        assert!(factory(Some("pi-1"), "hearth-node-pi-1").is_none());
        let authorize = factory(Some("pi-1"), "pi-1-agent").expect("prefixed id");
        assert!(authorize(Access::Publish, "anything/at/all"));
        assert!(authorize(Access::Subscribe, "#"));
        assert_eq!(refusals.counts().client_id, 1);
    }
}
