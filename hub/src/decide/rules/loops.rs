//! Rules that would set each other off forever, found when the config is loaded.
//!
//! A rule whose action matches its own trigger (or a chain of rules that
//! comes back to its start) would keep the hub publishing at full speed
//! until it is stopped, and with `retain = true` start again after every
//! restart. Each action is followed through what Hearth does with it: a
//! button `set` changes the button's state, an output `set` comes back as
//! the output's state once the agent obeys. TOGGLE can come out either way.
//! The check is static: a loop that only closes through devices outside
//! Hearth (a Zigbee bridge echoing a command) is not seen.

use hearth_protocol::{Command, Id, Press, PressAction, Topic, Topics};

use super::{Action, Observed, Rule};

/// The first loop among `rules` that would never settle, as rule indexes
/// from its start back to it (`[0, 0]` for a rule that sets itself off).
///
/// A rule on a state fires only when the state changes, so rules that
/// only ever set states to fixed values settle after one round (two
/// buttons kept in step both ways is fine). A loop never settles when one
/// of its steps is an event (any message but a state) or a TOGGLE.
pub fn find_loop(rules: &[Rule], topics: &Topics) -> Option<Vec<usize>> {
    // sets_off[i]: (j, settles) when rule i's actions can fire rule j.
    let sets_off: Vec<Vec<(usize, bool)>> = rules
        .iter()
        .map(|rule| {
            let caused: Vec<Caused> = rule
                .actions
                .iter()
                .flat_map(|action| messages_caused(action, topics))
                .collect();
            let mut next: Vec<(usize, bool)> = Vec::new();
            for (index, other) in rules.iter().enumerate() {
                let hits = caused
                    .iter()
                    .filter(|c| fires_on(other, topics, &c.topic, &c.payload));
                // One never-settling way in is enough to keep it going.
                if let Some(settles) = hits.map(|c| c.settles).reduce(|a, b| a && b) {
                    next.push((index, settles));
                }
            }
            next
        })
        .collect();
    for (from, edges) in sets_off.iter().enumerate() {
        for &(to, settles) in edges {
            if settles {
                continue;
            }
            if let Some(mut back) = path(&sets_off, to, from) {
                let mut cycle = vec![from];
                cycle.append(&mut back);
                return Some(cycle);
            }
        }
    }
    None
}

/// A way from rule `from` to rule `to` along any edges, both ends
/// included; `[to]` when they are the same.
fn path(sets_off: &[Vec<(usize, bool)>], from: usize, to: usize) -> Option<Vec<usize>> {
    let mut came_from: Vec<Option<usize>> = vec![None; sets_off.len()];
    let mut seen = vec![false; sets_off.len()];
    let mut queue = std::collections::VecDeque::from([from]);
    seen[from] = true;
    while let Some(at) = queue.pop_front() {
        if at == to {
            let mut way = vec![at];
            let mut step = at;
            while let Some(previous) = came_from[step] {
                way.push(previous);
                step = previous;
            }
            way.reverse();
            return Some(way);
        }
        for &(next, _) in &sets_off[at] {
            if !seen[next] {
                seen[next] = true;
                came_from[next] = Some(at);
                queue.push_back(next);
            }
        }
    }
    None
}

/// A message an action leads to, and whether rules on it settle (a state
/// set to a fixed value fires its rules only the first time).
pub(crate) struct Caused {
    pub(crate) topic: String,
    payload: String,
    settles: bool,
}

/// Whether `rule` fires on a message on `topic` with `payload`.
fn fires_on(rule: &Rule, topics: &Topics, topic: &str, payload: &str) -> bool {
    let pressed: Option<(Id, PressAction)> = match topics.parse(topic) {
        Ok(Topic::ButtonPress(id)) => Press::parse(payload.as_bytes())
            .ok()
            .map(|press| (id, press.action)),
        _ => None,
    };
    rule.matches(&Observed {
        topic,
        payload: payload.as_bytes(),
        press: pressed.as_ref().map(|(id, action)| (id, *action)),
    })
}

/// Every message an action can lead to inside Hearth: the message itself,
/// and the state a button or output takes when it obeys.
pub(crate) fn messages_caused(action: &Action, topics: &Topics) -> Vec<Caused> {
    let (topic, payload) = match action {
        Action::SetOutput { output, command } => (
            topics.build(&Topic::OutputSet(output.clone())),
            command.as_str().to_owned(),
        ),
        Action::Publish { topic, payload, .. } => (topic.clone(), payload.clone()),
    };
    let parsed = topics.parse(&topic);
    let is_state = matches!(
        parsed,
        Ok(Topic::ButtonState(_) | Topic::OutputState(_) | Topic::NodeAvailability(_))
    );
    let state_topic = match parsed {
        Ok(Topic::ButtonSet(id)) => Some(topics.build(&Topic::ButtonState(id))),
        Ok(Topic::OutputSet(output)) => Some(topics.build(&Topic::OutputState(output))),
        _ => None,
    };
    let mut caused = Vec::new();
    if let (Some(state_topic), Ok(command)) = (state_topic, Command::parse(payload.as_bytes())) {
        let states: &[&str] = match command {
            Command::On => &["ON"],
            Command::Off => &["OFF"],
            Command::Toggle => &["ON", "OFF"],
        };
        for state in states {
            caused.push(Caused {
                topic: state_topic.clone(),
                payload: (*state).to_owned(),
                settles: command != Command::Toggle,
            });
        }
    }
    caused.push(Caused {
        topic,
        payload,
        settles: is_state,
    });
    caused
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::rules::RuleConfig;

    fn looping(text: &str) -> Option<Vec<usize>> {
        #[derive(serde::Deserialize)]
        struct File {
            rules: Vec<RuleConfig>,
        }
        let file: File = toml::from_str(text).unwrap();
        let rules: Vec<Rule> = file
            .rules
            .into_iter()
            .map(|r| r.validate().unwrap())
            .collect();
        find_loop(&rules, &Topics::default())
    }

    #[test]
    fn a_rule_that_sets_itself_off_is_a_loop() {
        assert_eq!(
            looping(
                r#"
                [[rules]]
                when = { topic = "test/loop" }
                then = [{ publish = "test/loop", payload = "again" }]
            "#
            ),
            Some(vec![0, 0])
        );
        // With a payload condition its action does not meet: no loop.
        assert_eq!(
            looping(
                r#"
                [[rules]]
                when = { topic = "test/loop", payload = "go" }
                then = [{ publish = "test/loop", payload = "done" }]
            "#
            ),
            None
        );
    }

    #[test]
    fn loops_through_button_and_output_states_are_found() {
        // Two buttons flipping each other never settle.
        assert_eq!(
            looping(
                r#"
                [[rules]]
                name = "a flips b"
                when = { topic = "hearth/button/a/state" }
                then = [{ publish = "hearth/button/b/set", payload = "TOGGLE" }]

                [[rules]]
                name = "b flips a"
                when = { topic = "hearth/button/b/state" }
                then = [{ publish = "hearth/button/a/set", payload = "TOGGLE" }]
            "#
            ),
            Some(vec![0, 1, 0])
        );
        // A lamp that switches itself off whenever it comes on, and on
        // whenever it goes off, through the agent.
        assert_eq!(
            looping(
                r#"
                [[rules]]
                when = { topic = "hearth/node/pi-1/light/lamp/state" }
                then = [{ output = "pi-1/light/lamp", command = "TOGGLE" }]
            "#
            ),
            Some(vec![0, 0])
        );
        // A press that publishes a press of the same button.
        assert_eq!(
            looping(
                r#"
                [[rules]]
                when = { button = "desk", action = "double" }
                then = [{ publish = "hearth/button/desk/press", payload = "double" }]
            "#
            ),
            Some(vec![0, 0])
        );
    }

    #[test]
    fn states_kept_in_step_settle_and_are_no_loop() {
        assert_eq!(
            looping(
                r#"
                [[rules]]
                when = { topic = "hearth/button/a/state", payload = "ON" }
                then = [{ publish = "hearth/button/b/set", payload = "ON" }]

                [[rules]]
                when = { topic = "hearth/button/b/state", payload = "ON" }
                then = [{ publish = "hearth/button/a/set", payload = "ON" }]
            "#
            ),
            None
        );
    }

    #[test]
    fn ordinary_rules_are_no_loop() {
        assert_eq!(
            looping(
                r#"
                [[rules]]
                when = { button = "desk", action = "single" }
                then = [{ output = "pi-1/light/lamp", command = "TOGGLE" }]

                [[rules]]
                when = { topic = "hearth/node/pi-1/light/lamp/state", payload = "ON" }
                then = [{ publish = "notify/lamp", payload = "on" }]

                [[rules]]
                when = { topic = "zigbee2mqtt/remote/action", payload = "on" }
                then = [{ publish = "hearth/node/pi-1/light/lamp/set", payload = "ON" }]

                [[rules]]
                when = { topic = "hearth/button/bedroom/state", payload = "ON" }
                then = [{ publish = "hearth/button/hall/set", payload = "ON" }]
            "#
            ),
            None
        );
    }
}
