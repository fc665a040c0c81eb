//! Automations (and rules) that would set each other off forever, refused
//! before they are saved, with the rules' own check (`rules::find_loop`).
//!
//! Each trigger an action inside Hearth can fire (a press, a message with a
//! plain payload, a button's or output's state, a node's availability)
//! becomes a rule with that automation's actions (a scene's outputs
//! included), and the rules' check runs over them all: an event or a
//! TOGGLE in the circle never settles. Triggers on a JSON field or a number
//! are not followed (a payload published by an action rarely matches one
//! by accident); say so where it matters.

use hearth_protocol::{Id, Topic, Topics};

use super::definition::{Automation, PayloadMatch, Scene, Step, Trigger};
use crate::decide::rules::{self, Action, Rule};
use crate::model::chime::Source;

/// Whether `automation` may join `others` (the rest of the catalogue, it
/// may be among them under its own id): it may only switch automations and
/// apply scenes that exist, and must not set itself or others off forever.
/// The message names the field. The hub runs it on every change from MQTT
/// and HTTP, the CLI before it stores one, so neither can save what a
/// restart would refuse.
pub fn check_joins(
    automation: &Automation,
    others: &[&Automation],
    scenes: &[&Scene],
    rules: &[Rule],
    topics: &Topics,
) -> Result<(), String> {
    let all: Vec<&Automation> = others
        .iter()
        .copied()
        .filter(|a| a.id != automation.id)
        .chain(std::iter::once(automation))
        .collect();
    if let Some(cycle) = find_loop(rules, &all, scenes, topics) {
        return Err(format!(
            "it would set automations off forever: {cycle}; give a trigger a payload its predecessor does not send"
        ));
    }
    for (i, step) in automation.steps.iter().enumerate() {
        match step {
            Step::Enable {
                automation: other, ..
            } if !all.iter().any(|a| a.id == *other) => {
                return Err(format!("actions[{i}]: no automation {other}"));
            }
            Step::Scene(scene) if !scenes.iter().any(|s| s.id == *scene) => {
                return Err(format!("actions[{i}].scene: no scene {scene}"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// An automation as stored, with where it came from.
pub type Stored = (Automation, Source);

/// The stored automations a hub may start with: run-time ones that would
/// now set things off forever are left out, each with why. The file's
/// automations and rules were checked together when the config loaded,
/// and a run-time one when it was saved, but a rule or automation added to
/// the file since can close a circle with it. Only when the whole set has
/// a loop are run-time ones added one at a time (names sorted), so the
/// common start costs one check.
pub fn without_loops(
    automations: Vec<Stored>,
    scenes: &[&Scene],
    rules: &[Rule],
    topics: &Topics,
) -> (Vec<Stored>, Vec<(Id, String)>) {
    let all: Vec<&Automation> = automations.iter().map(|(a, _)| a).collect();
    if find_loop(rules, &all, scenes, topics).is_none() {
        return (automations, Vec::new());
    }
    let (mut kept, mut runtime): (Vec<_>, Vec<_>) = automations
        .into_iter()
        .partition(|(_, source)| *source == Source::Config);
    runtime.sort_by(|(a, _), (b, _)| a.id.cmp(&b.id));
    let mut refused = Vec::new();
    for (automation, source) in runtime {
        let with: Vec<&Automation> = kept
            .iter()
            .map(|(a, _)| a)
            .chain(std::iter::once(&automation))
            .collect();
        match find_loop(rules, &with, scenes, topics) {
            Some(cycle) => refused.push((automation.id.clone(), cycle)),
            None => kept.push((automation, source)),
        }
    }
    (kept, refused)
}

/// Who set whom off: `rules[2] ("name") -> automation hall -> ...`; `None`
/// when everything settles.
pub fn find_loop(
    rules: &[Rule],
    automations: &[&Automation],
    scenes: &[&Scene],
    topics: &Topics,
) -> Option<String> {
    let mut all: Vec<Rule> = rules.to_vec();
    let mut names: Vec<String> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| format!("rules[{i}] ({:?})", r.name))
        .collect();
    let with_actions: Vec<(&Automation, Vec<Action>)> = automations
        .iter()
        .map(|a| (*a, actions_of(a, scenes)))
        .filter(|(_, actions)| !actions.is_empty())
        .collect();
    // Only a trigger some action can reach can be on a circle: with
    // thousands of automations, checking every pair would take minutes.
    let reachable = Reachable::of(rules, with_actions.iter().flat_map(|(_, a)| a), topics);
    for (automation, actions) in &with_actions {
        let triggers = automation
            .triggers
            .iter()
            .filter_map(|t| as_rule_trigger(t, topics))
            .filter(|t| reachable.may_fire(t, topics));
        for trigger in triggers {
            all.push(Rule {
                name: automation.id.to_string(),
                trigger,
                actions: actions.clone(),
            });
            names.push(format!("automation {}", automation.id));
        }
    }
    let cycle = rules::find_loop(&all, topics)?;
    Some(
        cycle
            .iter()
            .map(|&i| names[i].clone())
            .collect::<Vec<_>>()
            .join(" -> "),
    )
}

/// The topics actions can lead to inside Hearth: each message sent, and
/// the state a button or output takes when it obeys.
struct Reachable {
    topics: std::collections::HashSet<String>,
}

impl Reachable {
    fn of<'a>(
        rules: &'a [Rule],
        actions: impl Iterator<Item = &'a Action>,
        topics: &Topics,
    ) -> Self {
        // The rules' own notion of what an action leads to, so the two
        // checks cannot drift apart.
        let topics = rules
            .iter()
            .flat_map(|r| r.actions.iter())
            .chain(actions)
            .flat_map(|action| rules::messages_caused(action, topics))
            .map(|caused| caused.topic)
            .collect();
        Self { topics }
    }

    /// Whether some action's message may fire `trigger` (a necessary
    /// condition; the rules' check decides).
    fn may_fire(&self, trigger: &rules::Trigger, topics: &Topics) -> bool {
        match trigger {
            rules::Trigger::Press { button, .. } => self
                .topics
                .contains(&topics.build(&Topic::ButtonPress(button.clone()))),
            rules::Trigger::Message { filter, .. } if !filter.contains(['+', '#']) => {
                self.topics.contains(filter)
            }
            rules::Trigger::Message { filter, .. } => {
                self.topics.iter().any(|t| rules::filter_matches(filter, t))
            }
        }
    }
}

/// What an automation sends that can come back into Hearth.
fn actions_of(automation: &Automation, scenes: &[&Scene]) -> Vec<Action> {
    let mut actions = Vec::new();
    for step in &automation.steps {
        match step {
            Step::SetOutput { output, command } => actions.push(Action::SetOutput {
                output: output.clone(),
                command: *command,
            }),
            Step::Publish {
                topic,
                payload,
                retain,
            } => actions.push(Action::Publish {
                topic: topic.clone(),
                payload: payload.clone(),
                retain: *retain,
            }),
            Step::Scene(id) => {
                for scene in scenes.iter().filter(|s| s.id == *id) {
                    for step in &scene.steps {
                        if let Step::SetOutput { output, command } = step {
                            actions.push(Action::SetOutput {
                                output: output.clone(),
                                command: *command,
                            });
                        }
                    }
                }
            }
            _ => {}
        }
    }
    actions
}

/// The rule trigger that fires when `trigger` does, for the triggers an
/// action can fire.
fn as_rule_trigger(trigger: &Trigger, topics: &Topics) -> Option<rules::Trigger> {
    let state = |topic: Topic, to: Option<&str>| rules::Trigger::Message {
        filter: topics.build(&topic),
        payload: to.map(str::to_owned),
    };
    Some(match trigger {
        Trigger::Press { button, action } => rules::Trigger::Press {
            button: button.clone(),
            action: *action,
        },
        Trigger::Message {
            filter,
            matches: PayloadMatch::Any,
        } => rules::Trigger::Message {
            filter: filter.clone(),
            payload: None,
        },
        Trigger::Message {
            filter,
            matches: PayloadMatch::Exactly(p),
        } => rules::Trigger::Message {
            filter: filter.clone(),
            payload: Some(p.clone()),
        },
        Trigger::Button { button, to, .. } => {
            state(Topic::ButtonState(button.clone()), to.map(|s| s.as_str()))
        }
        Trigger::Output { output, to, .. } => {
            state(Topic::OutputState(output.clone()), to.map(|s| s.as_str()))
        }
        Trigger::Availability { node, to, .. } => state(
            Topic::NodeAvailability(node.clone()),
            to.map(|a| a.as_str()),
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use hearth_protocol::AutomationSpec;

    use super::*;
    use crate::decide::automations::Context;

    fn automation(text: &str) -> Automation {
        let spec: AutomationSpec = toml::from_str(text).unwrap();
        let cx = Context {
            timezone: chrono_tz::UTC,
            located: false,
        };
        Automation::validate(&spec, None, cx).unwrap()
    }

    #[test]
    fn an_automation_that_sets_itself_off_is_named() {
        let echo = automation(
            r#"
            id = "echo"
            triggers = [{ topic = "test/loop" }]
            actions = [{ delay_s = 1 }, { publish = "test/loop", payload = "again" }]
            "#,
        );
        let found = find_loop(&[], &[&echo], &[], &Topics::default());
        assert_eq!(found.as_deref(), Some("automation echo -> automation echo"));
    }

    #[test]
    fn two_automations_toggling_each_others_lights_never_settle_but_fixed_states_do() {
        let a = |id: &str, from: &str, to: &str, command: &str| {
            automation(&format!(
                r#"
                id = "{id}"
                triggers = [{{ output = "{from}" }}]
                actions = [{{ output = "{to}", command = "{command}" }}]
                "#
            ))
        };
        let (x, y) = ("pi-1/light/x", "pi-1/light/y");
        let ping = a("ping", x, y, "TOGGLE");
        let pong = a("pong", y, x, "TOGGLE");
        let found = find_loop(&[], &[&ping, &pong], &[], &Topics::default()).unwrap();
        assert!(
            found.contains("automation ping") && found.contains("automation pong"),
            "{found}"
        );
        // Kept in step with fixed states: the second round changes nothing.
        let on_x = a("on-x", x, y, "ON");
        let on_y = a("on-y", y, x, "ON");
        assert_eq!(
            find_loop(&[], &[&on_x, &on_y], &[], &Topics::default()),
            None
        );
    }

    #[test]
    fn a_stored_automation_that_now_closes_a_circle_with_the_file_is_left_out() {
        let a = |id: &str, from: &str, to: &str| {
            automation(&format!(
                r#"
                id = "{id}"
                triggers = [{{ output = "{from}" }}]
                actions = [{{ output = "{to}", command = "TOGGLE" }}]
                "#
            ))
        };
        let (x, y, z) = ("pi-1/light/x", "pi-1/light/y", "pi-1/light/z");
        // The file now has ping (x -> y); pong (y -> x) was saved at run
        // time before ping existed; other (z -> y) is harmless.
        let stored = vec![
            (a("ping", x, y), Source::Config),
            (a("pong", y, x), Source::Runtime),
            (a("other", z, y), Source::Runtime),
        ];
        let (kept, refused) = without_loops(stored, &[], &[], &Topics::default());
        let kept: Vec<&str> = kept.iter().map(|(a, _)| a.id.as_str()).collect();
        assert_eq!(kept, ["ping", "other"]);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0.as_str(), "pong");
        assert!(refused[0].1.contains("automation ping"), "{refused:?}");

        // Without a circle, everything stays, in order.
        let fine = vec![(a("other", z, y), Source::Runtime)];
        let (kept, refused) = without_loops(fine, &[], &[], &Topics::default());
        assert_eq!((kept.len(), refused.len()), (1, 0));
    }
}
