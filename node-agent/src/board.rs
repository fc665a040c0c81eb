//! The outputs and sequences state machine, pure: a command (or a tick) in, the states that changed out.
//!
//! Rules: every output starts off. A sequence owns the outputs its steps
//! name while it runs; starting it stops any running sequence that shares
//! one, and stopping it turns all of them off. A direct command to an output
//! a running sequence uses stops that sequence first, then applies the
//! command (so `TOGGLE` acts on the now-off output). Within one change the
//! outputs going off come before those going on, so two lights of a traffic
//! light are never on together.
//!
//! Time is passed in, never read, so the tests drive sequences step by step.

use hearth_protocol::{Command, OnOff, OutputKind};
use tokio::time::Instant;

use crate::config::{OutputDef, SequenceDef};

/// A command's addressee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Output(usize),
    Sequence(usize),
}

/// Why a command has no addressee.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoardError {
    #[error("no {kind} named {name:?} on this node; {known}")]
    Unknown {
        kind: OutputKind,
        name: String,
        known: String,
    },
}

/// What a command or tick changed, in the order to apply and publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub outputs: Vec<(usize, OnOff)>,
    pub sequences: Vec<(usize, OnOff)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty() && self.sequences.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Running {
    step: usize,
    due: Instant,
}

#[derive(Debug, Clone)]
struct Sequence {
    def: SequenceDef,
    /// Every output any step names, sorted.
    uses: Vec<usize>,
    running: Option<Running>,
}

/// The node's outputs and sequences and their states.
#[derive(Debug, Clone)]
pub struct Board {
    outputs: Vec<(OutputDef, OnOff)>,
    sequences: Vec<Sequence>,
}

impl Board {
    /// A board with every output off and no sequence running.
    pub fn new(outputs: Vec<OutputDef>, sequences: Vec<SequenceDef>) -> Self {
        let sequences = sequences
            .into_iter()
            .map(|def| {
                let mut uses: Vec<usize> = def.steps.iter().flat_map(|s| s.on.clone()).collect();
                uses.sort_unstable();
                uses.dedup();
                Sequence {
                    def,
                    uses,
                    running: None,
                }
            })
            .collect();
        Self {
            outputs: outputs.into_iter().map(|o| (o, OnOff::Off)).collect(),
            sequences,
        }
    }

    pub fn outputs(&self) -> impl ExactSizeIterator<Item = (&OutputDef, OnOff)> {
        self.outputs.iter().map(|(d, s)| (d, *s))
    }

    pub fn output(&self, index: usize) -> Option<&OutputDef> {
        self.outputs.get(index).map(|(d, _)| d)
    }

    pub fn sequences(&self) -> impl ExactSizeIterator<Item = (&SequenceDef, OnOff)> {
        self.sequences
            .iter()
            .map(|s| (&s.def, OnOff::from(s.running.is_some())))
    }

    pub fn sequence(&self, index: usize) -> Option<&SequenceDef> {
        self.sequences.get(index).map(|s| &s.def)
    }

    /// Finds what `kind`/`name` addresses.
    pub fn find(&self, kind: OutputKind, name: &str) -> Result<Target, BoardError> {
        let found = if kind == OutputKind::Sequence {
            self.sequences
                .iter()
                .position(|s| s.def.name.as_str() == name)
                .map(Target::Sequence)
        } else {
            self.outputs
                .iter()
                .position(|(d, _)| d.kind == kind && d.name.as_str() == name)
                .map(Target::Output)
        };
        found.ok_or_else(|| {
            let names: Vec<&str> = if kind == OutputKind::Sequence {
                self.sequences.iter().map(|s| s.def.name.as_str()).collect()
            } else {
                self.outputs
                    .iter()
                    .filter(|(d, _)| d.kind == kind)
                    .map(|(d, _)| d.name.as_str())
                    .collect()
            };
            let kinds = plural(kind);
            let known = if names.is_empty() {
                format!("it has no {kinds}")
            } else {
                format!("its {kinds} are: {}", names.join(", "))
            };
            BoardError::Unknown {
                kind,
                name: name.to_owned(),
                known,
            }
        })
    }

    /// Applies `command` to `target` at `now`. The target itself is always
    /// in the changes, so its state is confirmed even when it did not change.
    pub fn command(&mut self, target: Target, command: Command, now: Instant) -> Changes {
        let before = self.snapshot();
        match target {
            Target::Output(index) => {
                // TOGGLE means "the other way from what I see": resolve it
                // before a sequence using the output is stopped (which
                // switches it off), or a lit light would stay lit.
                let wanted = self.outputs.get(index).map(|(_, s)| s.apply(command));
                self.stop_sequences_using(index);
                if let (Some((_, state)), Some(wanted)) = (self.outputs.get_mut(index), wanted) {
                    *state = wanted;
                }
            }
            Target::Sequence(index) => {
                let running = self
                    .sequences
                    .get(index)
                    .is_some_and(|s| s.running.is_some());
                match OnOff::from(running).apply(command) {
                    OnOff::On if !running => self.start(index, now),
                    OnOff::Off if running => self.stop(index),
                    _ => {}
                }
            }
        }
        self.changes_since(&before, Some(target))
    }

    /// Advances every sequence whose step is due.
    pub fn tick(&mut self, now: Instant) -> Changes {
        let before = self.snapshot();
        for index in 0..self.sequences.len() {
            let Some(running) = self.sequences[index].running else {
                continue;
            };
            if running.due > now {
                continue;
            }
            let steps = self.sequences[index].def.steps.len();
            let step = (running.step + 1) % steps;
            let duration = self.sequences[index].def.steps[step].duration;
            // Keep the rhythm from the schedule, not from when we woke up,
            // unless we are so late (a suspended Pi) that it would race.
            let mut due = running.due + duration;
            if due <= now {
                due = now + duration;
            }
            self.sequences[index].running = Some(Running { step, due });
            self.show_step(index, step);
        }
        self.changes_since(&before, None)
    }

    /// When the next sequence step is due, if any sequence runs.
    pub fn next_due(&self) -> Option<Instant> {
        self.sequences
            .iter()
            .filter_map(|s| s.running.map(|r| r.due))
            .min()
    }

    /// Stops every sequence and turns every output off (shutdown, safe state).
    pub fn all_off(&mut self) -> Changes {
        let before = self.snapshot();
        for s in &mut self.sequences {
            s.running = None;
        }
        for (_, state) in &mut self.outputs {
            *state = OnOff::Off;
        }
        self.changes_since(&before, None)
    }

    fn start(&mut self, index: usize, now: Instant) {
        let uses = self.sequences[index].uses.clone();
        for other in 0..self.sequences.len() {
            if other != index
                && self.sequences[other].running.is_some()
                && self.sequences[other].uses.iter().any(|o| uses.contains(o))
            {
                self.stop(other);
            }
        }
        let duration = self.sequences[index].def.steps[0].duration;
        self.sequences[index].running = Some(Running {
            step: 0,
            due: now + duration,
        });
        self.show_step(index, 0);
    }

    fn stop(&mut self, index: usize) {
        self.sequences[index].running = None;
        for &o in &self.sequences[index].uses {
            self.outputs[o].1 = OnOff::Off;
        }
    }

    fn stop_sequences_using(&mut self, output: usize) {
        for index in 0..self.sequences.len() {
            if self.sequences[index].running.is_some()
                && self.sequences[index].uses.contains(&output)
            {
                self.stop(index);
            }
        }
    }

    fn show_step(&mut self, index: usize, step: usize) {
        let sequence = &self.sequences[index];
        let on = &sequence.def.steps[step].on;
        for &o in &sequence.uses {
            self.outputs[o].1 = OnOff::from(on.contains(&o));
        }
    }

    fn snapshot(&self) -> (Vec<OnOff>, Vec<bool>) {
        (
            self.outputs.iter().map(|(_, s)| *s).collect(),
            self.sequences.iter().map(|s| s.running.is_some()).collect(),
        )
    }

    fn changes_since(&self, before: &(Vec<OnOff>, Vec<bool>), target: Option<Target>) -> Changes {
        let mut changes = Changes::default();
        let touched = |t: Target| target == Some(t);
        let outputs =
            self.outputs.iter().enumerate().filter(|(i, (_, now))| {
                before.0.get(*i) != Some(now) || touched(Target::Output(*i))
            });
        let (off, on): (Vec<_>, Vec<_>) = outputs
            .map(|(i, (_, state))| (i, *state))
            .partition(|(_, state)| !state.is_on());
        changes.outputs.extend(off);
        changes.outputs.extend(on);
        changes.sequences = self
            .sequences
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                before.1.get(*i) != Some(&s.running.is_some()) || touched(Target::Sequence(*i))
            })
            .map(|(i, s)| (i, OnOff::from(s.running.is_some())))
            .collect();
        changes
    }
}

fn plural(kind: OutputKind) -> &'static str {
    match kind {
        OutputKind::Light => "lights",
        OutputKind::Switch => "switches",
        OutputKind::Sequence => "sequences",
    }
}

#[cfg(test)]
mod tests;
