//! The MQTT topic contract: every Hearth topic as a typed value, built and parsed both ways.
//!
//! `Topics` carries the configurable prefix (`hearth` by default) so a whole house
//! can live under another root, and `Topic` names what a topic means. Parsing a
//! topic that is not in the contract gives a `TopicError` that says why, so the
//! hub can publish it on `hearth/hub/error` instead of guessing.

use std::fmt;
use std::str::FromStr;

use crate::id::{Id, IdError};
use crate::quantity::Quantity;

/// The prefix every Hearth topic starts with unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "hearth";

/// Kinds of node outputs a command can address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutputKind {
    Light,
    Switch,
    Sequence,
}

impl OutputKind {
    pub const ALL: [OutputKind; 3] = [Self::Light, Self::Switch, Self::Sequence];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Light => "light",
            Self::Switch => "switch",
            Self::Sequence => "sequence",
        }
    }
}

impl fmt::Display for OutputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutputKind {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| TopicError::UnknownKind(s.to_owned()))
    }
}

/// A node output: which node, what kind, which name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutputRef {
    pub node: Id,
    pub kind: OutputKind,
    pub name: Id,
}

impl fmt::Display for OutputRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.node, self.kind, self.name)
    }
}

/// Every topic of the contract, without its prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    ButtonSet(Id),
    ButtonPress(Id),
    ButtonState(Id),
    ButtonEvent(Id),
    ClockHhmm,
    NodeAvailability(Id),
    NodeClimate(Id),
    /// One quantity of a climate message as a plain number
    /// (`hearth/node/<node>/climate/temperature`).
    NodeReading(Id, Quantity),
    NodeError(Id),
    OutputSet(OutputRef),
    OutputState(OutputRef),
    /// A dimmable light's level command, `0`..`255`.
    BrightnessSet(OutputRef),
    /// A dimmable light's level, retained.
    Brightness(OutputRef),
    /// A node's wired input (motion, contact): retained `ON`/`OFF`.
    InputState {
        node: Id,
        name: Id,
    },
    /// `--simulate` only: an edge pattern for a simulated input
    /// (`press`, `double`, `long`, `ON`, `OFF`).
    InputSimulate {
        node: Id,
        name: Id,
    },
    ChimePlay {
        speaker: Id,
    },
    HubChimeSet(Id),
    HubChimePlay(Id),
    /// `ON`/`OFF`/`TOGGLE`: enables or disables a chime, nothing else
    /// (what Home Assistant's switch for the chime sends).
    HubChimeEnabledSet(Id),
    HubChime(Id),
    /// An automation as JSON (create or replace); an empty payload deletes it.
    HubAutomationSet(Id),
    /// `ON`/`OFF`: switch an automation on or off.
    HubAutomationEnabledSet(Id),
    /// Any payload: run an automation's actions now.
    HubAutomationRun(Id),
    /// The hub's retained view of an automation.
    HubAutomation(Id),
    /// A scene as JSON (create or replace); an empty payload deletes it.
    HubSceneSet(Id),
    /// Any payload: apply a scene.
    HubSceneApply(Id),
    /// The hub's retained view of a scene.
    HubScene(Id),
    HubAvailability,
    HubError,
}

/// The shape of a [`Topic`] without its ids: what a subscription filter
/// names. Derived from [`Topic`] ([`Topic::kind`]), so a new topic cannot
/// be parsed without also having a filter; a test checks that each
/// filter matches exactly the topics [`Topics::parse`] gives that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicKind {
    ButtonSet,
    ButtonPress,
    ButtonState,
    ButtonEvent,
    ClockHhmm,
    NodeAvailability,
    NodeClimate,
    NodeReading,
    NodeError,
    OutputSet,
    OutputState,
    BrightnessSet,
    Brightness,
    InputState,
    InputSimulate,
    ChimePlay,
    HubChimeSet,
    HubChimePlay,
    HubChimeEnabledSet,
    HubChime,
    HubAutomationSet,
    HubAutomationEnabledSet,
    HubAutomationRun,
    HubAutomation,
    HubSceneSet,
    HubSceneApply,
    HubScene,
    HubAvailability,
    HubError,
}

impl TopicKind {
    pub const ALL: [TopicKind; 29] = [
        TopicKind::ButtonSet,
        TopicKind::ButtonPress,
        TopicKind::ButtonState,
        TopicKind::ButtonEvent,
        TopicKind::ClockHhmm,
        TopicKind::NodeAvailability,
        TopicKind::NodeClimate,
        TopicKind::NodeReading,
        TopicKind::NodeError,
        TopicKind::OutputSet,
        TopicKind::OutputState,
        TopicKind::BrightnessSet,
        TopicKind::Brightness,
        TopicKind::InputState,
        TopicKind::InputSimulate,
        TopicKind::ChimePlay,
        TopicKind::HubChimeSet,
        TopicKind::HubChimePlay,
        TopicKind::HubChimeEnabledSet,
        TopicKind::HubChime,
        TopicKind::HubAutomationSet,
        TopicKind::HubAutomationEnabledSet,
        TopicKind::HubAutomationRun,
        TopicKind::HubAutomation,
        TopicKind::HubSceneSet,
        TopicKind::HubSceneApply,
        TopicKind::HubScene,
        TopicKind::HubAvailability,
        TopicKind::HubError,
    ];

    /// What the hub subscribes to: button commands and presses, what nodes
    /// report, chime commands, and the hub's own availability (a standby
    /// replica's last will, which the leader answers).
    pub const HUB_INPUTS: [TopicKind; 16] = [
        TopicKind::ButtonSet,
        TopicKind::ButtonPress,
        TopicKind::NodeAvailability,
        TopicKind::NodeClimate,
        TopicKind::OutputState,
        TopicKind::Brightness,
        TopicKind::InputState,
        TopicKind::HubChimeSet,
        TopicKind::HubChimePlay,
        TopicKind::HubChimeEnabledSet,
        TopicKind::HubAutomationSet,
        TopicKind::HubAutomationEnabledSet,
        TopicKind::HubAutomationRun,
        TopicKind::HubSceneSet,
        TopicKind::HubSceneApply,
        TopicKind::HubAvailability,
    ];

    /// The topic after the prefix, with `+` for every id level.
    pub fn pattern(self) -> &'static str {
        match self {
            TopicKind::ButtonSet => "button/+/set",
            TopicKind::ButtonPress => "button/+/press",
            TopicKind::ButtonState => "button/+/state",
            TopicKind::ButtonEvent => "button/+/event",
            TopicKind::ClockHhmm => "clock/hhmm",
            TopicKind::NodeAvailability => "node/+/availability",
            TopicKind::NodeClimate => "node/+/climate",
            TopicKind::NodeReading => "node/+/climate/+",
            TopicKind::NodeError => "node/+/error",
            TopicKind::OutputSet => "node/+/+/+/set",
            // Also matches input states (`node/<node>/input/<name>/state`):
            // MQTT filters cannot leave one word out of a level.
            TopicKind::OutputState => "node/+/+/+/state",
            TopicKind::BrightnessSet => "node/+/+/+/brightness/set",
            TopicKind::Brightness => "node/+/+/+/brightness",
            TopicKind::InputState => "node/+/input/+/state",
            TopicKind::InputSimulate => "node/+/input/+/simulate",
            TopicKind::ChimePlay => "chime/+/play",
            TopicKind::HubChimeSet => "hub/chimes/+/set",
            TopicKind::HubChimePlay => "hub/chimes/+/play",
            TopicKind::HubChimeEnabledSet => "hub/chimes/+/enabled/set",
            TopicKind::HubChime => "hub/chimes/+",
            TopicKind::HubAutomationSet => "hub/automations/+/set",
            TopicKind::HubAutomationEnabledSet => "hub/automations/+/enabled/set",
            TopicKind::HubAutomationRun => "hub/automations/+/run",
            TopicKind::HubAutomation => "hub/automations/+",
            TopicKind::HubSceneSet => "hub/scenes/+/set",
            TopicKind::HubSceneApply => "hub/scenes/+/apply",
            TopicKind::HubScene => "hub/scenes/+",
            TopicKind::HubAvailability => "hub/availability",
            TopicKind::HubError => "hub/error",
        }
    }
}

impl Topic {
    /// This topic's shape, ids left out.
    pub fn kind(&self) -> TopicKind {
        match self {
            Topic::ButtonSet(_) => TopicKind::ButtonSet,
            Topic::ButtonPress(_) => TopicKind::ButtonPress,
            Topic::ButtonState(_) => TopicKind::ButtonState,
            Topic::ButtonEvent(_) => TopicKind::ButtonEvent,
            Topic::ClockHhmm => TopicKind::ClockHhmm,
            Topic::NodeAvailability(_) => TopicKind::NodeAvailability,
            Topic::NodeClimate(_) => TopicKind::NodeClimate,
            Topic::NodeReading(..) => TopicKind::NodeReading,
            Topic::NodeError(_) => TopicKind::NodeError,
            Topic::OutputSet(_) => TopicKind::OutputSet,
            Topic::OutputState(_) => TopicKind::OutputState,
            Topic::BrightnessSet(_) => TopicKind::BrightnessSet,
            Topic::Brightness(_) => TopicKind::Brightness,
            Topic::InputState { .. } => TopicKind::InputState,
            Topic::InputSimulate { .. } => TopicKind::InputSimulate,
            Topic::ChimePlay { .. } => TopicKind::ChimePlay,
            Topic::HubChimeSet(_) => TopicKind::HubChimeSet,
            Topic::HubChimePlay(_) => TopicKind::HubChimePlay,
            Topic::HubChimeEnabledSet(_) => TopicKind::HubChimeEnabledSet,
            Topic::HubChime(_) => TopicKind::HubChime,
            Topic::HubAutomationSet(_) => TopicKind::HubAutomationSet,
            Topic::HubAutomationEnabledSet(_) => TopicKind::HubAutomationEnabledSet,
            Topic::HubAutomationRun(_) => TopicKind::HubAutomationRun,
            Topic::HubAutomation(_) => TopicKind::HubAutomation,
            Topic::HubSceneSet(_) => TopicKind::HubSceneSet,
            Topic::HubSceneApply(_) => TopicKind::HubSceneApply,
            Topic::HubScene(_) => TopicKind::HubScene,
            Topic::HubAvailability => TopicKind::HubAvailability,
            Topic::HubError => TopicKind::HubError,
        }
    }
}

/// Why a topic string is not part of the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic does not start with the prefix {0:?}")]
    WrongPrefix(String),
    #[error("topic is not part of the Hearth contract")]
    Unknown,
    #[error("unknown output kind {0:?}; expected light, switch or sequence")]
    UnknownKind(String),
    #[error("bad identifier in topic: {0}")]
    BadId(#[from] IdError),
    #[error("invalid topic prefix {prefix:?}: {why}")]
    BadPrefix { prefix: String, why: &'static str },
}

/// Builds and parses topics under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Default for Topics {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }
}

impl Topics {
    /// A topic namespace under `prefix`, which may contain `/` but no wildcards,
    /// no empty levels and no leading or trailing slash.
    pub fn new(prefix: &str) -> Result<Self, TopicError> {
        let why = if prefix.is_empty() {
            Some("it is empty")
        } else if prefix.contains(['+', '#', '\0']) {
            Some("it contains a wildcard or NUL character")
        } else if prefix.split('/').any(str::is_empty) {
            Some("it has an empty level (leading, trailing or double '/')")
        } else {
            None
        };
        match why {
            Some(why) => Err(TopicError::BadPrefix {
                prefix: prefix.to_owned(),
                why,
            }),
            None => Ok(Self {
                prefix: prefix.to_owned(),
            }),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full topic string for `topic`.
    pub fn build(&self, topic: &Topic) -> String {
        let p = &self.prefix;
        match topic {
            Topic::ButtonSet(id) => format!("{p}/button/{id}/set"),
            Topic::ButtonPress(id) => format!("{p}/button/{id}/press"),
            Topic::ButtonState(id) => format!("{p}/button/{id}/state"),
            Topic::ButtonEvent(id) => format!("{p}/button/{id}/event"),
            Topic::ClockHhmm => format!("{p}/clock/hhmm"),
            Topic::NodeAvailability(n) => format!("{p}/node/{n}/availability"),
            Topic::NodeClimate(n) => format!("{p}/node/{n}/climate"),
            Topic::NodeReading(n, q) => format!("{p}/node/{n}/climate/{q}"),
            Topic::NodeError(n) => format!("{p}/node/{n}/error"),
            Topic::OutputSet(o) => format!("{p}/node/{o}/set"),
            Topic::OutputState(o) => format!("{p}/node/{o}/state"),
            Topic::BrightnessSet(o) => format!("{p}/node/{o}/brightness/set"),
            Topic::Brightness(o) => format!("{p}/node/{o}/brightness"),
            Topic::InputState { node, name } => format!("{p}/node/{node}/input/{name}/state"),
            Topic::InputSimulate { node, name } => {
                format!("{p}/node/{node}/input/{name}/simulate")
            }
            Topic::ChimePlay { speaker } => format!("{p}/chime/{speaker}/play"),
            Topic::HubChimeSet(id) => format!("{p}/hub/chimes/{id}/set"),
            Topic::HubChimePlay(id) => format!("{p}/hub/chimes/{id}/play"),
            Topic::HubChimeEnabledSet(id) => format!("{p}/hub/chimes/{id}/enabled/set"),
            Topic::HubChime(id) => format!("{p}/hub/chimes/{id}"),
            Topic::HubAutomationSet(id) => format!("{p}/hub/automations/{id}/set"),
            Topic::HubAutomationEnabledSet(id) => format!("{p}/hub/automations/{id}/enabled/set"),
            Topic::HubAutomationRun(id) => format!("{p}/hub/automations/{id}/run"),
            Topic::HubAutomation(id) => format!("{p}/hub/automations/{id}"),
            Topic::HubSceneSet(id) => format!("{p}/hub/scenes/{id}/set"),
            Topic::HubSceneApply(id) => format!("{p}/hub/scenes/{id}/apply"),
            Topic::HubScene(id) => format!("{p}/hub/scenes/{id}"),
            Topic::HubAvailability => format!("{p}/hub/availability"),
            Topic::HubError => format!("{p}/hub/error"),
        }
    }

    /// A subscription filter under this prefix, e.g. `filter("button/+/set")`.
    pub fn filter(&self, rest: &str) -> String {
        format!("{}/{rest}", self.prefix)
    }

    /// The subscription filter for every topic of `kind` under this prefix.
    pub fn filter_of(&self, kind: TopicKind) -> String {
        self.filter(kind.pattern())
    }

    /// Parses a full topic string into what it means.
    pub fn parse(&self, topic: &str) -> Result<Topic, TopicError> {
        let rest = topic
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| TopicError::WrongPrefix(self.prefix.clone()))?;
        let levels: Vec<&str> = rest.split('/').collect();
        let id = |s: &str| Id::new(s).map_err(TopicError::from);
        let topic = match levels.as_slice() {
            ["button", b, "set"] => Topic::ButtonSet(id(b)?),
            ["button", b, "press"] => Topic::ButtonPress(id(b)?),
            ["button", b, "state"] => Topic::ButtonState(id(b)?),
            ["button", b, "event"] => Topic::ButtonEvent(id(b)?),
            ["clock", "hhmm"] => Topic::ClockHhmm,
            ["node", n, "availability"] => Topic::NodeAvailability(id(n)?),
            ["node", n, "climate"] => Topic::NodeClimate(id(n)?),
            // An unknown quantity is an unknown topic, as it always was.
            ["node", n, "climate", q] => match q.parse::<Quantity>() {
                Ok(q) => Topic::NodeReading(id(n)?, q),
                Err(_) => return Err(TopicError::Unknown),
            },
            ["node", n, "error"] => Topic::NodeError(id(n)?),
            ["node", n, "input", name, "state"] => Topic::InputState {
                node: id(n)?,
                name: id(name)?,
            },
            ["node", n, "input", name, "simulate"] => Topic::InputSimulate {
                node: id(n)?,
                name: id(name)?,
            },
            ["node", n, kind, name, "brightness", rest @ ..] if rest.len() <= 1 => {
                let output = OutputRef {
                    node: id(n)?,
                    kind: kind.parse()?,
                    name: id(name)?,
                };
                match rest {
                    [] => Topic::Brightness(output),
                    ["set"] => Topic::BrightnessSet(output),
                    _ => return Err(TopicError::Unknown),
                }
            }
            ["node", n, kind, name, verb @ ("set" | "state")] => {
                let output = OutputRef {
                    node: id(n)?,
                    kind: kind.parse()?,
                    name: id(name)?,
                };
                if *verb == "set" {
                    Topic::OutputSet(output)
                } else {
                    Topic::OutputState(output)
                }
            }
            ["chime", s, "play"] => Topic::ChimePlay { speaker: id(s)? },
            ["hub", "chimes", c, "set"] => Topic::HubChimeSet(id(c)?),
            ["hub", "chimes", c, "play"] => Topic::HubChimePlay(id(c)?),
            ["hub", "chimes", c, "enabled", "set"] => Topic::HubChimeEnabledSet(id(c)?),
            ["hub", "chimes", c] => Topic::HubChime(id(c)?),
            ["hub", "automations", a, "set"] => Topic::HubAutomationSet(id(a)?),
            ["hub", "automations", a, "enabled", "set"] => Topic::HubAutomationEnabledSet(id(a)?),
            ["hub", "automations", a, "run"] => Topic::HubAutomationRun(id(a)?),
            ["hub", "automations", a] => Topic::HubAutomation(id(a)?),
            ["hub", "scenes", s, "set"] => Topic::HubSceneSet(id(s)?),
            ["hub", "scenes", s, "apply"] => Topic::HubSceneApply(id(s)?),
            ["hub", "scenes", s] => Topic::HubScene(id(s)?),
            ["hub", "availability"] => Topic::HubAvailability,
            ["hub", "error"] => Topic::HubError,
            _ => return Err(TopicError::Unknown),
        };
        Ok(topic)
    }
}

/// The default Home Assistant discovery prefix.
pub const DEFAULT_DISCOVERY_PREFIX: &str = "homeassistant";

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Id {
        Id::new(s).unwrap()
    }

    #[test]
    fn builds_the_documented_topics() {
        let t = Topics::default();
        let lamp = OutputRef {
            node: id("pi-1"),
            kind: OutputKind::Light,
            name: id("lamp"),
        };
        let cases = [
            (Topic::ButtonPress(id("desk")), "hearth/button/desk/press"),
            (Topic::ButtonState(id("desk")), "hearth/button/desk/state"),
            (Topic::ClockHhmm, "hearth/clock/hhmm"),
            (
                Topic::NodeReading(id("pi-1"), Quantity::Temperature),
                "hearth/node/pi-1/climate/temperature",
            ),
            (
                Topic::NodeReading(id("pi-1"), Quantity::Humidity),
                "hearth/node/pi-1/climate/humidity",
            ),
            (
                Topic::OutputSet(lamp.clone()),
                "hearth/node/pi-1/light/lamp/set",
            ),
            (
                Topic::OutputState(lamp),
                "hearth/node/pi-1/light/lamp/state",
            ),
            (
                Topic::ChimePlay {
                    speaker: id("kitchen"),
                },
                "hearth/chime/kitchen/play",
            ),
            (Topic::HubChimeSet(id("tea")), "hearth/hub/chimes/tea/set"),
            (Topic::HubChime(id("tea")), "hearth/hub/chimes/tea"),
            (
                Topic::HubChimeEnabledSet(id("tea")),
                "hearth/hub/chimes/tea/enabled/set",
            ),
            (Topic::HubAvailability, "hearth/hub/availability"),
        ];
        for (topic, text) in cases {
            assert_eq!(t.build(&topic), text);
            assert_eq!(t.parse(text), Ok(topic));
        }
    }

    #[test]
    fn rejects_topics_outside_the_contract_with_a_reason() {
        let t = Topics::default();
        assert_eq!(
            t.parse("other/button/desk/set"),
            Err(TopicError::WrongPrefix("hearth".into()))
        );
        assert_eq!(
            t.parse("hearthx/button/desk/set"),
            Err(TopicError::WrongPrefix("hearth".into()))
        );
        assert_eq!(t.parse("hearth/button/desk"), Err(TopicError::Unknown));
        assert_eq!(
            t.parse("hearth/node/pi-1/climate/co2"),
            Err(TopicError::Unknown)
        );
        assert_eq!(
            t.parse("hearth/button/desk/set/extra"),
            Err(TopicError::Unknown)
        );
        assert_eq!(
            t.parse("hearth/node/pi/fan/x/set"),
            Err(TopicError::UnknownKind("fan".into()))
        );
        assert!(matches!(
            t.parse("hearth/button/Desk/set"),
            Err(TopicError::BadId(IdError::BadChar { bad: 'D', .. }))
        ));
        assert!(matches!(
            t.parse("hearth/button//set"),
            Err(TopicError::BadId(IdError::Empty))
        ));
    }

    #[test]
    fn custom_prefixes_may_have_levels_but_no_wildcards() {
        let t = Topics::new("home/hearth").unwrap();
        assert_eq!(t.build(&Topic::HubError), "home/hearth/hub/error");
        assert_eq!(t.parse("home/hearth/hub/error"), Ok(Topic::HubError));
        assert_eq!(t.filter("button/+/set"), "home/hearth/button/+/set");
        for bad in ["", "a/#", "+", "/a", "a/", "a//b"] {
            assert!(Topics::new(bad).is_err(), "{bad:?}");
        }
    }

    /// Whether MQTT filter `filter` matches `topic` (`+` one level, `#` the rest).
    fn matches(filter: &str, topic: &str) -> bool {
        let mut t = topic.split('/');
        for f in filter.split('/') {
            match (f, t.next()) {
                ("#", _) => return true,
                ("+", Some(_)) => {}
                (f, Some(level)) if f == level => {}
                _ => return false,
            }
        }
        t.next().is_none()
    }

    #[test]
    fn every_kind_has_a_filter_that_matches_exactly_its_topics() {
        let t = Topics::new("home/hearth").unwrap();
        let n = id("pi-1");
        let output = |kind| OutputRef {
            node: n.clone(),
            kind,
            name: id("lamp"),
        };
        let samples = [
            Topic::ButtonSet(id("desk")),
            Topic::ButtonPress(id("desk")),
            Topic::ButtonState(id("desk")),
            Topic::ButtonEvent(id("desk")),
            Topic::ClockHhmm,
            Topic::NodeAvailability(n.clone()),
            Topic::NodeClimate(n.clone()),
            Topic::NodeReading(n.clone(), Quantity::Humidity),
            Topic::NodeError(n.clone()),
            Topic::OutputSet(output(OutputKind::Light)),
            Topic::OutputState(output(OutputKind::Switch)),
            Topic::BrightnessSet(output(OutputKind::Light)),
            Topic::Brightness(output(OutputKind::Light)),
            Topic::InputState {
                node: n.clone(),
                name: id("door"),
            },
            Topic::InputSimulate {
                node: n.clone(),
                name: id("door"),
            },
            Topic::ChimePlay {
                speaker: id("kitchen"),
            },
            Topic::HubChimeSet(id("tea")),
            Topic::HubChimePlay(id("tea")),
            Topic::HubChimeEnabledSet(id("tea")),
            Topic::HubChime(id("tea")),
            Topic::HubAutomationSet(id("hall")),
            Topic::HubAutomationEnabledSet(id("hall")),
            Topic::HubAutomationRun(id("hall")),
            Topic::HubAutomation(id("hall")),
            Topic::HubSceneSet(id("evening")),
            Topic::HubSceneApply(id("evening")),
            Topic::HubScene(id("evening")),
            Topic::HubAvailability,
            Topic::HubError,
        ];
        let kinds: Vec<TopicKind> = samples.iter().map(Topic::kind).collect();
        assert_eq!(kinds, TopicKind::ALL, "one sample per kind, in order");
        for topic in &samples {
            let built = t.build(topic);
            assert_eq!(t.parse(&built).as_ref(), Ok(topic), "{built}");
            for kind in TopicKind::ALL {
                let filter = t.filter_of(kind);
                // The one documented overlap: output states' filter also
                // catches input states (the hub reads both).
                let overlap =
                    kind == TopicKind::OutputState && topic.kind() == TopicKind::InputState;
                assert_eq!(
                    matches(&filter, &built),
                    kind == topic.kind() || overlap,
                    "{filter} against {built}"
                );
            }
        }
        // A filter catches no topic that parses to another kind; what it
        // catches and does not parse is an error on a topic the hub owns.
        for kind in TopicKind::HUB_INPUTS {
            let filter = t.filter_of(kind);
            let concrete = filter.replace('+', "x");
            if let Ok(parsed) = t.parse(&concrete) {
                assert_eq!(parsed.kind(), kind, "{filter} caught {concrete}");
            }
        }
    }
}
