//! The TOML file's shape, exactly as written (see `node.example.toml`), and the built-in demo Pi.
//!
//! Names and pins stay plain strings and numbers here; `validate` turns them
//! into typed settings with errors that name the key.

use std::path::PathBuf;

use hearth_common::mqtt::MqttSettings;
use serde::Deserialize;

use crate::dht::Model;

pub const DEFAULT_TOPIC_PREFIX: &str = "hearth";
pub const DEFAULT_SENSOR_PIN: u8 = 4;
pub const DEFAULT_SENSOR_INTERVAL_SECS: u64 = 30;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
pub const DEFAULT_IIO_ROOT: &str = "/sys/bus/iio/devices";
pub const DEFAULT_SOUNDS_DIR: &str = "/var/lib/hearth/sounds";
pub const DEFAULT_PLAYER_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_VOLUME: u8 = 80;
pub const DEFAULT_BUZZER_PATTERN_MS: [u64; 5] = [200, 100, 200, 100, 400];

/// The whole file. Every section may be omitted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeFile {
    pub node: NodeSection,
    pub mqtt: MqttSettings,
    pub outputs: Vec<OutputSection>,
    pub sequences: Vec<SequenceSection>,
    pub inputs: Vec<InputSection>,
    pub sensor: Option<SensorSection>,
    pub speaker: Option<SpeakerSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// `None`: `NODE_NAME`, else the hostname.
    pub id: Option<String>,
    pub topic_prefix: String,
    /// Publish Home Assistant discovery configs for this node.
    pub discovery: bool,
    /// Home Assistant's discovery prefix (its MQTT integration setting).
    pub discovery_prefix: String,
    /// The hub's dashboard, linked from the node's device page in Home
    /// Assistant. Unset: port 8080 on the MQTT broker's host (the hub's,
    /// with the embedded broker).
    pub dashboard_url: Option<String>,
}

impl Default for NodeSection {
    fn default() -> Self {
        Self {
            id: None,
            topic_prefix: DEFAULT_TOPIC_PREFIX.to_owned(),
            discovery: true,
            discovery_prefix: hearth_protocol::topic::DEFAULT_DISCOVERY_PREFIX.to_owned(),
            dashboard_url: None,
        }
    }
}

/// What an output is, as written in the file (sequences are declared apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKindSetting {
    Light,
    Switch,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    pub name: String,
    pub kind: OutputKindSetting,
    pub pin: u8,
    #[serde(default)]
    pub active_low: bool,
    /// A light dimmed by hardware PWM (BCM 12, 13, 18 or 19).
    #[serde(default)]
    pub dimmable: bool,
}

/// What is wired to an input pin, as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKindSetting {
    /// A push button: presses `hearth/button/<button>/press` like an IoT button.
    Button,
    // The rest report ON/OFF and are Home Assistant binary_sensor device
    // classes of the same name.
    Motion,
    Occupancy,
    Presence,
    Door,
    Window,
    Opening,
    GarageDoor,
    Vibration,
    Moisture,
    Smoke,
    Tamper,
}

/// The pin's built-in resistor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pull {
    /// To 3.3 V: wire the switch between the pin and ground (the usual way).
    #[default]
    Up,
    /// To ground: wire the switch between the pin and 3.3 V.
    Down,
    /// None: the sensor drives the pin (most PIR modules).
    Off,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSection {
    pub name: String,
    pub kind: InputKindSetting,
    pub pin: u8,
    #[serde(default)]
    pub pull: Pull,
    /// Active (pressed, motion, open) when the pin reads low. Default: true
    /// with `pull = "up"` (a switch to ground), else false.
    pub active_low: Option<bool>,
    /// Buttons: the button id it presses as. Default: the input's name.
    pub button: Option<String>,
    pub debounce_ms: Option<u64>,
    /// Buttons: a second press within this long after a release is a double.
    pub double_ms: Option<u64>,
    /// Buttons: held this long is a long press.
    pub long_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceSection {
    pub name: String,
    pub steps: Vec<StepSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSection {
    /// Outputs on during this step; the sequence's other outputs are off.
    #[serde(default)]
    pub on: Vec<String>,
    pub duration_ms: u64,
}

/// How the agent talks to the DHT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SensorBackend {
    /// The kernel's dht11 IIO driver (`dtoverlay=dht11,gpiopin=N`).
    Iio,
    /// Bit-banging through rppal, timed by the kernel's edge timestamps.
    Gpio,
}

impl SensorBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Iio => "iio",
            Self::Gpio => "gpio",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorSection {
    pub model: Model,
    pub backend: SensorBackend,
    pub pin: u8,
    pub interval_secs: u64,
    pub max_attempts: u32,
    pub iio_root: PathBuf,
}

impl Default for SensorSection {
    fn default() -> Self {
        Self {
            model: Model::Dht11,
            backend: SensorBackend::Iio,
            pin: DEFAULT_SENSOR_PIN,
            interval_secs: DEFAULT_SENSOR_INTERVAL_SECS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            iio_root: PathBuf::from(DEFAULT_IIO_ROOT),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpeakerSection {
    pub name: String,
    pub player: Vec<String>,
    pub sounds_dir: PathBuf,
    pub timeout_secs: u64,
    pub default_volume: u8,
    pub buzzer: Option<BuzzerSection>,
}

impl Default for SpeakerSection {
    fn default() -> Self {
        Self {
            name: String::new(),
            player: Vec::new(),
            sounds_dir: PathBuf::from(DEFAULT_SOUNDS_DIR),
            timeout_secs: DEFAULT_PLAYER_TIMEOUT_SECS,
            default_volume: DEFAULT_VOLUME,
            buzzer: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuzzerSection {
    pub pin: u8,
    #[serde(default)]
    pub active_low: bool,
    /// Alternating on/off durations, starting with on.
    #[serde(default = "default_pattern")]
    pub pattern_ms: Vec<u64>,
}

fn default_pattern() -> Vec<u64> {
    DEFAULT_BUZZER_PATTERN_MS.to_vec()
}

impl NodeFile {
    /// True when the file declares no hardware at all.
    pub fn is_bare(&self) -> bool {
        self.outputs.is_empty()
            && self.sequences.is_empty()
            && self.inputs.is_empty()
            && self.sensor.is_none()
            && self.speaker.is_none()
    }

    /// Adds the classic demo Pi when no hardware is declared: a traffic-light
    /// board on BCM 17/27/22, the traffic-light loop, a dimmable `lamp` on
    /// BCM 18 (hardware PWM), a DHT11 on BCM 4, a push button `doorbell` on
    /// BCM 5 and a motion sensor `hall` on BCM 6.
    /// (The Go seed's pins 2/3/4 would collide with the DHT on 4.)
    pub fn or_demo_hardware(mut self) -> Self {
        if !self.is_bare() {
            return self;
        }
        let light = |name: &str, pin| OutputSection {
            name: name.to_owned(),
            kind: OutputKindSetting::Light,
            pin,
            active_low: false,
            dimmable: false,
        };
        let mut lamp = light("lamp", 18);
        lamp.dimmable = true;
        self.outputs = vec![
            light("red", 17),
            light("yellow", 27),
            light("green", 22),
            lamp,
        ];
        let step = |on: &str, duration_ms| StepSection {
            on: vec![on.to_owned()],
            duration_ms,
        };
        self.sequences = vec![SequenceSection {
            name: "traffic".to_owned(),
            steps: vec![
                step("red", 2000),
                step("yellow", 1000),
                step("green", 2000),
                step("yellow", 2000),
            ],
        }];
        let input = |name: &str, kind, pin, pull| InputSection {
            name: name.to_owned(),
            kind,
            pin,
            pull,
            active_low: None,
            button: None,
            debounce_ms: None,
            double_ms: None,
            long_ms: None,
        };
        self.inputs = vec![
            input("doorbell", InputKindSetting::Button, 5, Pull::Up),
            input("hall", InputKindSetting::Motion, 6, Pull::Off),
        ];
        self.sensor = Some(SensorSection::default());
        self
    }
}
