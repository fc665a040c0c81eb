//! What the agent drives and reads: real rppal pins and sensors on a Pi, simulated ones with `--simulate`.

use std::sync::Arc;

use crate::config::NodeConfig;
use crate::gpio::rpi::RppalPins;
use crate::gpio::{GpioError, OutputPins, PinSpec, SimulatedPins};
use crate::sensor::{self, ClimateSensor, ReadError};

/// Why the hardware could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum HardwareError {
    #[error(transparent)]
    Gpio(#[from] GpioError),
    #[error("sensor: {0}")]
    Sensor(#[from] ReadError),
}

/// The pins and the sensor one agent uses.
#[derive(Debug)]
pub struct Hardware {
    pub pins: Arc<dyn OutputPins>,
    pub sensor: Option<Box<dyn ClimateSensor>>,
}

impl Hardware {
    /// Opens what `config` declares: real GPIO, or simulated when
    /// `config.simulate`. Every output pin starts at its safe (off) level.
    pub fn open(config: &NodeConfig) -> Result<Self, HardwareError> {
        let pins = open_pins(config)?;
        let sensor = config
            .sensor
            .as_ref()
            .map(|s| sensor::open(s, config.simulate))
            .transpose()?;
        Ok(Self { pins, sensor })
    }
}

fn open_pins(config: &NodeConfig) -> Result<Arc<dyn OutputPins>, GpioError> {
    let pins = config.output_pins();
    if config.simulate {
        return Ok(Arc::new(SimulatedPins::new(
            pins.into_iter().map(|(spec, label)| (spec.pin, label)),
        )));
    }
    let specs: Vec<PinSpec> = pins.into_iter().map(|(spec, _)| spec).collect();
    Ok(Arc::new(RppalPins::open(&specs)?))
}

/// `--all-off`: drives every configured output (and the buzzer) to its safe
/// level, without MQTT. Kubernetes preStop and systemd ExecStopPost use it.
pub fn all_off(config: &NodeConfig) -> Result<usize, GpioError> {
    let pins = open_pins(config)?;
    let specs = config.output_pins();
    for (spec, label) in &specs {
        pins.set(spec.pin, spec.safe_level())?;
        tracing::info!(output = %label, pin = spec.pin, level = %spec.safe_level(), "output off");
    }
    Ok(specs.len())
}
