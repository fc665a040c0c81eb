//! Shaping history for charts: averaging rows of readings into equal time buckets.
//!
//! A node reporting every 10 s stores 8,640 readings a day; a phone drawing
//! a 300-pixel chart needs a few hundred points, not a 400 KB response.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hearth_protocol::Quantity;

use crate::model::readings::Row as Reading;

/// Averages `readings` (oldest first) over `points` equal buckets spanning
/// `since..until`, each point at its bucket's mean time and each quantity
/// the mean of the values it has in the bucket. Buckets without a
/// reading are left out, so a gap in the data stays a gap in the chart.
/// With fewer readings than buckets, the readings come back unchanged.
pub fn downsample(
    readings: Vec<Reading>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    points: usize,
) -> Vec<Reading> {
    if points == 0 || readings.len() <= points || until <= since {
        return readings;
    }
    let start = since.timestamp_millis();
    let span = (until.timestamp_millis() - start).max(1);
    let bucket_of = |at: DateTime<Utc>| {
        let offset = (at.timestamp_millis() - start).clamp(0, span - 1);
        // i128: span x points overflows i64 only for absurd spans, but cheaply avoided.
        (i128::from(offset) * points as i128 / i128::from(span)) as usize
    };

    let mut out = Vec::with_capacity(points);
    let mut current: Option<(usize, Sums)> = None;
    for reading in readings {
        let bucket = bucket_of(reading.at);
        match &mut current {
            Some((b, sums)) if *b == bucket => sums.add(&reading),
            _ => {
                if let Some((_, sums)) = current.take() {
                    out.push(sums.mean());
                }
                current = Some((bucket, Sums::of(&reading)));
            }
        }
    }
    if let Some((_, sums)) = current {
        out.push(sums.mean());
    }
    out
}

#[derive(Debug)]
struct Sums {
    n: u32,
    at_millis: i128,
    /// Per quantity: (sum, how many values).
    values: BTreeMap<Quantity, (f64, u32)>,
}

impl Sums {
    fn of(r: &Reading) -> Self {
        let mut sums = Self {
            n: 0,
            at_millis: 0,
            values: BTreeMap::new(),
        };
        sums.add(r);
        sums
    }

    fn add(&mut self, r: &Reading) {
        self.n += 1;
        self.at_millis += i128::from(r.at.timestamp_millis());
        for (quantity, value) in &r.values {
            let (sum, n) = self.values.entry(*quantity).or_default();
            *sum += value;
            *n += 1;
        }
    }

    fn mean(&self) -> Reading {
        let at = (self.at_millis / i128::from(self.n)) as i64;
        Reading {
            at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
            values: self
                .values
                .iter()
                // One decimal, like the sensor: 21.333333 helps nobody.
                .map(|(q, (sum, n))| (*q, (sum / f64::from(*n) * 10.0).round() / 10.0))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const T: Quantity = Quantity::Temperature;
    const H: Quantity = Quantity::Humidity;

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap() + chrono::Duration::minutes(minute)
    }

    fn reading(minute: i64, temperature: f64, humidity: f64) -> Reading {
        Reading {
            at: at(minute),
            values: [
                (Quantity::Temperature, temperature),
                (Quantity::Humidity, humidity),
            ]
            .into(),
        }
    }

    #[test]
    fn a_day_of_ten_second_readings_becomes_one_point_per_bucket() {
        let readings: Vec<Reading> = (0..8640)
            .map(|i| Reading {
                at: at(0) + chrono::Duration::seconds(i * 10),
                ..reading(0, 20.0 + (i % 2) as f64, 40.0)
            })
            .collect();
        let points = downsample(readings, at(0), at(24 * 60), 288);
        assert_eq!(points.len(), 288);
        // Alternating 20 and 21 averages to 20.5 in every bucket.
        assert!(
            points
                .iter()
                .all(|p| p.get(T) == Some(20.5) && p.get(H) == Some(40.0))
        );
        assert!(points.windows(2).all(|w| w[0].at < w[1].at));
        // The first bucket's readings are 00:00:00..00:04:50: mean 00:02:25.
        assert_eq!(points[0].at, at(0) + chrono::Duration::seconds(145));
    }

    #[test]
    fn gaps_stay_gaps() {
        let readings = vec![
            reading(0, 20.0, 40.0),
            reading(1, 22.0, 42.0),
            reading(900, 18.0, 50.0),
        ];
        let points = downsample(readings, at(0), at(1440), 2);
        // Two readings share the first half, one is alone in the second.
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].get(T), Some(21.0));
        assert_eq!(points[0].get(H), Some(41.0));
        assert_eq!(points[1].get(T), Some(18.0));

        let sparse = vec![reading(0, 20.0, 40.0), reading(900, 19.0, 45.0)];
        let points = downsample(sparse, at(0), at(1440), 48);
        assert_eq!(points.len(), 2, "two readings are never padded to 48");
    }

    #[test]
    fn readings_outside_the_window_land_in_the_edge_buckets() {
        let readings = vec![
            reading(-5, 10.0, 10.0),
            reading(10, 20.0, 20.0),
            reading(1500, 30.0, 30.0),
        ];
        let points = downsample(readings, at(0), at(1440), 2);
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].get(T), Some(15.0));
        assert_eq!(points[1].get(T), Some(30.0));
    }

    #[test]
    fn each_quantity_is_the_mean_of_the_values_it_has() {
        let only_humidity = Reading {
            at: at(2),
            values: [(H, 50.0)].into(),
        };
        let readings = vec![
            reading(0, 20.0, 40.0),
            only_humidity,
            reading(1000, 10.0, 10.0),
        ];
        let points = downsample(readings, at(0), at(1440), 2);
        assert_eq!(points.len(), 2, "{points:?}");
        assert_eq!(
            points[0].get(T),
            Some(20.0),
            "one temperature in the bucket"
        );
        assert_eq!(points[0].get(H), Some(45.0), "two humidities in the bucket");
    }
}
