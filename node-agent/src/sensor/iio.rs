//! The kernel's dht11 IIO driver (`dtoverlay=dht11,gpiopin=N`): the reliable way to read a DHT on Linux.
//!
//! The kernel times the pulses in interrupt context, which user space cannot
//! do reliably, and exposes milli-units under
//! `/sys/bus/iio/devices/iio:deviceN/in_{temp,humidityrelative}_input`. It
//! answers EIO for a bad checksum or lost edges and ETIMEDOUT when the
//! sensor is silent; both are worth a retry. The same driver serves DHT22s.
//! The sysfs root is a parameter so tests can use a fake tree.

use std::io;
use std::path::{Path, PathBuf};

use super::{ClimateSensor, ReadError};
use crate::dht::Reading;

/// What the driver's `name` file contains (e.g. `dht11@4`, `dht11@0`).
pub const IIO_NAME: &str = "dht11";
pub const TEMPERATURE_FILE: &str = "in_temp_input";
pub const HUMIDITY_FILE: &str = "in_humidityrelative_input";

const EIO: i32 = 5;
const ETIMEDOUT: i32 = 110;

/// A DHT read through IIO. The device is found again after a failure, since
/// reloading the overlay may renumber it.
#[derive(Debug)]
pub struct IioSensor {
    root: PathBuf,
    device: Option<PathBuf>,
}

impl IioSensor {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            device: None,
        }
    }

    /// The first `iio:device*` under `root` whose name mentions dht11.
    pub fn locate(root: &Path) -> Result<PathBuf, ReadError> {
        let hint = || {
            format!(
                "no IIO device named {IIO_NAME} under {}: add `dtoverlay=dht11,gpiopin=<BCM pin>` \
                 to /boot/firmware/config.txt and reboot, or use backend = \"gpio\"",
                root.display()
            )
        };
        let entries = std::fs::read_dir(root).map_err(|_| ReadError::Unavailable(hint()))?;
        let mut devices: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("iio:device"))
            })
            .collect();
        devices.sort();
        devices
            .into_iter()
            .find(|dir| {
                std::fs::read_to_string(dir.join("name"))
                    .is_ok_and(|name| name.trim().contains(IIO_NAME))
            })
            .ok_or_else(|| ReadError::Unavailable(hint()))
    }
}

/// Maps a sysfs read error to a failure class.
pub fn classify(path: &Path, error: &io::Error) -> ReadError {
    let shown = path.display();
    match error.raw_os_error() {
        Some(ETIMEDOUT) => {
            ReadError::Timeout(format!("{shown}: the sensor did not answer (ETIMEDOUT)"))
        }
        Some(EIO) => ReadError::Io(format!(
            "{shown}: EIO (the driver saw a bad checksum or lost edges)"
        )),
        _ if error.kind() == io::ErrorKind::NotFound => {
            ReadError::Unavailable(format!("{shown} does not exist"))
        }
        _ => ReadError::Io(format!("{shown}: {error}")),
    }
}

/// Reads a milli-unit sysfs value, rounded to tenths like the sensor.
fn read_milli(path: &Path) -> Result<f64, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|e| classify(path, &e))?;
    let milli: i64 = text.trim().parse().map_err(|_| {
        ReadError::Io(format!(
            "{}: not a number: {:?}",
            path.display(),
            text.trim()
        ))
    })?;
    Ok((milli as f64 / 100.0).round() / 10.0)
}

impl IioSensor {
    /// The sensor's device directory, looked for again until it is found
    /// (the dht11 module can load after the agent starts).
    pub fn device(&mut self) -> Result<PathBuf, ReadError> {
        match &self.device {
            Some(device) => Ok(device.clone()),
            None => {
                let device = Self::locate(&self.root)?;
                self.device = Some(device.clone());
                Ok(device)
            }
        }
    }
}

impl ClimateSensor for IioSensor {
    fn read(&mut self) -> Result<Reading, ReadError> {
        let device = self.device()?;
        let reading = read_milli(&device.join(TEMPERATURE_FILE)).and_then(|temperature| {
            read_milli(&device.join(HUMIDITY_FILE)).map(|humidity| Reading {
                temperature,
                humidity,
            })
        });
        if matches!(reading, Err(ReadError::Unavailable(_))) {
            self.device = None;
        }
        reading
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kernel_errors_are_classified() {
        let path = Path::new("/sys/bus/iio/devices/iio:device0/in_temp_input");
        let eio = classify(path, &io::Error::from_raw_os_error(EIO));
        assert_eq!(eio.reason(), super::super::FailureReason::Io);
        assert!(eio.to_string().contains("EIO"), "{eio}");
        let timeout = classify(path, &io::Error::from_raw_os_error(ETIMEDOUT));
        assert_eq!(timeout.reason(), super::super::FailureReason::Timeout);
        let missing = classify(path, &io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(missing.reason(), super::super::FailureReason::Unavailable);
    }
}
