//! What a decision produces, as plain data: messages to publish, rows to write, how to count it.
//!
//! Decisions (`crate::decide`) return these; the tasks (`crate::tasks`)
//! carry them out. Nothing here does I/O.

use chrono::{DateTime, Utc};
use hearth_protocol::{
    Availability, Id, OnOff, OutputRef, PayloadError, PressAction, Quantity, TopicError,
};
use rumqttc::QoS;

use super::house::{ButtonRecord, NodeRecord, OutputRecord};

/// A message the hub publishes (not rumqttc's `Publication`, which is a wire event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: QoS,
    pub retain: bool,
}

impl Publication {
    pub fn retained(topic: String, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            topic,
            payload: payload.into(),
            qos: QoS::AtLeastOnce,
            retain: true,
        }
    }

    pub fn event(topic: String, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            topic,
            payload: payload.into(),
            qos: QoS::AtLeastOnce,
            retain: false,
        }
    }
}

/// What kind of message came in, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    ButtonSet,
    ButtonPress,
    Availability,
    Climate,
    OutputState,
    InputState,
    Chime,
    Automation,
    Other,
    Invalid,
    Duplicate,
    /// A retained command or press the broker replayed: old news, ignored.
    Replayed,
}

impl MessageKind {
    pub const ALL: [MessageKind; 12] = [
        MessageKind::ButtonSet,
        MessageKind::ButtonPress,
        MessageKind::Availability,
        MessageKind::Climate,
        MessageKind::OutputState,
        MessageKind::InputState,
        MessageKind::Chime,
        MessageKind::Automation,
        MessageKind::Other,
        MessageKind::Invalid,
        MessageKind::Duplicate,
        MessageKind::Replayed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            MessageKind::ButtonSet => "button_set",
            MessageKind::ButtonPress => "button_press",
            MessageKind::Availability => "availability",
            MessageKind::Climate => "climate",
            MessageKind::OutputState => "output_state",
            MessageKind::InputState => "input_state",
            MessageKind::Chime => "chime",
            MessageKind::Automation => "automation",
            MessageKind::Other => "other",
            MessageKind::Invalid => "invalid",
            MessageKind::Duplicate => "duplicate",
            MessageKind::Replayed => "replayed",
        }
    }
}

/// How a message reached the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Published while the hub was subscribed: news to act on.
    Live,
    /// A retained message the broker replayed because the hub subscribed
    /// (MQTT sets the retain flag only then): old news. States are taken
    /// in; commands, presses and rules are not run again.
    Replayed,
}

/// Why a message was refused. The text is what `hearth/hub/error` and the
/// log say; the variant is what `/metrics` counts it under.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// A topic under one of the hub's filters that is not part of the
    /// contract (a bad id, an unknown output kind).
    #[error("{0}")]
    Topic(#[from] TopicError),
    /// A payload the topic's type cannot take.
    #[error("{0}")]
    Payload(#[from] PayloadError),
    /// A chime change the chime rules refuse (an invalid field, an unknown
    /// chime) or the database could not store.
    #[error("{0}")]
    Chime(String),
    /// An automation or scene change the automation rules refuse (a bad
    /// field, an unknown id).
    #[error("{0}")]
    Automation(String),
}

/// Everything one message causes.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub publish: Vec<Publication>,
    pub writes: Vec<Write>,
    /// Why the message was rejected, if it was.
    pub error: Option<Rejection>,
    /// Names of the rules that fired.
    pub fired: Vec<String>,
    /// A confirmed output state change, for HTTP callers waiting on it.
    pub confirmed: Option<(OutputRef, OnOff)>,
    pub kind: Option<MessageKind>,
    /// What changed in the house, for automations (`crate::decide::automations`).
    pub events: Vec<HouseEvent>,
}

/// A change in the house an automation can be triggered by. Only live
/// changes: a replayed retained state is the hub learning, not news.
#[derive(Debug, Clone, PartialEq)]
pub enum HouseEvent {
    Press {
        button: Id,
        action: PressAction,
    },
    Button {
        button: Id,
        from: Option<OnOff>,
        to: OnOff,
    },
    Output {
        output: OutputRef,
        from: Option<OnOff>,
        to: OnOff,
    },
    Input {
        node: Id,
        name: Id,
        from: Option<OnOff>,
        to: OnOff,
    },
    Availability {
        node: Id,
        from: Option<Availability>,
        to: Availability,
    },
    Reading {
        node: Id,
        quantity: Quantity,
        value: f64,
    },
    /// The message itself, for topic triggers: the core hands its topic
    /// and payload over (they are not copied here).
    Message,
}

impl Outcome {
    pub fn kind(kind: MessageKind) -> Self {
        Self {
            kind: Some(kind),
            ..Self::default()
        }
    }
}

/// One change to persist. Writes to the same row within a batch coalesce.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Button(ButtonRecord),
    Output(OutputRecord),
    Node(NodeRecord),
    /// One reading for the node's history.
    Reading {
        node: Id,
        reading: hearth_protocol::Reading,
    },
    /// A button forgotten: its row goes.
    ForgetButton(Id),
    /// An output its node no longer has (its retained state was cleared).
    ForgetOutput(OutputRef),
    /// A node retired (its retained availability was cleared): its row,
    /// its outputs and its climate history go.
    ForgetNode(Id),
    /// A message id seen, so a redelivery is recognised.
    MessageId {
        id: String,
        at: DateTime<Utc>,
    },
    /// An automation's or scene's row (its spec as JSON), or its deletion.
    Catalog(CatalogWrite),
    /// One logbook row: never coalesced, every entry is kept.
    Logbook(super::logbook::LogEntry),
}

/// A change to the automations, scenes, waiting runs or traces, as rows.
/// Rare next to presses, so written one statement each.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogWrite {
    Automation {
        id: Id,
        spec: String,
        source: &'static str,
    },
    /// Its row, waiting runs and traces go.
    ForgetAutomation(Id),
    Scene {
        id: Id,
        spec: String,
        source: &'static str,
    },
    ForgetScene(Id),
    /// A run waiting on a delay or a wait (`PendingRun` as JSON).
    Run {
        automation: Id,
        run: u64,
        state: String,
    },
    RunGone {
        automation: Id,
        run: u64,
    },
    Trace {
        automation: Id,
        run: u64,
        started_at: DateTime<Utc>,
        outcome: &'static str,
        trace: String,
    },
    /// Its time and sun triggers were dealt with up to `until`.
    TimersUntil {
        automation: Id,
        until: DateTime<Utc>,
    },
}
