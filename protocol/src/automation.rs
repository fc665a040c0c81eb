//! An automation as people write it: in `hearth.toml` (`[[automations]]`),
//! and, with the same fields, as JSON over MQTT and HTTP.
//!
//! These are the wire shapes only: every field optional, unknown fields
//! refused. The hub turns a spec into a checked automation and names the
//! field when it cannot (`triggers[0].above: ...`). See docs/automations.md.
//!
//! ```toml
//! [[automations]]
//! id = "hall-motion"
//! mode = "restart"
//! triggers = [{ input = "pi-1/hall", to = "ON" }]
//! conditions = [{ sun = "down" }]
//! actions = [
//!   { output = "pi-1/light/hall", command = "ON" },
//!   { wait = { input = "pi-1/hall", to = "OFF" } },
//!   { delay_s = 120 },
//!   { output = "pi-1/light/hall", command = "OFF" },
//! ]
//! ```

use serde::{Deserialize, Serialize};

/// One automation: when any trigger fires and every condition holds, run
/// the actions in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomationSpec {
    /// `[a-z0-9_-]{1,64}`; in the config file, required. Over MQTT and
    /// HTTP the id in the topic or path is the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Off: loaded but never triggered (it can still be run by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `single` (default), `restart`, `queued` or `parallel`: what a
    /// trigger does while a run is still going.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// For `queued` and `parallel`: how many runs at once (or waiting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runs: Option<u32>,
    /// Seconds after a run starts during which triggers are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_s: Option<f64>,
    #[serde(default)]
    pub triggers: Vec<TriggerSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionSpec>,
    #[serde(default)]
    pub actions: Vec<ActionSpec>,
}

/// What starts a run. Exactly one of `button`, `output`, `input`, `node`,
/// `topic`, `climate`, `at`, `sun` or `hub` names the kind; the rest refine it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// A button id: with `action`, its presses; with `to`/`from`, its state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<String>,
    /// `single`, `double` or `long`; absent: any press.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// A node output, `node/kind/name` (`pi-1/light/lamp`): its confirmed state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// A node input, `node/name` (`pi-1/hall`): its state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// A node id: its availability (`to = "offline"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The state (or availability) before; absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The state (or availability) after; absent: any change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// An MQTT topic filter (`zigbee2mqtt/+/action`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The whole payload, trimmed, must equal this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// A JSON field of the payload, dotted (`action`, `state.power`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The field must equal this JSON value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<serde_json::Value>,
    /// Fires when the number (field, reading) rises above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// Fires when the number falls below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// How far back the number must go before it can fire again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hysteresis: Option<f64>,
    /// A node id: its climate reading named by `reading` crossing `above`/`below`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub climate: Option<String>,
    /// `temperature` or `humidity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading: Option<String>,
    /// A time: `"HH:MM[:SS]"` (with `weekdays`) or a cron expression, as chimes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<String>,
    /// IANA zone of `at`; absent: the hub's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `sunrise` or `sunset`, at the hub's `latitude`/`longitude`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sun: Option<String>,
    /// Minutes after (negative: before) the sun event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_min: Option<i32>,
    /// `start`: when the hub starts leading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
}

/// What must hold when a trigger fires. Exactly one kind per entry; a list
/// of conditions holds when all of them do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub and: Option<Vec<ConditionSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub or: Option<Vec<ConditionSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<ConditionSpec>>,
    /// A time window in the hub's zone, `"HH:MM"`; `after` > `before` spans midnight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// `mon`..`sun`, in the hub's zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekdays: Option<Vec<String>>,
    /// `up` or `down`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sun: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// With `button`, `output` or `input`: `ON` or `OFF`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// With `node`: `online` or `offline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<String>,
    /// A node id, with `reading` and `above` and/or `below`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub climate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
}

/// One step of a run. Exactly one of `output`, `publish`, `play`,
/// `delay_s`, `wait`, `enable` or `disable` names the kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// `node/kind/name`, with `command` and/or `brightness`/`brightness_pct`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// `ON`, `OFF` or `TOGGLE` (resolved from the last confirmed state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// 0..=255, for a dimmable light.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brightness: Option<u16>,
    /// 0..=100 %, for a dimmable light.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brightness_pct: Option<f64>,
    /// A topic to publish `payload` to (no wildcards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<bool>,
    /// A sound file name, played on `speakers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub play: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub speakers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<u8>,
    /// Seconds to wait before the next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_s: Option<f64>,
    /// Wait until this trigger fires (or `timeout_s` passes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<TriggerSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
    /// After a timed-out wait: go on (true) or end the run (false, default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_on_timeout: Option<bool>,
    /// A scene id to apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scene: Option<String>,
    /// An automation id to switch on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable: Option<String>,
}

/// A scene: a named set of output states and brightnesses, applied at once.
///
/// ```toml
/// [[scenes]]
/// id = "evening"
/// outputs = [
///   { output = "pi-1/light/lamp", brightness_pct = 30 },
///   { output = "pi-1/light/ceiling", command = "OFF" },
/// ]
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SceneSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Each an `output` action: `command` and/or a brightness.
    pub outputs: Vec<ActionSpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_automation_reads_back_as_written() {
        let json = r#"{"id":"hall","mode":"restart",
            "triggers":[{"input":"pi-1/hall","to":"ON"}],
            "conditions":[{"sun":"down"}],
            "actions":[{"output":"pi-1/light/hall","command":"ON"},{"delay_s":120}]}"#;
        let spec: AutomationSpec = serde_json::from_str(json).unwrap();
        assert_eq!(spec.triggers[0].input.as_deref(), Some("pi-1/hall"));
        assert_eq!(spec.actions[1].delay_s, Some(120.0));
        let again: AutomationSpec =
            serde_json::from_slice(&serde_json::to_vec(&spec).unwrap()).unwrap();
        assert_eq!(again, spec);
    }

    #[test]
    fn an_unknown_field_is_named() {
        let err = serde_json::from_str::<AutomationSpec>(r#"{"triggers":[{"buton":"x"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("buton"), "{err}");
    }
}
