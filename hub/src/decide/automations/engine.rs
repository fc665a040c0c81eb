//! The automation engine: (automations, house, event or instant) -> what to
//! publish, what to store, and the next instant it needs to be woken at.
//! No I/O, no clock of its own: the caller says what `now` is, so tests run
//! a day in a loop. Adding, replacing and restoring are in `catalog.rs`;
//! time passing and timers resumed after a restart in `timers.rs`.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use hearth_protocol::{Id, Topics};

use super::definition::{Automation, Mode, Scene, Step, Trigger};
use super::matching::{self, Checked, Crossing, Now, Seen};
use super::steps::{logged, publications};
use super::sun::Place;
use super::trace::{Change, Outcome, PendingRun, Trace};
use crate::decide::logbook;
use crate::model::chime::Source;
use crate::model::effects::Publication;
use crate::model::house::House;
use crate::model::logbook::LogEntry;

/// Finished runs kept in memory per automation, newest last (the
/// database keeps more, see `automation_traces`).
pub const TRACES_KEPT: usize = 20;

/// The hub's side of the engine: where topics go, its zone and place, and
/// how late a stored run may still go on after a restart.
#[derive(Debug, Clone)]
pub struct Setup {
    pub topics: Topics,
    pub timezone: Tz,
    pub place: Option<Place>,
    pub catch_up: Duration,
}

/// What a call produced.
#[derive(Debug, Default, PartialEq)]
pub struct Effects {
    pub publish: Vec<Publication>,
    /// Ids of the automations that started a run.
    pub started: Vec<Id>,
    /// What the database must now hold.
    pub changes: Vec<Change>,
    /// Logbook entries of the commands runs sent (`automation:<id>`).
    pub logbook: Vec<LogEntry>,
}

impl Effects {
    /// Adds what `more` produced after what is here.
    pub fn absorb(&mut self, more: Effects) {
        self.publish.extend(more.publish);
        self.started.extend(more.started);
        self.changes.extend(more.changes);
        self.logbook.extend(more.logbook);
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Waiting {
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
pub(super) struct Run {
    pub(super) slot: usize,
    pub(super) next_step: usize,
    pub(super) waiting: Waiting,
    pub(super) trace: Trace,
    /// Its row is in the database (it has waited at least once).
    pub(super) stored: bool,
}

#[derive(Debug)]
pub(super) struct Slot {
    pub(super) automation: Automation,
    pub(super) source: Source,
    pub(super) enabled: bool,
    /// Per trigger: where its threshold stands.
    pub(super) crossings: Vec<Crossing>,
    /// Per trigger: the next instant a timed one fires.
    pub(super) next_at: Vec<Option<DateTime<Utc>>>,
    pub(super) last_started: Option<DateTime<Utc>>,
    /// Its runs going now, so modes and views need no scan of every run.
    pub(super) active: std::collections::BTreeSet<u64>,
    /// `queued` mode: what fired while a run was going, oldest first.
    pub(super) queue: VecDeque<String>,
    pub(super) traces: VecDeque<Trace>,
}

#[derive(Debug)]
pub struct Engine {
    pub(super) setup: Setup,
    /// Removed automations leave `None`, so run slots stay valid.
    pub(super) slots: Vec<Option<Slot>>,
    pub(super) by_id: BTreeMap<Id, usize>,
    pub(super) runs: BTreeMap<u64, Run>,
    pub(super) next_run: u64,
    pub(super) scenes: BTreeMap<Id, (Scene, Source)>,
    /// What the current call changed, handed out with its effects.
    pub(super) changes: Vec<Change>,
    /// The next deadline as last computed; `None` once a run parked or
    /// left, or a timed trigger moved (the core asks after every message,
    /// and most change nothing here).
    pub(super) deadline: Option<Option<DateTime<Utc>>>,
}

impl Engine {
    /// An engine with `automations` (and where each came from), run ids
    /// starting from `now` in microseconds so they never repeat across restarts.
    pub fn new(
        setup: Setup,
        automations: Vec<(Automation, Source)>,
        scenes: Vec<(Scene, Source)>,
        now: DateTime<Utc>,
    ) -> Self {
        let mut engine = Self {
            setup,
            slots: Vec::new(),
            by_id: BTreeMap::new(),
            runs: BTreeMap::new(),
            next_run: u64::try_from(now.timestamp_micros()).unwrap_or(1),
            scenes: scenes
                .into_iter()
                .map(|(s, src)| (s.id.clone(), (s, src)))
                .collect(),
            changes: Vec::new(),
            deadline: None,
        };
        for (automation, source) in automations {
            engine.insert(automation, source, now);
        }
        engine
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Runs going (delayed or waiting included).
    pub fn running(&self) -> usize {
        self.runs.len()
    }

    pub(super) fn slot(&self, id: &Id) -> Option<(usize, &Slot)> {
        let index = *self.by_id.get(id)?;
        self.slots[index].as_ref().map(|s| (index, s))
    }

    pub(super) fn at(&mut self, index: usize) -> &mut Slot {
        self.slots[index]
            .as_mut()
            .expect("runs and ids only point at live slots")
    }

    /// The last runs of `id` kept in memory, oldest first (running ones
    /// last); `None` if there is no such automation.
    pub fn traces(&self, id: &Id) -> Option<Vec<Trace>> {
        let (_, slot) = self.slot(id)?;
        let mut traces: Vec<Trace> = slot.traces.iter().cloned().collect();
        traces.extend(
            slot.active
                .iter()
                .filter_map(|run| self.runs.get(run))
                .map(|r| r.trace.clone()),
        );
        Some(traces)
    }

    /// The next instant something is due: a delay ends, a wait times
    /// out, a time or sun trigger fires. The caller sleeps until then.
    pub fn next_deadline(&mut self) -> Option<DateTime<Utc>> {
        if let Some(known) = self.deadline {
            return known;
        }
        let next = self.compute_deadline();
        self.deadline = Some(next);
        next
    }

    /// Forgets the cached deadline: a run parked or left, or a timer moved.
    pub(super) fn timers_changed(&mut self) {
        self.deadline = None;
    }

    fn compute_deadline(&self) -> Option<DateTime<Utc>> {
        let runs = self.runs.values().filter_map(|r| match &r.waiting {
            Waiting::Until(t) => Some(*t),
            Waiting::For { deadline, .. } => *deadline,
            Waiting::No => None,
        });
        let timed = self
            .slots
            .iter()
            .flatten()
            .filter(|s| s.enabled)
            .flat_map(|s| s.next_at.iter().flatten().copied());
        runs.chain(timed).min()
    }

    /// `fx` with what this call changed.
    pub(super) fn effects(&mut self, mut fx: Effects) -> Effects {
        fx.changes.append(&mut self.changes);
        fx
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
            let Some(slot) = self.slots[index].as_mut() else {
                continue;
            };
            let mut fired = None;
            for (t, crossing) in slot.automation.triggers.iter().zip(&mut slot.crossings) {
                // Every threshold moves, also once one trigger has fired
                // and while the automation is off, so switching it on does
                // not fire on stale news.
                if let Some(what) = matching::fires(t, crossing, seen) {
                    fired.get_or_insert(what);
                }
            }
            if let Some(what) = fired.filter(|_| slot.enabled) {
                self.fire(index, what, house, now, &mut fx);
            }
        }
        self.effects(fx)
    }

    /// The hub started leading: `hub = "start"` triggers fire.
    pub fn on_hub_start(&mut self, house: &House, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        for index in 0..self.slots.len() {
            let starts = self.slots[index]
                .as_ref()
                .is_some_and(|s| s.enabled && s.automation.triggers.contains(&Trigger::HubStart));
            if starts {
                self.fire(index, "the hub started".to_owned(), house, now, &mut fx);
            }
        }
        self.effects(fx)
    }

    /// Runs `id` by hand, skipping its triggers and conditions (as Home
    /// Assistant's "run actions"); `None` if there is no such automation.
    pub fn run_now(&mut self, id: &Id, house: &House, now: DateTime<Utc>) -> Option<Effects> {
        let (index, _) = self.slot(id)?;
        let mut fx = Effects::default();
        let trace = self.new_trace(index, now, "run by hand".into());
        self.start(index, trace, house, now, &mut fx);
        Some(self.effects(fx))
    }

    /// Switches `id` on or off; `None` if there is no such automation.
    pub fn set_enabled(&mut self, id: &Id, enabled: bool, now: DateTime<Utc>) -> Option<Effects> {
        let (index, _) = self.slot(id)?;
        let setup = self.setup.clone();
        self.timers_changed();
        let slot = self.at(index);
        slot.enabled = enabled;
        slot.automation.enabled = enabled;
        slot.automation.spec.enabled = Some(enabled);
        // Timed triggers count from now, not from when it was switched off.
        slot.next_at = slot
            .automation
            .triggers
            .iter()
            .map(|t| next_time(&setup, t, now))
            .collect();
        self.changes.push(Change::Automation(id.clone()));
        Some(self.effects(Effects::default()))
    }

    /// Applies scene `id` now: what it sends (TOGGLE resolved from the
    /// house) and the logbook entries of its commands, by `source`; `None`
    /// if there is no such scene.
    pub fn apply_scene(
        &self,
        id: &Id,
        house: &House,
        at: DateTime<Utc>,
        source: &str,
    ) -> Option<(Vec<Publication>, Vec<LogEntry>)> {
        let (scene, _) = self.scenes.get(id)?;
        Some((
            scene
                .steps
                .iter()
                .flat_map(|s| publications(&self.setup.topics, house, s))
                .collect(),
            scene
                .steps
                .iter()
                .flat_map(|s| logged(house, s, at, source))
                .collect(),
        ))
    }

    /// A trigger fired: check conditions, cool-down and mode, maybe start.
    pub(super) fn fire(
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
        let mut trace = self.new_trace(index, now, what);
        let slot = self.at(index);
        let active: Vec<u64> = slot.active.iter().copied().collect();
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
        match slot.automation.mode {
            _ if active.is_empty() => {}
            Mode::Single => return self.keep(index, trace.end(now, Outcome::AlreadyRunning)),
            Mode::Restart => {
                for id in active {
                    self.cancel(id, Outcome::Restarted, now);
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

    pub(super) fn start(
        &mut self,
        index: usize,
        trace: Trace,
        house: &House,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let id = trace.run;
        let slot = self.at(index);
        slot.last_started = Some(now);
        slot.active.insert(id);
        fx.started.push(slot.automation.id.clone());
        self.runs.insert(
            id,
            Run {
                slot: index,
                next_step: 0,
                waiting: Waiting::No,
                trace,
                stored: false,
            },
        );
        self.advance(id, house, now, fx);
    }

    /// Ends run `id` early, keeping its trace and dropping its row.
    pub(super) fn cancel(&mut self, id: u64, outcome: Outcome, now: DateTime<Utc>) {
        if let Some(run) = self.runs.remove(&id) {
            self.left(&run);
            self.forget_row(&run);
            self.keep(run.slot, run.trace.end(now, outcome));
        }
    }

    /// Run `run` is gone from its slot (and maybe from the timers).
    fn left(&mut self, run: &Run) {
        if let Some(slot) = self.slots[run.slot].as_mut() {
            slot.active.remove(&run.trace.run);
        }
        self.timers_changed();
    }

    fn forget_row(&mut self, run: &Run) {
        if run.stored {
            self.changes.push(Change::RunGone {
                automation: run.trace.automation.clone(),
                run: run.trace.run,
            });
        }
    }

    /// Carries out a run's steps until it waits or ends.
    pub(super) fn advance(&mut self, id: u64, house: &House, now: DateTime<Utc>, fx: &mut Effects) {
        loop {
            let Some(run) = self.runs.get(&id) else {
                return;
            };
            let slot = self.slots[run.slot]
                .as_ref()
                .expect("runs only point at live slots");
            let Some(step) = slot.automation.steps.get(run.next_step).cloned() else {
                return self.finish(id, Outcome::Done, house, now, fx);
            };
            let index = run.next_step;
            // What the logbook names as the source of its commands.
            let source = || logbook::automation(&slot.automation.id);
            let done = match step {
                Step::Delay(d) if !d.is_zero() => {
                    self.wait(
                        id,
                        now,
                        Waiting::Until(now + d),
                        format!("delay {} s", d.as_secs_f64()),
                    );
                    return;
                }
                Step::Wait {
                    trigger,
                    timeout,
                    continue_on_timeout,
                } => {
                    let waiting = Waiting::For {
                        trigger,
                        crossing: None,
                        deadline: timeout.map(|t| now + t),
                        continue_on_timeout,
                    };
                    self.wait(id, now, waiting, "waiting".into());
                    return;
                }
                Step::Delay(_) => "delay 0 s".to_owned(),
                Step::Enable {
                    automation,
                    enabled,
                } => {
                    let verb = if enabled { "enabled" } else { "disabled" };
                    match self.set_enabled(&automation, enabled, now) {
                        Some(more) => {
                            fx.changes.extend(more.changes);
                            format!("{verb} {automation}")
                        }
                        None => format!("no automation {automation} to be {verb}"),
                    }
                }
                Step::Scene(scene) => match self.apply_scene(&scene, house, now, &source()) {
                    Some((published, entries)) => {
                        fx.logbook.extend(entries);
                        let what = describe(&published);
                        fx.publish.extend(published);
                        format!("scene {scene}: {what}")
                    }
                    None => format!("no scene {scene}"),
                },
                step => {
                    fx.logbook.extend(logged(house, &step, now, &source()));
                    let published = publications(&self.setup.topics, house, &step);
                    let what = describe(&published);
                    fx.publish.extend(published);
                    what
                }
            };
            let run = self.runs.get_mut(&id).expect("the run is still there");
            run.trace.step(now, index, done);
            run.next_step += 1;
        }
    }

    /// Parks run `id` on `waiting` and saves it, so a restart finds it.
    fn wait(&mut self, id: u64, now: DateTime<Utc>, waiting: Waiting, what: String) {
        let run = self.runs.get_mut(&id).expect("the run is there");
        run.trace.step(now, run.next_step, what);
        run.waiting = waiting;
        run.stored = true;
        let pending = pending(run);
        self.timers_changed();
        self.changes.push(Change::RunSaved(Box::new(pending)));
    }

    pub(super) fn finish(
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
        self.left(&run);
        self.forget_row(&run);
        self.keep(index, run.trace.end(now, outcome));
        // `queued`: the next waiting trigger starts now.
        let slot = self.at(index);
        if let Some(what) = slot.queue.pop_front() {
            let trace = self.new_trace(index, now, what);
            self.start(index, trace, house, now, fx);
        }
    }

    /// A trace for what `index` saw at `now`, with an id of its own: a
    /// trigger that starts no run (conditions failed, cooling down) is
    /// kept beside the runs, not in place of the next one.
    pub(super) fn new_trace(&mut self, index: usize, now: DateTime<Utc>, what: String) -> Trace {
        let id = self.next_run;
        self.next_run += 1;
        Trace::new(id, self.at(index).automation.id.clone(), now, what)
    }

    pub(super) fn keep(&mut self, index: usize, trace: Trace) {
        self.changes.push(Change::Traced(Box::new(trace.clone())));
        let traces = &mut self.at(index).traces;
        if traces.len() >= TRACES_KEPT {
            traces.pop_front();
        }
        traces.push_back(trace);
    }
}

/// A run as stored.
pub(super) fn pending(run: &Run) -> PendingRun {
    let (until, waiting, deadline) = match &run.waiting {
        Waiting::Until(t) => (Some(*t), false, None),
        Waiting::For { deadline, .. } => (None, true, *deadline),
        Waiting::No => (None, false, None),
    };
    PendingRun {
        automation: run.trace.automation.clone(),
        run: run.trace.run,
        next_step: run.next_step,
        until,
        waiting,
        deadline,
        trace: run.trace.clone(),
    }
}

fn describe(published: &[Publication]) -> String {
    published
        .iter()
        .map(|p| format!("{} <- {}", p.topic, String::from_utf8_lossy(&p.payload)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The next instant a timed trigger fires after `now`; `None` for others.
pub(super) fn next_time(
    setup: &Setup,
    trigger: &Trigger,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match trigger {
        Trigger::Time { schedule, timezone } => schedule.next_after(now, *timezone),
        Trigger::Sun { event, offset_min } => setup.place?.next(*event, *offset_min, now),
        _ => None,
    }
}
