//! Validation: the raw file into a `NodeConfig`, every error naming its key.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use hearth_common::mqtt::MqttError;
use hearth_protocol::{DiscoveryTopics, Id, OutputKind, Topics};

use super::{
    ConfigError, InputDef, InputKind, InputKindSetting, InputSection, NodeConfig, NodeFile,
    OutputDef, OutputKindSetting, Pull, SensorConfig, SensorSection, SequenceDef, SequenceSection,
    SpeakerConfig, SpeakerOutput, SpeakerSection, Step,
};
use crate::gpio::{PinSpec, pwm_channel};
use crate::input::decode::{DEBOUNCE_RANGE, DOUBLE_RANGE, LONG_RANGE, TimingError, Timings};
use crate::node_id::{self, HostIdentity};
use crate::speaker::sound::SOUND as SOUND_PLACEHOLDER;

/// The DHT needs this long between reads; faster polling only yields errors.
pub const MIN_SENSOR_INTERVAL_SECS: u64 = 2;
/// A day: far slower than anyone reads a room, and far from the overflow a
/// huge interval caused when added to the clock (the reader task panicked
/// and readings stopped without a word).
pub const MAX_SENSOR_INTERVAL_SECS: u64 = 86_400;
pub const MAX_ATTEMPTS_LIMIT: u32 = 15;
/// Highest BCM number on the 40-pin header.
pub const MAX_BCM_PIN: u8 = 27;
pub const STEP_MS_RANGE: (u64, u64) = (20, 86_400_000);
pub const MAX_SEQUENCE_STEPS: usize = 64;
pub const PLAYER_TIMEOUT_SECS_RANGE: (u64, u64) = (1, 3600);
pub const BUZZER_STEP_MS_RANGE: (u64, u64) = (10, 5000);
pub const MAX_BUZZER_PATTERN_STEPS: usize = 64;

type Result<T> = std::result::Result<T, ConfigError>;

fn id(key: &str, raw: &str) -> Result<Id> {
    Id::new(raw).map_err(|e| ConfigError::invalid(key, e))
}

fn in_range(key: &str, value: u64, (min, max): (u64, u64), unit: &str) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("{value} {unit} is outside {min}..={max} {unit}"),
        ))
    }
}

/// Remembers which key claimed each BCM pin.
#[derive(Default)]
struct PinClaims(BTreeMap<u8, String>);

impl PinClaims {
    fn claim(&mut self, key: &str, pin: u8) -> Result<()> {
        if pin > MAX_BCM_PIN {
            return Err(ConfigError::invalid(
                key,
                format!("BCM pin {pin} is not on the 40-pin header (0..={MAX_BCM_PIN})"),
            ));
        }
        if let Some(owner) = self.0.insert(pin, key.to_owned()) {
            return Err(ConfigError::invalid(
                key,
                format!("BCM pin {pin} is already used by {owner}"),
            ));
        }
        Ok(())
    }
}

impl NodeFile {
    /// Checks everything and resolves the node id.
    pub fn validate(self, host: &HostIdentity, simulate: bool) -> Result<NodeConfig> {
        let (node, node_source) = node_id::resolve(self.node.id.as_deref(), host)
            .map_err(|e| ConfigError::invalid("node.id", e))?;
        let topics = Topics::new(&self.node.topic_prefix)
            .map_err(|e| ConfigError::invalid("node.topic_prefix", e))?;
        // Checked even when off, so switching it on later cannot fail.
        let discovery = DiscoveryTopics::new(&self.node.discovery_prefix)
            .map_err(|e| ConfigError::invalid("node.discovery_prefix", e))?;
        self.mqtt.options("hearth-node-check", None).map_err(|e| {
            let key = match e {
                MqttError::BadUrl { .. } => "mqtt.url",
                MqttError::ZeroKeepAlive => "mqtt.keep_alive_secs",
                MqttError::PasswordWithoutUser => "mqtt.username",
            };
            ConfigError::invalid(key, e)
        })?;
        let dashboard_url = match self.node.dashboard_url {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => url,
            Some(url) => {
                return Err(ConfigError::invalid(
                    "node.dashboard_url",
                    format!("{url:?} must be an http:// or https:// URL"),
                ));
            }
            // The url was checked just above.
            None => match self.mqtt.address() {
                Ok(broker) if broker.host.contains(':') => {
                    format!("http://[{}]:8080/", broker.host)
                }
                Ok(broker) => format!("http://{}:8080/", broker.host),
                Err(_) => "http://localhost:8080/".to_owned(),
            },
        };
        let mut pins = PinClaims::default();
        let outputs = outputs(&self.outputs, &mut pins)?;
        let sequences = self
            .sequences
            .iter()
            .enumerate()
            .map(|(i, s)| sequence(i, s, &outputs))
            .collect::<Result<Vec<_>>>()?;
        for (i, s) in sequences.iter().enumerate() {
            if sequences[..i].iter().any(|o| o.name == s.name) {
                return Err(ConfigError::invalid(
                    format!("sequences[{i}].name"),
                    format!("sequence {} is declared twice", s.name),
                ));
            }
        }
        let inputs = self
            .inputs
            .iter()
            .enumerate()
            .map(|(i, raw)| input(i, raw, &mut pins))
            .collect::<Result<Vec<_>>>()?;
        for (i, input) in inputs.iter().enumerate() {
            if inputs[..i].iter().any(|o| o.name == input.name) {
                return Err(ConfigError::invalid(
                    format!("inputs[{i}].name"),
                    format!("input {} is declared twice", input.name),
                ));
            }
        }
        let sensor = self
            .sensor
            .as_ref()
            .map(|s| sensor(s, &mut pins))
            .transpose()?;
        let speaker = self
            .speaker
            .as_ref()
            .map(|s| speaker(s, &mut pins))
            .transpose()?;
        Ok(NodeConfig {
            node,
            node_source,
            topics,
            discovery: self.node.discovery.then_some(discovery),
            dashboard_url,
            mqtt: self.mqtt,
            outputs,
            sequences,
            inputs,
            sensor,
            speaker,
            simulate,
        })
    }
}

fn outputs(raw: &[super::OutputSection], pins: &mut PinClaims) -> Result<Vec<OutputDef>> {
    let mut outputs: Vec<OutputDef> = Vec::with_capacity(raw.len());
    for (i, o) in raw.iter().enumerate() {
        let name = id(&format!("outputs[{i}].name"), &o.name)?;
        if outputs.iter().any(|d| d.name == name) {
            return Err(ConfigError::invalid(
                format!("outputs[{i}].name"),
                format!("output {name} is declared twice"),
            ));
        }
        pins.claim(&format!("outputs[{i}].pin"), o.pin)?;
        if o.dimmable {
            let key = format!("outputs[{i}].dimmable");
            if o.kind != OutputKindSetting::Light {
                return Err(ConfigError::invalid(key, "only a light can be dimmed"));
            }
            let Some(channel) = pwm_channel(o.pin) else {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "BCM pin {} has no hardware PWM; dimmable lights go on BCM 12 or 18 \
                         (channel 0) or 13 or 19 (channel 1)",
                        o.pin
                    ),
                ));
            };
            let shared = outputs
                .iter()
                .position(|d| d.dimmable && pwm_channel(d.pin.pin) == Some(channel));
            if let Some(other) = shared {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "PWM channel {channel} is already used by outputs[{other}] (BCM {}); \
                         the other channel is on BCM {}",
                        outputs[other].pin.pin,
                        if channel == 0 { "13 or 19" } else { "12 or 18" }
                    ),
                ));
            }
        }
        outputs.push(OutputDef {
            name,
            kind: match o.kind {
                OutputKindSetting::Light => OutputKind::Light,
                OutputKindSetting::Switch => OutputKind::Switch,
            },
            pin: PinSpec {
                pin: o.pin,
                active_low: o.active_low,
            },
            dimmable: o.dimmable,
        });
    }
    Ok(outputs)
}

fn input(i: usize, raw: &InputSection, pins: &mut PinClaims) -> Result<InputDef> {
    let key = |field: &str| format!("inputs[{i}].{field}");
    let name = id(&key("name"), &raw.name)?;
    pins.claim(&key("pin"), raw.pin)?;
    let kind = match raw.kind {
        InputKindSetting::Button => InputKind::Button {
            id: match &raw.button {
                Some(button) => id(&key("button"), button)?,
                None => name.clone(),
            },
        },
        other => {
            if raw.button.is_some() {
                return Err(ConfigError::invalid(
                    key("button"),
                    "only a kind = \"button\" input presses a button",
                ));
            }
            InputKind::Binary {
                device_class: device_class(other),
            }
        }
    };
    let button = matches!(kind, InputKind::Button { .. });
    for (field, set) in [("double_ms", raw.double_ms), ("long_ms", raw.long_ms)] {
        if set.is_some() && !button {
            return Err(ConfigError::invalid(
                key(field),
                "only a kind = \"button\" input has presses to time",
            ));
        }
    }
    let defaults = Timings::default();
    let ms =
        |field: &str, value: Option<u64>, default: Duration, range: &RangeInclusive<Duration>| {
            let Some(value) = value else {
                return Ok(default);
            };
            let min = range.start().as_millis() as u64;
            let max = range.end().as_millis() as u64;
            in_range(&key(field), value, (min, max), "ms").map(|()| Duration::from_millis(value))
        };
    let timings = Timings {
        debounce: ms(
            "debounce_ms",
            raw.debounce_ms,
            defaults.debounce,
            &DEBOUNCE_RANGE,
        )?,
        double_within: ms(
            "double_ms",
            raw.double_ms,
            defaults.double_within,
            &DOUBLE_RANGE,
        )?,
        long_after: ms("long_ms", raw.long_ms, defaults.long_after, &LONG_RANGE)?,
    };
    timings.check().map_err(|e| match e {
        TimingError::NotAboveDebounce {
            field,
            value,
            debounce,
        } => ConfigError::invalid(
            key(timing_key(field)),
            format!(
                "{} ms must be longer than debounce_ms ({} ms): a press is only known \
                 debounce_ms after it begins",
                value.as_millis(),
                debounce.as_millis()
            ),
        ),
        TimingError::OutOfRange { field, .. } => ConfigError::invalid(key(timing_key(field)), e),
    })?;
    Ok(InputDef {
        name,
        pin: raw.pin,
        pull: raw.pull,
        active_low: raw.active_low.unwrap_or(raw.pull == Pull::Up),
        kind,
        timings,
    })
}

/// The config key of a [`Timings`] field.
fn timing_key(field: &str) -> &'static str {
    match field {
        "double_within" => "double_ms",
        "long_after" => "long_ms",
        _ => "debounce_ms",
    }
}

/// The Home Assistant binary_sensor device class of an input kind.
fn device_class(kind: InputKindSetting) -> &'static str {
    match kind {
        InputKindSetting::Motion => "motion",
        InputKindSetting::Occupancy => "occupancy",
        InputKindSetting::Presence => "presence",
        InputKindSetting::Door => "door",
        InputKindSetting::Window => "window",
        // A button has no class; `opening` is the neutral one.
        InputKindSetting::Opening | InputKindSetting::Button => "opening",
        InputKindSetting::GarageDoor => "garage_door",
        InputKindSetting::Vibration => "vibration",
        InputKindSetting::Moisture => "moisture",
        InputKindSetting::Smoke => "smoke",
        InputKindSetting::Tamper => "tamper",
    }
}

fn sequence(i: usize, raw: &SequenceSection, outputs: &[OutputDef]) -> Result<SequenceDef> {
    let name = id(&format!("sequences[{i}].name"), &raw.name)?;
    let steps_key = format!("sequences[{i}].steps");
    if raw.steps.is_empty() || raw.steps.len() > MAX_SEQUENCE_STEPS {
        return Err(ConfigError::invalid(
            steps_key,
            format!(
                "needs 1..={MAX_SEQUENCE_STEPS} steps, has {}",
                raw.steps.len()
            ),
        ));
    }
    let mut steps = Vec::with_capacity(raw.steps.len());
    for (j, step) in raw.steps.iter().enumerate() {
        in_range(
            &format!("{steps_key}[{j}].duration_ms"),
            step.duration_ms,
            STEP_MS_RANGE,
            "ms",
        )?;
        let mut on = Vec::with_capacity(step.on.len());
        for name in &step.on {
            let index = outputs
                .iter()
                .position(|o| o.name.as_str() == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
                    ConfigError::invalid(
                        format!("{steps_key}[{j}].on"),
                        format!("no output named {name:?} (outputs: {})", known.join(", ")),
                    )
                })?;
            if !on.contains(&index) {
                on.push(index);
            }
        }
        steps.push(Step {
            on,
            duration: Duration::from_millis(step.duration_ms),
        });
    }
    Ok(SequenceDef { name, steps })
}

fn sensor(raw: &SensorSection, pins: &mut PinClaims) -> Result<SensorConfig> {
    if raw.interval_secs < MIN_SENSOR_INTERVAL_SECS {
        return Err(ConfigError::invalid(
            "sensor.interval_secs",
            format!(
                "{} s is too fast: a DHT needs at least {MIN_SENSOR_INTERVAL_SECS} s between reads",
                raw.interval_secs
            ),
        ));
    }
    if raw.interval_secs > MAX_SENSOR_INTERVAL_SECS {
        return Err(ConfigError::invalid(
            "sensor.interval_secs",
            format!(
                "{} s is too slow: at most {MAX_SENSOR_INTERVAL_SECS} s (a day) between reads",
                raw.interval_secs
            ),
        ));
    }
    in_range(
        "sensor.max_attempts",
        raw.max_attempts.into(),
        (1, MAX_ATTEMPTS_LIMIT.into()),
        "attempts",
    )?;
    // The IIO driver owns its pin too (dtoverlay=dht11,gpiopin=N).
    pins.claim("sensor.pin", raw.pin)?;
    Ok(SensorConfig {
        model: raw.model,
        backend: raw.backend,
        pin: raw.pin,
        interval: Duration::from_secs(raw.interval_secs),
        max_attempts: raw.max_attempts,
        iio_root: raw.iio_root.clone(),
    })
}

fn speaker(raw: &SpeakerSection, pins: &mut PinClaims) -> Result<SpeakerConfig> {
    let name = id("speaker.name", &raw.name)?;
    if raw.default_volume > 100 {
        return Err(ConfigError::invalid(
            "speaker.default_volume",
            format!("{} is not a volume from 0 to 100", raw.default_volume),
        ));
    }
    let output = match (raw.player.is_empty(), &raw.buzzer) {
        (false, Some(_)) => {
            return Err(ConfigError::invalid(
                "speaker",
                "set either player or [speaker.buzzer], not both",
            ));
        }
        (true, None) => {
            return Err(ConfigError::invalid(
                "speaker",
                "set a player command (e.g. [\"aplay\", \"-q\", \"{sound}\"]) or a [speaker.buzzer]",
            ));
        }
        (false, None) => {
            if raw.player[0].trim().is_empty() {
                return Err(ConfigError::invalid(
                    "speaker.player",
                    "the first element must be the program to run",
                ));
            }
            if !raw.player.iter().any(|a| a.contains(SOUND_PLACEHOLDER)) {
                return Err(ConfigError::invalid(
                    "speaker.player",
                    format!(
                        "no argument contains {SOUND_PLACEHOLDER}, so the sound would never be played"
                    ),
                ));
            }
            in_range(
                "speaker.timeout_secs",
                raw.timeout_secs,
                PLAYER_TIMEOUT_SECS_RANGE,
                "s",
            )?;
            SpeakerOutput::Player {
                argv: raw.player.clone(),
                sounds_dir: raw.sounds_dir.clone(),
                timeout: Duration::from_secs(raw.timeout_secs),
            }
        }
        (true, Some(buzzer)) => {
            pins.claim("speaker.buzzer.pin", buzzer.pin)?;
            let key = "speaker.buzzer.pattern_ms";
            if buzzer.pattern_ms.is_empty() || buzzer.pattern_ms.len() > MAX_BUZZER_PATTERN_STEPS {
                return Err(ConfigError::invalid(
                    key,
                    format!("needs 1..={MAX_BUZZER_PATTERN_STEPS} durations"),
                ));
            }
            for (i, &ms) in buzzer.pattern_ms.iter().enumerate() {
                in_range(&format!("{key}[{i}]"), ms, BUZZER_STEP_MS_RANGE, "ms")?;
            }
            SpeakerOutput::Buzzer {
                pin: PinSpec {
                    pin: buzzer.pin,
                    active_low: buzzer.active_low,
                },
                pattern: buzzer
                    .pattern_ms
                    .iter()
                    .map(|&ms| Duration::from_millis(ms))
                    .collect(),
            }
        }
    };
    Ok(SpeakerConfig {
        name,
        output,
        default_volume: raw.default_volume,
    })
}
