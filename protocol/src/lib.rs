//! Hearth's MQTT contract: typed topics, validated ids and payloads, shared by every part.
//!
//! Pure code only: no I/O, no async runtime. The hub, the node agent and the
//! tests all speak through these types so that the contract lives in one place.

pub mod automation;
pub mod brightness;
pub mod discovery;
pub mod id;
pub mod payload;
pub mod quantity;
pub mod sound;
pub mod topic;

pub use automation::{ActionSpec, AutomationSpec, ConditionSpec, SceneSpec, TriggerSpec};
pub use brightness::Brightness;
pub use discovery::DiscoveryTopics;
pub use id::{Id, IdError};
pub use payload::{
    Availability, ButtonEvent, ChimePlay, Climate, Command, ErrorReport, OnOff, PayloadError,
    Press, PressAction,
};
pub use quantity::{Quantity, Reading};
pub use topic::{OutputKind, OutputRef, Topic, TopicError, TopicKind, Topics};
