//! Home Assistant discovery for one node: its device and entities, decided from the config alone.
//!
//! The node is one Home Assistant device (`hearth_node_<node>`, shown under
//! the hub device through `via_device`) with a light or switch per output,
//! a switch per sequence, temperature and humidity sensors when it has a
//! DHT, and a connectivity sensor. Every config is retained under the
//! node's own level, `<prefix>/<component>/hearth_node_<node>/<object>/config`,
//! so the agent can subscribe to exactly its own configs and clear those
//! its config no longer declares (an output taken out of the file) without
//! keeping a state file: the broker's retained messages are the memory,
//! which works in a read-only Kubernetes pod.
//!
//! Unique ids: `hearth_node_<node>_<kind>_<name>` for outputs and sequences,
//! `hearth_node_<node>_temperature`, `..._humidity`, `..._connectivity`.
//! They double as object ids, so entity ids are predictable
//! (`light.hearth_node_pi_1_light_red`).

use std::collections::BTreeSet;

use hearth_protocol::discovery::{
    self, Component, Config, Device, MANUFACTURER, Message, Origin, Reaction,
};
use hearth_protocol::{
    Availability, DiscoveryTopics, Id, OnOff, OutputKind, OutputRef, Quantity, Topic,
};

use crate::config::{InputKind, NodeConfig};

/// `origin.name` of the agent's configs.
pub const ORIGIN_NAME: &str = "hearth-node-agent";
/// Commands from Home Assistant are sent with this QoS, like the hub's.
const COMMAND_QOS: u8 = 1;

/// The node's discovery: what it publishes and which topics it watches.
#[derive(Debug, Clone)]
pub struct NodeDiscovery {
    topics: DiscoveryTopics,
    device_id: String,
    messages: Vec<Message>,
    current: BTreeSet<String>,
}

impl NodeDiscovery {
    /// `None` when discovery is switched off in the config.
    pub fn new(config: &NodeConfig) -> Option<Self> {
        let topics = config.discovery.clone()?;
        let messages = configs(config, &topics);
        Some(Self {
            device_id: discovery::node_device_id(&config.node),
            current: messages.iter().map(|m| m.topic.clone()).collect(),
            messages,
            topics,
        })
    }

    /// Home Assistant's status, and every config this node ever published.
    pub fn filters(&self) -> Vec<String> {
        vec![
            self.topics.status(),
            self.topics.device_filter(&self.device_id),
        ]
    }

    /// Every config, to publish retained.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// What a message on [`NodeDiscovery::filters`] asks for; `None` if it
    /// is not a discovery message.
    pub fn react(&self, topic: &str, payload: &[u8]) -> Option<Reaction> {
        discovery::react(&self.topics, &self.device_id, &self.current, topic, payload)
    }
}

/// Every discovery config of the node `config` describes. Pure.
pub fn configs(config: &NodeConfig, topics: &DiscoveryTopics) -> Vec<Message> {
    let node = &config.node;
    let hearth = &config.topics;
    let device_id = discovery::node_device_id(node);
    let base = Config {
        availability_topic: Some(hearth.build(&Topic::NodeAvailability(node.clone()))),
        payload_available: Some(Availability::Online.as_str()),
        payload_not_available: Some(Availability::Offline.as_str()),
        device: Device {
            identifiers: vec![device_id.clone()],
            name: node.to_string(),
            model: if config.simulate {
                "hearth-node-agent (simulated)".to_owned()
            } else {
                "hearth-node-agent".to_owned()
            },
            manufacturer: MANUFACTURER.to_owned(),
            sw_version: env!("CARGO_PKG_VERSION").to_owned(),
            via_device: Some(discovery::HUB_DEVICE_ID.to_owned()),
            configuration_url: Some(config.dashboard_url.clone()),
        },
        origin: Origin {
            name: ORIGIN_NAME.to_owned(),
            sw_version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        ..Config::default()
    };
    let unique = |rest: &str| format!("{device_id}_{rest}");
    let mut out = Vec::new();

    let outputs = config
        .outputs
        .iter()
        .map(|o| (o.kind, &o.name, o.dimmable))
        .chain(
            config
                .sequences
                .iter()
                .map(|s| (OutputKind::Sequence, &s.name, false)),
        );
    for (kind, name, dimmable) in outputs {
        let object = format!("{kind}_{name}");
        let component = match kind {
            OutputKind::Light => Component::Light,
            OutputKind::Switch | OutputKind::Sequence => Component::Switch,
        };
        let entity = Config {
            name: Some(name.to_string()),
            unique_id: Some(unique(&object)),
            icon: (kind == OutputKind::Sequence).then_some("mdi:animation-play"),
            command_topic: Some(hearth.build(&Topic::OutputSet(output(node, kind, name)))),
            state_topic: Some(hearth.build(&Topic::OutputState(output(node, kind, name)))),
            payload_on: Some(OnOff::On.as_str()),
            payload_off: Some(OnOff::Off.as_str()),
            qos: Some(COMMAND_QOS),
            // A slider in Home Assistant; 255 is its own default scale.
            brightness_command_topic: dimmable
                .then(|| hearth.build(&Topic::BrightnessSet(output(node, kind, name)))),
            brightness_state_topic: dimmable
                .then(|| hearth.build(&Topic::Brightness(output(node, kind, name)))),
            brightness_scale: dimmable.then_some(255),
            ..base.clone()
        };
        out.push(Message::config(topics, component, &object, &entity));
    }

    // Wired buttons need nothing here: they press `hearth/button/<id>`,
    // and the hub announces buttons (event entity, state, device triggers).
    for input in &config.inputs {
        let InputKind::Binary { device_class } = input.kind else {
            continue;
        };
        let object = format!("input_{}", input.name);
        let state_topic = hearth.build(&Topic::InputState {
            node: node.clone(),
            name: input.name.clone(),
        });
        let entity = Config {
            name: Some(input.name.to_string()),
            unique_id: Some(unique(&object)),
            device_class: Some(device_class),
            state_topic: Some(state_topic),
            payload_on: Some(OnOff::On.as_str()),
            payload_off: Some(OnOff::Off.as_str()),
            ..base.clone()
        };
        out.push(Message::config(
            topics,
            Component::BinarySensor,
            &object,
            &entity,
        ));
    }

    if config.sensor.is_some() {
        let climate = hearth.build(&Topic::NodeClimate(node.clone()));
        // What a climate message carries (hearth_protocol::Climate::readings).
        for quantity in Quantity::ALL {
            let spec = quantity.spec();
            let object = spec.name;
            let entity = Config {
                name: Some(spec.label.to_owned()),
                unique_id: Some(unique(object)),
                device_class: Some(spec.device_class),
                state_class: Some(spec.state_class),
                unit_of_measurement: Some(spec.unit),
                suggested_display_precision: Some(1),
                state_topic: Some(climate.clone()),
                value_template: Some(format!("{{{{ value_json.{object} }}}}")),
                ..base.clone()
            };
            out.push(Message::config(topics, Component::Sensor, object, &entity));
        }
    }

    // Reads the availability topic itself, so it has no availability of its
    // own: bound to that topic it could only ever be "on" or "unavailable".
    let connectivity = Config {
        name: Some("Connectivity".to_owned()),
        unique_id: Some(unique("connectivity")),
        device_class: Some("connectivity"),
        entity_category: Some("diagnostic"),
        state_topic: base.availability_topic.clone(),
        payload_on: Some(Availability::Online.as_str()),
        payload_off: Some(Availability::Offline.as_str()),
        availability_topic: None,
        payload_available: None,
        payload_not_available: None,
        ..base.clone()
    };
    out.push(Message::config(
        topics,
        Component::BinarySensor,
        "connectivity",
        &connectivity,
    ));
    out
}

fn output(node: &Id, kind: OutputKind, name: &Id) -> OutputRef {
    OutputRef {
        node: node.clone(),
        kind,
        name: name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NodeFile, NodeSection};
    use crate::node_id::HostIdentity;

    fn config(toml_text: &str) -> NodeConfig {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, toml_text.as_bytes()).unwrap();
        let file: NodeFile =
            hearth_common::settings::load_with_env(Some(f.path()), std::iter::empty()).unwrap();
        file.validate(&HostIdentity::default(), true).unwrap()
    }

    const DEMO: &str = r#"
[node]
id = "pi-1"

[[outputs]]
name = "red"
kind = "light"
pin = 17

[[outputs]]
name = "fan"
kind = "switch"
pin = 5

[[sequences]]
name = "blink"
steps = [{ on = ["red"], duration_ms = 500 }, { on = [], duration_ms = 500 }]

[sensor]
model = "dht22"
"#;

    fn json(message: &Message) -> serde_json::Value {
        serde_json::from_slice(&message.payload).unwrap()
    }

    fn find<'m>(messages: &'m [Message], topic: &str) -> &'m Message {
        messages
            .iter()
            .find(|m| m.topic == topic)
            .unwrap_or_else(|| panic!("no {topic} in {messages:#?}"))
    }

    #[test]
    fn every_output_sequence_and_sensor_is_an_entity_of_the_node_device() {
        let config = config(DEMO);
        let messages = configs(&config, &DiscoveryTopics::default());
        let topics: Vec<&str> = messages.iter().map(|m| m.topic.as_str()).collect();
        assert_eq!(
            topics,
            [
                "homeassistant/light/hearth_node_pi-1/light_red/config",
                "homeassistant/switch/hearth_node_pi-1/switch_fan/config",
                "homeassistant/switch/hearth_node_pi-1/sequence_blink/config",
                "homeassistant/sensor/hearth_node_pi-1/temperature/config",
                "homeassistant/sensor/hearth_node_pi-1/humidity/config",
                "homeassistant/binary_sensor/hearth_node_pi-1/connectivity/config",
            ]
        );
        for message in &messages {
            let json = json(message);
            assert_eq!(json["device"]["identifiers"][0], "hearth_node_pi-1");
            assert_eq!(json["device"]["manufacturer"], "Hearth");
            assert_eq!(json["device"]["via_device"], "hearth_hub");
            assert_eq!(json["device"]["model"], "hearth-node-agent (simulated)");
            assert_eq!(json["origin"]["name"], "hearth-node-agent");
            assert!(
                json["unique_id"]
                    .as_str()
                    .unwrap()
                    .starts_with("hearth_node_pi-1_")
            );
        }
    }

    #[test]
    fn outputs_are_switched_through_their_contract_topics() {
        let messages = configs(&config(DEMO), &DiscoveryTopics::default());
        let red = json(find(
            &messages,
            "homeassistant/light/hearth_node_pi-1/light_red/config",
        ));
        assert_eq!(red["unique_id"], "hearth_node_pi-1_light_red");
        assert_eq!(red["command_topic"], "hearth/node/pi-1/light/red/set");
        assert_eq!(red["state_topic"], "hearth/node/pi-1/light/red/state");
        assert_eq!(red["payload_on"], "ON");
        assert_eq!(red["payload_off"], "OFF");
        assert_eq!(red["availability_topic"], "hearth/node/pi-1/availability");
        let blink = json(find(
            &messages,
            "homeassistant/switch/hearth_node_pi-1/sequence_blink/config",
        ));
        assert_eq!(
            blink["command_topic"],
            "hearth/node/pi-1/sequence/blink/set"
        );
    }

    #[test]
    fn climate_sensors_read_the_climate_json() {
        let messages = configs(&config(DEMO), &DiscoveryTopics::default());
        let t = json(find(
            &messages,
            "homeassistant/sensor/hearth_node_pi-1/temperature/config",
        ));
        assert_eq!(t["state_topic"], "hearth/node/pi-1/climate");
        assert_eq!(t["value_template"], "{{ value_json.temperature }}");
        assert_eq!(t["device_class"], "temperature");
        assert_eq!(t["unit_of_measurement"], "°C");
        assert_eq!(t["state_class"], "measurement");
        let c = json(find(
            &messages,
            "homeassistant/binary_sensor/hearth_node_pi-1/connectivity/config",
        ));
        assert_eq!(c["state_topic"], "hearth/node/pi-1/availability");
        assert_eq!(c["payload_on"], "online");
        assert!(c.get("availability_topic").is_none());
    }

    #[test]
    fn prefixes_follow_the_config_and_no_sensor_means_no_climate_entities() {
        let mut config = config("[node]\nid = \"pi-2\"\ntopic_prefix = \"home/hearth\"\n");
        config.outputs.clear();
        config.sequences.clear();
        let messages = configs(&config, &DiscoveryTopics::new("ha").unwrap());
        assert_eq!(messages.len(), 1, "only the connectivity sensor");
        assert_eq!(
            messages[0].topic,
            "ha/binary_sensor/hearth_node_pi-2/connectivity/config"
        );
        assert_eq!(
            json(&messages[0])["state_topic"],
            "home/hearth/node/pi-2/availability"
        );
        assert_eq!(NodeSection::default().discovery_prefix, "homeassistant");
    }

    #[test]
    fn stale_configs_of_this_node_are_cleared_and_current_ones_kept() {
        let discovery = NodeDiscovery::new(&config(DEMO)).unwrap();
        assert_eq!(
            discovery.filters(),
            [
                "homeassistant/status",
                "homeassistant/+/hearth_node_pi-1/+/config"
            ]
        );
        let red = "homeassistant/light/hearth_node_pi-1/light_red/config";
        let gone = "homeassistant/light/hearth_node_pi-1/light_green/config";
        assert_eq!(discovery.react(red, b"{}"), Some(Reaction::Nothing));
        assert_eq!(
            discovery.react(gone, b"{}"),
            Some(Reaction::Clear(gone.to_owned()))
        );
        assert_eq!(
            discovery.react("homeassistant/status", b"online"),
            Some(Reaction::Resend)
        );
    }

    #[test]
    fn switched_off_means_nothing_at_all() {
        let config = config("[node]\nid = \"pi-1\"\ndiscovery = false\n");
        assert!(NodeDiscovery::new(&config).is_none());
    }

    #[test]
    fn a_bad_prefix_names_its_key() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(
            &mut f,
            b"[node]\nid = \"pi-1\"\ndiscovery_prefix = \"ha/+\"\n",
        )
        .unwrap();
        let file: NodeFile =
            hearth_common::settings::load_with_env(Some(f.path()), std::iter::empty()).unwrap();
        let err = file
            .validate(&HostIdentity::default(), true)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("node.discovery_prefix:"), "{err}");
    }
}
