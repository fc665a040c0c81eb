//! The automation engine: (automations, house, event or instant) -> what to
//! publish, and the next instant it needs to be woken at. No I/O, no clock
//! of its own: the caller says what `now` is, so tests run a day in a loop.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use hearth_protocol::{ChimePlay, Id, Topic, Topics};

use super::definition::{Automation, Mode, Step, Trigger};
use super::matching::{self, Checked, Crossing, Now, Seen};
use super::sun::Place;
use super::trace::{Outcome, Trace};
use crate::model::effects::Publication;
use crate::model::house::House;

/// Finished runs kept per automation, newest last.
pub const TRACES_KEPT: usize = 20;

/// The hub's side of the engine: where topics go, its zone and place.
#[derive(Debug, Clone)]
pub struct Setup {
    pub topics: Topics,
    pub timezone: Tz,
    pub place: Option<Place>,
}

/// What a call produced.
#[derive(Debug, Default, PartialEq)]
pub struct Effects {
    pub publish: Vec<Publication>,
    /// Ids of the automations that started a run.
    pub started: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq)]
enum Waiting {
    /// Ready for its next step.
    No,
    Until(DateTime<Utc>),
    For {
        trigger: Box<Trigger>,
        crossing: Crossing,
        deadline: Option<DateTime<Utc>>,
        continue_on_timeout: bool,
    },
}

#[derive(Debug)]
struct Run {
    slot: usize,
    next_step: usize,
    waiting: Waiting,
    trace: Trace,
}

#[derive(Debug)]
struct Slot {
    automation: Automation,
    enabled: bool,
    /// Per trigger: where its threshold stands.
    crossings: Vec<Crossing>,
    /// Per trigger: the next instant a timed one fires.
    next_at: Vec<Option<DateTime<Utc>>>,
    last_started: Option<DateTime<Utc>>,
    /// `queued` mode: what fired while a run was going, oldest first.
    queue: VecDeque<String>,
    traces: VecDeque<Trace>,
}

#[derive(Debug)]
pub struct Engine {
    setup: Setup,
    slots: Vec<Slot>,
    by_id: BTreeMap<Id, usize>,
    runs: BTreeMap<u64, Run>,
    next_run: u64,
}

impl Engine {
    pub fn new(setup: Setup, automations: Vec<Automation>, now: DateTime<Utc>) -> Self {
        let mut engine = Self {
            setup,
            slots: Vec::new(),
            by_id: BTreeMap::new(),
            runs: BTreeMap::new(),
            next_run: 1,
        };
        for automation in automations {
            engine
                .by_id
                .insert(automation.id.clone(), engine.slots.len());
            let mut slot = Slot {
                enabled: automation.enabled,
                crossings: vec![None; automation.triggers.len()],
                next_at: Vec::new(),
                last_started: None,
                queue: VecDeque::new(),
                traces: VecDeque::new(),
                automation,
            };
            slot.next_at = slot
                .automation
                .triggers
                .iter()
                .map(|t| next_time(&engine.setup, t, now))
                .collect();
            engine.slots.push(slot);
        }
        engine
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Runs going (delayed or waiting included).
    pub fn running(&self) -> usize {
        self.runs.len()
    }

    pub fn automations(&self) -> impl Iterator<Item = (&Automation, bool)> {
        self.slots.iter().map(|s| (&s.automation, s.enabled))
    }

    /// The last runs of `id`, oldest first; `None` if there is no such automation.
    pub fn traces(&self, id: &Id) -> Option<Vec<Trace>> {
        let slot = &self.slots[*self.by_id.get(id)?];
        let mut traces: Vec<Trace> = slot.traces.iter().cloned().collect();
        traces.extend(
            self.runs
                .values()
                .filter(|r| slot.automation.id == self.slots[r.slot].automation.id)
                .map(|r| r.trace.clone()),
        );
        Some(traces)
    }

    /// The next instant something is due: a delay ends, a wait times
    /// out, a time or sun trigger fires. The caller sleeps until then.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let runs = self.runs.values().filter_map(|r| match &r.waiting {
            Waiting::Until(t) => Some(*t),
            Waiting::For { deadline, .. } => *deadline,
            Waiting::No => None,
        });
        let timed = self
            .slots
            .iter()
            .filter(|s| s.enabled)
            .flat_map(|s| s.next_at.iter().flatten().copied());
        runs.chain(timed).min()
    }

    /// A change in the house (or a message) at `now`.
    pub fn on_event(&mut self, house: &House, seen: Seen<'_>, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        // Waiting runs first: a wait that this event ends goes on before a
        // new run this event starts (in `restart` the new one wins anyway).
        let resumed: Vec<u64> = self
            .runs
            .iter_mut()
            .filter_map(|(id, run)| match &mut run.waiting {
                Waiting::For {
                    trigger, crossing, ..
                } => matching::fires(trigger, crossing, seen).map(|what| {
                    run.trace
                        .step(now, run.next_step, format!("waited for {what}"));
                    run.waiting = Waiting::No;
                    run.next_step += 1;
                    *id
                }),
                _ => None,
            })
            .collect();
        for id in resumed {
            self.advance(id, house, now, &mut fx);
        }
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            if !slot.enabled {
                // A disabled automation's thresholds still follow the
                // numbers, so enabling it does not fire on stale news.
                for (t, crossing) in slot.automation.triggers.iter().zip(&mut slot.crossings) {
                    if t.threshold().is_some() {
                        matching::fires(t, crossing, seen);
                    }
                }
                continue;
            }
            let mut fired = None;
            for (t, crossing) in slot.automation.triggers.iter().zip(&mut slot.crossings) {
                // Every threshold moves, even once one trigger has fired.
                if let Some(what) = matching::fires(t, crossing, seen) {
                    fired.get_or_insert(what);
                }
            }
            if let Some(what) = fired {
                self.fire(index, what, house, now, &mut fx);
            }
        }
        fx
    }

    /// The hub started leading: `hub = "start"` triggers fire.
    pub fn on_hub_start(&mut self, house: &House, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            if slot.enabled && slot.automation.triggers.contains(&Trigger::HubStart) {
                self.fire(index, "the hub started".to_owned(), house, now, &mut fx);
            }
        }
        fx
    }

    /// Time passed to `now`: delays end, waits time out, timed triggers
    /// fire. With `acting` false (a standby hub) timed triggers move on
    /// without firing.
    pub fn on_time(&mut self, house: &House, now: DateTime<Utc>, acting: bool) -> Effects {
        let mut fx = Effects::default();
        let due: Vec<u64> = self
            .runs
            .iter()
            .filter(|(_, r)| match &r.waiting {
                Waiting::Until(t) => *t <= now,
                Waiting::For { deadline, .. } => deadline.is_some_and(|d| d <= now),
                Waiting::No => false,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(run) = self.runs.get_mut(&id) else {
                continue;
            };
            match std::mem::replace(&mut run.waiting, Waiting::No) {
                Waiting::For {
                    continue_on_timeout: false,
                    ..
                } => {
                    run.trace
                        .step(now, run.next_step, "wait timed out: run ends".into());
                    self.finish(id, Outcome::TimedOut, house, now, &mut fx);
                    continue;
                }
                Waiting::For { .. } => {
                    run.trace
                        .step(now, run.next_step, "wait timed out: going on".into());
                }
                _ => run.trace.step(now, run.next_step, "delay over".into()),
            }
            run.next_step += 1;
            self.advance(id, house, now, &mut fx);
        }
        for index in 0..self.slots.len() {
            for t in 0..self.slots[index].next_at.len() {
                let Some(at) = self.slots[index].next_at[t].filter(|at| *at <= now) else {
                    continue;
                };
                let trigger = &self.slots[index].automation.triggers[t];
                self.slots[index].next_at[t] = next_time(&self.setup, trigger, now);
                if acting && self.slots[index].enabled {
                    let what = format!("time {}", at.with_timezone(&self.setup.timezone));
                    self.fire(index, what, house, now, &mut fx);
                }
            }
        }
        fx
    }

    /// Runs `id` by hand, skipping its triggers and conditions (as Home
    /// Assistant's "run actions"); `false` if there is no such automation.
    pub fn run_now(&mut self, id: &Id, house: &House, now: DateTime<Utc>) -> Option<Effects> {
        let index = *self.by_id.get(id)?;
        let mut fx = Effects::default();
        let trace = Trace::new(self.next_run, id.clone(), now, "run by hand".into());
        self.start(index, trace, house, now, &mut fx);
        Some(fx)
    }

    /// Switches `id` on or off; `None` if there is no such automation.
    pub fn set_enabled(&mut self, id: &Id, enabled: bool, now: DateTime<Utc>) -> Option<()> {
        let slot = &mut self.slots[*self.by_id.get(id)?];
        slot.enabled = enabled;
        // Timed triggers count from now, not from when it was switched off.
        let setup = &self.setup;
        slot.next_at = slot
            .automation
            .triggers
            .iter()
            .map(|t| next_time(setup, t, now))
            .collect();
        Some(())
    }

    /// A trigger fired: check conditions, cool-down and mode, maybe start.
    fn fire(
        &mut self,
        index: usize,
        what: String,
        house: &House,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let at = Now {
            at: now,
            timezone: self.setup.timezone,
            place: self.setup.place,
        };
        let slot = &mut self.slots[index];
        let mut trace = Trace::new(self.next_run, slot.automation.id.clone(), now, what);
        let mut seen: Vec<Checked> = Vec::new();
        let held = matching::all_hold(&slot.automation.conditions, house, &at, &mut seen);
        trace.conditions = seen;
        if !held {
            return self.keep(index, trace.end(now, Outcome::ConditionsFailed));
        }
        if let Some(last) = slot.last_started
            && now < last + slot.automation.cooldown
        {
            return self.keep(index, trace.end(now, Outcome::CoolingDown));
        }
        let active: Vec<u64> = self
            .runs
            .iter()
            .filter(|(_, r)| r.slot == index)
            .map(|(id, _)| *id)
            .collect();
        match slot.automation.mode {
            _ if active.is_empty() => {}
            Mode::Single => return self.keep(index, trace.end(now, Outcome::AlreadyRunning)),
            Mode::Restart => {
                for id in active {
                    if let Some(run) = self.runs.remove(&id) {
                        self.keep(index, run.trace.end(now, Outcome::Restarted));
                    }
                }
            }
            Mode::Queued(max) => {
                if slot.queue.len() < max as usize {
                    slot.queue.push_back(trace.trigger);
                } else {
                    self.keep(index, trace.end(now, Outcome::QueueFull));
                }
                return;
            }
            Mode::Parallel(max) if active.len() >= max as usize => {
                return self.keep(index, trace.end(now, Outcome::TooManyRuns));
            }
            Mode::Parallel(_) => {}
        }
        self.start(index, trace, house, now, fx);
    }

    fn start(
        &mut self,
        index: usize,
        trace: Trace,
        house: &House,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let id = self.next_run;
        self.next_run += 1;
        let slot = &mut self.slots[index];
        slot.last_started = Some(now);
        fx.started.push(slot.automation.id.clone());
        self.runs.insert(
            id,
            Run {
                slot: index,
                next_step: 0,
                waiting: Waiting::No,
                trace,
            },
        );
        self.advance(id, house, now, fx);
    }

    /// Carries out a run's steps until it waits or ends.
    fn advance(&mut self, id: u64, house: &House, now: DateTime<Utc>, fx: &mut Effects) {
        loop {
            let Some(run) = self.runs.get_mut(&id) else {
                return;
            };
            let Some(step) = self.slots[run.slot]
                .automation
                .steps
                .get(run.next_step)
                .cloned()
            else {
                return self.finish(id, Outcome::Done, house, now, fx);
            };
            let index = run.next_step;
            match step {
                Step::Delay(d) if !d.is_zero() => {
                    run.waiting = Waiting::Until(now + d);
                    run.trace
                        .step(now, index, format!("delay {} s", d.as_secs_f64()));
                    return;
                }
                Step::Delay(_) => {}
                Step::Wait {
                    trigger,
                    timeout,
                    continue_on_timeout,
                } => {
                    run.trace.step(now, index, "waiting".into());
                    run.waiting = Waiting::For {
                        trigger,
                        crossing: None,
                        deadline: timeout.map(|t| now + t),
                        continue_on_timeout,
                    };
                    return;
                }
                Step::Enable {
                    automation,
                    enabled,
                } => {
                    let known = self.set_enabled(&automation, enabled, now).is_some();
                    let run = self.runs.get_mut(&id).expect("the run is still there");
                    let verb = if enabled { "enabled" } else { "disabled" };
                    let what = if known {
                        format!("{verb} {automation}")
                    } else {
                        format!("no automation {automation} to be {verb}")
                    };
                    run.trace.step(now, index, what);
                }
                step => {
                    let published = publications(&self.setup.topics, house, &step);
                    let what = published
                        .iter()
                        .map(|p| format!("{} <- {}", p.topic, String::from_utf8_lossy(&p.payload)))
                        .collect::<Vec<_>>()
                        .join("; ");
                    run.trace.step(now, index, what);
                    fx.publish.extend(published);
                }
            }
            let run = self.runs.get_mut(&id).expect("the run is still there");
            run.next_step += 1;
        }
    }

    fn finish(
        &mut self,
        id: u64,
        outcome: Outcome,
        house: &House,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let Some(run) = self.runs.remove(&id) else {
            return;
        };
        let index = run.slot;
        self.keep(index, run.trace.end(now, outcome));
        // `queued`: the next waiting trigger starts now.
        if let Some(what) = self.slots[index].queue.pop_front() {
            let trace = Trace::new(
                self.next_run,
                self.slots[index].automation.id.clone(),
                now,
                what,
            );
            self.start(index, trace, house, now, fx);
        }
    }

    fn keep(&mut self, index: usize, trace: Trace) {
        let traces = &mut self.slots[index].traces;
        if traces.len() >= TRACES_KEPT {
            traces.pop_front();
        }
        traces.push_back(trace);
    }
}

/// The next instant a timed trigger fires after `now`; `None` for others.
fn next_time(setup: &Setup, trigger: &Trigger, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match trigger {
        Trigger::Time { schedule, timezone } => schedule.next_after(now, *timezone),
        Trigger::Sun { event, offset_min } => setup.place?.next(*event, *offset_min, now),
        _ => None,
    }
}

/// What a step that publishes sends, TOGGLE resolved from the house.
fn publications(topics: &Topics, house: &House, step: &Step) -> Vec<Publication> {
    match step {
        Step::SetOutput { output, command } => vec![Publication::event(
            topics.build(&Topic::OutputSet(output.clone())),
            house.output_state(output).apply(*command).as_str(),
        )],
        Step::SetBrightness { output, level } => vec![Publication::event(
            topics.build(&Topic::BrightnessSet(output.clone())),
            level.to_string(),
        )],
        Step::Publish {
            topic,
            payload,
            retain,
        } => vec![Publication {
            retain: *retain,
            ..Publication::event(topic.clone(), payload.clone())
        }],
        Step::Play {
            sound,
            speakers,
            volume,
        } => {
            let play = ChimePlay {
                sound: sound.clone(),
                volume: *volume,
                chime: None,
                scheduled_for: None,
            };
            let payload = serde_json::to_vec(&play).unwrap_or_default();
            speakers
                .iter()
                .map(|speaker| {
                    Publication::event(
                        topics.build(&Topic::ChimePlay {
                            speaker: speaker.clone(),
                        }),
                        payload.clone(),
                    )
                })
                .collect()
        }
        Step::Delay(_) | Step::Wait { .. } | Step::Enable { .. } => Vec::new(),
    }
}
