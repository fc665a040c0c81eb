//! Climate sensor backends behind one trait: the kernel IIO driver, GPIO bit-banging, and a simulated DHT.
//!
//! A backend only reads; the climate loop decides about ranges, retries and
//! publishing, so every backend is judged by the same rules.

pub mod bitbang;
pub mod iio;

use std::fmt;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{SensorBackend, SensorConfig};
use crate::dht::{self, DecodeError, Model, Reading};

/// Why one read attempt failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Frame(#[from] DecodeError),
    #[error("sensor did not answer: {0}")]
    Timeout(String),
    #[error("sensor I/O error: {0}")]
    Io(String),
    #[error("sensor unavailable: {0}")]
    Unavailable(String),
}

/// Failure classes counted in the agent's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureReason {
    Checksum,
    OutOfRange,
    BadFrame,
    Timeout,
    Io,
    Unavailable,
}

impl FailureReason {
    pub const ALL: [FailureReason; 6] = [
        Self::Checksum,
        Self::OutOfRange,
        Self::BadFrame,
        Self::Timeout,
        Self::Io,
        Self::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Checksum => "checksum",
            Self::OutOfRange => "out_of_range",
            Self::BadFrame => "bad_frame",
            Self::Timeout => "timeout",
            Self::Io => "io",
            Self::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ReadError {
    pub fn reason(&self) -> FailureReason {
        match self {
            Self::Frame(DecodeError::Checksum { .. }) => FailureReason::Checksum,
            Self::Frame(DecodeError::OutOfRange { .. }) => FailureReason::OutOfRange,
            Self::Frame(_) => FailureReason::BadFrame,
            Self::Timeout(_) => FailureReason::Timeout,
            Self::Io(_) => FailureReason::Io,
            Self::Unavailable(_) => FailureReason::Unavailable,
        }
    }
}

/// Something that can take one temperature/humidity reading.
pub trait ClimateSensor: Send + fmt::Debug {
    /// One attempt. May block for tens of milliseconds on real hardware.
    fn read(&mut self) -> Result<Reading, ReadError>;

    /// Whether `read` touches hardware and belongs on the blocking pool.
    fn blocks(&self) -> bool {
        true
    }
}

/// The backend `config` asks for, or the simulation.
pub fn open(config: &SensorConfig, simulate: bool) -> Result<Box<dyn ClimateSensor>, ReadError> {
    if simulate {
        return Ok(Box::new(SimulatedDht::new(
            config.model,
            StdRng::from_rng(&mut rand::rng()),
        )));
    }
    Ok(match config.backend {
        SensorBackend::Iio => {
            // Not fatal: the dht11 module can load after the agent starts,
            // and every read looks again. But say it now, not only at the
            // first read an interval later.
            let mut sensor = iio::IioSensor::new(&config.iio_root);
            if let Err(missing) = sensor.device() {
                tracing::warn!(pin = config.pin, "{missing}");
            }
            Box::new(sensor)
        }
        SensorBackend::Gpio => Box::new(bitbang::GpioDht::open(config.pin, config.model)?),
    })
}

/// A DHT on a desk in a heated room: readings drift slowly, and go through
/// the real frame encoder and decoder so they have the sensor's resolution.
#[derive(Debug)]
pub struct SimulatedDht {
    model: Model,
    current: Reading,
    rng: StdRng,
}

impl SimulatedDht {
    pub fn new(model: Model, rng: StdRng) -> Self {
        Self {
            model,
            current: Reading {
                temperature: 21.0,
                humidity: 45.0,
            },
            rng,
        }
    }
}

impl ClimateSensor for SimulatedDht {
    fn read(&mut self) -> Result<Reading, ReadError> {
        let t = self.current.temperature + self.rng.random_range(-0.3..=0.3);
        let h = self.current.humidity + self.rng.random_range(-1.0..=1.0);
        self.current = Reading {
            temperature: t.clamp(17.0, 26.0),
            humidity: h.clamp(30.0, 65.0),
        };
        let mut sent = self.current;
        if self.model == Model::Dht11 {
            // A DHT11 reports whole percent.
            sent.humidity = sent.humidity.round();
        }
        Ok(dht::reading_from_frame(
            self.model,
            &dht::encode(self.model, sent),
        )?)
    }

    fn blocks(&self) -> bool {
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn simulated_readings_drift_within_the_sensor_range() {
        let mut sim = SimulatedDht::new(Model::Dht11, StdRng::seed_from_u64(3));
        let mut previous = sim.read().unwrap();
        for _ in 0..500 {
            let r = sim.read().unwrap();
            assert!(dht::check_range(Model::Dht11, r).is_ok(), "{r:?}");
            assert!((r.temperature - previous.temperature).abs() <= 0.5, "{r:?}");
            assert_eq!(r.humidity.fract(), 0.0);
            previous = r;
        }
    }

    #[test]
    fn a_missing_iio_device_is_not_fatal_and_is_found_once_it_appears() {
        let root = tempfile::tempdir().unwrap();
        let config = SensorConfig {
            model: Model::Dht11,
            backend: SensorBackend::Iio,
            pin: 4,
            interval: std::time::Duration::from_secs(30),
            max_attempts: 3,
            iio_root: root.path().to_owned(),
        };
        let mut sensor = open(&config, false).unwrap();
        let missing = sensor.read().unwrap_err();
        assert_eq!(missing.reason(), FailureReason::Unavailable);
        assert!(missing.to_string().contains("dtoverlay=dht11"), "{missing}");
        // The overlay's module loads late: the next read finds it.
        let device = root.path().join("iio:device0");
        std::fs::create_dir(&device).unwrap();
        std::fs::write(device.join("name"), "dht11\n").unwrap();
        std::fs::write(device.join("in_temp_input"), "21300\n").unwrap();
        std::fs::write(device.join("in_humidityrelative_input"), "45000\n").unwrap();
        let reading = sensor.read().unwrap();
        assert_eq!((reading.temperature, reading.humidity), (21.3, 45.0));
    }

    #[test]
    fn failures_are_classified_for_the_status_counters() {
        let checksum = ReadError::from(DecodeError::Checksum {
            expected: 1,
            computed: 2,
        });
        assert_eq!(checksum.reason(), FailureReason::Checksum);
        let frame = ReadError::from(DecodeError::TooFewBits { found: 3 });
        assert_eq!(frame.reason(), FailureReason::BadFrame);
        assert_eq!(ReadError::Timeout("x".into()).reason().as_str(), "timeout");
    }
}
