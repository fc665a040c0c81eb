//! The engine's catalogue: adding, replacing and deleting automations and
//! scenes at run time, their views, and picking up stored runs after a
//! restart or a failover. Pure, like the engine.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use hearth_protocol::{AutomationSpec, Id, SceneSpec};
use serde::Serialize;

use super::definition::{Automation, Scene, Step};
use super::engine::{Effects, Engine, Run, Slot, Waiting, next_time};
use super::trace::{Change, Outcome, PendingRun, Trace};
use crate::model::chime::Source;

/// An automation as `hearth/hub/automations/<id>` and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutomationView {
    #[serde(flatten)]
    pub spec: AutomationSpec,
    pub source: Source,
    /// The next time or sun trigger, if any.
    pub next_at: Option<DateTime<Utc>>,
    /// Runs going now (delayed or waiting included).
    pub running: usize,
    pub last_run: Option<LastRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastRun {
    pub at: DateTime<Utc>,
    pub trigger: String,
    pub outcome: Outcome,
}

/// A scene as `hearth/hub/scenes/<id>` and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SceneView {
    #[serde(flatten)]
    pub spec: SceneSpec,
    pub source: Source,
}

impl Engine {
    /// Adds `automation` in a new slot (an id already there is replaced).
    pub(super) fn insert(&mut self, automation: Automation, source: Source, now: DateTime<Utc>) {
        let next_at = automation
            .triggers
            .iter()
            .map(|t| next_time(&self.setup, t, now))
            .collect();
        let slot = Slot {
            enabled: automation.enabled,
            crossings: vec![None; automation.triggers.len()],
            next_at,
            last_started: None,
            active: Default::default(),
            queue: VecDeque::new(),
            traces: VecDeque::new(),
            source,
            automation,
        };
        self.by_id
            .insert(slot.automation.id.clone(), self.slots.len());
        self.slots.push(Some(slot));
        self.timers_changed();
    }

    /// Creates or replaces an automation. Runs of the one replaced end
    /// (`abandoned`): their steps may no longer exist. A config automation
    /// changed at run time stays the file's.
    pub fn upsert(
        &mut self,
        automation: Automation,
        source: Source,
        now: DateTime<Utc>,
    ) -> Effects {
        let id = automation.id.clone();
        let source = match self.slot(&id) {
            Some((_, old)) if old.source == Source::Config => Source::Config,
            _ => source,
        };
        let kept = self.drop_slot(&id, now);
        self.insert(automation, source, now);
        if let Some(traces) = kept {
            let (index, _) = self.slot(&id).expect("just inserted");
            self.at(index).traces = traces;
        }
        self.changes.push(Change::Automation(id));
        self.effects(Effects::default())
    }

    /// Deletes an automation and ends its runs; `None` if there was none.
    pub fn remove(&mut self, id: &Id, now: DateTime<Utc>) -> Option<Effects> {
        self.drop_slot(id, now)?;
        self.changes.push(Change::AutomationGone(id.clone()));
        Some(self.effects(Effects::default()))
    }

    /// Empties `id`'s slot, ending its runs; its traces, if it was there.
    fn drop_slot(&mut self, id: &Id, now: DateTime<Utc>) -> Option<VecDeque<Trace>> {
        let (index, _) = self.slot(id)?;
        let runs: Vec<u64> = self.at(index).active.iter().copied().collect();
        for run in runs {
            self.cancel(run, Outcome::Abandoned, now);
        }
        self.by_id.remove(id);
        self.timers_changed();
        self.slots[index].take().map(|s| s.traces)
    }

    /// Creates or replaces a scene.
    pub fn upsert_scene(&mut self, scene: Scene, source: Source) -> Effects {
        let id = scene.id.clone();
        let source = match self.scenes.get(&id) {
            Some((_, Source::Config)) => Source::Config,
            _ => source,
        };
        self.scenes.insert(id.clone(), (scene, source));
        Effects {
            changes: vec![Change::Scene(id)],
            ..Effects::default()
        }
    }

    /// Deletes a scene; `None` if there was none.
    pub fn remove_scene(&mut self, id: &Id) -> Option<Effects> {
        self.scenes.remove(id)?;
        Some(Effects {
            changes: vec![Change::SceneGone(id.clone())],
            ..Effects::default()
        })
    }

    pub fn has_automation(&self, id: &Id) -> bool {
        self.slot(id).is_some()
    }

    pub fn automation_ids(&self) -> impl Iterator<Item = &Id> {
        self.by_id.keys()
    }

    pub fn scene_ids(&self) -> impl Iterator<Item = &Id> {
        self.scenes.keys()
    }

    /// What the database keeps of `id`: its spec (`enabled` as now) and source.
    pub fn stored(&self, id: &Id) -> Option<(AutomationSpec, Source)> {
        self.slot(id)
            .map(|(_, s)| (s.automation.spec.clone(), s.source))
    }

    pub fn stored_scene(&self, id: &Id) -> Option<(SceneSpec, Source)> {
        self.scenes.get(id).map(|(s, src)| (s.spec.clone(), *src))
    }

    pub fn scene_name(&self, id: &Id) -> Option<&str> {
        self.scenes.get(id).map(|(s, _)| s.name.as_str())
    }

    pub fn scenes(&self) -> Vec<&Scene> {
        self.scenes.values().map(|(s, _)| s).collect()
    }

    pub fn automations(&self) -> impl Iterator<Item = &Automation> {
        self.slots.iter().flatten().map(|s| &s.automation)
    }

    pub fn view(&self, id: &Id) -> Option<AutomationView> {
        let (_, slot) = self.slot(id)?;
        Some(AutomationView {
            spec: slot.automation.spec.clone(),
            source: slot.source,
            next_at: slot
                .next_at
                .iter()
                .flatten()
                .min()
                .copied()
                .filter(|_| slot.enabled),
            running: slot.active.len(),
            last_run: slot.traces.back().map(|t| LastRun {
                at: t.started_at,
                trigger: t.trigger.clone(),
                outcome: t.outcome,
            }),
        })
    }

    pub fn scene_view(&self, id: &Id) -> Option<SceneView> {
        self.scenes.get(id).map(|(s, source)| SceneView {
            spec: s.spec.clone(),
            source: *source,
        })
    }

    /// Picks up runs a hub stored while they waited. One whose automation
    /// is gone or changed at that step is `abandoned`; one whose deadline
    /// passed longer than the catch-up window ago is `missed`; the rest go
    /// on (late ones at the next `on_time`).
    pub fn restore(&mut self, stored: Vec<PendingRun>, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        for p in stored {
            self.next_run = self.next_run.max(p.run + 1);
            let gone = Change::RunGone {
                automation: p.automation.clone(),
                run: p.run,
            };
            let Some((index, slot)) = self.slot(&p.automation) else {
                fx.changes.push(gone);
                continue;
            };
            let waiting = match (slot.automation.steps.get(p.next_step), p.until) {
                (Some(Step::Delay(_)), Some(until)) => Some(Waiting::Until(until)),
                (
                    Some(Step::Wait {
                        trigger,
                        continue_on_timeout,
                        ..
                    }),
                    None,
                ) if p.waiting => Some(Waiting::For {
                    trigger: trigger.clone(),
                    crossing: None,
                    deadline: p.deadline,
                    continue_on_timeout: *continue_on_timeout,
                }),
                _ => None,
            };
            let due = p.until.or(p.deadline);
            let late = due.is_some_and(|d| {
                now - d > chrono::Duration::from_std(self.setup.catch_up).unwrap_or_default()
            });
            let mut trace = p.trace;
            match waiting {
                None => {
                    trace.step(
                        now,
                        p.next_step,
                        "the automation changed while the run waited".into(),
                    );
                    fx.changes.push(gone);
                    self.keep(index, trace.end(now, Outcome::Abandoned));
                }
                Some(_) if late => {
                    trace.step(now, p.next_step, "no hub ran when it was due".into());
                    fx.changes.push(gone);
                    self.keep(index, trace.end(now, Outcome::Missed));
                }
                Some(waiting) => {
                    trace.step(now, p.next_step, "picked up after a restart".into());
                    self.at(index).active.insert(p.run);
                    self.timers_changed();
                    self.runs.insert(
                        p.run,
                        Run {
                            slot: index,
                            next_step: p.next_step,
                            waiting,
                            trace,
                            stored: true,
                        },
                    );
                }
            }
        }
        // Late runs go on at the next `on_time`: their deadline has passed.
        self.effects(fx)
    }
}
