//! Sensor readings in the hub, for any quantity: the last one per (node, quantity) and history rows.
//!
//! Nothing here names a quantity: a new one in `hearth_protocol::Quantity`
//! is kept, stored, served and charted without a change in the hub.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hearth_protocol::payload::rfc3339;
use hearth_protocol::{Quantity, Reading};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// The last reading of each quantity a node reported.
///
/// Serializes as the node's `climate` always has: `null` before the first
/// reading, else `{"temperature":21.5,"humidity":40.0,"at":"..."}` (values
/// in [`Quantity::ALL`] order, `at` the latest instant, RFC 3339 with
/// milliseconds as on the wire).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latest(BTreeMap<Quantity, Reading>);

impl Latest {
    /// Keeps `reading` as its quantity's latest: the last message wins,
    /// whatever its `at`, as a retained topic does.
    pub fn record(&mut self, reading: Reading) {
        self.0.insert(reading.quantity, reading);
    }

    pub fn get(&self, quantity: Quantity) -> Option<&Reading> {
        self.0.get(&quantity)
    }

    pub fn value(&self, quantity: Quantity) -> Option<f64> {
        self.get(quantity).map(|r| r.value)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Reading> {
        self.0.values()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Reading> for Latest {
    fn from_iter<I: IntoIterator<Item = Reading>>(readings: I) -> Self {
        let mut latest = Self::default();
        readings.into_iter().for_each(|r| latest.record(r));
        latest
    }
}

impl Serialize for Latest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(at) = self.iter().map(|r| r.at).max() else {
            return s.serialize_none();
        };
        let mut map = s.serialize_map(Some(self.0.len() + 1))?;
        // BTreeMap order is Quantity's declaration order, which is ALL's.
        for r in self.iter() {
            map.serialize_entry(r.quantity.name(), &r.value)?;
        }
        map.serialize_entry("at", &rfc3339(at))?;
        map.end()
    }
}

/// One instant of a node's history with every quantity measured then.
///
/// Serializes as `{"at":"...","temperature":21.5,"humidity":40.0}`, the
/// shape `/api/v1/nodes/<id>/history` has always answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub at: DateTime<Utc>,
    pub values: BTreeMap<Quantity, f64>,
}

impl Row {
    pub fn get(&self, quantity: Quantity) -> Option<f64> {
        self.values.get(&quantity).copied()
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.values.len() + 1))?;
        map.serialize_entry("at", &self.at)?;
        for (quantity, value) in &self.values {
            map.serialize_entry(quantity.name(), value)?;
        }
        map.end()
    }
}

/// One quantity's stored values: (instant, value), oldest first.
pub type Series = Vec<(DateTime<Utc>, f64)>;

/// History rows, oldest first, from each quantity's series: values
/// measured at the same instant (one climate message) share a row.
pub fn rows(series: impl IntoIterator<Item = (Quantity, Series)>) -> Vec<Row> {
    let mut by_at: BTreeMap<DateTime<Utc>, BTreeMap<Quantity, f64>> = BTreeMap::new();
    for (quantity, values) in series {
        for (at, value) in values {
            by_at.entry(at).or_default().insert(quantity, value);
        }
    }
    by_at
        .into_iter()
        .map(|(at, values)| Row { at, values })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::TimeZone;
    use hearth_protocol::Climate;

    use super::*;

    pub(crate) fn at(second: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 14, 20, 0).unwrap() + chrono::Duration::seconds(second)
    }

    pub(crate) fn climate(temperature: f64, humidity: f64, second: i64) -> Climate {
        Climate {
            temperature,
            humidity,
            at: at(second),
        }
    }

    #[test]
    fn the_latest_readings_serialize_as_the_climate_always_did() {
        let reading = climate(21.5, 40.0, 0);
        let latest: Latest = reading.readings().into_iter().collect();
        assert_eq!(
            serde_json::to_string(&latest).unwrap(),
            serde_json::to_string(&reading).unwrap()
        );
        assert_eq!(serde_json::to_string(&Latest::default()).unwrap(), "null");
    }

    #[test]
    fn history_rows_gather_the_quantities_of_one_instant() {
        let rows = rows([
            (
                Quantity::Humidity,
                vec![(at(0), 40.0), (at(10), 41.0), (at(20), 42.0)],
            ),
            (
                Quantity::Temperature,
                vec![(at(0), 20.0), (at(10), 21.0), (at(20), 22.0)],
            ),
        ]);
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(rows[1].get(Quantity::Temperature), Some(21.0));
        assert_eq!(rows[1].get(Quantity::Humidity), Some(41.0));
        assert!(rows.windows(2).all(|w| w[0].at < w[1].at));
        // The same JSON as the old (at, temperature, humidity) row.
        assert_eq!(
            serde_json::to_value(&rows[0]).unwrap(),
            serde_json::json!({"at": at(0), "temperature": 20.0, "humidity": 40.0})
        );
        assert_eq!(
            serde_json::to_string(&rows[0]).unwrap(),
            format!(
                r#"{{"at":{},"temperature":20.0,"humidity":40.0}}"#,
                serde_json::to_string(&at(0)).unwrap()
            )
        );
    }
}
