//! Real output pins through rppal: each pin is claimed at its safe level and stays driven after exit.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use rppal::gpio::{Gpio, InputPin, OutputPin, Trigger};
use rppal::pwm::{Channel, Polarity, Pwm};
use tokio::sync::mpsc;

use super::{GpioError, Level, OutputPins, PinSpec, pwm_channel};
use crate::config::{InputDef, Pull};
use crate::input::run::RawEdge;

/// Opens the Pi's GPIO peripheral with an error that names the cause.
pub fn open_gpio() -> Result<Gpio, GpioError> {
    Gpio::new().map_err(|e| from_rppal(e, None))
}

/// Translates rppal's errors into ones that tell a person what to do.
pub fn from_rppal(error: rppal::gpio::Error, pin: Option<u8>) -> GpioError {
    use rppal::gpio::Error as E;
    match (error, pin) {
        (E::UnknownModel, _) => GpioError::NotAPi {
            detail: E::UnknownModel.to_string(),
        },
        (E::PermissionDenied(path), _) => GpioError::PermissionDenied { path },
        (E::PinUsed(pin), _) => GpioError::PinUsed { pin },
        (E::PinNotAvailable(pin), _) => GpioError::NoSuchPin { pin },
        (other, Some(pin)) => GpioError::Other {
            detail: format!("BCM pin {pin}: {other}"),
        },
        (other, None) => GpioError::Other {
            detail: other.to_string(),
        },
    }
}

/// The PWM frequency of dimmable lights: far above what an eye sees
/// flicker at, low enough for LED drivers and MOSFET boards to follow.
pub const PWM_FREQUENCY_HZ: f64 = 1_000.0;

/// Output pins on a real Raspberry Pi.
#[derive(Debug)]
pub struct RppalPins {
    pins: Mutex<BTreeMap<u8, OutputPin>>,
    /// Dimmable lights, by BCM pin: the Pi's PWM peripheral drives them.
    pwm: BTreeMap<u8, Pwm>,
}

/// Why a PWM channel would not open, with the fix.
fn pwm_error(pin: u8, error: rppal::pwm::Error) -> GpioError {
    GpioError::Other {
        detail: format!(
            "BCM pin {pin}: hardware PWM unavailable ({error}); add \
             `dtoverlay=pwm-2chan,pin=18,func=2,pin2=19,func2=2` (your pins) to \
             /boot/firmware/config.txt, reboot, and let the agent's user write /sys/class/pwm \
             (the gpio group does on Raspberry Pi OS)"
        ),
    }
}

impl RppalPins {
    /// Claims every pin in `specs` as an output at its safe (off) level;
    /// those also in `pwm` go to the PWM peripheral, at duty 0 (off).
    pub fn open(specs: &[PinSpec], pwm: &[PinSpec]) -> Result<Self, GpioError> {
        let mut dimmed = BTreeMap::new();
        for spec in pwm {
            let channel = match pwm_channel(spec.pin) {
                Some(0) => Channel::Pwm0,
                Some(_) => Channel::Pwm1,
                None => return Err(GpioError::NotPwm { pin: spec.pin }),
            };
            // Inverse polarity makes duty mean "on" for an active-low board too.
            let polarity = if spec.active_low {
                Polarity::Inverse
            } else {
                Polarity::Normal
            };
            let mut channel = Pwm::with_frequency(channel, PWM_FREQUENCY_HZ, 0.0, polarity, true)
                .map_err(|e| pwm_error(spec.pin, e))?;
            // Off stays off after we exit (preStop relies on it).
            channel.set_reset_on_drop(false);
            dimmed.insert(spec.pin, channel);
        }
        let gpio = open_gpio()?;
        let mut pins = BTreeMap::new();
        for spec in specs.iter().filter(|s| !dimmed.contains_key(&s.pin)) {
            let pin = gpio
                .get(spec.pin)
                .map_err(|e| from_rppal(e, Some(spec.pin)))?;
            let mut output = match spec.safe_level() {
                Level::Low => pin.into_output_low(),
                Level::High => pin.into_output_high(),
            };
            // rppal would turn the pin back into a floating input on drop, and
            // an active-low board reads a floating input as "on"; keep the
            // safe level driven after we exit (preStop relies on it).
            output.set_reset_on_drop(false);
            pins.insert(spec.pin, output);
        }
        Ok(Self {
            pins: Mutex::new(pins),
            pwm: dimmed,
        })
    }
}

impl OutputPins for RppalPins {
    fn set(&self, pin: u8, level: Level) -> Result<(), GpioError> {
        if let Some(channel) = self.pwm.get(&pin) {
            // Polarity applies active-low: duty is "on" time, and a level
            // is the pin's (High on an active-low board is off).
            let active_low = channel.polarity().is_ok_and(|p| p == Polarity::Inverse);
            let on = (level == Level::High) != active_low;
            return self.set_duty(pin, if on { 1.0 } else { 0.0 });
        }
        let mut pins = self.pins.lock().unwrap_or_else(PoisonError::into_inner);
        let output = pins.get_mut(&pin).ok_or(GpioError::NotAnOutput { pin })?;
        match level {
            Level::Low => output.set_low(),
            Level::High => output.set_high(),
        }
        Ok(())
    }

    fn set_duty(&self, pin: u8, duty: f64) -> Result<(), GpioError> {
        let channel = self.pwm.get(&pin).ok_or(GpioError::NotPwm { pin })?;
        channel
            .set_duty_cycle(duty.clamp(0.0, 1.0))
            .map_err(|e| pwm_error(pin, e))
    }
}

/// Input pins on a real Raspberry Pi, each reporting both edges through
/// rppal's interrupt thread (the kernel's GPIO character device: no polling).
#[derive(Debug)]
pub struct RppalInputs {
    /// Kept open: dropping a pin ends its interrupt.
    _pins: Vec<InputPin>,
    /// Edges dropped on a full queue (see `EDGE_QUEUE`).
    pub dropped: Arc<AtomicU64>,
}

impl RppalInputs {
    /// Claims every input with its pull resistor and returns, with the
    /// pins, whether each is active now.
    pub fn open(
        inputs: &[InputDef],
        edges: mpsc::Sender<RawEdge>,
    ) -> Result<(Self, Vec<bool>), GpioError> {
        let gpio = open_gpio()?;
        let dropped = Arc::new(AtomicU64::new(0));
        let mut pins = Vec::with_capacity(inputs.len());
        let mut initial = Vec::with_capacity(inputs.len());
        for (index, def) in inputs.iter().enumerate() {
            let pin = gpio
                .get(def.pin)
                .map_err(|e| from_rppal(e, Some(def.pin)))?;
            let mut input = match def.pull {
                Pull::Up => pin.into_input_pullup(),
                Pull::Down => pin.into_input_pulldown(),
                Pull::Off => pin.into_input(),
            };
            let active_low = def.active_low;
            initial.push(input.is_low() == active_low);
            let (edges, dropped) = (edges.clone(), dropped.clone());
            input
                .set_async_interrupt(Trigger::Both, None, move |event| {
                    // Stamped here, on rppal's interrupt thread, with the
                    // clock the input task reads; its jitter is far below
                    // any debounce. Debounce is ours (pure, tested), not
                    // rppal's.
                    let high = event.trigger == Trigger::RisingEdge;
                    let edge = RawEdge {
                        input: index,
                        at: tokio::time::Instant::now(),
                        active: high != active_low,
                    };
                    if edges.try_send(edge).is_err() {
                        dropped.fetch_add(1, Relaxed);
                    }
                })
                .map_err(|e| from_rppal(e, Some(def.pin)))?;
            pins.push(input);
        }
        Ok((
            Self {
                _pins: pins,
                dropped,
            },
            initial,
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_cause_and_the_fix() {
        let err = from_rppal(rppal::gpio::Error::UnknownModel, None);
        assert_eq!(
            err.to_string(),
            "not a Raspberry Pi (rppal: Unknown Raspberry Pi model); use --simulate to run without GPIO"
        );
        let err = from_rppal(
            rppal::gpio::Error::PermissionDenied("/dev/gpiomem".into()),
            Some(17),
        );
        assert!(err.to_string().contains("/dev/gpiomem"), "{err}");
        assert!(err.to_string().contains("`gpio` group"), "{err}");
    }

    #[test]
    fn off_a_pi_opening_fails_clearly() {
        // This test machine is not a Pi; on a Pi it would claim pin 17.
        if let Err(err) = RppalPins::open(
            &[PinSpec {
                pin: 17,
                active_low: false,
            }],
            &[],
        ) {
            let text = err.to_string();
            assert!(
                text.contains("not a Raspberry Pi") || text.contains("permission denied"),
                "{text}"
            );
        }
    }
}
