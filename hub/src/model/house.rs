//! The hub's picture of the house: buttons, node outputs and nodes, as plain data.
//!
//! The database holds the durable copy; this in-memory copy answers HTTP
//! reads and resolves `TOGGLE` without a query on the hot path.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hearth_protocol::{Availability, Brightness, Id, OnOff, OutputRef, PressAction};
use serde::Serialize;

use crate::model::readings::Latest;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ButtonRecord {
    pub id: Id,
    pub state: OnOff,
    pub changed_at: DateTime<Utc>,
    pub last_action: Option<PressAction>,
    pub last_press_at: Option<DateTime<Utc>>,
    pub press_count: i64,
}

impl ButtonRecord {
    pub fn new(id: Id, at: DateTime<Utc>) -> Self {
        Self {
            id,
            state: OnOff::Off,
            changed_at: at,
            last_action: None,
            last_press_at: None,
            press_count: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputRecord {
    #[serde(skip)]
    pub output: OutputRef,
    pub state: OnOff,
    pub changed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeRecord {
    pub id: Id,
    pub availability: Option<Availability>,
    pub last_seen: Option<DateTime<Utc>>,
    /// The last reading of each quantity (JSON: the node's `climate`).
    #[serde(rename = "climate")]
    pub readings: Latest,
}

impl NodeRecord {
    pub fn new(id: Id) -> Self {
        Self {
            id,
            availability: None,
            last_seen: None,
            readings: Latest::default(),
        }
    }
}

/// Everything the hub knows right now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct House {
    pub buttons: BTreeMap<Id, ButtonRecord>,
    pub outputs: BTreeMap<OutputRef, OutputRecord>,
    pub nodes: BTreeMap<Id, NodeRecord>,
    /// Node inputs (motion, contact) by (node, input): learned from their
    /// retained states, so not stored.
    pub inputs: BTreeMap<(Id, Id), OnOff>,
    /// Dimmable lights' levels, from their agents' retained
    /// `.../brightness`: learned like inputs, so not stored.
    pub brightness: BTreeMap<OutputRef, Brightness>,
}

impl House {
    /// The last confirmed state of `output`; unknown outputs count as off.
    pub fn output_state(&self, output: &OutputRef) -> OnOff {
        self.outputs
            .get(output)
            .map(|o| o.state)
            .unwrap_or_default()
    }
}
