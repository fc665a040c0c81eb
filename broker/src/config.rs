//! Broker settings: listeners, credentials, limits and router sizes, with safe defaults.
//!
//! The defaults give mosquitto 2's "local only" behaviour: one MQTT 3.1.1
//! listener on 127.0.0.1:1883 that anyone on this machine may use without a
//! password. Opening a listener to the LAN without credentials is refused
//! unless the config says `allow_anonymous = true`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::acl::{Acl, AclEntry, AclError};

/// Default MQTT 3.1.1 listener: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:1883";

/// Unacknowledged QoS 1/2 messages rumqttd sends one subscriber before it
/// waits for PUBACKs: a constant inside rumqttd 0.20 (`router/iobufs.rs`),
/// not configurable.
pub const RUMQTTD_OUTGOING_INFLIGHT: usize = 100;

/// A password as given in the config. Never printed.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
    /// One of the examples' placeholders: see [`is_placeholder`].
    pub fn is_placeholder(&self) -> bool {
        is_placeholder(&self.0)
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// TLS listener settings (MQTT over TLS, conventionally port 8883).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub listen: SocketAddr,
    /// PEM certificate chain presented by the broker.
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
}

/// Everything the embedded broker needs. Sizes default to what fits a 1 GB
/// Raspberry Pi next to the hub and a database.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Run the broker inside the hub process (`hearth-hub` only).
    pub embedded: bool,
    /// MQTT 3.1.1 listener.
    pub listen: SocketAddr,
    /// Optional MQTT 5 listener (rumqttd needs a separate port for v5).
    pub listen_v5: Option<SocketAddr>,
    /// Optional MQTT-over-WebSocket listener (3.1.1).
    pub listen_ws: Option<SocketAddr>,
    /// Optional MQTT-over-TLS listener (3.1.1).
    pub tls: Option<TlsSettings>,
    /// `None`: anonymous clients only on loopback listeners. `Some(true)`:
    /// anonymous everywhere there are no users. `Some(false)`: never.
    pub allow_anonymous: Option<bool>,
    /// Password file of `user:$argon2id$...` lines (`hearth-broker passwd`
    /// writes it). When set every client must log in.
    pub password_file: Option<PathBuf>,
    /// username -> plain-text password, merged with `password_file`. Still
    /// accepted, but each one is warned about at startup: prefer the file.
    /// When not empty every client must log in.
    pub users: BTreeMap<String, Password>,
    /// Most simultaneous client connections.
    pub max_connections: usize,
    /// Largest PUBLISH payload accepted, in bytes; larger ones close the connection.
    pub max_payload_size: usize,
    /// Most packets rumqttd reads from one client's socket in one batch
    /// before handing them to the router (its `max_inflight_count`).
    /// Despite the name, rumqttd 0.20 does not use it for the window of
    /// unacknowledged QoS 1 messages towards a subscriber: that window is
    /// fixed at [`RUMQTTD_OUTGOING_INFLIGHT`] (see tests/limits.rs).
    pub max_inflight: usize,
    /// How long a new TCP connection may take to send CONNECT, in milliseconds.
    pub connect_timeout_ms: u16,
    /// Bytes in one in-memory log segment per subscribed filter.
    pub segment_size: usize,
    /// Segments kept per filter; older messages are dropped for subscribers behind.
    pub segment_count: usize,
    /// Most packets queued for one client before the router stops sending to it.
    pub max_outgoing_packets: u64,
    /// Topic ACL in Mosquitto's `acl_file` format (docs/broker.md). With it
    /// or `acl` set, whatever is not granted is refused.
    pub acl_file: Option<PathBuf>,
    /// The same rules in TOML, added to `acl_file`'s: `[[broker.acl]]` with
    /// `user` + `topic` (no user: anonymous clients) or `pattern`, and
    /// `access` = "read" | "write" | "readwrite" (the default).
    pub acl: Vec<AclEntry>,
    /// Client ids must start with the user name (CONNACK 0x02 otherwise).
    pub client_id_prefix_user: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            embedded: true,
            listen: DEFAULT_LISTEN.parse().expect("constant address parses"),
            listen_v5: None,
            listen_ws: None,
            tls: None,
            allow_anonymous: None,
            password_file: None,
            users: BTreeMap::new(),
            max_connections: 1_000,
            max_payload_size: 128 * 1024,
            max_inflight: 100,
            connect_timeout_ms: 5_000,
            // rumqttd stores ~4.5x the bytes it counts against a segment:
            // 256 KiB x 4 per filter measured 58 MB RSS after 1,000,000
            // messages through 10 filters (1 MiB x 4: 181 MB), and still
            // holds ~14k presses per filter for a subscriber that lags.
            segment_size: 256 * 1024,
            segment_count: 4,
            max_outgoing_packets: 1_000,
            acl_file: None,
            acl: Vec::new(),
            client_id_prefix_user: false,
        }
    }
}

/// Why a broker config cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "listener {listener} is reachable from the network but no users are configured, \
         so anyone on the LAN could publish. Fix: add users under [broker.users] \
         (e.g. HEARTH_BROKER__USERS__HUB=<password>), or listen on 127.0.0.1, or set \
         allow_anonymous = true under [broker] if this network is trusted"
    )]
    AnonymousOnNetwork { listener: SocketAddr },
    #[error("allow_anonymous = false but no users are configured: nobody could connect")]
    NobodyCanConnect,
    #[error("{key} must be at least {min}, got {got}")]
    TooSmall {
        key: &'static str,
        min: usize,
        got: usize,
    },
    #[error("segment_size ({segment}) must be larger than max_payload_size ({payload})")]
    SegmentSmallerThanPayload { segment: usize, payload: usize },
    #[error("two listeners use {0}")]
    DuplicateListener(SocketAddr),
    #[error("TLS {what} file {path} does not exist")]
    MissingTlsFile { what: &'static str, path: PathBuf },
    #[error("TLS {what} file {path} is not usable: {why}")]
    BadTlsFile {
        what: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("password_file {0} does not exist; create it with `hearth-broker passwd {0} <user>`")]
    MissingPasswordFile(PathBuf),
    #[error("user name {0:?} is empty or contains ':' or whitespace")]
    BadUserName(String),
    #[error(
        "user {user:?} has the example's placeholder password, and listener {listener} is \
         reachable from the network. Fix: give it a password of its own, e.g. \
         `openssl rand -base64 24`, or better a hashed one (`hearth-broker passwd FILE {user}`)"
    )]
    PlaceholderPassword { user: String, listener: SocketAddr },
}

/// Whether `password` is one of the placeholders the examples ship
/// (`change-me`, `CHANGE-ME-hub-placeholder`, ...), in any case.
pub fn is_placeholder(password: &str) -> bool {
    let folded = password.trim().to_ascii_lowercase();
    ["change-me", "changeme", "change_me"]
        .iter()
        .any(|p| folded.starts_with(p))
}

/// One listener, as the broker will open it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    V4,
    V5,
    WebSocket,
    Tls,
}

impl ListenerKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::V4 => "mqtt",
            Self::V5 => "mqtt5",
            Self::WebSocket => "ws",
            Self::Tls => "mqtts",
        }
    }
}

impl BrokerConfig {
    /// Every configured listener with its kind.
    pub fn listeners(&self) -> Vec<(ListenerKind, SocketAddr)> {
        let mut all = vec![(ListenerKind::V4, self.listen)];
        all.extend(self.listen_v5.map(|a| (ListenerKind::V5, a)));
        all.extend(self.listen_ws.map(|a| (ListenerKind::WebSocket, a)));
        all.extend(self.tls.as_ref().map(|t| (ListenerKind::Tls, t.listen)));
        all
    }

    /// Whether any users are configured (plain or in a password file).
    pub fn has_users(&self) -> bool {
        !self.users.is_empty() || self.password_file.is_some()
    }

    /// The topic ACL, read from `acl_file` plus `acl`; `None` when neither
    /// is set (every topic allowed).
    pub fn load_acl(&self) -> Result<Option<Acl>, AclError> {
        if self.acl_file.is_none() && self.acl.is_empty() {
            return Ok(None);
        }
        let mut acl = match &self.acl_file {
            Some(path) => Acl::load(path)?,
            None => Acl::default(),
        };
        acl.extend(&self.acl)?;
        Ok(Some(acl))
    }

    /// Whether clients may connect without logging in.
    pub fn anonymous_allowed(&self) -> bool {
        !self.has_users() && self.allow_anonymous != Some(false)
    }

    /// Checks the rules a config must follow before any socket is opened.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, min, got) in [
            ("max_connections", 1, self.max_connections),
            ("max_payload_size", 16, self.max_payload_size),
            ("max_inflight", 1, self.max_inflight),
            ("segment_size", 1024, self.segment_size),
            ("segment_count", 1, self.segment_count),
            (
                "max_outgoing_packets",
                1,
                self.max_outgoing_packets as usize,
            ),
        ] {
            if got < min {
                return Err(ConfigError::TooSmall { key, min, got });
            }
        }
        if self.segment_size <= self.max_payload_size {
            return Err(ConfigError::SegmentSmallerThanPayload {
                segment: self.segment_size,
                payload: self.max_payload_size,
            });
        }
        let listeners = self.listeners();
        for (i, (_, addr)) in listeners.iter().enumerate() {
            if addr.port() != 0 && listeners[..i].iter().any(|(_, other)| other == addr) {
                return Err(ConfigError::DuplicateListener(*addr));
            }
        }
        if let Some(bad) = self
            .users
            .keys()
            .find(|u| u.is_empty() || u.contains(':') || u.contains(char::is_whitespace))
        {
            return Err(ConfigError::BadUserName(bad.clone()));
        }
        if let Some((_, listener)) = listeners.iter().find(|(_, a)| !a.ip().is_loopback())
            && let Some((user, _)) = self.users.iter().find(|(_, p)| is_placeholder(p.expose()))
        {
            return Err(ConfigError::PlaceholderPassword {
                user: user.clone(),
                listener: *listener,
            });
        }
        if let Some(path) = &self.password_file
            && !path.exists()
        {
            return Err(ConfigError::MissingPasswordFile(path.clone()));
        }
        if !self.has_users() {
            match self.allow_anonymous {
                Some(false) => return Err(ConfigError::NobodyCanConnect),
                Some(true) => {}
                None => {
                    if let Some((_, addr)) =
                        listeners.iter().find(|(_, addr)| !addr.ip().is_loopback())
                    {
                        return Err(ConfigError::AnonymousOnNetwork { listener: *addr });
                    }
                }
            }
        }
        if let Some(tls) = &self.tls {
            for (what, path) in [("certificate", &tls.cert), ("key", &tls.key)] {
                if !path.exists() {
                    return Err(ConfigError::MissingTlsFile {
                        what,
                        path: path.clone(),
                    });
                }
            }
            check_tls_files(tls)?;
        }
        Ok(())
    }
}

/// Parses the TLS certificate and key once up front: rumqttd only finds a
/// bad file when its listener starts, inside its own thread, and merely
/// logs it, so the broker would run without its TLS listener.
fn check_tls_files(tls: &TlsSettings) -> Result<(), ConfigError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &'static str, path: &PathBuf, why: String| ConfigError::BadTlsFile {
        what,
        path: path.clone(),
        why,
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| bad("certificate", &tls.cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("certificate", &tls.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(
            "certificate",
            &tls.cert,
            "no -----BEGIN CERTIFICATE----- block".to_owned(),
        ));
    }
    PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| {
        bad(
            "key",
            &tls.key,
            format!("{e} (expected a PEM private key: PKCS#8, PKCS#1 or SEC1)"),
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_passwords_are_refused_on_network_listeners_only() {
        let mut config = BrokerConfig::default();
        config
            .users
            .insert("home".into(), Password::new("CHANGE-ME-hub-placeholder"));
        assert_eq!(config.validate(), Ok(()), "loopback: a placeholder is fine");
        config.listen = "0.0.0.0:1883".parse().unwrap();
        let err = config.validate().unwrap_err();
        assert!(
            matches!(&err, ConfigError::PlaceholderPassword { user, .. } if user == "home"),
            "{err:?}"
        );
        assert!(err.to_string().contains("openssl rand"), "{err}");
        config
            .users
            .insert("home".into(), Password::new("tP3xq9ab7Lr2"));
        assert_eq!(config.validate(), Ok(()));
        for p in ["change-me", "Change-Me-too", "CHANGEME", " change_me"] {
            assert!(is_placeholder(p), "{p:?}");
        }
        assert!(!is_placeholder("exchange-me"));
    }

    #[test]
    fn defaults_are_loopback_and_anonymous() {
        let config = BrokerConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert!(config.anonymous_allowed());
        assert!(config.listen.ip().is_loopback());
    }

    #[test]
    fn a_lan_listener_needs_users_or_an_explicit_opt_in() {
        let mut config = BrokerConfig {
            listen: "0.0.0.0:1883".parse().unwrap(),
            ..BrokerConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert!(matches!(err, ConfigError::AnonymousOnNetwork { .. }));
        assert!(err.to_string().contains("[broker.users]"), "{err}");

        config.allow_anonymous = Some(true);
        assert_eq!(config.validate(), Ok(()));

        config.allow_anonymous = None;
        config.users.insert("hub".into(), Password::new("pw"));
        assert_eq!(config.validate(), Ok(()));
        assert!(!config.anonymous_allowed());
    }

    #[test]
    fn nonsense_limits_are_refused_by_name() {
        let config = BrokerConfig {
            max_connections: 0,
            ..BrokerConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "max_connections must be at least 1, got 0"
        );
        let config = BrokerConfig {
            max_payload_size: 2 * 1024 * 1024,
            ..BrokerConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::SegmentSmallerThanPayload { .. })
        ));
    }

    #[test]
    fn passwords_never_print() {
        let mut config = BrokerConfig::default();
        config.users.insert("hub".into(), Password::new("hunter2"));
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn a_password_file_means_logins_are_required() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        let mut config = BrokerConfig {
            listen: "0.0.0.0:1883".parse().unwrap(),
            password_file: Some(path.clone()),
            ..BrokerConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err(ConfigError::MissingPasswordFile(path.clone()))
        );
        std::fs::write(&path, "").unwrap();
        assert_eq!(config.validate(), Ok(()));
        assert!(!config.anonymous_allowed());
        config.password_file = None;
        assert!(config.anonymous_allowed() || config.validate().is_err());
    }

    #[test]
    fn unusable_tls_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, "not a cert").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let config = BrokerConfig {
            tls: Some(TlsSettings {
                listen: "127.0.0.1:8883".parse().unwrap(),
                cert: cert.clone(),
                key,
            }),
            ..BrokerConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains(&cert.display().to_string()), "{err}");
    }

    #[test]
    fn missing_tls_files_are_named() {
        let config = BrokerConfig {
            tls: Some(TlsSettings {
                listen: "127.0.0.1:8883".parse().unwrap(),
                cert: "/nope/cert.pem".into(),
                key: "/nope/key.pem".into(),
            }),
            ..BrokerConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "TLS certificate file /nope/cert.pem does not exist"
        );
    }
}
