//! DHT bit-banging through rppal, timed by the kernel's edge timestamps instead of user-space clocks.
//!
//! User space cannot sample a 27 µs pulse reliably on a busy Pi, but the GPIO
//! character device timestamps every edge in the interrupt handler and queues
//! up to 1024 of them (rppal's event buffer). So: drive the start pulse,
//! release the line, arm a both-edges interrupt and drain the queued edges
//! until the line stays quiet; the pure decoder does the rest. Arming takes
//! a moment after the release, so the sensor's 80 µs preamble may be missed;
//! the decoder only needs the 40 data bits. The IIO backend is still the more
//! reliable choice where the overlay is available.

use std::time::Duration;

use rppal::gpio::{Gpio, Trigger};

use super::{ClimateSensor, ReadError};
use crate::dht::{self, Edge, Model, Reading};
use crate::gpio::rpi::{from_rppal, open_gpio};

/// Silence after which the frame is over (a whole frame takes about 5 ms).
const QUIET_AFTER_FRAME: Duration = Duration::from_millis(5);
/// More edges than a frame can have: stop draining noise.
const MAX_EDGES: usize = 128;

/// A DHT on a GPIO pin, read without the kernel driver.
#[derive(Debug)]
pub struct GpioDht {
    gpio: Gpio,
    pin: u8,
    model: Model,
}

impl GpioDht {
    pub fn open(pin: u8, model: Model) -> Result<Self, ReadError> {
        let gpio = open_gpio().map_err(|e| ReadError::Unavailable(e.to_string()))?;
        Ok(Self { gpio, pin, model })
    }

    fn gpio_error(&self, error: rppal::gpio::Error) -> ReadError {
        ReadError::Io(from_rppal(error, Some(self.pin)).to_string())
    }

    fn capture(&self) -> Result<Vec<Edge>, ReadError> {
        let mut start = self
            .gpio
            .get(self.pin)
            .map_err(|e| self.gpio_error(e))?
            .into_output_high();
        // Dropping must not restore the previous mode: the line has to stay
        // low until the input below takes over.
        start.set_reset_on_drop(false);
        start.set_low();
        std::thread::sleep(self.model.start_pulse());
        drop(start);

        let mut input = self
            .gpio
            .get(self.pin)
            .map_err(|e| self.gpio_error(e))?
            .into_input_pullup();
        // Restoring the previous (output, low) mode on drop would hold the
        // sensor in its start state forever.
        input.set_reset_on_drop(false);
        input
            .set_interrupt(Trigger::Both, None)
            .map_err(|e| self.gpio_error(e))?;
        let mut edges = Vec::with_capacity(MAX_EDGES);
        while edges.len() < MAX_EDGES {
            match input.poll_interrupt(false, Some(QUIET_AFTER_FRAME)) {
                Ok(Some(event)) => edges.push(Edge {
                    at: event.timestamp,
                    rising: event.trigger == Trigger::RisingEdge,
                }),
                Ok(None) => break,
                Err(e) => return Err(self.gpio_error(e)),
            }
        }
        input.clear_interrupt().map_err(|e| self.gpio_error(e))?;
        Ok(edges)
    }
}

impl ClimateSensor for GpioDht {
    fn read(&mut self) -> Result<Reading, ReadError> {
        let edges = self.capture()?;
        if edges.len() < 2 {
            return Err(ReadError::Timeout(format!(
                "no answer on BCM {} (check wiring and the pull-up)",
                self.pin
            )));
        }
        Ok(dht::decode(self.model, &dht::pulses(&edges))?)
    }
}
