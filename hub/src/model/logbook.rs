//! A logbook entry: one change to the house, when it happened, what caused it and how it came out.
//!
//! Plain data. Decisions make entries (`crate::decide::logbook`), the
//! writer stores them with the rest of a batch (`crate::store::logbook`),
//! and `GET /api/v1/logbook` reads them back, newest first.

use chrono::{DateTime, Utc};

/// What kind of change an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    /// A button was pressed (`single`, `double`, `long`).
    Press,
    /// A button, output or input changed state.
    State,
    /// The hub sent a command to an output.
    Command,
    /// A node went online or offline.
    Availability,
    /// An automation run ended.
    Run,
    /// A chime played.
    Play,
}

impl LogKind {
    pub const ALL: [LogKind; 6] = [
        LogKind::Press,
        LogKind::State,
        LogKind::Command,
        LogKind::Availability,
        LogKind::Run,
        LogKind::Play,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Press => "press",
            LogKind::State => "state",
            LogKind::Command => "command",
            LogKind::Availability => "availability",
            LogKind::Run => "run",
            LogKind::Play => "play",
        }
    }

    pub fn parse(text: &str) -> Option<LogKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// One row of the logbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub at: DateTime<Utc>,
    /// What changed, as `<kind>:<name>`: `button:desk`,
    /// `output:pi-1/light/lamp`, `input:pi-1/hall`, `node:pi-1`,
    /// `automation:hall-motion`, `chime:tea`.
    pub entity: String,
    pub kind: LogKind,
    /// How it came out: `single`, `ON`, `offline`, `done`.
    pub detail: String,
    /// What caused it: `mqtt`, `http`, `agent`, `rule:<name>`,
    /// `automation`, `schedule`.
    pub source: String,
}

impl LogEntry {
    pub fn new(
        at: DateTime<Utc>,
        entity: String,
        kind: LogKind,
        detail: impl Into<String>,
        source: impl Into<String>,
    ) -> Self {
        Self {
            at,
            entity,
            kind,
            detail: detail.into(),
            source: source.into(),
        }
    }
}

/// Which way a message reached the hub, for an entry's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Over MQTT: a button or shell (`mqtt`), or a node agent reporting
    /// its outputs, inputs and availability (`agent`).
    Mqtt,
    /// Through the HTTP API (`http`).
    Http,
}

/// Where a page of the logbook ends: the last entry's time and id. The
/// next page holds the entries strictly older (by time, then id), so
/// entries written while a reader pages never shift what it sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at_ms: i64,
    pub id: i64,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.at_ms, self.id)
    }
}

impl std::str::FromStr for Cursor {
    type Err = ();

    /// `<at ms>-<id>`, as `Display` writes it.
    fn from_str(text: &str) -> Result<Self, ()> {
        let (at, id) = text.split_once('-').ok_or(())?;
        let at_ms = at.parse().map_err(|_| ())?;
        let id = id.parse().map_err(|_| ())?;
        Ok(Cursor { at_ms, id })
    }
}

/// Which entries a page holds: all filters optional, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    pub entity: Option<String>,
    /// Entries at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Entries before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Entries older than this cursor (the previous page's `next`).
    pub before: Option<Cursor>,
    pub limit: u32,
}

/// One stored entry, with the id its cursor names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub id: i64,
    pub entry: LogEntry,
}

/// A page of entries, newest first, and where the next one starts (`None`
/// once there are no older entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    pub rows: Vec<LogRow>,
    pub next: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_what_they_print() {
        let cursor = Cursor {
            at_ms: 1_764_000_000_123,
            id: 42,
        };
        assert_eq!(cursor.to_string().parse::<Cursor>(), Ok(cursor));
        for bad in ["", "12", "a-1", "1-b", "1-2-3"] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn kinds_read_back_their_names() {
        for kind in LogKind::ALL {
            assert_eq!(LogKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(LogKind::parse("nope"), None);
    }
}
