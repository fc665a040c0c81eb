//! Dimmable lights: `brightness/set` commands and the retained `brightness`.
//!
//! On/off stays the board's (sequences, TOGGLE, SIGTERM all work as for any
//! light); the agent keeps each light's level when on. `0` switches off and
//! keeps the level, so `ON` brings the light back as it was, as a wall dimmer
//! does. The retained `brightness` is that level (never 0), the state topic
//! says whether it is lit: Home Assistant reads them so.

use hearth_protocol::{Brightness, OutputKind, OutputRef, Topic};
use tokio::time::Instant;

use super::Agent;
use crate::board::Target;
use hearth_protocol::Command;

impl Agent {
    fn brightness_topic(&self, index: usize) -> Option<String> {
        let def = self.board.output(index).filter(|d| d.dimmable)?;
        Some(self.topic(Topic::Brightness(OutputRef {
            node: self.node.clone(),
            kind: def.kind,
            name: def.name.clone(),
        })))
    }

    /// A dimmable light's level, retained; nothing for other outputs.
    pub(super) async fn publish_brightness(&self, index: usize) {
        if let Some(topic) = self.brightness_topic(index) {
            self.publish(topic, self.levels[index].to_string(), true)
                .await;
        }
    }

    /// `brightness/set`: `0` is off, anything else lights it at that level.
    pub(super) async fn dim(
        &mut self,
        topic: &str,
        kind: OutputKind,
        name: &hearth_protocol::Id,
        level: Brightness,
    ) {
        let index = match self.board.find(kind, name.as_str()) {
            Ok(Target::Output(index)) if self.board.output(index).is_some_and(|d| d.dimmable) => {
                index
            }
            Ok(_) => {
                self.counters.commands.rejected += 1;
                self.report(
                    topic,
                    &format!(
                        "{kind} {name} is not dimmable: set dimmable = true on a light on a PWM pin \
                         (BCM 12, 13, 18 or 19)"
                    ),
                )
                .await;
                return;
            }
            Err(error) => {
                self.counters.commands.rejected += 1;
                self.report(topic, &error.to_string()).await;
                return;
            }
        };
        self.counters.commands.accepted += 1;
        if level.0 == 0 {
            let changes = self
                .board
                .command(Target::Output(index), Command::Off, Instant::now());
            self.apply(changes).await;
            return;
        }
        self.levels[index] = level;
        let lit = self
            .board
            .outputs()
            .nth(index)
            .is_some_and(|(_, s)| s.is_on());
        if lit {
            // Already on: only the duty changes (apply would see no change).
            let pin = self.board.output(index).map(|d| d.pin.pin);
            if let Some(Err(error)) = pin.map(|pin| self.pins.set_duty(pin, level.duty())) {
                self.report(topic, &error.to_string()).await;
                return;
            }
        } else {
            let changes = self
                .board
                .command(Target::Output(index), Command::On, Instant::now());
            self.apply(changes).await;
        }
        tracing::debug!(output = %name, %level, "brightness");
        self.publish_brightness(index).await;
    }
}
