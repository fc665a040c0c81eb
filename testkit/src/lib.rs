//! Test helpers: real brokers on free ports, real mosquitto_pub/sub processes, MQTT test clients,
//! and a TCP proxy that pulls the network cable.
//!
//! Tests in every crate use these so that "the broker" in a test is always a
//! real one reached over TCP: the embedded rumqttd or Debian's mosquitto.
//! Missing tools are a loud failure naming the package, never a skip.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod client;
pub mod home_assistant;
pub mod mosquitto;
pub mod proxy;
pub mod raw;
pub mod tls;

use std::net::{SocketAddr, TcpListener};

use hearth_broker::{BrokerConfig, RunningBroker};

pub use client::TestClient;
pub use mosquitto::{MosquittoBroker, Subscriber, mosquitto_pub, require_tool};
pub use proxy::Proxy;

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// Waits until something accepts TCP connections on loopback `port`: a
/// broker process just spawned. Panics naming `what` after `within`.
pub fn wait_listening(port: u16, within: std::time::Duration, what: &str) {
    let deadline = std::time::Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not listen on port {port} within {within:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
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

/// Path of a workspace binary (`hearth-broker`, `hearth-hub`, `hearth-node-agent`),
/// built first if needed. Tests of one crate use this to run another crate's
/// binary as a real separate process.
pub fn binary(name: &str) -> std::path::PathBuf {
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the workspace");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = std::process::Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--quiet", "--bin", name])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build --bin {name} failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| workspace.join("target"));
    target.join("debug").join(name)
}
