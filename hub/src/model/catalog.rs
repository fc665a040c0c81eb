//! A change asked of the automations and scenes, from MQTT or HTTP, and why
//! one can be refused. Plain data.

use hearth_protocol::{AutomationSpec, Command, Id, SceneSpec};

/// What a caller asks of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogRequest {
    /// Create or replace (`None`: delete).
    Automation(Id, Option<AutomationSpec>),
    Enabled(Id, Command),
    /// Run an automation's actions now.
    Run(Id),
    /// Create or replace (`None`: delete).
    Scene(Id, Option<SceneSpec>),
    Apply(Id),
}

/// Why a catalogue change was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// A field the rules refuse, named (`triggers[0].above: ...`).
    #[error("{0}")]
    Invalid(String),
    /// No automation or scene with that id.
    #[error("{0}")]
    Unknown(String),
}
