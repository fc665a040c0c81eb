//! Incoming messages, pure: what the agent subscribes to, and topic + payload to a request or a rejection.

use hearth_protocol::{
    Brightness, ChimePlay, Command, Id, OutputKind, PayloadError, Topic, TopicError, Topics,
};

use crate::input::simulate::{Gesture, UnknownGesture};

/// What an accepted message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Output {
        kind: OutputKind,
        name: Id,
        command: Command,
    },
    Play(ChimePlay),
    /// A state the broker holds for one of this node's outputs (the
    /// agent's own, echoed, or one left from an output since removed).
    State {
        kind: OutputKind,
        name: Id,
        cleared: bool,
    },
    /// A dimmable light's level.
    Brightness {
        kind: OutputKind,
        name: Id,
        level: Brightness,
    },
    /// The broker's retained level of one of this node's lights.
    BrightnessState {
        kind: OutputKind,
        name: Id,
        cleared: bool,
    },
    /// The same for one of its inputs.
    InputState {
        name: Id,
        cleared: bool,
    },
    /// `--simulate`: a gesture for a simulated input.
    Simulate {
        name: Id,
        gesture: Gesture,
    },
}

/// Why a message was refused; published on the node's error topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("{0}")]
    Topic(#[from] TopicError),
    #[error("bad payload for {target}: {error}")]
    Payload { target: String, error: PayloadError },
    #[error("this node does not handle this topic")]
    NotOurs,
    #[error("bad payload for input {input}: {error}")]
    Gesture { input: Id, error: UnknownGesture },
}

/// Routes messages for one node (and its speaker, if any).
#[derive(Debug, Clone)]
pub struct Router {
    topics: Topics,
    node: Id,
    speaker: Option<Id>,
    /// `--simulate`: gestures for simulated inputs are taken.
    simulate: bool,
}

impl Router {
    pub fn new(topics: Topics, node: Id, speaker: Option<Id>) -> Self {
        Self {
            topics,
            node,
            speaker,
            simulate: false,
        }
    }

    /// Takes gestures on `<node>/input/+/simulate` (`--simulate` only: a
    /// real Pi's inputs are what is wired to them).
    pub fn simulating(mut self, simulate: bool) -> Self {
        self.simulate = simulate;
        self
    }

    /// Filters to (re)subscribe on every connect. The output filter takes
    /// any kind, so a typo such as `lihgt` gets an error instead of silence.
    /// The node's own states come back too: the retained ones the broker
    /// replays show outputs this node no longer has, to clear.
    pub fn subscriptions(&self) -> Vec<String> {
        let mut filters = vec![
            self.topics.filter(&format!("node/{}/+/+/set", self.node)),
            self.topics.filter(&format!("node/{}/+/+/state", self.node)),
            self.topics
                .filter(&format!("node/{}/+/+/brightness/set", self.node)),
            self.topics
                .filter(&format!("node/{}/+/+/brightness", self.node)),
        ];
        if self.simulate {
            filters.push(
                self.topics
                    .filter(&format!("node/{}/input/+/simulate", self.node)),
            );
        }
        if let Some(speaker) = &self.speaker {
            filters.push(self.topics.build(&Topic::ChimePlay {
                speaker: speaker.clone(),
            }));
        }
        filters
    }

    pub fn route(&self, topic: &str, payload: &[u8]) -> Result<Request, Rejection> {
        match self.topics.parse(topic)? {
            Topic::OutputSet(output) if output.node == self.node => {
                let command = Command::parse(payload).map_err(|error| Rejection::Payload {
                    target: format!("{} {}", output.kind, output.name),
                    error,
                })?;
                Ok(Request::Output {
                    kind: output.kind,
                    name: output.name,
                    command,
                })
            }
            Topic::OutputState(output) if output.node == self.node => Ok(Request::State {
                kind: output.kind,
                name: output.name,
                cleared: payload.is_empty(),
            }),
            Topic::BrightnessSet(output) if output.node == self.node => {
                let level = Brightness::parse(payload).map_err(|error| Rejection::Payload {
                    target: format!("{} {}", output.kind, output.name),
                    error,
                })?;
                Ok(Request::Brightness {
                    kind: output.kind,
                    name: output.name,
                    level,
                })
            }
            Topic::Brightness(output) if output.node == self.node => Ok(Request::BrightnessState {
                kind: output.kind,
                name: output.name,
                cleared: payload.is_empty(),
            }),
            Topic::InputState { node, name } if node == self.node => Ok(Request::InputState {
                name,
                cleared: payload.is_empty(),
            }),
            Topic::InputSimulate { node, name } if node == self.node && self.simulate => {
                match Gesture::parse(payload) {
                    Ok(gesture) => Ok(Request::Simulate { name, gesture }),
                    Err(error) => Err(Rejection::Gesture { input: name, error }),
                }
            }
            Topic::ChimePlay { speaker } if Some(&speaker) == self.speaker.as_ref() => {
                ChimePlay::parse(payload)
                    .map(Request::Play)
                    .map_err(|error| Rejection::Payload {
                        target: format!("speaker {speaker}"),
                        error,
                    })
            }
            _ => Err(Rejection::NotOurs),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router::new(
            Topics::default(),
            Id::new("pi-1").unwrap(),
            Some(Id::new("kitchen").unwrap()),
        )
    }

    #[test]
    fn subscribes_to_its_outputs_and_speaker() {
        assert_eq!(
            router().subscriptions(),
            [
                "hearth/node/pi-1/+/+/set",
                "hearth/node/pi-1/+/+/state",
                "hearth/node/pi-1/+/+/brightness/set",
                "hearth/node/pi-1/+/+/brightness",
                "hearth/chime/kitchen/play"
            ]
        );
        let quiet = Router::new(Topics::default(), Id::new("pi-2").unwrap(), None);
        assert_eq!(
            quiet.subscriptions(),
            [
                "hearth/node/pi-2/+/+/set",
                "hearth/node/pi-2/+/+/state",
                "hearth/node/pi-2/+/+/brightness/set",
                "hearth/node/pi-2/+/+/brightness"
            ]
        );
        assert_eq!(
            router().route("hearth/node/pi-1/light/blue/state", b""),
            Ok(Request::State {
                kind: OutputKind::Light,
                name: Id::new("blue").unwrap(),
                cleared: true
            })
        );
    }

    #[test]
    fn commands_and_plays_are_routed() {
        let r = router();
        assert_eq!(
            r.route("hearth/node/pi-1/light/red/set", b" toggle "),
            Ok(Request::Output {
                kind: OutputKind::Light,
                name: Id::new("red").unwrap(),
                command: Command::Toggle
            })
        );
        assert_eq!(
            r.route(
                "hearth/node/pi-1/sequence/traffic/set",
                br#"{"state":"OFF"}"#
            ),
            Ok(Request::Output {
                kind: OutputKind::Sequence,
                name: Id::new("traffic").unwrap(),
                command: Command::Off
            })
        );
        let play = r
            .route("hearth/chime/kitchen/play", br#"{"sound":"bell.wav"}"#)
            .unwrap();
        assert!(matches!(play, Request::Play(p) if p.sound == "bell.wav"));
    }

    #[test]
    fn input_states_and_simulated_gestures_are_routed() {
        let r = router();
        assert_eq!(
            r.route("hearth/node/pi-1/input/hall/state", b"ON"),
            Ok(Request::InputState {
                name: Id::new("hall").unwrap(),
                cleared: false
            })
        );
        assert_eq!(
            r.route("hearth/node/pi-1/input/door/simulate", b"long"),
            Err(Rejection::NotOurs),
            "a real Pi takes no gestures"
        );
        let sim = router().simulating(true);
        assert!(
            sim.subscriptions()
                .contains(&"hearth/node/pi-1/input/+/simulate".to_owned())
        );
        assert_eq!(
            sim.route("hearth/node/pi-1/input/door/simulate", b"long"),
            Ok(Request::Simulate {
                name: Id::new("door").unwrap(),
                gesture: Gesture::Long
            })
        );
        let err = sim
            .route("hearth/node/pi-1/input/door/simulate", b"wiggle")
            .unwrap_err();
        assert!(
            err.to_string().starts_with("bad payload for input door"),
            "{err}"
        );
    }

    #[test]
    fn brightness_commands_are_routed_and_bad_levels_refused() {
        let r = router();
        assert_eq!(
            r.route("hearth/node/pi-1/light/lamp/brightness/set", b"128"),
            Ok(Request::Brightness {
                kind: OutputKind::Light,
                name: Id::new("lamp").unwrap(),
                level: Brightness(128)
            })
        );
        let err = r
            .route("hearth/node/pi-1/light/lamp/brightness/set", b"300")
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("bad payload for light lamp: expected a brightness 0..255"),
            "{err}"
        );
        assert_eq!(
            r.route("hearth/node/pi-1/light/lamp/brightness", b""),
            Ok(Request::BrightnessState {
                kind: OutputKind::Light,
                name: Id::new("lamp").unwrap(),
                cleared: true
            })
        );
    }

    #[test]
    fn rejections_say_why() {
        let r = router();
        let err = r
            .route("hearth/node/pi-1/light/red/set", b"maybe")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"bad payload for light red: expected ON, OFF, TOGGLE or {"state":"ON"}, got "maybe""#
        );
        let err = r
            .route("hearth/node/pi-1/lihgt/red/set", b"ON")
            .unwrap_err();
        assert!(err.to_string().contains("\"lihgt\""), "{err}");
        let err = r
            .route("hearth/node/pi-1/light/Red/set", b"ON")
            .unwrap_err();
        assert!(err.to_string().contains("'R'"), "{err}");
        assert_eq!(
            r.route("hearth/node/pi-2/light/red/set", b"ON"),
            Err(Rejection::NotOurs)
        );
        let err = r.route("hearth/chime/kitchen/play", b"bell").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("bad payload for speaker kitchen"),
            "{err}"
        );
    }
}
