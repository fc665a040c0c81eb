//! What one run (or one trigger that did not become a run) did, for "why
//! did it, or didn't it, fire?". Plain data, serialized as the API shows it.

use chrono::{DateTime, Utc};
use hearth_protocol::Id;
use serde::Serialize;

use super::matching::Checked;

/// How a run ended, or why a trigger did not start one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Still going (delayed or waiting).
    Running,
    Done,
    ConditionsFailed,
    CoolingDown,
    /// `single` mode and a run was going.
    AlreadyRunning,
    /// `restart` mode: a newer trigger replaced it.
    Restarted,
    /// `queued` mode and the queue was full.
    QueueFull,
    /// `parallel` mode and `max_runs` were going.
    TooManyRuns,
    /// A `wait` ran out with `continue_on_timeout` off.
    TimedOut,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepDone {
    pub at: DateTime<Utc>,
    /// Index into the automation's `actions`.
    pub step: usize,
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    pub run: u64,
    pub automation: Id,
    pub started_at: DateTime<Utc>,
    /// What fired, as seen: `input pi-1/hall turned ON`.
    pub trigger: String,
    /// Every condition leaf with the value it saw.
    pub conditions: Vec<Checked>,
    pub steps: Vec<StepDone>,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
}

impl Trace {
    pub fn new(run: u64, automation: Id, at: DateTime<Utc>, trigger: String) -> Self {
        Self {
            run,
            automation,
            started_at: at,
            trigger,
            conditions: Vec::new(),
            steps: Vec::new(),
            outcome: Outcome::Running,
            ended_at: None,
        }
    }

    pub fn step(&mut self, at: DateTime<Utc>, step: usize, what: String) {
        self.steps.push(StepDone { at, step, what });
    }

    pub fn end(mut self, at: DateTime<Utc>, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self.ended_at = Some(at);
        self
    }
}
