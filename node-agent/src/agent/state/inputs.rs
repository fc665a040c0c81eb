//! The agent's wired inputs: decoded events to MQTT, simulated gestures to edges.

use std::time::Duration;

use hearth_protocol::{OnOff, Topic};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::Agent;
use crate::config::InputKind;
use crate::input::run::{InputEvent, RawEdge};
use crate::input::simulate::{self, Gesture};

/// What the agent needs of the input hardware.
#[derive(Debug)]
pub struct InputWiring {
    /// Whether each input is active at start.
    pub initial: Vec<bool>,
    /// `--simulate`: the edge queue gestures are fed into.
    pub inject: Option<mpsc::Sender<RawEdge>>,
}

impl Agent {
    fn input_state_topic(&self, index: usize) -> Option<String> {
        let def = self.inputs.get(index)?;
        matches!(def.kind, InputKind::Binary { .. }).then(|| {
            self.topic(Topic::InputState {
                node: self.node.clone(),
                name: def.name.clone(),
            })
        })
    }

    /// Every binary input's state, retained (buttons have no state).
    pub(super) async fn publish_input_states(&self) {
        for (index, active) in self.input_active.iter().enumerate() {
            if let Some(topic) = self.input_state_topic(index) {
                self.publish(topic, OnOff::from(*active).as_str(), true)
                    .await;
            }
        }
    }

    /// A debounced change or a press: published as the contract says.
    pub(in crate::agent) async fn on_input(&mut self, event: InputEvent) {
        match event {
            InputEvent::State { input, active } => {
                let Some(slot) = self.input_active.get_mut(input) else {
                    return;
                };
                *slot = active;
                if let Some(topic) = self.input_state_topic(input) {
                    tracing::info!(input = %self.inputs[input].name, active, "input");
                    self.publish(topic, OnOff::from(active).as_str(), true)
                        .await;
                }
            }
            InputEvent::Press { input, action } => {
                let Some(def) = self.inputs.get(input) else {
                    return;
                };
                let InputKind::Button { id } = &def.kind else {
                    return;
                };
                tracing::info!(input = %def.name, button = %id, %action, "press");
                // Exactly what an IoT button sends: the hub cannot tell
                // them apart, and need not.
                let topic = self.topic(Topic::ButtonPress(id.clone()));
                self.publish(topic, action.as_str(), false).await;
            }
        }
    }

    /// `--simulate`: plays `gesture` on input `name` as timed edges, chatter
    /// included, through the same decoder a real pin feeds.
    pub(super) async fn simulate(
        &mut self,
        topic: &str,
        name: &hearth_protocol::Id,
        gesture: Gesture,
    ) {
        let Some(inject) = self.inject.clone() else {
            return;
        };
        let Some(index) = self.inputs.iter().position(|i| i.name == *name) else {
            let known: Vec<&str> = self.inputs.iter().map(|i| i.name.as_str()).collect();
            self.report(
                topic,
                &format!("no input named {name} (inputs: {})", known.join(", ")),
            )
            .await;
            return;
        };
        let timings = self.inputs[index].timings;
        let script = simulate::script(gesture, &timings);
        tracing::info!(input = %name, ?gesture, edges = script.len(), "simulated gesture");
        // Gestures on one input play one after another, each once the last
        // one's press can no longer be taken for part of it (a long press
        // is reported while still held; the next gesture waits for its
        // release and the double window).
        let start = Instant::now().max(self.gesture_free_at[index]);
        let end = start + script.last().map_or(Duration::ZERO, |(at, _)| *at);
        self.gesture_free_at[index] = end + timings.double_within + timings.debounce;
        // A task of its own: a long press takes a second, and the agent
        // keeps serving meanwhile. It ends with its script.
        tokio::spawn(async move {
            for (offset, active) in script {
                let at = start + offset;
                sleep_until(at).await;
                let edge = RawEdge {
                    input: index,
                    at,
                    active,
                };
                if inject.send(edge).await.is_err() {
                    return;
                }
            }
        });
    }
}
