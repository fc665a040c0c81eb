//! What a sensor measures: each quantity with its name, unit and Home Assistant classes, and one reading of it.
//!
//! A new quantity (CO2 in ppm, say) is one `Quantity` variant and its
//! [`Spec`] here; the hub stores, keeps and serves readings by quantity
//! without knowing which ones exist (see docs/adding-a-sensor.md).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::payload::{Climate, PayloadError, parse_number};

/// A measured quantity. The order of [`Quantity::ALL`] is the order in
/// which readings appear in JSON (`{"temperature":..,"humidity":..}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quantity {
    Temperature,
    Humidity,
}

/// Everything the parts need to know about one quantity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    /// The key in climate JSON, the last level of its plain topic
    /// (`hearth/node/<node>/climate/<name>`), the stored name and the Home
    /// Assistant object id: `[a-z0-9_]`, never renamed once released.
    pub name: &'static str,
    /// What a person reads (Home Assistant's entity name).
    pub label: &'static str,
    pub unit: &'static str,
    /// Home Assistant's `device_class` of a sensor of this quantity.
    pub device_class: &'static str,
    /// Home Assistant's `state_class`: `measurement` for a value that
    /// goes up and down.
    pub state_class: &'static str,
    /// The physically possible values, inclusive. The hub does not refuse
    /// readings outside it (it never has: any finite number is stored); it
    /// is here for a sensor or a check that wants to know what is possible.
    pub valid: (f64, f64),
}

const TEMPERATURE: Spec = Spec {
    name: "temperature",
    label: "Temperature",
    unit: "°C",
    device_class: "temperature",
    state_class: "measurement",
    // Absolute zero; nothing a house sensor meets is near the top.
    valid: (-273.15, 1_000.0),
};

const HUMIDITY: Spec = Spec {
    name: "humidity",
    label: "Humidity",
    unit: "%",
    device_class: "humidity",
    state_class: "measurement",
    valid: (0.0, 100.0),
};

impl Quantity {
    pub const ALL: [Quantity; 2] = [Self::Temperature, Self::Humidity];

    pub fn spec(self) -> &'static Spec {
        match self {
            Self::Temperature => &TEMPERATURE,
            Self::Humidity => &HUMIDITY,
        }
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn unit(self) -> &'static str {
        self.spec().unit
    }

    /// Whether `value` is physically possible for this quantity.
    pub fn is_valid(self, value: f64) -> bool {
        let (low, high) = self.spec().valid;
        (low..=high).contains(&value)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a name is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown quantity {0:?}")]
pub struct UnknownQuantity(pub String);

impl FromStr for Quantity {
    type Err = UnknownQuantity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|q| q.name() == s)
            .ok_or_else(|| UnknownQuantity(s.to_owned()))
    }
}

/// One value of one quantity, measured at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub quantity: Quantity,
    pub value: f64,
    pub at: DateTime<Utc>,
}

impl Reading {
    /// The readings of a climate message (`hearth/node/<node>/climate`),
    /// accepted and refused exactly as [`Climate::parse_received`] does:
    /// one without `at` counts as measured at `received`.
    pub fn from_climate(
        payload: &[u8],
        received: DateTime<Utc>,
    ) -> Result<Vec<Self>, PayloadError> {
        Climate::parse_received(payload, received).map(|c| c.readings())
    }

    /// The reading of a plain per-quantity message
    /// (`hearth/node/<node>/climate/<quantity>`, a number such as `21.5`),
    /// measured when it was received.
    pub fn from_plain(
        quantity: Quantity,
        payload: &[u8],
        received: DateTime<Utc>,
    ) -> Result<Self, PayloadError> {
        parse_number(payload).map(|value| Self {
            quantity,
            value,
            at: received,
        })
    }

    /// The payload of the plain per-quantity topic: one decimal, as the
    /// sensors measure.
    pub fn plain(&self) -> String {
        format!("{:.1}", self.value)
    }
}

impl Climate {
    /// This climate message as one reading per quantity it carries (a
    /// quantity added as an optional field adds its reading when present).
    pub fn readings(&self) -> Vec<Reading> {
        let reading = |quantity, value| Reading {
            quantity,
            value,
            at: self.at,
        };
        vec![
            reading(Quantity::Temperature, self.temperature),
            reading(Quantity::Humidity, self.humidity),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T14:20:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn names_round_trip_and_are_topic_and_id_safe() {
        for q in Quantity::ALL {
            assert_eq!(q.name().parse::<Quantity>(), Ok(q));
            assert!(crate::Id::new(q.name()).is_ok(), "{q}");
            let (low, high) = q.spec().valid;
            assert!(low < high, "{q}: {low}..{high}");
        }
        assert_eq!(
            "co2".parse::<Quantity>(),
            Err(UnknownQuantity("co2".into()))
        );
        assert_eq!(
            "Temperature".parse::<Quantity>(),
            Err(UnknownQuantity("Temperature".into()))
        );
    }

    #[test]
    fn specs_say_what_home_assistant_and_people_see() {
        let t = Quantity::Temperature.spec();
        assert_eq!(
            (t.label, t.unit, t.device_class, t.state_class),
            ("Temperature", "°C", "temperature", "measurement")
        );
        let h = Quantity::Humidity.spec();
        assert_eq!(
            (h.label, h.unit, h.device_class, h.state_class),
            ("Humidity", "%", "humidity", "measurement")
        );
        assert!(Quantity::Humidity.is_valid(100.0));
        assert!(!Quantity::Humidity.is_valid(100.1));
        assert!(!Quantity::Temperature.is_valid(-300.0));
        assert!(!Quantity::Temperature.is_valid(f64::NAN));
    }

    #[test]
    fn a_climate_message_is_one_reading_per_quantity() {
        let received = at() + chrono::Duration::seconds(5);
        let dated = br#"{"temperature":21.5,"humidity":40,"at":"2026-11-22T14:20:00Z"}"#;
        assert_eq!(
            Reading::from_climate(dated, received),
            Ok(vec![
                Reading {
                    quantity: Quantity::Temperature,
                    value: 21.5,
                    at: at()
                },
                Reading {
                    quantity: Quantity::Humidity,
                    value: 40.0,
                    at: at()
                },
            ])
        );
        let undated = Reading::from_climate(br#"{"temperature":21.5,"humidity":40}"#, received)
            .expect("undated readings are taken as received");
        assert!(undated.iter().all(|r| r.at == received), "{undated:?}");
        for bad in [
            &br#"{"temperature":21.5}"#[..],
            br#"{"temperature":"warm","humidity":40}"#,
            br#"{"temperature":21.5,"humidity":40,"at":"yesterday"}"#,
            br#"{"temperature":1e999,"humidity":40}"#,
            b"21.5",
            b"",
        ] {
            assert!(
                Reading::from_climate(bad, received).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn plain_readings_are_finite_numbers_taken_as_received() {
        assert_eq!(
            Reading::from_plain(Quantity::Humidity, b" 41.5\n", at()),
            Ok(Reading {
                quantity: Quantity::Humidity,
                value: 41.5,
                at: at()
            })
        );
        for bad in [&b"NaN"[..], b"inf", b"warm", b"", b"{\"value\":1}"] {
            assert!(
                Reading::from_plain(Quantity::Temperature, bad, at()).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let r = Reading {
            quantity: Quantity::Temperature,
            value: 21.04,
            at: at(),
        };
        assert_eq!(r.plain(), "21.0");
    }
}
