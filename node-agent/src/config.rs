//! Node configuration: load the TOML file (+ `HEARTH_*` env), fill in the demo Pi, validate into typed settings.
//!
//! A config that loads is a config that runs: names are contract ids, pins
//! are unique BCM numbers, sequences only name declared outputs and the DHT
//! is never polled faster than every 2 s. Every error names its key
//! (`sensor.interval_secs`, `outputs[1].pin`) so `--check-config` in CI
//! points at the line to fix.

mod file;
#[cfg(test)]
mod tests;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hearth_common::mqtt::MqttSettings;
use hearth_common::settings::SettingsError;
use hearth_protocol::{DiscoveryTopics, Id, OutputKind, Topics};

pub use file::{
    BuzzerSection, InputKindSetting, InputSection, NodeFile, NodeSection, OutputKindSetting,
    OutputSection, Pull, SensorBackend, SensorSection, SequenceSection, SpeakerSection,
    StepSection,
};

use crate::dht::Model;
use crate::gpio::PinSpec;
use crate::input::decode::Timings;
use crate::node_id::{HostIdentity, IdSource};

/// Why a config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(
        "no config file: pass --config FILE or set HEARTH_CONFIG (or add --simulate to run the demo Pi)"
    )]
    NoFile,
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl fmt::Display) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.to_string(),
        }
    }
}

/// A validated node: everything the agent needs, typed.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub node: Id,
    pub node_source: IdSource,
    pub topics: Topics,
    /// Home Assistant discovery prefix; `None` when discovery is off.
    pub discovery: Option<DiscoveryTopics>,
    /// The hub's dashboard, for Home Assistant's device page.
    pub dashboard_url: String,
    pub mqtt: MqttSettings,
    pub outputs: Vec<OutputDef>,
    pub sequences: Vec<SequenceDef>,
    pub inputs: Vec<InputDef>,
    pub sensor: Option<SensorConfig>,
    pub speaker: Option<SpeakerConfig>,
    /// No Pi: log pin changes and simulate the DHT.
    pub simulate: bool,
}

/// A light or switch on a pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputDef {
    pub name: Id,
    /// `Light` or `Switch`.
    pub kind: OutputKind,
    pub pin: PinSpec,
    /// Dimmed by hardware PWM (a light on a PWM pin, checked).
    pub dimmable: bool,
}

/// A switch or sensor wired to an input pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputDef {
    pub name: Id,
    pub pin: u8,
    pub pull: Pull,
    /// Active (pressed, motion, open) when the pin reads low.
    pub active_low: bool,
    pub kind: InputKind,
    pub timings: Timings,
}

/// What an input reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputKind {
    /// Presses, published as button `id`'s (single, double, long).
    Button { id: Id },
    /// `ON`/`OFF` on its state topic; a Home Assistant binary_sensor of
    /// this device class.
    Binary { device_class: &'static str },
}

/// A named loop of steps over some outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceDef {
    pub name: Id,
    pub steps: Vec<Step>,
}

/// One step: these outputs (indices into `NodeConfig::outputs`) on for `duration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub on: Vec<usize>,
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SensorConfig {
    pub model: Model,
    pub backend: SensorBackend,
    pub pin: u8,
    pub interval: Duration,
    /// Reads per interval before giving up until the next one.
    pub max_attempts: u32,
    pub iio_root: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerConfig {
    pub name: Id,
    pub output: SpeakerOutput,
    /// Used for `{volume}` when a play request has no volume.
    pub default_volume: u8,
}

/// How a speaker makes its sound.
#[derive(Debug, Clone, PartialEq)]
pub enum SpeakerOutput {
    /// Runs `argv` (no shell) with `{sound}` and `{volume}` filled in.
    Player {
        argv: Vec<String>,
        sounds_dir: PathBuf,
        timeout: Duration,
    },
    /// Beeps `pin`: on, off, on, ... for the given durations.
    Buzzer {
        pin: PinSpec,
        pattern: Vec<Duration>,
    },
}

/// Loads `file` (or the built-in demo when simulating without one) layered
/// under `HEARTH_*` environment variables, then validates it.
pub fn load(file: Option<&Path>, simulate: bool) -> Result<NodeConfig, ConfigError> {
    let raw: NodeFile = hearth_common::settings::load(file)?;
    let raw = match (file, simulate) {
        (Some(_), _) => raw,
        (None, true) => raw.or_demo_hardware(),
        (None, false) => return Err(ConfigError::NoFile),
    };
    raw.validate(&HostIdentity::from_system(), simulate)
}

impl NodeConfig {
    /// Every pin the agent drives, with a label for logs: outputs and the buzzer.
    pub fn output_pins(&self) -> Vec<(PinSpec, String)> {
        let mut pins: Vec<(PinSpec, String)> = self
            .outputs
            .iter()
            .map(|o| (o.pin, o.name.to_string()))
            .collect();
        if let Some(SpeakerConfig {
            output: SpeakerOutput::Buzzer { pin, .. },
            name,
            ..
        }) = &self.speaker
        {
            pins.push((*pin, format!("{name}-buzzer")));
        }
        pins
    }

    /// The pins driven by hardware PWM (dimmable lights).
    pub fn pwm_pins(&self) -> Vec<PinSpec> {
        self.outputs
            .iter()
            .filter(|o| o.dimmable)
            .map(|o| o.pin)
            .collect()
    }

    /// MQTT client id: one connection per node.
    pub fn client_id(&self) -> String {
        format!("hearth-node-{}", self.node)
    }
}

fn pin_text(pin: PinSpec) -> String {
    if pin.active_low {
        format!("BCM {}, active low", pin.pin)
    } else {
        format!("BCM {}", pin.pin)
    }
}

/// The `--check-config` summary.
impl fmt::Display for NodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "config OK: node {} (from {}), broker {}, topic prefix {}{}",
            self.node,
            self.node_source.as_str(),
            self.mqtt.url,
            self.topics.prefix(),
            if self.simulate { ", simulated" } else { "" }
        )?;
        match &self.discovery {
            Some(d) => writeln!(f, "  Home Assistant discovery under {}/", d.prefix())?,
            None => writeln!(f, "  Home Assistant discovery off")?,
        }
        for o in &self.outputs {
            writeln!(f, "  output   {} {} ({})", o.kind, o.name, pin_text(o.pin))?;
        }
        for i in &self.inputs {
            let what = match &i.kind {
                InputKind::Button { id } => format!("button, presses button {id}"),
                InputKind::Binary { device_class } => format!("{device_class}, ON/OFF"),
            };
            writeln!(
                f,
                "  input    {} ({what}; BCM {}, pull {:?}, {}, debounce {} ms)",
                i.name,
                i.pin,
                i.pull,
                if i.active_low {
                    "active low"
                } else {
                    "active high"
                },
                i.timings.debounce.as_millis()
            )?;
        }
        for s in &self.sequences {
            let cycle: Duration = s.steps.iter().map(|s| s.duration).sum();
            let steps: Vec<String> = s
                .steps
                .iter()
                .map(|step| {
                    let on: Vec<&str> = step
                        .on
                        .iter()
                        .filter_map(|&i| self.outputs.get(i).map(|o| o.name.as_str()))
                        .collect();
                    let on = if on.is_empty() {
                        "-".to_owned()
                    } else {
                        on.join("+")
                    };
                    format!("{on} {}ms", step.duration.as_millis())
                })
                .collect();
            writeln!(
                f,
                "  sequence {} ({:.1} s cycle: {})",
                s.name,
                cycle.as_secs_f64(),
                steps.join(", ")
            )?;
        }
        if let Some(s) = &self.sensor {
            writeln!(
                f,
                "  sensor   {} on BCM {} via {}, every {} s, up to {} attempts",
                s.model,
                s.pin,
                s.backend.as_str(),
                s.interval.as_secs(),
                s.max_attempts
            )?;
        }
        if let Some(s) = &self.speaker {
            match &s.output {
                SpeakerOutput::Player {
                    argv,
                    sounds_dir,
                    timeout,
                } => writeln!(
                    f,
                    "  speaker  {}: player {:?}, sounds in {}, timeout {} s",
                    s.name,
                    argv,
                    sounds_dir.display(),
                    timeout.as_secs()
                )?,
                SpeakerOutput::Buzzer { pin, pattern } => writeln!(
                    f,
                    "  speaker  {}: buzzer ({}), {} pattern steps",
                    s.name,
                    pin_text(*pin),
                    pattern.len()
                )?,
            }
        }
        Ok(())
    }
}
