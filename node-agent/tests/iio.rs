//! The kernel IIO backend against a fake sysfs tree in a temporary directory.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use hearth_node_agent::dht::Reading;
use hearth_node_agent::sensor::iio::{HUMIDITY_FILE, IioSensor, TEMPERATURE_FILE};
use hearth_node_agent::sensor::{ClimateSensor, FailureReason};

/// `root/iio:deviceN` with a `name` file and optional readings (milli-units).
fn device(root: &Path, n: u32, name: &str, milli: Option<(&str, &str)>) -> PathBuf {
    let dir = root.join(format!("iio:device{n}"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("name"), format!("{name}\n")).unwrap();
    if let Some((t, h)) = milli {
        fs::write(dir.join(TEMPERATURE_FILE), format!("{t}\n")).unwrap();
        fs::write(dir.join(HUMIDITY_FILE), format!("{h}\n")).unwrap();
    }
    dir
}

/// A tree with an unrelated ADC first, as on a Pi with other IIO hardware.
fn tree() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    device(root.path(), 0, "mcp3008", Some(("1", "2")));
    let dht = device(root.path(), 1, "dht11@4", Some(("23000", "45000")));
    (root, dht)
}

#[test]
fn finds_the_dht_by_name_and_reads_milli_units() {
    let (root, dht) = tree();
    assert_eq!(IioSensor::locate(root.path()).unwrap(), dht);
    let mut sensor = IioSensor::new(root.path());
    assert_eq!(
        sensor.read().unwrap(),
        Reading {
            temperature: 23.0,
            humidity: 45.0
        }
    );
    fs::write(dht.join(TEMPERATURE_FILE), "-10100\n").unwrap();
    fs::write(dht.join(HUMIDITY_FILE), "65200\n").unwrap();
    assert_eq!(
        sensor.read().unwrap(),
        Reading {
            temperature: -10.1,
            humidity: 65.2
        }
    );
}

#[test]
fn a_failed_read_is_reported_then_retried_successfully() {
    let (root, dht) = tree();
    let mut sensor = IioSensor::new(root.path());
    // Unreadable once: the attribute is momentarily not a readable file.
    fs::remove_file(dht.join(TEMPERATURE_FILE)).unwrap();
    fs::create_dir(dht.join(TEMPERATURE_FILE)).unwrap();
    let err = sensor.read().unwrap_err();
    assert_eq!(err.reason(), FailureReason::Io, "{err}");
    fs::remove_dir(dht.join(TEMPERATURE_FILE)).unwrap();
    fs::write(dht.join(TEMPERATURE_FILE), "21500").unwrap();
    assert_eq!(sensor.read().unwrap().temperature, 21.5);

    // Absent once: counted as unavailable, then found again.
    fs::remove_file(dht.join(HUMIDITY_FILE)).unwrap();
    let err = sensor.read().unwrap_err();
    assert_eq!(err.reason(), FailureReason::Unavailable, "{err}");
    fs::write(dht.join(HUMIDITY_FILE), "40000").unwrap();
    assert_eq!(sensor.read().unwrap().humidity, 40.0);

    fs::write(dht.join(HUMIDITY_FILE), "garbage").unwrap();
    let err = sensor.read().unwrap_err();
    assert_eq!(err.reason(), FailureReason::Io);
    assert!(err.to_string().contains("not a number"), "{err}");
}

#[test]
fn a_renumbered_device_is_found_again() {
    let (root, dht) = tree();
    let mut sensor = IioSensor::new(root.path());
    sensor.read().unwrap();
    // Reloading the overlay may give the sensor another number.
    fs::rename(&dht, root.path().join("iio:device7")).unwrap();
    assert_eq!(
        sensor.read().unwrap_err().reason(),
        FailureReason::Unavailable
    );
    assert_eq!(sensor.read().unwrap().temperature, 23.0);
}

#[test]
fn a_missing_overlay_says_how_to_add_it() {
    let root = tempfile::tempdir().unwrap();
    device(root.path(), 0, "mcp3008", None);
    let err = IioSensor::new(root.path()).read().unwrap_err();
    assert_eq!(err.reason(), FailureReason::Unavailable);
    assert!(
        err.to_string().contains("dtoverlay=dht11,gpiopin="),
        "{err}"
    );
    let err = IioSensor::new(&root.path().join("nope"))
        .read()
        .unwrap_err();
    assert_eq!(err.reason(), FailureReason::Unavailable);
}
