//! Test helpers: real brokers on free ports, real mosquitto_pub/sub processes, MQTT test clients.
//!
//! Tests in every crate use these so that "the broker" in a test is always a
//! real one reached over TCP: the embedded rumqttd or Debian's mosquitto.
//! Missing tools are a loud failure naming the package, never a skip.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod client;
pub mod mosquitto;

use std::net::{SocketAddr, TcpListener};

use hearth_broker::{BrokerConfig, RunningBroker};

pub use client::TestClient;
pub use mosquitto::{MosquittoBroker, Subscriber, mosquitto_pub, require_tool};

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
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
