//! Output pins: the `OutputPins` trait, the one place `active_low` is applied, and simulated pins.
//!
//! Everything above this module speaks `ON`/`OFF`; everything below it speaks
//! electrical levels. [`PinSpec::level`] is the only translation between the
//! two, so an active-low relay board cannot be switched the wrong way by one
//! code path forgetting to invert.

pub mod rpi;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use hearth_protocol::OnOff;

/// Transitions the simulated pins remember (older ones are forgotten so a
/// week-long `--simulate` run does not grow without bound).
pub const SIM_HISTORY_CAPACITY: usize = 1024;

/// An electrical level on a pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Low,
    High,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::High => "high",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A BCM pin and how the device on it is wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PinSpec {
    pub pin: u8,
    /// The device is on when the pin is low (most relay boards).
    pub active_low: bool,
}

impl PinSpec {
    /// The level that makes the device `state`.
    pub fn level(self, state: OnOff) -> Level {
        match (state.is_on(), self.active_low) {
            (true, false) | (false, true) => Level::High,
            (false, false) | (true, true) => Level::Low,
        }
    }

    /// The level that keeps the device off.
    pub fn safe_level(self) -> Level {
        self.level(OnOff::Off)
    }
}

/// Why a pin could not be opened or driven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpioError {
    #[error("not a Raspberry Pi (rppal: {detail}); use --simulate to run without GPIO")]
    NotAPi { detail: String },
    #[error(
        "permission denied opening {path} (rppal): add the user to the `gpio` group \
         (`sudo usermod -aG gpio $USER`, then log in again); in Kubernetes mount /dev/gpiomem \
         and /dev/gpiochip0 and add the host's gpio group id to supplementalGroups"
    )]
    PermissionDenied { path: String },
    #[error("BCM pin {pin} is already in use by another part of this agent")]
    PinUsed { pin: u8 },
    #[error("BCM pin {pin} does not exist on this board")]
    NoSuchPin { pin: u8 },
    #[error("BCM pin {pin} was not opened as an output")]
    NotAnOutput { pin: u8 },
    #[error("BCM pin {pin} is not a dimmable (PWM) output")]
    NotPwm { pin: u8 },
    #[error("GPIO error: {detail}")]
    Other { detail: String },
}

/// Something that can drive output pins. Implementations must be cheap to
/// call from async code: a register write, not a blocking I/O.
pub trait OutputPins: Send + Sync + fmt::Debug {
    /// Drives `pin` fully to `level` (a PWM pin: duty 0 or 1 accordingly).
    fn set(&self, pin: u8, level: Level) -> Result<(), GpioError>;
    /// Dims a PWM pin: `duty` is how much of the time the device is on,
    /// `0.0`..=`1.0`; active-low is the implementation's to apply.
    fn set_duty(&self, pin: u8, duty: f64) -> Result<(), GpioError>;
}

/// The hardware PWM channel a BCM pin can carry (the Pi has two; each
/// is on two header pins, set up by `dtoverlay=pwm-2chan`).
pub fn pwm_channel(pin: u8) -> Option<u8> {
    match pin {
        12 | 18 => Some(0),
        13 | 19 => Some(1),
        _ => None,
    }
}

/// Drives the device on `spec` to `state`.
pub fn drive(pins: &dyn OutputPins, spec: PinSpec, state: OnOff) -> Result<(), GpioError> {
    pins.set(spec.pin, spec.level(state))
}

/// One recorded level change of a simulated pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub pin: u8,
    pub label: String,
    pub level: Level,
}

/// Pins that only log and remember: `--simulate` and the tests.
#[derive(Debug, Default)]
pub struct SimulatedPins {
    labels: BTreeMap<u8, String>,
    state: Mutex<SimState>,
}

#[derive(Debug, Default)]
struct SimState {
    levels: BTreeMap<u8, Level>,
    duties: BTreeMap<u8, f64>,
    history: VecDeque<Transition>,
}

impl SimulatedPins {
    /// Simulated pins; `labels` name them in the log (`red`, `buzzer`).
    pub fn new(labels: impl IntoIterator<Item = (u8, String)>) -> Self {
        Self {
            labels: labels.into_iter().collect(),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding this lock cannot leave the map half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every recorded transition, oldest first.
    pub fn transitions(&self) -> Vec<Transition> {
        self.lock().history.iter().cloned().collect()
    }

    /// The level last set on `pin`.
    pub fn level(&self, pin: u8) -> Option<Level> {
        self.lock().levels.get(&pin).copied()
    }

    /// The duty cycle last set on `pin` (how much of the time it is on).
    pub fn duty(&self, pin: u8) -> Option<f64> {
        self.lock().duties.get(&pin).copied()
    }
}

impl OutputPins for SimulatedPins {
    fn set(&self, pin: u8, level: Level) -> Result<(), GpioError> {
        let label = self
            .labels
            .get(&pin)
            .ok_or(GpioError::NotAnOutput { pin })?;
        let mut state = self.lock();
        if state.levels.insert(pin, level) != Some(level) {
            tracing::info!(output = %label, pin, level = %level, "simulated GPIO");
        }
        if state.history.len() == SIM_HISTORY_CAPACITY {
            state.history.pop_front();
        }
        state.history.push_back(Transition {
            pin,
            label: label.clone(),
            level,
        });
        Ok(())
    }

    fn set_duty(&self, pin: u8, duty: f64) -> Result<(), GpioError> {
        let label = self
            .labels
            .get(&pin)
            .ok_or(GpioError::NotAnOutput { pin })?;
        if pwm_channel(pin).is_none() {
            return Err(GpioError::NotPwm { pin });
        }
        let duty = duty.clamp(0.0, 1.0);
        if self.lock().duties.insert(pin, duty) != Some(duty) {
            tracing::info!(output = %label, pin, duty = format!("{:.0} %", duty * 100.0), "simulated PWM");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn active_low_inverts_in_one_place() {
        let normal = PinSpec {
            pin: 17,
            active_low: false,
        };
        let relay = PinSpec {
            pin: 5,
            active_low: true,
        };
        assert_eq!(normal.level(OnOff::On), Level::High);
        assert_eq!(normal.safe_level(), Level::Low);
        assert_eq!(relay.level(OnOff::On), Level::Low);
        assert_eq!(relay.safe_level(), Level::High);
    }

    #[test]
    fn simulated_pins_record_transitions_and_refuse_unknown_pins() {
        let pins = SimulatedPins::new([(17, "red".to_owned())]);
        let spec = PinSpec {
            pin: 17,
            active_low: false,
        };
        drive(&pins, spec, OnOff::On).unwrap();
        drive(&pins, spec, OnOff::Off).unwrap();
        let levels: Vec<Level> = pins.transitions().iter().map(|t| t.level).collect();
        assert_eq!(levels, [Level::High, Level::Low]);
        assert_eq!(pins.level(17), Some(Level::Low));
        assert_eq!(
            pins.set(4, Level::High),
            Err(GpioError::NotAnOutput { pin: 4 })
        );
    }

    #[test]
    fn simulated_history_is_bounded() {
        let pins = SimulatedPins::new([(1, "x".to_owned())]);
        for _ in 0..SIM_HISTORY_CAPACITY + 10 {
            pins.set(1, Level::High).unwrap();
        }
        assert_eq!(pins.transitions().len(), SIM_HISTORY_CAPACITY);
    }
}
