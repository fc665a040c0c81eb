//! Shared helpers for the agent's integration tests: configs, an in-process agent on simulated pins.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hearth_node_agent::config::{self, NodeConfig};
use hearth_node_agent::gpio::{Level, SimulatedPins};
use hearth_node_agent::hardware::Inputs;
use hearth_node_agent::sensor::{ClimateSensor, SimulatedDht};
use hearth_node_agent::{AgentError, Hardware};
use hearth_testkit::Subscriber;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const NODE: &str = "pi-1";
pub const WAIT: Duration = Duration::from_secs(10);

/// The demo board (short steps) plus an active-low switch, on `port`.
pub fn node_toml(port: u16, extra: &str) -> String {
    format!(
        r#"
[node]
id = "{NODE}"

[mqtt]
url = "mqtt://127.0.0.1:{port}"
keep_alive_secs = 5

[[outputs]]
name = "red"
kind = "light"
pin = 17

[[outputs]]
name = "yellow"
kind = "light"
pin = 27

[[outputs]]
name = "green"
kind = "light"
pin = 22

[[outputs]]
name = "lamp"
kind = "switch"
pin = 5
active_low = true

[[sequences]]
name = "traffic"
steps = [
  {{ on = ["red"], duration_ms = 300 }},
  {{ on = ["yellow"], duration_ms = 200 }},
  {{ on = ["green"], duration_ms = 300 }},
  {{ on = ["yellow"], duration_ms = 200 }},
]
{extra}
"#
    )
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

pub fn topic(rest: &str) -> String {
    format!("hearth/node/{NODE}/{rest}")
}

/// `topic payload`, as `mosquitto_sub -v` prints it.
pub fn line(rest: &str, payload: &str) -> String {
    format!("{} {payload}", topic(rest))
}

/// Waits until the agent has announced itself on the broker at `port`.
pub fn wait_online(port: u16) {
    let sub = Subscriber::start(port, &topic("availability"), &[]);
    sub.expect_line(&line("availability", "online"), WAIT);
}

/// An agent running inside the test process on simulated pins.
pub struct InProcessAgent {
    pub pins: Arc<SimulatedPins>,
    pub config: NodeConfig,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), AgentError>>,
}

impl InProcessAgent {
    pub fn start(config_path: &Path) -> Self {
        Self::start_with_sensor(config_path, None)
    }

    /// Like [`Self::start`], with `sensor` instead of the simulated DHT
    /// when the config has a `[sensor]`.
    pub fn start_with_sensor(config_path: &Path, sensor: Option<Box<dyn ClimateSensor>>) -> Self {
        let config = config::load(Some(config_path), true).unwrap();
        let pins = Arc::new(SimulatedPins::new(
            config
                .output_pins()
                .into_iter()
                .map(|(spec, label)| (spec.pin, label)),
        ));
        let sensor = config.sensor.as_ref().map(|s| {
            sensor.unwrap_or_else(|| {
                Box::new(SimulatedDht::new(s.model, StdRng::seed_from_u64(7)))
                    as Box<dyn ClimateSensor>
            })
        });
        let hardware = Hardware {
            pins: pins.clone(),
            sensor,
            inputs: Inputs::simulated(config.inputs.len()),
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(hearth_node_agent::agent::run(
            config.clone(),
            hardware,
            shutdown.clone(),
        ));
        Self {
            pins,
            config,
            shutdown,
            task,
        }
    }

    /// The level last driven on `pin`.
    pub fn level(&self, pin: u8) -> Option<Level> {
        self.pins.level(pin)
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        // Only bounds a hang: the agent's own timeouts end a stop in ~1.6 s.
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the agent did not stop (waited WAIT)")
            .unwrap()
            .unwrap();
    }
}

/// A DHT11 sensor section reading every 2 s.
pub fn sensor_section() -> String {
    "[sensor]\nmodel = \"dht11\"\npin = 4\ninterval_secs = 2\n".to_owned()
}

/// Every line `sub` (whose filter covers the node's `error` topic) prints
/// before the agent refuses a marker command (there is no light `blue`).
/// The agent takes its commands in order from one filter and publishes on
/// one connection, so whatever an earlier command caused comes first.
pub fn until_refused(sub: &Subscriber, port: u16) -> Vec<String> {
    let out = hearth_testkit::mosquitto_pub(
        port,
        &["-q", "1", "-t", &topic("light/blue/set"), "-m", "ON"],
    );
    assert!(out.status.success(), "mosquitto_pub of the marker: {out:?}");
    let error = format!("{} ", topic("error"));
    let about = format!("\"topic\":\"{}\"", topic("light/blue/set"));
    let (_, before) = sub.expect_where(|l| l.starts_with(&error) && l.contains(&about), WAIT);
    before
}

/// `mosquitto_pub -q 1` of `payload` to `hearth/node/<NODE>/<rest>`.
pub fn publish(port: u16, rest: &str, payload: &str) {
    let out = hearth_testkit::mosquitto_pub(port, &["-q", "1", "-t", &topic(rest), "-m", payload]);
    assert!(out.status.success(), "mosquitto_pub: {out:?}");
}
