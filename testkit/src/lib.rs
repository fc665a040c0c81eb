//! Test helpers: real brokers on ports they chose themselves, real mosquitto_pub/sub processes, MQTT test clients,
//! and a TCP proxy that pulls the network cable.
//!
//! Tests in every crate use these so that "the broker" in a test is always a
//! real one reached over TCP: the embedded rumqttd or Debian's mosquitto.
//! Missing tools are a loud failure naming the package, never a skip.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod client;
pub mod home_assistant;
pub mod mosquitto;
pub mod process;
pub mod proxy;
pub mod raw;
pub mod tls;

use std::net::SocketAddr;

use hearth_broker::{BrokerConfig, RunningBroker};

pub use client::TestClient;
pub use mosquitto::{MosquittoBroker, Subscriber, mosquitto_pub, require_tool};
pub use process::{BrokerProcess, HubProcess, binary, hub_command};
pub use proxy::Proxy;

/// How long a test waits for an event (a SUBACK, a CONNACK, a log line)
/// before calling it a hang. Generous on purpose: it bounds a hang, it does
/// not measure speed, so a busy CI machine never trips it.
pub const HANG_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A loopback port that refuses connections for as long as this lives, for
/// "the broker is not there" tests: the socket is bound (so no other test's
/// server can take the port) but never listens.
#[derive(Debug)]
pub struct RefusingPort {
    _socket: tokio::net::TcpSocket,
    port: u16,
}

impl RefusingPort {
    pub fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("create a TCP socket");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind a loopback port");
        let port = socket.local_addr().expect("bound address").port();
        Self {
            _socket: socket,
            port,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Default for RefusingPort {
    fn default() -> Self {
        Self::new()
    }
}

/// Default embedded-broker config on a free loopback port.
pub fn broker_config() -> BrokerConfig {
    BrokerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..BrokerConfig::default()
    }
}

/// Starts an embedded broker with `config` (port 0 becomes a free port).
pub fn start_broker(config: &BrokerConfig) -> RunningBroker {
    hearth_broker::start(config).expect("embedded broker starts")
}

/// Which real broker a test runs against.
#[derive(Debug)]
pub enum AnyBroker {
    Embedded(RunningBroker),
    Mosquitto(MosquittoBroker),
}

impl AnyBroker {
    pub fn embedded() -> Self {
        Self::Embedded(start_broker(&broker_config()))
    }

    pub fn mosquitto() -> Self {
        Self::Mosquitto(MosquittoBroker::start())
    }

    pub fn port(&self) -> u16 {
        match self {
            Self::Embedded(b) => b.mqtt_addr().port(),
            Self::Mosquitto(m) => m.port(),
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port())
    }
}
