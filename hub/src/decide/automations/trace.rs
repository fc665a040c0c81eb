//! What one run (or one trigger that did not become a run) did, for "why
//! did it, or didn't it, fire?". Plain data, serialized as the API shows it.

use chrono::{DateTime, Utc};
use hearth_protocol::Id;
use serde::{Deserialize, Serialize};

use super::matching::Checked;

/// How a run ended, or why a trigger did not start one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Its deadline passed while no hub ran, beyond the catch-up window.
    Missed,
    /// The automation was changed or deleted while the run waited.
    Abandoned,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::ConditionsFailed => "conditions_failed",
            Self::CoolingDown => "cooling_down",
            Self::AlreadyRunning => "already_running",
            Self::Restarted => "restarted",
            Self::QueueFull => "queue_full",
            Self::TooManyRuns => "too_many_runs",
            Self::TimedOut => "timed_out",
            Self::Missed => "missed",
            Self::Abandoned => "abandoned",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDone {
    pub at: DateTime<Utc>,
    /// Index into the automation's `actions`.
    pub step: usize,
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub run: u64,
    pub automation: Id,
    pub started_at: DateTime<Utc>,
    /// What fired, as seen: `input pi-1/hall turned ON`.
    pub trigger: String,
    /// Every condition leaf with the value it saw.
    #[serde(default)]
    pub conditions: Vec<Checked>,
    #[serde(default)]
    pub steps: Vec<StepDone>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// A run waiting on a delay or a wait, as stored: enough to pick it up
/// after a restart or on another hub. The wait's trigger is the
/// automation's step at `next_step`, so a changed automation is noticed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingRun {
    pub automation: Id,
    pub run: u64,
    pub next_step: usize,
    /// A delay's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// Waiting for an event (the step is a `wait`), with its timeout.
    #[serde(default)]
    pub waiting: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    pub trace: Trace,
}

/// What the engine changed that the database must hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// An automation's row (its spec, `enabled` as it is now).
    Automation(Id),
    /// An automation deleted: its row, runs and traces go.
    AutomationGone(Id),
    Scene(Id),
    SceneGone(Id),
    RunSaved(Box<PendingRun>),
    RunGone {
        automation: Id,
        run: u64,
    },
    Traced(Box<Trace>),
    /// Its time and sun triggers were dealt with up to this instant (the
    /// next hub resumes from here).
    TimersPassed(Id, DateTime<Utc>),
}
