//! Home Assistant MQTT discovery: the shape every Hearth discovery message shares, hub and agent alike.
//!
//! Each Hearth device (the hub, every node agent) publishes its configs
//! under its own node level, `<prefix>/<component>/<device>/<object>/config`,
//! where `<device>` is also the device's identifier (`hearth_hub`,
//! `hearth_node_<node>`). That one level lets a publisher subscribe to
//! exactly its own configs (`<prefix>/+/<device>/+/config`) and clear the
//! ones it no longer has, without a state file, and keeps two publishers
//! from ever touching each other's topics: node device ids always start
//! with `hearth_node_`, the hub's never does.
//!
//! What each entity says is decided by the hub and the agent; this module
//! only holds the common vocabulary, so both serialize the same way.

use serde::Serialize;

use crate::id::Id;
use crate::topic::{DEFAULT_DISCOVERY_PREFIX, TopicError, Topics};

/// `manufacturer` of every Hearth device.
pub const MANUFACTURER: &str = "Hearth";
/// Identifier (and discovery node level) of the hub's device.
pub const HUB_DEVICE_ID: &str = "hearth_hub";

/// Identifier (and discovery node level) of a node agent's device.
pub fn node_device_id(node: &Id) -> String {
    format!("hearth_node_{node}")
}

/// Home Assistant platforms Hearth publishes configs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    BinarySensor,
    Button,
    DeviceAutomation,
    Event,
    Light,
    Scene,
    Sensor,
    Switch,
}

impl Component {
    pub const ALL: [Component; 8] = [
        Self::BinarySensor,
        Self::Button,
        Self::DeviceAutomation,
        Self::Event,
        Self::Light,
        Self::Scene,
        Self::Sensor,
        Self::Switch,
    ];

    /// The topic level Home Assistant knows the platform by.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BinarySensor => "binary_sensor",
            Self::Button => "button",
            Self::DeviceAutomation => "device_automation",
            Self::Event => "event",
            Self::Light => "light",
            Self::Scene => "scene",
            Self::Sensor => "sensor",
            Self::Switch => "switch",
        }
    }
}

/// The device block: groups entities in Home Assistant's device page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Device {
    pub identifiers: Vec<String>,
    pub name: String,
    pub model: String,
    pub manufacturer: String,
    pub sw_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_device: Option<String>,
    /// "Visit" on Home Assistant's device page: the hub's dashboard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration_url: Option<String>,
}

/// The origin block: Home Assistant logs which application sent a config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub name: String,
    pub sw_version: String,
}

/// One discovery config. Every field is optional so one type serves every
/// platform; each builder fills what its platform needs, and the test
/// suite checks the result with Home Assistant's own schemas.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Config {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_id: Option<String>,
    /// The entity id Home Assistant gives a new entity (`light.x`); set by
    /// [`Message::config`] from the unique id (see [`default_entity_id`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_entity_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_category: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_attributes_topic: Option<String>,
    /// Dimmable lights: where the level goes, and where it is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brightness_command_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brightness_state_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brightness_scale: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_on: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_off: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_press: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_of_measurement: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_display_precision: Option<u8>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_types: Vec<&'static str>,
    /// Device triggers: always `"trigger"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automation_type: Option<&'static str>,
    /// Device triggers: the topic that fires them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Device triggers: what happened (`button_short_press`, ...).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub trigger_type: Option<&'static str>,
    /// Device triggers: which part of the device (a button's id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    /// Device triggers: the value (after `value_template`) that fires them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_available: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_not_available: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos: Option<u8>,
    pub device: Device,
    pub origin: Origin,
}

/// The entity id a new entity gets: `<component>.<unique id as a slug>`.
///
/// Home Assistant 2025.10 deprecated `object_id` and since 2026.4 names
/// entities by `default_entity_id` alone. Hearth sent its unique id as
/// `object_id`, so the slug of the unique id keeps every entity id the same
/// as before (`light.hearth_node_pi_1_light_red`); Home Assistant before
/// 2025.10 ignores the key and names new entities from device and entity
/// name. A slug is what Home Assistant's `cv.entity_id` accepts: `a-z`,
/// `0-9` and single inner underscores.
pub fn default_entity_id(component: Component, unique_id: &str) -> String {
    let mut slug = String::with_capacity(unique_id.len());
    for c in unique_id.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('_') {
            slug.push('_');
        }
    }
    while slug.ends_with('_') {
        slug.pop();
    }
    if slug.is_empty() {
        slug.push_str("hearth");
    }
    format!("{}.{slug}", component.as_str())
}

/// A retained discovery message: a config, or an empty payload that
/// removes the entity from Home Assistant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
}

impl Message {
    /// The config `config` for `component`, object `object` of `config.device`.
    pub fn config(
        topics: &DiscoveryTopics,
        component: Component,
        object: &str,
        config: &Config,
    ) -> Self {
        let device = config
            .device
            .identifiers
            .first()
            .map_or(HUB_DEVICE_ID, String::as_str);
        let mut config = config.clone();
        if component != Component::DeviceAutomation && config.default_entity_id.is_none() {
            config.default_entity_id = config
                .unique_id
                .as_deref()
                .map(|unique| default_entity_id(component, unique));
        }
        Self {
            topic: topics.device_config(component, device, object),
            // A struct of strings and numbers always serializes.
            payload: serde_json::to_vec(&config).unwrap_or_default(),
        }
    }

    /// Removes what `topic` configured.
    pub fn removal(topic: String) -> Self {
        Self {
            topic,
            payload: Vec::new(),
        }
    }

    pub fn is_removal(&self) -> bool {
        self.payload.is_empty()
    }
}

/// What a message on a publisher's discovery subscriptions asks of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// Home Assistant (re)started: send every config and current state.
    Resend,
    /// A config of ours that we no longer have: clear this topic.
    Clear(String),
    /// Nothing to do (Home Assistant going offline, our own configs echoed).
    Nothing,
}

/// Decides what a message on `status` or on `device`'s own config topics
/// means, given the config topics the publisher has now. `None`: the
/// message is not about discovery at all.
pub fn react(
    topics: &DiscoveryTopics,
    device: &str,
    current: &std::collections::BTreeSet<String>,
    topic: &str,
    payload: &[u8],
) -> Option<Reaction> {
    if topic == topics.status() {
        let online = std::str::from_utf8(payload).is_ok_and(|p| p.trim() == "online");
        return Some(if online {
            Reaction::Resend
        } else {
            Reaction::Nothing
        });
    }
    let (_, node, _) = topics.parse_device_config(topic)?;
    if node != device {
        return None;
    }
    Some(if payload.is_empty() || current.contains(topic) {
        Reaction::Nothing
    } else {
        Reaction::Clear(topic.to_owned())
    })
}

/// Home Assistant MQTT discovery topics: `<prefix>/<component>/<object_id>/config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryTopics {
    prefix: String,
}

impl Default for DiscoveryTopics {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_DISCOVERY_PREFIX.to_owned(),
        }
    }
}

impl DiscoveryTopics {
    pub fn new(prefix: &str) -> Result<Self, TopicError> {
        Topics::new(prefix).map(|t| Self {
            prefix: t.prefix().to_owned(),
        })
    }

    /// `<prefix>/<component>/<object_id>/config`; `component` is an HA platform
    /// such as `sensor` or `light`.
    pub fn config(&self, component: &str, object_id: &Id) -> String {
        format!("{}/{component}/{object_id}/config", self.prefix)
    }

    /// Where Home Assistant publishes its birth (`online`) and will (`offline`).
    pub fn status(&self) -> String {
        format!("{}/status", self.prefix)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>/<component>/<device>/<object>/config`: a config under the
    /// node level Home Assistant allows, here the publishing device's id.
    pub fn device_config(&self, component: Component, device: &str, object: &str) -> String {
        format!(
            "{}/{}/{device}/{object}/config",
            self.prefix,
            component.as_str()
        )
    }

    /// Every config `device` published: `<prefix>/+/<device>/+/config`.
    pub fn device_filter(&self, device: &str) -> String {
        format!("{}/+/{device}/+/config", self.prefix)
    }

    /// (component, device, object) of a config topic with a node level.
    pub fn parse_device_config<'t>(&self, topic: &'t str) -> Option<(&'t str, &'t str, &'t str)> {
        let rest = topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('/')?;
        match rest.split('/').collect::<Vec<_>>().as_slice() {
            [component, device, object, "config"] => Some((component, device, object)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn device(id: &str) -> Device {
        Device {
            identifiers: vec![id.to_owned()],
            name: "pi-1".into(),
            model: "hearth-node-agent".into(),
            manufacturer: MANUFACTURER.into(),
            sw_version: "0.1.0".into(),
            via_device: Some(HUB_DEVICE_ID.into()),
            configuration_url: None,
        }
    }

    #[test]
    fn configs_go_under_their_device_and_skip_unset_fields() {
        let topics = DiscoveryTopics::default();
        let config = Config {
            name: Some("red".into()),
            unique_id: Some("hearth_node_pi-1_light_red".into()),
            device: device("hearth_node_pi-1"),
            origin: Origin {
                name: "hearth-node-agent".into(),
                sw_version: "0.1.0".into(),
            },
            trigger_type: Some("button_short_press"),
            ..Config::default()
        };
        let message = Message::config(&topics, Component::Light, "light_red", &config);
        assert_eq!(
            message.topic,
            "homeassistant/light/hearth_node_pi-1/light_red/config"
        );
        let json: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(json["name"], "red");
        assert_eq!(json["type"], "button_short_press");
        assert_eq!(json["device"]["via_device"], "hearth_hub");
        assert!(json.get("state_topic").is_none());
        assert!(json.get("event_types").is_none());
        assert_eq!(
            json["default_entity_id"], "light.hearth_node_pi_1_light_red",
            "the entity id the old object_id gave"
        );
        assert!(json.get("object_id").is_none(), "object_id is deprecated");
    }

    #[test]
    fn default_entity_ids_are_slugs_home_assistant_accepts() {
        for (component, unique, want) in [
            (
                Component::Light,
                "hearth_node_pi-1_light_red",
                "light.hearth_node_pi_1_light_red",
            ),
            (
                Component::Sensor,
                "hearth_hub_clock",
                "sensor.hearth_hub_clock",
            ),
            (Component::Switch, "x--y__z-", "switch.x_y_z"),
            (Component::Event, "Hearth_Button-A", "event.hearth_button_a"),
            (Component::Button, "-_-", "button.hearth"),
        ] {
            assert_eq!(default_entity_id(component, unique), want, "{unique}");
        }
        let trigger = Config {
            unique_id: Some("x".into()),
            device: device("hearth_hub"),
            ..Config::default()
        };
        let message = Message::config(
            &DiscoveryTopics::default(),
            Component::DeviceAutomation,
            "x",
            &trigger,
        );
        let json: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        assert!(
            json.get("default_entity_id").is_none(),
            "device triggers are no entities: {json}"
        );
    }

    #[test]
    fn reactions_to_birth_and_to_our_own_config_topics() {
        let topics = DiscoveryTopics::default();
        let ours = "homeassistant/light/hearth_node_pi-1/light_red/config";
        let gone = "homeassistant/light/hearth_node_pi-1/light_blue/config";
        let current: BTreeSet<String> = [ours.to_owned()].into();
        let react = |topic: &str, payload: &str| {
            react(
                &topics,
                "hearth_node_pi-1",
                &current,
                topic,
                payload.as_bytes(),
            )
        };
        assert_eq!(
            react("homeassistant/status", "online"),
            Some(Reaction::Resend)
        );
        assert_eq!(
            react("homeassistant/status", "offline"),
            Some(Reaction::Nothing)
        );
        assert_eq!(react(ours, "{}"), Some(Reaction::Nothing));
        assert_eq!(react(gone, "{}"), Some(Reaction::Clear(gone.to_owned())));
        assert_eq!(react(gone, ""), Some(Reaction::Nothing), "already cleared");
        // Another device's configs and other topics are none of our business.
        assert_eq!(
            react("homeassistant/light/hearth_node_pi-2/light_x/config", "{}"),
            None
        );
        assert_eq!(react("hearth/button/desk/set", "ON"), None);
    }

    #[test]
    fn discovery_topics() {
        let d = DiscoveryTopics::default();
        assert_eq!(
            d.config("sensor", &Id::new("hearth_pi-1_temperature").unwrap()),
            "homeassistant/sensor/hearth_pi-1_temperature/config"
        );
        assert_eq!(d.status(), "homeassistant/status");
        let red = d.device_config(Component::Light, "hearth_node_pi-1", "light_red");
        assert_eq!(red, "homeassistant/light/hearth_node_pi-1/light_red/config");
        assert_eq!(
            d.parse_device_config(&red),
            Some(("light", "hearth_node_pi-1", "light_red"))
        );
        assert_eq!(d.parse_device_config("homeassistant/light/x/config"), None);
        assert_eq!(d.parse_device_config("other/light/a/b/config"), None);
        assert_eq!(
            d.device_filter("hearth_hub"),
            "homeassistant/+/hearth_hub/+/config"
        );
    }
}
