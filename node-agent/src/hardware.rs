//! What the agent drives and reads: real rppal pins and sensors on a Pi, simulated ones with `--simulate`.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::NodeConfig;
use crate::gpio::rpi::{RppalInputs, RppalPins};
use crate::gpio::{GpioError, OutputPins, PinSpec, SimulatedPins};
use crate::input::run::{EDGE_QUEUE, RawEdge};
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
    pub inputs: Inputs,
}

/// The input pins' edges, and with `--simulate` the way to make some.
#[derive(Debug)]
pub struct Inputs {
    pub edges: mpsc::Receiver<RawEdge>,
    /// Simulated inputs: where `--simulate` gestures are fed in.
    pub inject: Option<mpsc::Sender<RawEdge>>,
    /// Whether each input is active now.
    pub initial: Vec<bool>,
    /// The real pins, kept open (their interrupts stop on drop).
    pub real: Option<RppalInputs>,
}

impl Inputs {
    /// `count` simulated inputs, all inactive, fed by `--simulate` gestures.
    pub fn simulated(count: usize) -> Self {
        let (tx, edges) = mpsc::channel(EDGE_QUEUE);
        Self {
            edges,
            inject: Some(tx),
            initial: vec![false; count],
            real: None,
        }
    }

    fn open(config: &NodeConfig) -> Result<Self, GpioError> {
        if config.simulate {
            return Ok(Self::simulated(config.inputs.len()));
        }
        let (tx, edges) = mpsc::channel(EDGE_QUEUE);
        let (real, initial) = if config.inputs.is_empty() {
            (None, Vec::new())
        } else {
            let (real, initial) = RppalInputs::open(&config.inputs, tx)?;
            (Some(real), initial)
        };
        Ok(Self {
            edges,
            inject: None,
            initial,
            real,
        })
    }
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
        let inputs = Inputs::open(config)?;
        Ok(Self {
            pins,
            sensor,
            inputs,
        })
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
    Ok(Arc::new(RppalPins::open(&specs, &config.pwm_pins())?))
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
