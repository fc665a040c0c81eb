//! The agent's status: counters and uptime, retained on `<prefix>/node/<node>/status`.
//!
//! This topic is an addition to the topic contract in DESIGN.md. Payload:
//!
//! ```json
//! {"node":"pi-1","version":"0.1.0","simulated":false,
//!  "started_at":"2026-01-01T07:00:00.000Z","uptime_secs":3600,
//!  "climate":{"reads_ok":118,"gave_up":0,"last_error":"checksum mismatch: ...",
//!             "failures":{"bad_frame":0,"checksum":3,"io":0,"out_of_range":1,"timeout":0,"unavailable":0}},
//!  "commands":{"accepted":12,"rejected":1},
//!  "speaker":{"played":2,"failed":0,"dropped":0,"rejected":1}}
//! ```
//!
//! `failures` counts failed read attempts by reason (each retry counts);
//! `gave_up` counts intervals in which every attempt failed; `last_error` is
//! the latest failure since the last good reading, `null` once a read
//! succeeds, so it tells whether the sensor is failing now. It is published
//! on every (re)connect, after every climate cycle and speaker event, and
//! every [`STATUS_INTERVAL`]; `availability` says whether it is current.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hearth_protocol::payload::rfc3339;
use hearth_protocol::{Id, Topics};
use serde::Serialize;

use crate::sensor::FailureReason;

/// How often the status is refreshed when nothing else triggers it.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(60);

/// `<prefix>/node/<node>/status`.
pub fn topic(topics: &Topics, node: &Id) -> String {
    topics.filter(&format!("node/{node}/status"))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClimateCounters {
    pub reads_ok: u64,
    pub gave_up: u64,
    pub last_error: Option<String>,
    pub failures: BTreeMap<&'static str, u64>,
}

impl Default for ClimateCounters {
    fn default() -> Self {
        Self {
            reads_ok: 0,
            gave_up: 0,
            last_error: None,
            // Every reason present from the start, so dashboards see zeros
            // instead of missing keys.
            failures: FailureReason::ALL.iter().map(|r| (r.as_str(), 0)).collect(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CommandCounters {
    pub accepted: u64,
    pub rejected: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SpeakerCounters {
    pub played: u64,
    pub failed: u64,
    /// Dropped because the queue was full.
    pub dropped: u64,
    /// Refused: bad sound name, missing file.
    pub rejected: u64,
}

/// Everything the agent counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub climate: ClimateCounters,
    pub commands: CommandCounters,
    pub speaker: SpeakerCounters,
}

impl Counters {
    /// A good reading: the sensor works again, so an old error no longer
    /// describes it (the failure counts keep the history).
    pub fn climate_read(&mut self) {
        self.climate.reads_ok += 1;
        self.climate.last_error = None;
    }

    pub fn climate_failed(&mut self, reason: FailureReason, error: String) {
        *self.climate.failures.entry(reason.as_str()).or_default() += 1;
        self.climate.last_error = Some(error);
    }
}

#[derive(Debug, Serialize)]
struct Status<'a> {
    node: &'a str,
    version: &'static str,
    simulated: bool,
    started_at: String,
    uptime_secs: u64,
    #[serde(flatten)]
    counters: &'a Counters,
}

/// The status payload.
pub fn payload(
    node: &Id,
    simulated: bool,
    started_at: DateTime<Utc>,
    uptime: Duration,
    counters: &Counters,
) -> Vec<u8> {
    let status = Status {
        node: node.as_str(),
        version: env!("CARGO_PKG_VERSION"),
        simulated,
        started_at: rfc3339(started_at),
        uptime_secs: uptime.as_secs(),
        counters,
    };
    // Plain structs of numbers and strings always serialize.
    serde_json::to_vec(&status).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_good_reading_clears_the_last_error_but_not_the_counts() {
        let node = Id::new("pi-1").unwrap();
        let json = |counters: &Counters| -> serde_json::Value {
            serde_json::from_slice(&payload(&node, false, Utc::now(), Duration::ZERO, counters))
                .unwrap()
        };
        let mut counters = Counters::default();
        counters.climate_failed(FailureReason::Timeout, "no answer from the sensor".into());
        assert_eq!(
            json(&counters)["climate"]["last_error"],
            "no answer from the sensor"
        );
        counters.climate_read();
        let status = json(&counters);
        assert_eq!(status["climate"]["last_error"], serde_json::Value::Null);
        assert_eq!(status["climate"]["reads_ok"], 1);
        assert_eq!(status["climate"]["failures"]["timeout"], 1);
    }

    #[test]
    fn status_json_has_counters_uptime_and_version() {
        let mut counters = Counters::default();
        counters.climate.reads_ok = 3;
        counters.climate_failed(FailureReason::Checksum, "checksum mismatch".into());
        counters.climate_failed(FailureReason::Checksum, "checksum mismatch".into());
        counters.commands.rejected = 1;
        let node = Id::new("pi-1").unwrap();
        let started = DateTime::parse_from_rfc3339("2026-01-01T07:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let json: serde_json::Value = serde_json::from_slice(&payload(
            &node,
            true,
            started,
            Duration::from_secs(90),
            &counters,
        ))
        .unwrap();
        assert_eq!(json["node"], "pi-1");
        assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(json["uptime_secs"], 90);
        assert_eq!(json["started_at"], "2026-01-01T07:00:00.000Z");
        assert_eq!(json["climate"]["reads_ok"], 3);
        assert_eq!(json["climate"]["failures"]["checksum"], 2);
        assert_eq!(json["climate"]["failures"]["timeout"], 0);
        assert_eq!(json["climate"]["last_error"], "checksum mismatch");
        assert_eq!(json["commands"]["rejected"], 1);
        assert_eq!(json["speaker"]["dropped"], 0);
        let topics = Topics::default();
        assert_eq!(topic(&topics, &node), "hearth/node/pi-1/status");
    }
}
