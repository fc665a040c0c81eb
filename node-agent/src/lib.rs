//! Hearth's node agent: drives a Raspberry Pi's outputs, reads its DHT and plays chimes, all over MQTT.
//!
//! One agent runs per Pi (a Kubernetes DaemonSet or a systemd unit). It
//! speaks the topic contract of `hearth-protocol` under `<prefix>/node/<node>/`:
//! `<kind>/<name>/set` commands in, retained `<kind>/<name>/state`,
//! `availability`, `climate` and `status` out, errors on `error`; with a
//! speaker it also plays `<prefix>/chime/<speaker>/play`.
//!
//! Modules by responsibility: [`config`] (file, demo Pi, validation),
//! [`node_id`], [`gpio`] (pins, active-low), [`dht`] (pure frame decoder),
//! [`sensor`] (IIO, bit-bang, simulated backends), [`climate`] (reader loop),
//! [`board`] (pure outputs/sequences state machine), [`speaker`], [`route`]
//! (pure message routing), [`discovery`] (pure Home Assistant discovery
//! configs), [`status`], [`hardware`] and [`agent`] (the MQTT loop). `run`
//! is what the binary calls.

pub mod agent;
pub mod board;
pub mod climate;
pub mod config;
pub mod dht;
pub mod discovery;
pub mod gpio;
pub mod hardware;
pub mod input;
pub mod node_id;
pub mod route;
pub mod sensor;
pub mod speaker;
pub mod status;

pub use agent::AgentError;
pub use config::{ConfigError, NodeConfig};
pub use hardware::{Hardware, all_off};

use tokio_util::sync::CancellationToken;

/// Opens the hardware `config` describes (simulated if `config.simulate`)
/// and runs the agent until `shutdown` is cancelled, leaving every output off.
pub async fn run(config: NodeConfig, shutdown: CancellationToken) -> Result<(), AgentError> {
    let hardware = Hardware::open(&config)?;
    agent::run(config, hardware, shutdown).await
}
