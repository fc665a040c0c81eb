//! Home Assistant discovery for the hub's device: buttons, chimes, the clock and the hub's own connectivity.
//!
//! The hub is one Home Assistant device, `hearth_hub`; node agents announce
//! their own devices, shown "via" this one. Per button: an `event` entity
//! (single, double, long), a `binary_sensor` for its ON/OFF state and a
//! device trigger per action, so automations can start from a press
//! without templates. Per chime: a `button` that plays it now and a `switch`
//! that enables it. Plus the clock and a connectivity sensor.
//!
//! Configs are retained under `<prefix>/<component>/hearth_hub/<object>/config`.
//! The hub publishes them all on every (re)connect and, with the current
//! states, whenever Home Assistant announces itself on `<prefix>/status`; a
//! new button announces itself with its first message (see `brain`), a
//! chime with every change, and a deleted chime's or forgotten button's
//! configs are cleared with empty retained payloads. The hub also listens on
//! its own config topics, so a retained config it no longer backs (removed
//! while it was down) is cleared when the broker replays it.
//!
//! Unique ids (also the object ids, so entity ids are predictable):
//! `hearth_hub_button_<id>` (event), `hearth_hub_button_<id>_state`
//! (binary sensor), `hearth_hub_chime_<id>_play` (button),
//! `hearth_hub_chime_<id>_enabled` (switch), `hearth_hub_clock`,
//! `hearth_hub_connectivity`. Device triggers have no unique id in Home
//! Assistant; theirs is their discovery topic, `button_<id>_<action>`.

use std::collections::BTreeSet;

use hearth_protocol::discovery::{
    self, Component, Config, Device, HUB_DEVICE_ID, MANUFACTURER, Message, Origin, Reaction,
};
use hearth_protocol::{Availability, DiscoveryTopics, Id, OnOff, PressAction, Topic, Topics};

use crate::model::chime::Chime;
use crate::model::effects::Publication;

/// `origin.name` of the hub's configs.
pub const ORIGIN_NAME: &str = "hearth-hub";
/// `name` of the hub's device in Home Assistant (users can rename it there).
pub const DEVICE_NAME: &str = "Hearth hub";
/// Commands from Home Assistant are sent with this QoS, like the hub's own.
const COMMAND_QOS: u8 = 1;

/// The device-trigger type Home Assistant shows ("... pressed") per action.
fn trigger_type(action: PressAction) -> &'static str {
    match action {
        PressAction::Single => "button_short_press",
        PressAction::Double => "button_double_press",
        PressAction::Long => "button_long_press",
    }
}

/// Builds the hub's discovery messages. Pure: everything comes from the
/// prefixes and the ids or chimes passed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubDiscovery {
    topics: DiscoveryTopics,
    hearth: Topics,
    /// The dashboard, linked from the device page ("Visit").
    dashboard: Option<String>,
}

impl HubDiscovery {
    pub fn with(topics: DiscoveryTopics, hearth: Topics) -> Self {
        Self {
            topics,
            hearth,
            dashboard: None,
        }
    }

    /// Links the hub's device page in Home Assistant to `dashboard`.
    pub fn linking(mut self, dashboard: &str) -> Self {
        self.dashboard = Some(dashboard.to_owned());
        self
    }

    /// The hub listens for Home Assistant's birth here.
    pub fn status_topic(&self) -> String {
        self.topics.status()
    }

    /// Every config the hub's device ever had, as one subscription: the
    /// retained ones the broker replays show what to clear.
    pub fn config_filter(&self) -> String {
        self.topics.device_filter(HUB_DEVICE_ID)
    }

    /// True for Home Assistant's birth message (`online` on its status topic).
    pub fn is_birth(&self, topic: &str, payload: &[u8]) -> bool {
        let none = BTreeSet::new();
        discovery::react(&self.topics, HUB_DEVICE_ID, &none, topic, payload)
            == Some(Reaction::Resend)
    }

    fn base(&self) -> Config {
        Config {
            availability_topic: Some(self.hearth.build(&Topic::HubAvailability)),
            payload_available: Some(Availability::Online.as_str()),
            payload_not_available: Some(Availability::Offline.as_str()),
            device: Device {
                identifiers: vec![HUB_DEVICE_ID.to_owned()],
                name: DEVICE_NAME.to_owned(),
                model: ORIGIN_NAME.to_owned(),
                manufacturer: MANUFACTURER.to_owned(),
                sw_version: env!("CARGO_PKG_VERSION").to_owned(),
                via_device: None,
                configuration_url: self.dashboard.clone(),
            },
            origin: Origin {
                name: ORIGIN_NAME.to_owned(),
                sw_version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            ..Config::default()
        }
    }

    /// The clock and the hub's connectivity.
    pub fn hub_configs(&self) -> Vec<Message> {
        let unique_id = Some(format!("{HUB_DEVICE_ID}_clock"));
        let clock = Config {
            name: Some("Clock".to_owned()),
            unique_id,
            icon: Some("mdi:clock-outline"),
            state_topic: Some(self.hearth.build(&Topic::ClockHhmm)),
            // `1420` on the wire (for dumb displays), `14:20` for people.
            value_template: Some("{{ value[:2] }}:{{ value[2:] }}".to_owned()),
            ..self.base()
        };
        let unique_id = Some(format!("{HUB_DEVICE_ID}_connectivity"));
        // Reads the availability topic itself, so it has no availability of
        // its own: bound to that topic it could never show "disconnected".
        let connectivity = Config {
            name: Some("Connectivity".to_owned()),
            unique_id,
            device_class: Some("connectivity"),
            entity_category: Some("diagnostic"),
            state_topic: Some(self.hearth.build(&Topic::HubAvailability)),
            payload_on: Some(Availability::Online.as_str()),
            payload_off: Some(Availability::Offline.as_str()),
            availability_topic: None,
            payload_available: None,
            payload_not_available: None,
            ..self.base()
        };
        vec![
            Message::config(&self.topics, Component::Sensor, "clock", &clock),
            Message::config(
                &self.topics,
                Component::BinarySensor,
                "connectivity",
                &connectivity,
            ),
        ]
    }

    /// (component, object) of every config a button has.
    fn button_objects(id: &Id) -> Vec<(Component, String)> {
        let mut objects = vec![
            (Component::Event, format!("button_{id}")),
            (Component::BinarySensor, format!("button_{id}")),
        ];
        objects.extend(
            PressAction::ALL
                .into_iter()
                .map(|a| (Component::DeviceAutomation, format!("button_{id}_{a}"))),
        );
        objects
    }

    /// A button's event entity, state sensor and device triggers.
    pub fn button_configs(&self, id: &Id) -> Vec<Message> {
        let event_topic = self.hearth.build(&Topic::ButtonEvent(id.clone()));
        let unique_id = Some(format!("{HUB_DEVICE_ID}_button_{id}"));
        let event = Config {
            name: Some(format!("Button {id}")),
            unique_id,
            device_class: Some("button"),
            state_topic: Some(event_topic.clone()),
            event_types: PressAction::ALL.iter().map(|a| a.as_str()).collect(),
            ..self.base()
        };
        let unique_id = Some(format!("{HUB_DEVICE_ID}_button_{id}_state"));
        let state = Config {
            name: Some(format!("Button {id} state")),
            unique_id,
            state_topic: Some(self.hearth.build(&Topic::ButtonState(id.clone()))),
            payload_on: Some(OnOff::On.as_str()),
            payload_off: Some(OnOff::Off.as_str()),
            ..self.base()
        };
        let mut out = vec![
            Message::config(
                &self.topics,
                Component::Event,
                &format!("button_{id}"),
                &event,
            ),
            Message::config(
                &self.topics,
                Component::BinarySensor,
                &format!("button_{id}"),
                &state,
            ),
        ];
        for action in PressAction::ALL {
            // Device triggers take neither availability nor a name.
            let trigger = Config {
                automation_type: Some("trigger"),
                topic: Some(event_topic.clone()),
                trigger_type: Some(trigger_type(action)),
                subtype: Some(id.to_string()),
                payload: Some(action.as_str()),
                value_template: Some("{{ value_json.event_type }}".to_owned()),
                qos: Some(COMMAND_QOS),
                device: self.base().device,
                origin: self.base().origin,
                ..Config::default()
            };
            out.push(Message::config(
                &self.topics,
                Component::DeviceAutomation,
                &format!("button_{id}_{action}"),
                &trigger,
            ));
        }
        out
    }

    /// Empty retained payloads that remove a button's entities.
    pub fn button_removals(&self, id: &Id) -> Vec<Message> {
        Self::button_objects(id)
            .into_iter()
            .map(|(component, object)| {
                Message::removal(self.topics.device_config(component, HUB_DEVICE_ID, &object))
            })
            .collect()
    }

    /// A chime's "play now" button and "enabled" switch.
    pub fn chime_configs(&self, chime: &Chime) -> Vec<Message> {
        let id = &chime.id;
        let object = format!("chime_{id}");
        let unique_id = Some(format!("{HUB_DEVICE_ID}_chime_{id}_play"));
        let play = Config {
            name: Some(format!("{} play now", chime.name)),
            unique_id,
            icon: Some("mdi:bell-ring"),
            command_topic: Some(self.hearth.build(&Topic::HubChimePlay(id.clone()))),
            payload_press: Some("PRESS"),
            qos: Some(COMMAND_QOS),
            ..self.base()
        };
        let view = self.hearth.build(&Topic::HubChime(id.clone()));
        let unique_id = Some(format!("{HUB_DEVICE_ID}_chime_{id}_enabled"));
        let enabled = Config {
            name: Some(format!("Chime {}", chime.name)),
            unique_id,
            icon: Some("mdi:bell"),
            command_topic: Some(self.hearth.build(&Topic::HubChimeEnabledSet(id.clone()))),
            state_topic: Some(view.clone()),
            // The retained chime JSON: its schedule, sound and next_at
            // become the switch's attributes.
            json_attributes_topic: Some(view),
            value_template: Some("{{ 'ON' if value_json.enabled else 'OFF' }}".to_owned()),
            payload_on: Some(OnOff::On.as_str()),
            payload_off: Some(OnOff::Off.as_str()),
            qos: Some(COMMAND_QOS),
            ..self.base()
        };
        vec![
            Message::config(&self.topics, Component::Button, &object, &play),
            Message::config(&self.topics, Component::Switch, &object, &enabled),
        ]
    }

    /// A scene: Home Assistant's `scene` entity, which applies it.
    pub fn scene_configs(&self, id: &Id, name: &str) -> Vec<Message> {
        let config = Config {
            name: Some(format!("Scene {name}")),
            unique_id: Some(format!("{HUB_DEVICE_ID}_scene_{id}")),
            icon: Some("mdi:palette"),
            command_topic: Some(self.hearth.build(&Topic::HubSceneApply(id.clone()))),
            payload_on: Some(OnOff::On.as_str()),
            qos: Some(COMMAND_QOS),
            ..self.base()
        };
        vec![Message::config(
            &self.topics,
            Component::Scene,
            &format!("scene_{id}"),
            &config,
        )]
    }

    /// The empty retained payload that removes a scene's entity.
    pub fn scene_removals(&self, id: &Id) -> Vec<Message> {
        vec![Message::removal(self.topics.device_config(
            Component::Scene,
            HUB_DEVICE_ID,
            &format!("scene_{id}"),
        ))]
    }

    /// (component, object) of every config a chime has.
    fn chime_objects(id: &Id) -> Vec<(Component, String)> {
        [Component::Button, Component::Switch]
            .into_iter()
            .map(|component| (component, format!("chime_{id}")))
            .collect()
    }

    /// Empty retained payloads that remove a chime's entities.
    pub fn chime_removals(&self, id: &Id) -> Vec<Message> {
        Self::chime_objects(id)
            .into_iter()
            .map(|(component, object)| {
                Message::removal(self.topics.device_config(component, HUB_DEVICE_ID, &object))
            })
            .collect()
    }

    /// The topics of [`HubDiscovery::all_configs`], without building a
    /// single payload: what a replayed config is checked against.
    pub fn config_topics<'a>(
        &self,
        buttons: impl IntoIterator<Item = &'a Id>,
        chimes: impl IntoIterator<Item = &'a Id>,
        scenes: impl IntoIterator<Item = &'a Id>,
    ) -> BTreeSet<String> {
        let hub = [
            (Component::Sensor, "clock".to_owned()),
            (Component::BinarySensor, "connectivity".to_owned()),
        ];
        hub.into_iter()
            .chain(buttons.into_iter().flat_map(Self::button_objects))
            .chain(chimes.into_iter().flat_map(Self::chime_objects))
            .chain(
                scenes
                    .into_iter()
                    .map(|id| (Component::Scene, format!("scene_{id}"))),
            )
            .map(|(component, object)| self.topics.device_config(component, HUB_DEVICE_ID, &object))
            .collect()
    }

    /// Every config the hub has for these buttons and chimes.
    pub fn all_configs<'a>(
        &self,
        buttons: impl IntoIterator<Item = &'a Id>,
        chimes: impl IntoIterator<Item = &'a Chime>,
    ) -> Vec<Message> {
        let mut out = self.hub_configs();
        for id in buttons {
            out.extend(self.button_configs(id));
        }
        for chime in chimes {
            out.extend(self.chime_configs(chime));
        }
        out
    }
}

/// Retained, QoS 1: how the hub publishes discovery messages.
pub fn retained(messages: Vec<Message>) -> Vec<Publication> {
    messages
        .into_iter()
        .map(|m| Publication::retained(m.topic, m.payload))
        .collect()
}

/// `filters` plus Home Assistant's status topic and the hub device's
/// config topics, each unless a filter (a rule's) already covers it: the
/// broker would deliver one copy per match.
pub fn with_filters(discovery: Option<&HubDiscovery>, mut filters: Vec<String>) -> Vec<String> {
    if let Some(discovery) = discovery {
        for wanted in [discovery.status_topic(), discovery.config_filter()] {
            if !filters
                .iter()
                .any(|f| crate::decide::rules::filter_covers(f, &wanted))
            {
                filters.push(wanted);
            }
        }
    }
    filters
}

/// What the hub does about a message under the discovery prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Home Assistant's birth: every config and every current state again
    /// (the hub's hello, see `crate::decide::hello`).
    Resend,
    /// A retained config of the hub's device that no current button or
    /// chime has: clear it with an empty retained payload.
    Clear(String),
}

impl HubDiscovery {
    /// Whether `topic` is under the discovery prefix at all: every message
    /// passes here, so the others are ruled out without allocating.
    pub fn concerns(&self, topic: &str) -> bool {
        topic.starts_with(self.topics.prefix())
    }

    /// Home Assistant's birth asks for everything again. A retained config
    /// of the hub's device that no current button or chime has (removed
    /// while the hub was down or discovery was off, or a database restored
    /// from an older backup) is cleared, by the leader only, since a
    /// standby's view of the house lags. `None` for any other message.
    pub fn answer<'a>(
        &self,
        leading: bool,
        buttons: impl IntoIterator<Item = &'a Id>,
        chimes: impl IntoIterator<Item = &'a Id>,
        scenes: impl IntoIterator<Item = &'a Id>,
        topic: &str,
        payload: &[u8],
    ) -> Option<Answer> {
        if !self.concerns(topic) {
            return None;
        }
        let current = if leading && !payload.is_empty() && topic.ends_with("/config") {
            self.config_topics(buttons, chimes, scenes)
        } else {
            BTreeSet::new()
        };
        match discovery::react(&self.topics, HUB_DEVICE_ID, &current, topic, payload) {
            Some(Reaction::Resend) => Some(Answer::Resend),
            Some(Reaction::Clear(stale)) if leading => Some(Answer::Clear(stale)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::chime::tests::tea;

    fn id(s: &str) -> Id {
        Id::new(s).unwrap()
    }

    fn discovery() -> HubDiscovery {
        HubDiscovery::with(DiscoveryTopics::default(), Topics::default())
    }

    fn json(m: &Message) -> serde_json::Value {
        serde_json::from_slice(&m.payload).unwrap()
    }

    #[test]
    fn a_button_is_an_event_a_state_and_three_triggers() {
        let messages = discovery().button_configs(&id("desk"));
        let topics: Vec<&str> = messages.iter().map(|m| m.topic.as_str()).collect();
        assert_eq!(
            topics,
            [
                "homeassistant/event/hearth_hub/button_desk/config",
                "homeassistant/binary_sensor/hearth_hub/button_desk/config",
                "homeassistant/device_automation/hearth_hub/button_desk_single/config",
                "homeassistant/device_automation/hearth_hub/button_desk_double/config",
                "homeassistant/device_automation/hearth_hub/button_desk_long/config",
            ]
        );
        let event = json(&messages[0]);
        assert_eq!(event["unique_id"], "hearth_hub_button_desk");
        assert_eq!(event["state_topic"], "hearth/button/desk/event");
        assert_eq!(
            event["event_types"],
            serde_json::json!(["single", "double", "long"])
        );
        assert_eq!(event["availability_topic"], "hearth/hub/availability");
        assert_eq!(event["device"]["identifiers"][0], "hearth_hub");
        assert_eq!(event["origin"]["name"], "hearth-hub");
        let state = json(&messages[1]);
        assert_eq!(state["unique_id"], "hearth_hub_button_desk_state");
        assert_eq!(state["state_topic"], "hearth/button/desk/state");
        let long = json(&messages[4]);
        assert_eq!(long["automation_type"], "trigger");
        assert_eq!(long["type"], "button_long_press");
        assert_eq!(long["subtype"], "desk");
        assert_eq!(long["payload"], "long");
        assert_eq!(long["topic"], "hearth/button/desk/event");
        assert!(long.get("availability_topic").is_none());
        let removals: Vec<String> = discovery()
            .button_removals(&id("desk"))
            .into_iter()
            .map(|m| {
                assert!(m.is_removal());
                m.topic
            })
            .collect();
        assert_eq!(removals, topics);
    }

    #[test]
    fn a_scene_is_a_scene_entity_that_applies_it() {
        let messages = discovery().scene_configs(&id("evening"), "Evening");
        let config = json(&messages[0]);
        assert_eq!(
            messages[0].topic,
            "homeassistant/scene/hearth_hub/scene_evening/config"
        );
        assert_eq!(config["command_topic"], "hearth/hub/scenes/evening/apply");
        assert_eq!(config["payload_on"], "ON");
        assert_eq!(
            config["default_entity_id"],
            "scene.hearth_hub_scene_evening"
        );
        let removal = &discovery().scene_removals(&id("evening"))[0];
        assert_eq!(removal.topic, messages[0].topic);
        assert!(removal.payload.is_empty());
    }

    #[test]
    fn a_chime_is_a_play_button_and_an_enabled_switch() {
        let messages = discovery().chime_configs(&tea());
        let play = json(&messages[0]);
        assert_eq!(
            messages[0].topic,
            "homeassistant/button/hearth_hub/chime_tea/config"
        );
        assert_eq!(play["unique_id"], "hearth_hub_chime_tea_play");
        assert_eq!(play["name"], "Tea time play now");
        assert_eq!(play["command_topic"], "hearth/hub/chimes/tea/play");
        let enabled = json(&messages[1]);
        assert_eq!(
            messages[1].topic,
            "homeassistant/switch/hearth_hub/chime_tea/config"
        );
        assert_eq!(enabled["unique_id"], "hearth_hub_chime_tea_enabled");
        assert_eq!(
            enabled["command_topic"],
            "hearth/hub/chimes/tea/enabled/set"
        );
        assert_eq!(enabled["state_topic"], "hearth/hub/chimes/tea");
        let removals: Vec<String> = discovery()
            .chime_removals(&id("tea"))
            .into_iter()
            .map(|m| m.topic)
            .collect();
        assert_eq!(
            removals,
            messages.iter().map(|m| m.topic.clone()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn config_topics_are_exactly_the_topics_of_all_configs() {
        let d = discovery();
        let buttons = [id("desk"), id("hall")];
        let chime = tea();
        let built: BTreeSet<String> = d
            .all_configs(buttons.iter(), [&chime])
            .into_iter()
            .map(|m| m.topic)
            .collect();
        assert_eq!(built.len(), 2 + 2 * 5 + 2);
        assert_eq!(d.config_topics(buttons.iter(), [&chime.id], []), built);
    }

    #[test]
    fn the_hub_itself_has_a_clock_and_connectivity_and_follows_prefixes() {
        let d = HubDiscovery::with(
            DiscoveryTopics::new("ha").unwrap(),
            Topics::new("home/hearth").unwrap(),
        );
        let all = d.all_configs([&id("desk")], [&tea()]);
        assert_eq!(all.len(), 2 + 5 + 2);
        assert!(all.iter().all(|m| m.topic.starts_with("ha/")));
        let clock = json(&all[0]);
        assert_eq!(all[0].topic, "ha/sensor/hearth_hub/clock/config");
        assert_eq!(clock["state_topic"], "home/hearth/clock/hhmm");
        assert_eq!(clock["unique_id"], "hearth_hub_clock");
        let connectivity = json(&all[1]);
        assert_eq!(connectivity["state_topic"], "home/hearth/hub/availability");
        assert!(connectivity.get("availability_topic").is_none());
        assert!(d.is_birth("ha/status", b"online"));
        assert!(!d.is_birth("ha/status", b"offline"));
        assert!(!d.is_birth("homeassistant/status", b"online"));
    }
}
