//! The hub's decisions as pure functions: a message in, state changes, writes and publishes out.
//!
//! Nothing here touches a socket or the database, so every decision the hub
//! makes (what a press does, what TOGGLE means, which rules fire, what is an
//! error) is unit-tested directly.

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Utc};
use hearth_protocol::{
    Availability, Brightness, ButtonEvent, Command, ErrorReport, Id, OnOff, OutputRef, Press,
    Reading, Topic, TopicKind, Topics,
};
use rumqttc::QoS;

use crate::decide::logbook;
use crate::decide::rules::{self, Action, Observed, Rule};
use crate::model::effects::{
    Delivery, HouseEvent, MessageKind, Outcome, Publication, Rejection, Write,
};
use crate::model::house::{ButtonRecord, House, NodeRecord, OutputRecord};
use crate::model::input::Input;
use crate::model::logbook::Via;

/// How many press ids are remembered to recognise redeliveries.
pub const RECENT_IDS_CAPACITY: usize = 100_000;

/// Press ids seen recently, oldest evicted first.
#[derive(Debug, Default)]
pub struct RecentIds {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentIds {
    /// Records `id`; false if it was already there.
    pub fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= RECENT_IDS_CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.set.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }
}

/// The hub's fixed subscriptions (rules add their own filters), from the
/// protocol's list of what the hub takes in.
pub fn builtin_filters(topics: &Topics) -> Vec<String> {
    TopicKind::HUB_INPUTS
        .into_iter()
        .map(|kind| topics.filter_of(kind))
        .collect()
}

/// What `hearth/hub/error` says about a refused message (QoS 0: a report,
/// not state).
pub fn error_report(topics: &Topics, topic: &str, rejection: &Rejection) -> Publication {
    let report = ErrorReport {
        topic: topic.to_owned(),
        error: rejection.to_string(),
    };
    Publication {
        topic: topics.build(&Topic::HubError),
        payload: serde_json::to_vec(&report).unwrap_or_default(),
        qos: QoS::AtMostOnce,
        retain: false,
    }
}

/// The subscription set: built-in filters plus rule filters and `extra`
/// (automations'), without
/// overlaps, because a broker delivers one copy per matching subscription
/// and each copy would run the rules again.
pub fn subscriptions(topics: &Topics, rules: &[Rule], extra: &[String]) -> Vec<String> {
    let mut wanted = builtin_filters(topics);
    for rule in rules {
        if let rules::Trigger::Message { filter, .. } = &rule.trigger {
            wanted.push(filter.clone());
        }
    }
    wanted.extend(extra.iter().cloned());
    let mut kept: Vec<String> = Vec::new();
    for (i, filter) in wanted.iter().enumerate() {
        let covered = wanted.iter().enumerate().any(|(j, other)| {
            j != i
                && rules::filter_covers(other, filter)
                && (!rules::filter_covers(filter, other) || j < i)
        });
        if !covered && !kept.contains(filter) {
            kept.push(filter.clone());
        }
    }
    kept
}

/// Decides what one incoming message does to `house`.
#[derive(Debug)]
pub struct Decider<'a> {
    pub topics: &'a Topics,
    pub rules: &'a [Rule],
    builtin: Vec<String>,
    /// Announces new buttons to Home Assistant, when discovery is on.
    discovery: Option<crate::decide::discovery::HubDiscovery>,
}

impl<'a> Decider<'a> {
    pub fn new(topics: &'a Topics, rules: &'a [Rule]) -> Self {
        Self {
            topics,
            rules,
            builtin: builtin_filters(topics),
            discovery: None,
        }
    }

    /// A brain that publishes a button's Home Assistant discovery configs
    /// with the first message that creates the button.
    pub fn with_discovery(
        mut self,
        discovery: Option<crate::decide::discovery::HubDiscovery>,
    ) -> Self {
        self.discovery = discovery;
        self
    }

    fn announce_if_new(&self, house: &House, id: &Id) -> Vec<Publication> {
        match &self.discovery {
            Some(d) if !house.buttons.contains_key(id) => {
                crate::decide::discovery::retained(d.button_configs(id))
            }
            _ => Vec::new(),
        }
    }

    /// Forgets button `id`: its row, its retained state and (with
    /// discovery) its Home Assistant entities. `None` if it is unknown.
    pub fn forget_button(&self, house: &mut House, id: &Id) -> Option<Outcome> {
        house.buttons.remove(id)?;
        let mut publish = vec![Publication::retained(
            self.topics.build(&Topic::ButtonState(id.clone())),
            Vec::new(),
        )];
        if let Some(d) = &self.discovery {
            publish.extend(crate::decide::discovery::retained(d.button_removals(id)));
        }
        Some(Outcome {
            publish,
            writes: vec![Write::ForgetButton(id.clone())],
            ..Outcome::kind(MessageKind::ButtonSet)
        })
    }

    /// Parses `topic` and decides, as for a message over MQTT; what tests use.
    pub fn handle(
        &self,
        house: &mut House,
        recent: &mut RecentIds,
        topic: &str,
        payload: &[u8],
        at: DateTime<Utc>,
        delivery: Delivery,
    ) -> Outcome {
        let input = Input::parse(self.topics, topic, payload, delivery);
        self.decide(house, recent, &input, at, Via::Mqtt)
    }

    /// Decides what one message, already parsed, does to `house`; its
    /// changes' logbook entries name `via` as their source.
    pub fn decide(
        &self,
        house: &mut House,
        recent: &mut RecentIds,
        input: &Input<'_>,
        at: DateTime<Utc>,
        via: Via,
    ) -> Outcome {
        let mut outcome = self.changes(house, recent, input, at);
        logbook::record(&mut outcome, at, via);
        outcome
    }

    /// What one message changes, before its logbook entries.
    fn changes(
        &self,
        house: &mut House,
        recent: &mut RecentIds,
        input: &Input<'_>,
        at: DateTime<Utc>,
    ) -> Outcome {
        let (topic, payload, delivery) = (input.topic, input.payload, input.delivery);
        let parsed = match &input.parsed {
            Ok(parsed) => Some(parsed),
            Err(e) if self.ours(topic) => return self.reject(topic, e.clone().into()),
            Err(_) => None,
        };
        let replayed = delivery == Delivery::Replayed;
        // A state rule fires when the state changes, not each time it is
        // repeated (an agent reconnecting, Home Assistant restarting).
        let mut changed = true;
        let mut outcome = match parsed {
            // Someone retained a command: replaying it at every start would
            // TOGGLE a button once per reboot.
            Some(Topic::ButtonSet(_) | Topic::ButtonPress(_)) if replayed => {
                return Outcome::kind(MessageKind::Replayed);
            }
            // The hub's own retained state coming back: its rules ran when
            // the state changed (see set_button).
            Some(Topic::ButtonState(_)) => return Outcome::kind(MessageKind::Other),
            Some(Topic::ButtonSet(id)) => match Command::parse(payload) {
                Ok(command) => self.set_button(house, id, command, at),
                Err(e) => return self.reject(topic, e.into()),
            },
            Some(Topic::ButtonPress(id)) => match Press::parse(payload) {
                Ok(press) => {
                    if let Some(press_id) = &press.id {
                        let key = format!("{id}/{press_id}");
                        if !recent.insert(&key) {
                            return Outcome::kind(MessageKind::Duplicate);
                        }
                        let mut outcome = self.press(house, id, &press, topic, payload, at);
                        outcome.writes.push(Write::MessageId { id: key, at });
                        return outcome;
                    }
                    return self.press(house, id, &press, topic, payload, at);
                }
                Err(e) => return self.reject(topic, e.into()),
            },
            // Retained availability cleared (`mosquitto_sub -t
            // 'hearth/node/<node>/#' --remove-retained`): the Pi is retired.
            Some(Topic::NodeAvailability(node)) if payload.is_empty() => {
                let known = house.nodes.remove(node).is_some();
                let before = house.outputs.len();
                house.outputs.retain(|output, _| output.node != *node);
                let writes = if known || house.outputs.len() != before {
                    vec![Write::ForgetNode(node.clone())]
                } else {
                    Vec::new()
                };
                return Outcome {
                    writes,
                    ..Outcome::kind(MessageKind::Availability)
                };
            }
            // Its retained reading cleared: nothing to record.
            Some(Topic::NodeClimate(_)) if payload.is_empty() => {
                return Outcome::kind(MessageKind::Climate);
            }
            Some(Topic::NodeAvailability(node)) => match Availability::parse(payload) {
                Ok(availability) => {
                    let record = node_entry(house, node);
                    let from = record.availability;
                    changed = from != Some(availability);
                    record.availability = Some(availability);
                    record.last_seen = Some(at);
                    Outcome {
                        writes: vec![Write::Node(record.clone())],
                        events: vec![HouseEvent::Availability {
                            node: node.clone(),
                            from,
                            to: availability,
                        }],
                        ..Outcome::kind(MessageKind::Availability)
                    }
                }
                Err(e) => return self.reject(topic, e.into()),
            },
            Some(Topic::NodeClimate(node)) => match Reading::from_climate(payload, at) {
                Ok(readings) => Outcome {
                    events: readings
                        .iter()
                        .map(|r| HouseEvent::Reading {
                            node: node.clone(),
                            quantity: r.quantity,
                            value: r.value,
                        })
                        .collect(),
                    writes: crate::decide::readings::take_in(node_entry(house, node), readings, at),
                    ..Outcome::kind(MessageKind::Climate)
                },
                Err(e) => return self.reject(topic, e.into()),
            },
            // The retained state cleared (`mosquitto_pub -r -n`, or the
            // agent after the output left its config): the output is gone.
            Some(Topic::OutputState(output)) if payload.is_empty() => {
                house.brightness.remove(output);
                let writes = match house.outputs.remove(output) {
                    Some(_) => vec![Write::ForgetOutput(output.clone())],
                    None => Vec::new(),
                };
                return Outcome {
                    writes,
                    ..Outcome::kind(MessageKind::OutputState)
                };
            }
            Some(Topic::OutputState(output)) => match OnOff::parse(payload) {
                Ok(state) => {
                    let from = house.outputs.get(output).map(|r| r.state);
                    changed = from != Some(state);
                    let record = OutputRecord {
                        output: output.clone(),
                        state,
                        changed_at: at,
                    };
                    house.outputs.insert(output.clone(), record.clone());
                    Outcome {
                        writes: vec![Write::Output(record)],
                        confirmed: Some((output.clone(), state)),
                        events: vec![HouseEvent::Output {
                            output: output.clone(),
                            from,
                            to: state,
                        }],
                        ..Outcome::kind(MessageKind::OutputState)
                    }
                }
                Err(e) => return self.reject(topic, e.into()),
            },
            // A dimmable light's level, as its agent reports it: shown
            // by the dashboard; a cleared one is forgotten.
            Some(Topic::Brightness(output)) if payload.is_empty() => {
                house.brightness.remove(output);
                return Outcome::kind(MessageKind::OutputState);
            }
            // Rules and topic triggers on it see every message, as they
            // did before the hub learned the level.
            Some(Topic::Brightness(output)) => match Brightness::parse(payload) {
                Ok(level) => {
                    house.brightness.insert(output.clone(), level);
                    Outcome::kind(MessageKind::OutputState)
                }
                Err(e) => return self.reject(topic, e.into()),
            },
            // The input left the agent's config: forget it.
            Some(Topic::InputState { node, name }) if payload.is_empty() => {
                house.inputs.remove(&(node.clone(), name.clone()));
                return Outcome::kind(MessageKind::InputState);
            }
            Some(Topic::InputState { node, name }) => match OnOff::parse(payload) {
                Ok(state) => {
                    let from = house.inputs.insert((node.clone(), name.clone()), state);
                    changed = from != Some(state);
                    Outcome {
                        events: vec![HouseEvent::Input {
                            node: node.clone(),
                            name: name.clone(),
                            from,
                            to: state,
                        }],
                        ..Outcome::kind(MessageKind::InputState)
                    }
                }
                Err(e) => return self.reject(topic, e.into()),
            },
            _ => Outcome::kind(MessageKind::Other),
        };
        if changed && !replayed {
            self.run_rules(house, &mut outcome, topic, payload, None, at);
            outcome.events.push(HouseEvent::Message);
        } else {
            // Old news or no change: automations are not told.
            outcome.events.clear();
        }
        outcome
    }

    /// Whether `topic` is under one of the hub's own filters: a topic
    /// there that does not parse is an error, not someone else's business.
    fn ours(&self, topic: &str) -> bool {
        self.builtin.iter().any(|f| rules::filter_matches(f, topic))
    }

    pub fn reject(&self, topic: &str, error: Rejection) -> Outcome {
        Outcome {
            publish: vec![error_report(self.topics, topic, &error)],
            error: Some(error),
            ..Outcome::kind(MessageKind::Invalid)
        }
    }

    /// Applies `command` to button `id` (creating it), publishing the new state.
    pub fn set_button(
        &self,
        house: &mut House,
        id: &Id,
        command: Command,
        at: DateTime<Utc>,
    ) -> Outcome {
        let announce = self.announce_if_new(house, id);
        let record = house
            .buttons
            .entry(id.clone())
            .or_insert_with(|| ButtonRecord::new(id.clone(), at));
        let state = record.state.apply(command);
        let changed = state != record.state;
        if changed {
            record.state = state;
            record.changed_at = at;
        }
        let state_topic = self.topics.build(&Topic::ButtonState(id.clone()));
        let mut outcome = Outcome {
            publish: vec![Publication::retained(state_topic.clone(), state.as_str())],
            writes: vec![Write::Button(record.clone())],
            ..Outcome::kind(MessageKind::ButtonSet)
        };
        outcome.publish.extend(announce);
        if changed {
            outcome.events.push(HouseEvent::Button {
                button: id.clone(),
                from: Some(state.toggled()),
                to: state,
            });
            // Rules on the state topic fire here, once per change; the
            // retained copy coming back from the broker is not a change.
            self.run_rules(
                house,
                &mut outcome,
                &state_topic,
                state.as_str().as_bytes(),
                None,
                at,
            );
        }
        outcome
    }

    fn press(
        &self,
        house: &mut House,
        id: &Id,
        press: &Press,
        topic: &str,
        payload: &[u8],
        at: DateTime<Utc>,
    ) -> Outcome {
        let announce = self.announce_if_new(house, id);
        let record = house
            .buttons
            .entry(id.clone())
            .or_insert_with(|| ButtonRecord::new(id.clone(), at));
        record.press_count += 1;
        record.last_action = Some(press.action);
        record.last_press_at = Some(at);
        let event = ButtonEvent {
            event_type: press.action,
            at,
        };
        let mut outcome = Outcome {
            writes: vec![Write::Button(record.clone())],
            events: vec![
                HouseEvent::Press {
                    button: id.clone(),
                    action: press.action,
                },
                HouseEvent::Message,
            ],
            ..Outcome::kind(MessageKind::ButtonPress)
        };
        // Commands first: they are what a person waits for.
        self.run_rules(
            house,
            &mut outcome,
            topic,
            payload,
            Some((id, press.action)),
            at,
        );
        // Before the event, so Home Assistant has the entity to show it on.
        outcome.publish.extend(announce);
        outcome.publish.push(Publication::event(
            self.topics.build(&Topic::ButtonEvent(id.clone())),
            serde_json::to_vec(&event).unwrap_or_default(),
        ));
        outcome
    }

    fn run_rules(
        &self,
        house: &House,
        outcome: &mut Outcome,
        topic: &str,
        payload: &[u8],
        press: Option<(&Id, hearth_protocol::PressAction)>,
        at: DateTime<Utc>,
    ) {
        let observed = Observed {
            topic,
            payload,
            press,
        };
        for rule in rules::fired(self.rules, &observed) {
            outcome.fired.push(rule.name.clone());
            for action in &rule.actions {
                outcome.publish.push(match action {
                    Action::SetOutput { output, command } => {
                        let sent = self.command_output(house, output, *command);
                        let state = OnOff::parse(&sent.payload).unwrap_or_default();
                        let source = format!("rule:{}", rule.name);
                        outcome
                            .writes
                            .push(Write::Logbook(logbook::command(output, state, at, &source)));
                        sent
                    }
                    Action::Publish {
                        topic,
                        payload,
                        retain,
                    } => Publication {
                        topic: topic.clone(),
                        payload: payload.clone().into_bytes(),
                        qos: QoS::AtLeastOnce,
                        retain: *retain,
                    },
                });
            }
        }
    }

    /// The command for `output`, with TOGGLE resolved to ON or OFF from the
    /// last confirmed state so devices that only take ON/OFF still toggle.
    pub fn command_output(
        &self,
        house: &House,
        output: &OutputRef,
        command: Command,
    ) -> Publication {
        let state = house.output_state(output).apply(command);
        Publication::event(
            self.topics.build(&Topic::OutputSet(output.clone())),
            state.as_str(),
        )
    }

    /// Every retained state the hub owns, to publish after (re)connecting.
    pub fn retained_states(&self, house: &House) -> Vec<Publication> {
        house
            .buttons
            .values()
            .map(|b| {
                Publication::retained(
                    self.topics.build(&Topic::ButtonState(b.id.clone())),
                    b.state.as_str(),
                )
            })
            .collect()
    }
}

fn node_entry<'h>(house: &'h mut House, node: &Id) -> &'h mut NodeRecord {
    house
        .nodes
        .entry(node.clone())
        .or_insert_with(|| NodeRecord::new(node.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::rules::RuleConfig;
    use crate::model::logbook::{LogEntry, LogKind};

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T14:20:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn rules(text: &str) -> Vec<Rule> {
        #[derive(serde::Deserialize)]
        struct File {
            #[serde(default)]
            rules: Vec<RuleConfig>,
        }
        let file: File = toml::from_str(text).unwrap();
        file.rules
            .into_iter()
            .map(|r| r.validate().unwrap())
            .collect()
    }

    struct World {
        topics: Topics,
        rules: Vec<Rule>,
        house: House,
        recent: RecentIds,
    }

    impl World {
        fn new(rule_text: &str) -> Self {
            Self {
                topics: Topics::default(),
                rules: rules(rule_text),
                house: House::default(),
                recent: RecentIds::default(),
            }
        }

        fn send(&mut self, topic: &str, payload: &str) -> Outcome {
            self.deliver(topic, payload, Delivery::Live)
        }

        fn deliver(&mut self, topic: &str, payload: &str, delivery: Delivery) -> Outcome {
            let brain = Decider::new(&self.topics, &self.rules);
            brain.handle(
                &mut self.house,
                &mut self.recent,
                topic,
                payload.as_bytes(),
                at(),
                delivery,
            )
        }
    }

    fn published(outcome: &Outcome) -> Vec<(String, String)> {
        outcome
            .publish
            .iter()
            .map(|o| {
                (
                    o.topic.clone(),
                    String::from_utf8_lossy(&o.payload).into_owned(),
                )
            })
            .collect()
    }

    const LAMP_RULE: &str = r#"
        [[rules]]
        name = "desk lamp"
        when = { button = "desk", action = "single" }
        then = [{ output = "pi-1/light/lamp", command = "TOGGLE" }]
    "#;

    #[test]
    fn a_lights_brightness_is_learned_cleared_and_a_bad_one_refused() {
        let mut w = World::new("");
        let lamp = OutputRef {
            node: Id::new("pi-1").unwrap(),
            kind: hearth_protocol::OutputKind::Light,
            name: Id::new("lamp").unwrap(),
        };
        let topic = "hearth/node/pi-1/light/lamp/brightness";
        w.send(topic, "128");
        assert_eq!(w.house.brightness.get(&lamp), Some(&Brightness(128)));
        let refused = w.send(topic, "300");
        assert_eq!(refused.kind, Some(MessageKind::Invalid), "{refused:?}");
        assert_eq!(w.house.brightness.get(&lamp), Some(&Brightness(128)));
        w.send(topic, "");
        assert!(w.house.brightness.is_empty(), "{:?}", w.house.brightness);
    }

    #[test]
    fn state_rules_fire_once_per_change_not_when_the_state_is_repeated() {
        let mut w = World::new(
            r#"
            [[rules]]
            name = "bedroom on"
            when = { topic = "hearth/button/bedroom/state", payload = "ON" }
            then = [{ output = "pi-1/light/lamp", command = "ON" }]

            [[rules]]
            name = "lamp on"
            when = { topic = "hearth/node/pi-1/light/lamp/state", payload = "ON" }
            then = [{ publish = "notify/lamp", payload = "on" }]
        "#,
        );
        assert_eq!(
            w.send("hearth/button/bedroom/set", "ON").fired,
            ["bedroom on"]
        );
        // The hub's own retained state coming back (a reconnect, Home
        // Assistant's birth), and the same command again: no change.
        assert!(w.send("hearth/button/bedroom/state", "ON").fired.is_empty());
        assert!(w.send("hearth/button/bedroom/set", "ON").fired.is_empty());
        assert!(w.send("hearth/button/bedroom/set", "OFF").fired.is_empty());
        assert_eq!(
            w.send("hearth/button/bedroom/set", "TOGGLE").fired,
            ["bedroom on"]
        );

        // An agent's state: repeated on every reconnect, a rule fires once.
        assert_eq!(
            w.send("hearth/node/pi-1/light/lamp/state", "ON").fired,
            ["lamp on"]
        );
        assert!(
            w.send("hearth/node/pi-1/light/lamp/state", "ON")
                .fired
                .is_empty()
        );
        assert!(
            w.send("hearth/node/pi-1/light/lamp/state", "OFF")
                .fired
                .is_empty()
        );
        assert_eq!(
            w.send("hearth/node/pi-1/light/lamp/state", "ON").fired,
            ["lamp on"]
        );
    }

    #[test]
    fn a_cleared_output_state_forgets_the_output() {
        let mut w = World::new("");
        w.send("hearth/node/pi-1/light/lamp/state", "ON");
        assert_eq!(w.house.outputs.len(), 1);
        let out = w.send("hearth/node/pi-1/light/lamp/state", "");
        assert!(out.error.is_none(), "{out:?}");
        assert!(
            matches!(out.writes.as_slice(), [Write::ForgetOutput(o)] if o.name.as_str() == "lamp")
        );
        assert!(w.house.outputs.is_empty());
        // Cleared again, or never known: nothing to do, and no error.
        let out = w.send("hearth/node/pi-1/light/lamp/state", "");
        assert!(out.error.is_none() && out.writes.is_empty());
    }

    #[test]
    fn a_cleared_availability_retires_the_node_and_its_outputs() {
        let mut w = World::new("");
        w.send("hearth/node/pi-9/availability", "offline");
        w.send("hearth/node/pi-9/light/red/state", "ON");
        w.send("hearth/node/pi-1/light/lamp/state", "ON");
        let out = w.send("hearth/node/pi-9/climate", "");
        assert!(out.error.is_none() && out.writes.is_empty(), "{out:?}");
        let out = w.send("hearth/node/pi-9/availability", "");
        assert!(out.error.is_none(), "{out:?}");
        assert!(matches!(out.writes.as_slice(), [Write::ForgetNode(n)] if n.as_str() == "pi-9"));
        assert!(w.house.nodes.is_empty());
        let left: Vec<String> = w.house.outputs.keys().map(|o| o.to_string()).collect();
        assert_eq!(left, ["pi-1/light/lamp"]);
    }

    #[test]
    fn replayed_retained_messages_update_states_but_run_no_command_or_rule() {
        let mut w = World::new(
            r#"
            [[rules]]
            name = "lamp on"
            when = { topic = "hearth/node/pi-1/light/lamp/state", payload = "ON" }
            then = [{ publish = "notify/lamp", payload = "on" }]

            [[rules]]
            name = "zigbee"
            when = { topic = "zigbee2mqtt/remote/action" }
            then = [{ publish = "notify/remote", payload = "pressed" }]
        "#,
        );
        // Someone retained a TOGGLE: replayed at each start, it must not
        // flip the button once per reboot.
        let out = w.deliver("hearth/button/desk/set", "TOGGLE", Delivery::Replayed);
        assert_eq!(out.kind, Some(MessageKind::Replayed));
        assert!(out.publish.is_empty() && w.house.buttons.is_empty());
        let out = w.deliver("hearth/button/desk/press", "single", Delivery::Replayed);
        assert_eq!(out.kind, Some(MessageKind::Replayed));
        // A replayed state is taken in, quietly.
        let out = w.deliver(
            "hearth/node/pi-1/light/lamp/state",
            "ON",
            Delivery::Replayed,
        );
        assert!(out.fired.is_empty());
        assert_eq!(
            w.house.outputs.values().next().map(|o| o.state),
            Some(OnOff::On)
        );
        assert!(
            w.deliver("zigbee2mqtt/remote/action", "on", Delivery::Replayed)
                .fired
                .is_empty()
        );
        assert_eq!(w.send("zigbee2mqtt/remote/action", "on").fired, ["zigbee"]);
    }

    #[test]
    fn a_press_fires_the_rule_then_publishes_the_event() {
        let mut w = World::new(LAMP_RULE);
        let out = w.send("hearth/button/desk/press", "single");
        assert_eq!(out.fired, ["desk lamp"]);
        assert_eq!(
            published(&out),
            [
                ("hearth/node/pi-1/light/lamp/set".into(), "ON".into()),
                (
                    "hearth/button/desk/event".into(),
                    r#"{"event_type":"single","at":"2026-11-22T14:20:00.000Z"}"#.into()
                ),
            ]
        );
        let desk = &w.house.buttons[&Id::new("desk").unwrap()];
        assert_eq!(desk.press_count, 1);
        // The press is logged before the command it set off.
        let entry = |entity: &str, kind, detail: &str, source: &str| {
            Write::Logbook(LogEntry::new(at(), entity.into(), kind, detail, source))
        };
        assert_eq!(
            out.writes,
            [
                Write::Button(desk.clone()),
                entry("button:desk", LogKind::Press, "single", "mqtt"),
                entry(
                    "output:pi-1/light/lamp",
                    LogKind::Command,
                    "ON",
                    "rule:desk lamp"
                ),
            ]
        );
        // A double press does not match the single-press rule.
        let out = w.send("hearth/button/desk/press", r#"{"action":"double"}"#);
        assert!(out.fired.is_empty());
        assert_eq!(w.house.buttons[&Id::new("desk").unwrap()].press_count, 2);
    }

    #[test]
    fn toggle_follows_the_confirmed_output_state() {
        let mut w = World::new(LAMP_RULE);
        w.send("hearth/node/pi-1/light/lamp/state", "ON");
        let out = w.send("hearth/button/desk/press", "");
        assert_eq!(
            published(&out)[0],
            ("hearth/node/pi-1/light/lamp/set".into(), "OFF".into())
        );
    }

    #[test]
    fn button_set_changes_state_and_publishes_it_retained() {
        let mut w = World::new("");
        let out = w.send("hearth/button/desk/set", "on");
        assert_eq!(
            out.publish,
            [Publication::retained(
                "hearth/button/desk/state".into(),
                "ON"
            )]
        );
        let out = w.send("hearth/button/desk/set", r#"{"state":"TOGGLE"}"#);
        assert_eq!(
            published(&out),
            [("hearth/button/desk/state".into(), "OFF".into())]
        );
        assert_eq!(w.house.buttons[&Id::new("desk").unwrap()].state, OnOff::Off);
    }

    #[test]
    fn bad_input_is_reported_and_changes_nothing() {
        let mut w = World::new(LAMP_RULE);
        for (topic, payload, why) in [
            (
                "hearth/button/desk/set",
                "maybe",
                "expected ON, OFF, TOGGLE",
            ),
            ("hearth/button/Desk/press", "single", "'D'"),
            (
                "hearth/button/desk/press",
                "triple",
                "expected an empty payload",
            ),
            (
                "hearth/node/pi-1/climate",
                "{\"temperature\":",
                "invalid JSON",
            ),
            ("hearth/node/pi-1/fan/x/state", "ON", "unknown output kind"),
        ] {
            let out = w.send(topic, payload);
            let error = out
                .error
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(error.contains(why), "{topic}: {error}");
            assert_eq!(out.kind, Some(MessageKind::Invalid));
            assert!(out.writes.is_empty());
            let report: ErrorReport = serde_json::from_slice(&out.publish[0].payload).unwrap();
            assert_eq!(report.topic, topic);
            assert_eq!(out.publish[0].topic, "hearth/hub/error");
        }
        assert_eq!(w.house, House::default());
    }

    #[test]
    fn forgetting_a_button_clears_its_state_and_row() {
        let mut w = World::new("");
        w.send("hearth/button/desk/set", "ON");
        let brain = Decider::new(&w.topics, &w.rules);
        let desk = Id::new("desk").unwrap();
        let out = brain.forget_button(&mut w.house, &desk).unwrap();
        assert_eq!(
            out.publish,
            [Publication::retained(
                "hearth/button/desk/state".into(),
                Vec::new()
            )]
        );
        assert_eq!(out.writes, [Write::ForgetButton(desk.clone())]);
        assert!(w.house.buttons.is_empty());
        assert!(brain.forget_button(&mut w.house, &desk).is_none());
    }

    #[test]
    fn presses_with_ids_count_once() {
        let mut w = World::new("");
        let first = w.send(
            "hearth/button/desk/press",
            r#"{"action":"single","id":"p1"}"#,
        );
        assert_eq!(first.kind, Some(MessageKind::ButtonPress));
        let again = w.send(
            "hearth/button/desk/press",
            r#"{"action":"single","id":"p1"}"#,
        );
        assert_eq!(again.kind, Some(MessageKind::Duplicate));
        assert!(again.publish.is_empty() && again.writes.is_empty());
        w.send(
            "hearth/button/desk/press",
            r#"{"action":"single","id":"p2"}"#,
        );
        assert_eq!(w.house.buttons[&Id::new("desk").unwrap()].press_count, 2);
    }

    #[test]
    fn climate_and_availability_update_nodes_and_history() {
        let mut w = World::new("");
        w.send("hearth/node/pi-1/availability", "online");
        let out = w.send(
            "hearth/node/pi-1/climate",
            r#"{"temperature":21.5,"humidity":40.0,"at":"2026-11-22T14:19:30Z"}"#,
        );
        // The node row, then one reading per quantity.
        assert_eq!(out.writes.len(), 3, "{:?}", out.writes);
        let node = &w.house.nodes[&Id::new("pi-1").unwrap()];
        assert_eq!(node.availability, Some(Availability::Online));
        let temperature = hearth_protocol::Quantity::Temperature;
        assert_eq!(node.readings.value(temperature), Some(21.5));
    }

    #[test]
    fn topic_rules_fire_on_foreign_topics_without_errors() {
        let mut w = World::new(
            r#"[[rules]]
               when = { topic = "zigbee2mqtt/remote/action", payload = "on" }
               then = [{ publish = "hearth/node/pi-1/switch/fan/set", payload = "ON" }]"#,
        );
        let out = w.send("zigbee2mqtt/remote/action", "on");
        assert_eq!(
            published(&out),
            [("hearth/node/pi-1/switch/fan/set".into(), "ON".into())]
        );
        assert!(out.error.is_none());
        // Unknown topics under the prefix that are not ours are ignored, not errors.
        assert!(w.send("hearth/something/else", "x").error.is_none());
    }

    #[test]
    fn subscriptions_do_not_overlap() {
        let topics = Topics::default();
        let rs = rules(
            r#"[[rules]]
               when = { topic = "hearth/button/desk/press" }
               then = [{ publish = "x" }]
               [[rules]]
               when = { topic = "zigbee2mqtt/#" }
               then = [{ publish = "y" }]
               [[rules]]
               when = { topic = "zigbee2mqtt/+/action" }
               then = [{ publish = "z" }]"#,
        );
        let subs = subscriptions(&topics, &rs, &[]);
        assert!(!subs.contains(&"hearth/button/desk/press".to_owned()));
        assert!(subs.contains(&"zigbee2mqtt/#".to_owned()));
        assert!(!subs.contains(&"zigbee2mqtt/+/action".to_owned()));
        let all = rules(
            r#"[[rules]]
               when = { topic = "hearth/#" }
               then = [{ publish = "x" }]"#,
        );
        assert_eq!(subscriptions(&topics, &all, &[]), ["hearth/#"]);
    }

    #[test]
    fn a_new_button_announces_itself_to_home_assistant_once() {
        let topics = Topics::default();
        let discovery = crate::decide::discovery::HubDiscovery::with(
            hearth_protocol::DiscoveryTopics::default(),
            topics.clone(),
        );
        let brain = Decider::new(&topics, &[]).with_discovery(Some(discovery));
        let mut house = House::default();
        let mut recent = RecentIds::default();
        let mut send = |topic: &str, payload: &str| {
            let out = brain.handle(
                &mut house,
                &mut recent,
                topic,
                payload.as_bytes(),
                at(),
                Delivery::Live,
            );
            published(&out)
                .into_iter()
                .map(|(topic, _)| topic)
                .collect::<Vec<_>>()
        };
        let first = send("hearth/button/desk/press", "single");
        assert_eq!(first.len(), 6, "{first:?}");
        assert_eq!(
            first[0],
            "homeassistant/event/hearth_hub/button_desk/config"
        );
        assert_eq!(first[5], "hearth/button/desk/event", "the event comes last");
        assert_eq!(send("hearth/button/desk/press", "long").len(), 1);
        assert_eq!(send("hearth/button/desk/set", "ON").len(), 1);
        let hall = send("hearth/button/hall/set", "ON");
        assert_eq!(hall[0], "hearth/button/hall/state");
        assert_eq!(hall.len(), 6);
        // Rejected input creates no button, so announces nothing.
        assert_eq!(
            send("hearth/button/attic/set", "maybe"),
            ["hearth/hub/error"]
        );
    }
}
