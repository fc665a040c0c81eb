//! Hearth's embedded MQTT broker: rumqttd with safe defaults for a home network.
//!
//! `start(&config)` validates the config (no anonymous access from the LAN
//! unless asked for), runs rumqttd on its own thread and returns once every
//! listener accepts connections.

pub mod acl;
pub mod auth;
pub mod config;
pub mod confine;
pub mod failed_logins;
pub mod local_client;
pub mod lost;
pub mod passwd;
pub mod server;
pub mod tls_front;

pub use acl::{Acl, AclEntry, AclError, Grant};
pub use auth::{AuthError, Authenticator};
pub use config::{BrokerConfig, ConfigError, ListenerKind, Password, TlsSettings, is_placeholder};
pub use confine::{RefusalCounts, Refusals};
pub use failed_logins::{FailedLogins, RelayedPeers};
pub use local_client::LocalLink;
pub use lost::LostMessages;
pub use passwd::{PasswdError, PasswordFile};
pub use server::{RunningBroker, StartError, start};
