//! Counters, gauges and a latency histogram, rendered in Prometheus text format on `/metrics`.
//!
//! A handful of atomics is all the hub needs; a metrics framework would cost
//! more binary and memory on a Pi than it saves here.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use crate::model::effects::{MessageKind, Rejection};

/// Upper bounds (seconds) of the database write latency buckets.
const WRITE_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Reasons an error is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorReason {
    /// A payload the topic cannot take (the label predates the split).
    InvalidMessage,
    /// A topic under a hub filter that is not part of the contract.
    InvalidTopic,
    /// A chime change refused or not stored.
    InvalidChime,
    /// An automation or scene change refused.
    InvalidAutomation,
    DatabaseWrite,
    Publish,
    BrokerConnection,
}

impl From<&Rejection> for ErrorReason {
    fn from(rejection: &Rejection) -> Self {
        match rejection {
            Rejection::Payload(_) => Self::InvalidMessage,
            Rejection::Topic(_) => Self::InvalidTopic,
            Rejection::Chime(_) => Self::InvalidChime,
            Rejection::Automation(_) => Self::InvalidAutomation,
        }
    }
}

impl ErrorReason {
    const ALL: [ErrorReason; 7] = [
        Self::InvalidMessage,
        Self::InvalidTopic,
        Self::InvalidChime,
        Self::InvalidAutomation,
        Self::DatabaseWrite,
        Self::Publish,
        Self::BrokerConnection,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::InvalidMessage => "invalid_message",
            Self::InvalidTopic => "invalid_topic",
            Self::InvalidChime => "invalid_chime",
            Self::InvalidAutomation => "invalid_automation",
            Self::DatabaseWrite => "database_write",
            Self::Publish => "publish",
            Self::BrokerConnection => "broker_connection",
        }
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    messages_in: [AtomicU64; MessageKind::ALL.len()],
    pub messages_out: AtomicU64,
    pub rule_firings: AtomicU64,
    /// Automation runs going now (delayed or waiting included).
    pub automation_runs: AtomicU64,
    errors: [AtomicU64; ErrorReason::ALL.len()],
    write_buckets: [AtomicU64; WRITE_BUCKETS.len()],
    write_count: AtomicU64,
    write_micros: AtomicU64,
    pub writes_coalesced: AtomicU64,
    pub write_queue_depth: AtomicUsize,
    pub broker_connected: AtomicBool,
    /// The broker routes our filters to this connection (SUBACK seen, or a
    /// kept session): until then a press would be dropped, not held for us.
    pub subscribed: AtomicBool,
    pub database_ok: AtomicBool,
    /// The last batch failed to commit (a full disk answers a ping fine).
    pub writes_failing: AtomicBool,
}

impl Metrics {
    pub fn message_in(&self, kind: MessageKind) {
        if let Some(i) = MessageKind::ALL.iter().position(|k| *k == kind) {
            self.messages_in[i].fetch_add(1, Relaxed);
        }
    }

    pub fn messages_in(&self, kind: MessageKind) -> u64 {
        MessageKind::ALL
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.messages_in[i].load(Relaxed))
    }

    pub fn error(&self, reason: ErrorReason) {
        if let Some(i) = ErrorReason::ALL.iter().position(|r| *r == reason) {
            self.errors[i].fetch_add(1, Relaxed);
        }
    }

    pub fn observe_write(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (i, bound) in WRITE_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.write_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.write_count.fetch_add(1, Relaxed);
        self.write_micros
            .fetch_add(took.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP hearth_messages_in_total MQTT messages received by the hub, by kind."
        );
        let _ = writeln!(out, "# TYPE hearth_messages_in_total counter");
        for (i, kind) in MessageKind::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "hearth_messages_in_total{{kind=\"{}\"}} {}",
                kind.label(),
                self.messages_in[i].load(Relaxed)
            );
        }
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            &mut out,
            "hearth_messages_out_total",
            "MQTT messages published by the hub.",
            self.messages_out.load(Relaxed),
        );
        counter(
            &mut out,
            "hearth_rule_firings_total",
            "Rules and automation runs started.",
            self.rule_firings.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP hearth_automation_runs Automation runs going (delayed or waiting included).\n\
             # TYPE hearth_automation_runs gauge\nhearth_automation_runs {}",
            self.automation_runs.load(Relaxed)
        );
        counter(
            &mut out,
            "hearth_writes_coalesced_total",
            "Row writes saved by coalescing a batch.",
            self.writes_coalesced.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP hearth_errors_total Errors by reason.\n# TYPE hearth_errors_total counter"
        );
        for (i, reason) in ErrorReason::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "hearth_errors_total{{reason=\"{}\"}} {}",
                reason.label(),
                self.errors[i].load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP hearth_db_write_seconds Time to commit one batch of writes.\n# TYPE hearth_db_write_seconds histogram"
        );
        for (i, bound) in WRITE_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "hearth_db_write_seconds_bucket{{le=\"{bound}\"}} {}",
                self.write_buckets[i].load(Relaxed)
            );
        }
        let count = self.write_count.load(Relaxed);
        let _ = writeln!(out, "hearth_db_write_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "hearth_db_write_seconds_sum {}",
            self.write_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "hearth_db_write_seconds_count {count}");
        let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            &mut out,
            "hearth_queue_depth",
            "Message effects waiting to be written to the database.",
            self.write_queue_depth.load(Relaxed) as u64,
        );
        gauge(
            &mut out,
            "hearth_broker_connected",
            "1 while the hub is connected to the broker.",
            self.broker_connected.load(Relaxed).into(),
        );
        gauge(
            &mut out,
            "hearth_database_ok",
            "1 while the last database write or check succeeded.",
            self.database_ok.load(Relaxed).into(),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.message_in(MessageKind::ButtonPress);
        m.message_in(MessageKind::ButtonPress);
        m.error(ErrorReason::InvalidMessage);
        m.observe_write(Duration::from_micros(1500));
        m.observe_write(Duration::from_millis(30));
        let text = m.render();
        assert!(
            text.contains("hearth_messages_in_total{kind=\"button_press\"} 2"),
            "{text}"
        );
        assert!(text.contains("hearth_errors_total{reason=\"invalid_message\"} 1"));
        assert!(text.contains("hearth_db_write_seconds_bucket{le=\"0.001\"} 0"));
        assert!(text.contains("hearth_db_write_seconds_bucket{le=\"0.002\"} 1"));
        assert!(text.contains("hearth_db_write_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("hearth_db_write_seconds_count 2"));
    }
}
