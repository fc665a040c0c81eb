//! Rules from the config file: when a message matches, which commands to send. Pure functions only.
//!
//! ```toml
//! [[rules]]
//! name = "desk button toggles the lamp"
//! when = { button = "desk", action = "single" }
//! then = [{ output = "pi-1/light/lamp", command = "TOGGLE" }]
//!
//! [[rules]]
//! when = { topic = "zigbee2mqtt/+/action", payload = "double" }
//! then = [{ publish = "hearth/node/pi-1/light/lamp/set", payload = "OFF" }]
//! ```

use hearth_protocol::{Command, Id, OutputKind, OutputRef, PressAction};
use serde::Deserialize;

mod loops;
pub use loops::find_loop;
pub(crate) use loops::messages_caused;

/// A rule as written in the config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub when: WhenConfig,
    pub then: Vec<ActionConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct WhenConfig {
    pub button: Option<String>,
    pub action: Option<String>,
    pub topic: Option<String>,
    pub payload: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    pub output: Option<String>,
    pub command: Option<String>,
    pub publish: Option<String>,
    pub payload: Option<String>,
    pub retain: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error(
        "when: give either `button` (with optional `action`) or `topic` (with optional `payload`)"
    )]
    AmbiguousTrigger,
    #[error("when.button: {0}")]
    Button(String),
    #[error("when.action: {0}")]
    Action(String),
    #[error("when.topic {filter:?}: {why}")]
    Filter { filter: String, why: &'static str },
    #[error("then is empty: a rule must do something")]
    NoActions,
    #[error("then[{index}]: give either `output` + `command` or `publish` (+ `payload`, `retain`)")]
    AmbiguousAction { index: usize },
    #[error("then[{index}].output: {why}")]
    Output { index: usize, why: String },
    #[error("then[{index}].command: {why}")]
    Command { index: usize, why: String },
    #[error(
        "then[{index}].publish {topic:?}: a topic to publish to must not be empty or contain + or #"
    )]
    PublishTopic { index: usize, topic: String },
}

/// What makes a rule fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A press of `button`, of one kind or any kind.
    Press {
        button: Id,
        action: Option<PressAction>,
    },
    /// Any message whose topic matches `filter` (and whose trimmed payload equals `payload`).
    Message {
        filter: String,
        payload: Option<String>,
    },
}

/// What a fired rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Command a node output; `TOGGLE` is resolved by the hub from the
    /// output's last known state, so devices that only understand ON/OFF work.
    SetOutput { output: OutputRef, command: Command },
    Publish {
        topic: String,
        payload: String,
        retain: bool,
    },
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub trigger: Trigger,
    pub actions: Vec<Action>,
}

/// What arrived, as rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    /// Set when the message was a valid press of a button.
    pub press: Option<(&'a Id, PressAction)>,
}

impl RuleConfig {
    pub fn validate(self) -> Result<Rule, RuleError> {
        let trigger = match (&self.when.button, &self.when.topic) {
            (Some(button), None) if self.when.payload.is_none() => Trigger::Press {
                button: Id::new(button).map_err(|e| RuleError::Button(e.to_string()))?,
                action: self
                    .when
                    .action
                    .as_deref()
                    .map(|a| {
                        PressAction::parse(a.as_bytes())
                            .map_err(|e| RuleError::Action(e.to_string()))
                    })
                    .transpose()?,
            },
            (None, Some(filter)) if self.when.action.is_none() => {
                validate_filter(filter).map_err(|why| RuleError::Filter {
                    filter: filter.clone(),
                    why,
                })?;
                Trigger::Message {
                    filter: filter.clone(),
                    payload: self.when.payload.as_ref().map(|p| p.trim().to_owned()),
                }
            }
            _ => return Err(RuleError::AmbiguousTrigger),
        };
        if self.then.is_empty() {
            return Err(RuleError::NoActions);
        }
        let actions = self
            .then
            .into_iter()
            .enumerate()
            .map(|(index, a)| a.validate(index))
            .collect::<Result<Vec<_>, _>>()?;
        let name = self.name.unwrap_or_else(|| match &trigger {
            Trigger::Press { button, .. } => format!("button {button}"),
            Trigger::Message { filter, .. } => format!("topic {filter}"),
        });
        Ok(Rule {
            name,
            trigger,
            actions,
        })
    }
}

impl ActionConfig {
    fn validate(self, index: usize) -> Result<Action, RuleError> {
        match (self.output, self.command, self.publish) {
            (Some(output), Some(command), None)
                if self.payload.is_none() && self.retain.is_none() =>
            {
                let output =
                    parse_output(&output).map_err(|why| RuleError::Output { index, why })?;
                let command =
                    Command::parse(command.as_bytes()).map_err(|e| RuleError::Command {
                        index,
                        why: e.to_string(),
                    })?;
                Ok(Action::SetOutput { output, command })
            }
            (None, None, Some(topic)) => {
                if topic.is_empty() || topic.contains(['+', '#']) {
                    return Err(RuleError::PublishTopic { index, topic });
                }
                Ok(Action::Publish {
                    topic,
                    payload: self.payload.unwrap_or_default(),
                    retain: self.retain.unwrap_or(false),
                })
            }
            _ => Err(RuleError::AmbiguousAction { index }),
        }
    }
}

/// Parses `node/kind/name`, e.g. `pi-1/light/lamp`.
pub fn parse_output(text: &str) -> Result<OutputRef, String> {
    let parts: Vec<&str> = text.split('/').collect();
    let [node, kind, name] = parts.as_slice() else {
        return Err(format!(
            "{text:?} must look like node/kind/name, e.g. pi-1/light/lamp"
        ));
    };
    let kind: OutputKind = kind
        .parse()
        .map_err(|e: hearth_protocol::TopicError| e.to_string())?;
    Ok(OutputRef {
        node: Id::new(node).map_err(|e| e.to_string())?,
        kind,
        name: Id::new(name).map_err(|e| e.to_string())?,
    })
}

/// Checks an MQTT subscription filter: `#` only as the whole last level,
/// `+` only as a whole level.
pub fn validate_filter(filter: &str) -> Result<(), &'static str> {
    if filter.is_empty() {
        return Err("a topic filter must not be empty");
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err("'#' must be the whole last level");
        }
        if level.contains('+') && *level != "+" {
            return Err("'+' must be a whole level");
        }
    }
    Ok(())
}

/// Whether `topic` matches the MQTT `filter` (wildcards never match topics
/// starting with `$`, as the MQTT spec says).
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for f in filter.split('/') {
        match (f, topic_levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(t)) if f == t => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

/// Whether every topic `inner` matches is also matched by `outer`.
pub fn filter_covers(outer: &str, inner: &str) -> bool {
    let outer: Vec<&str> = outer.split('/').collect();
    let inner: Vec<&str> = inner.split('/').collect();
    for (i, o) in outer.iter().enumerate() {
        match (*o, inner.get(i)) {
            ("#", _) => return true,
            (_, None) => return false,
            ("+", Some(&"#")) => return false,
            ("+", Some(_)) => {}
            (o, Some(i)) if o == *i => {}
            _ => return false,
        }
    }
    outer.len() == inner.len()
}

impl Rule {
    pub fn matches(&self, observed: &Observed<'_>) -> bool {
        match &self.trigger {
            Trigger::Press { button, action } => observed
                .press
                .is_some_and(|(b, a)| b == button && action.is_none_or(|want| want == a)),
            Trigger::Message { filter, payload } => {
                filter_matches(filter, observed.topic)
                    && payload.as_ref().is_none_or(|want| {
                        std::str::from_utf8(observed.payload).is_ok_and(|p| p.trim() == want)
                    })
            }
        }
    }
}

/// The rules that fire for `observed`, in config order.
pub fn fired<'r>(rules: &'r [Rule], observed: &Observed<'_>) -> Vec<&'r Rule> {
    rules.iter().filter(|r| r.matches(observed)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(toml_text: &str) -> Result<Rule, RuleError> {
        let config: RuleConfig = toml::from_str(toml_text).expect("toml parses");
        config.validate()
    }

    #[test]
    fn mqtt_wildcards() {
        assert!(filter_matches("a/+/c", "a/b/c"));
        assert!(!filter_matches("a/+/c", "a/b/c/d"));
        assert!(!filter_matches("a/+", "a"));
        assert!(filter_matches("a/#", "a"));
        assert!(filter_matches("a/#", "a/b/c"));
        assert!(filter_matches("#", "anything/at/all"));
        assert!(!filter_matches("#", "$SYS/broker"));
        assert!(filter_matches("$SYS/#", "$SYS/broker"));
        assert!(!filter_matches("a/b", "a/b/c"));
        assert!(filter_matches("+/+", "/x"));
    }

    #[test]
    fn filter_validation() {
        for ok in ["a", "a/+/c", "#", "a/#", "+"] {
            assert_eq!(validate_filter(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a/#/c", "a#", "a/b+", "a/+x/c"] {
            assert!(validate_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn covering_filters() {
        assert!(filter_covers("hearth/#", "hearth/button/+/press"));
        assert!(filter_covers(
            "hearth/button/+/press",
            "hearth/button/desk/press"
        ));
        assert!(!filter_covers(
            "hearth/button/desk/press",
            "hearth/button/+/press"
        ));
        assert!(!filter_covers("hearth/+/x", "hearth/#"));
        assert!(filter_covers("#", "#"));
        assert!(!filter_covers("a/b", "a/b/c"));
    }

    #[test]
    fn button_sugar_fires_on_the_right_press() {
        let r = rule(
            r#"when = { button = "desk", action = "single" }
               then = [{ output = "pi-1/light/lamp", command = "toggle" }]"#,
        )
        .unwrap();
        let desk = Id::new("desk").unwrap();
        let other = Id::new("hall").unwrap();
        let at = |press| Observed {
            topic: "hearth/button/desk/press",
            payload: b"",
            press,
        };
        assert!(r.matches(&at(Some((&desk, PressAction::Single)))));
        assert!(!r.matches(&at(Some((&desk, PressAction::Double)))));
        assert!(!r.matches(&at(Some((&other, PressAction::Single)))));
        assert!(!r.matches(&at(None)));
        assert_eq!(
            r.actions,
            [Action::SetOutput {
                output: parse_output("pi-1/light/lamp").unwrap(),
                command: Command::Toggle
            }]
        );
    }

    #[test]
    fn topic_rules_match_filter_and_trimmed_payload() {
        let r = rule(
            r#"when = { topic = "zigbee2mqtt/+/action", payload = "double" }
               then = [{ publish = "hearth/node/pi-1/light/lamp/set", payload = "OFF" }]"#,
        )
        .unwrap();
        let seen = |topic, payload| Observed {
            topic,
            payload,
            press: None,
        };
        assert!(r.matches(&seen("zigbee2mqtt/remote/action", b" double\n")));
        assert!(!r.matches(&seen("zigbee2mqtt/remote/action", b"single")));
        assert!(!r.matches(&seen("zigbee2mqtt/remote/other", b"double")));
        let rules = vec![r.clone(), r];
        assert_eq!(
            fired(&rules, &seen("zigbee2mqtt/x/action", b"double")).len(),
            2
        );
    }

    #[test]
    fn bad_rules_say_which_part_is_wrong() {
        let err = rule(
            r#"when = { button = "desk", topic = "x" }
                          then = [{ publish = "t" }]"#,
        )
        .unwrap_err();
        assert_eq!(err, RuleError::AmbiguousTrigger);
        let err = rule(
            r#"when = { topic = "a/#/b" }
                          then = [{ publish = "t" }]"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("'#' must be the whole last level"));
        let err = rule(
            r#"when = { button = "desk" }
                          then = []"#,
        )
        .unwrap_err();
        assert_eq!(err, RuleError::NoActions);
        let err = rule(
            r#"when = { button = "desk" }
                          then = [{ output = "pi-1/light/lamp", command = "BLINK" }]"#,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("then[0].command"), "{err}");
        let err = rule(
            r#"when = { button = "desk" }
                          then = [{ publish = "a/+" }]"#,
        )
        .unwrap_err();
        assert!(matches!(err, RuleError::PublishTopic { .. }));
        let err = rule(
            r#"when = { button = "Desk" }
                          then = [{ publish = "a" }]"#,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("when.button"), "{err}");
    }
}
