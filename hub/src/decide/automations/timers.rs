//! The engine's clock side: what happens when time passes (delays end,
//! waits time out, time and sun triggers fire), and picking the timers up
//! from where the last hub left them. Pure, like the engine: the caller
//! says what `now` is.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hearth_protocol::Id;

use super::engine::{Effects, Engine, Waiting, next_time};
use super::trace::{Change, Outcome};
use crate::model::house::House;

impl Engine {
    /// Time passed to `now`: delays end, waits time out, timed triggers
    /// fire. With `acting` false (a standby hub) timed triggers move on
    /// without firing.
    pub fn on_time(&mut self, house: &House, now: DateTime<Utc>, acting: bool) -> Effects {
        self.timers_changed();
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
        let catch_up = chrono::Duration::from_std(self.setup.catch_up).unwrap_or_default();
        for index in 0..self.slots.len() {
            let Some(slot) = self.slots[index].as_mut() else {
                continue;
            };
            let (mut fired, mut missed) = (None, None);
            for (t, next) in slot.automation.triggers.iter().zip(&mut slot.next_at) {
                let Some(due) = next.filter(|at| *at <= now) else {
                    continue;
                };
                *next = next_time(&self.setup, t, now);
                // Due longer ago than the catch-up window: no hub ran then
                // (this one resumed from where the last left off). It is
                // missed; the newest time inside the window still fires.
                let due = if now - due > catch_up {
                    missed.get_or_insert(due);
                    let window = now - catch_up - chrono::Duration::nanoseconds(1);
                    next_time(&self.setup, t, window).filter(|at| *at <= now)
                } else {
                    Some(due)
                };
                if let Some(due) = due {
                    fired.get_or_insert(due);
                }
            }
            if !acting || (fired.is_none() && missed.is_none()) {
                continue;
            }
            let id = slot.automation.id.clone();
            let enabled = slot.enabled;
            self.changes.push(Change::TimersPassed(id, now));
            if !enabled {
                continue;
            }
            let zone = self.setup.timezone;
            if let Some(at) = missed {
                let what = format!("time {}", at.with_timezone(&zone));
                let mut trace = self.new_trace(index, now, what);
                trace.step(now, 0, "no hub ran when it was due".into());
                self.keep(index, trace.end(now, Outcome::Missed));
            }
            if let Some(at) = fired {
                let late = if now - at > chrono::Duration::seconds(1) {
                    " (late: no hub ran then)"
                } else {
                    ""
                };
                let what = format!("time {}{late}", at.with_timezone(&zone));
                self.fire(index, what, house, now, &mut fx);
            }
        }
        self.effects(fx)
    }

    /// Moves each automation's time and sun triggers back to where the last
    /// hub dealt with them (`from`, per automation), so the next `on_time`
    /// fires what came due while no hub ran, late, or records it missed.
    /// An automation with no entry, or one from the future, starts from now.
    pub fn resume_timers(&mut self, from: &BTreeMap<Id, DateTime<Utc>>, now: DateTime<Utc>) {
        let setup = self.setup.clone();
        for slot in self.slots.iter_mut().flatten() {
            let Some(since) = from.get(&slot.automation.id).filter(|at| **at < now) else {
                continue;
            };
            for (t, next) in slot.automation.triggers.iter().zip(&mut slot.next_at) {
                if next.is_some() {
                    *next = next_time(&setup, t, *since);
                }
            }
        }
        self.timers_changed();
    }
}
