//! Automations: triggers, conditions and actions with a run mode (see
//! docs/automations.md). Pure: the core task feeds the engine events and
//! instants and carries out what it returns.
//!
//! - `definition`: the checked shape, from `hearth_protocol::AutomationSpec`;
//! - `matching`: does an event fire a trigger, does a condition hold;
//! - `engine`: runs, modes, delays and waits, the next deadline;
//! - `timers`: time passing (delays, timeouts, time and sun triggers) and
//!   the timers picked up from where the last hub left them;
//! - `catalog`: adding, replacing, deleting, views, stored runs picked up;
//! - `steps`: what an output, publish or play step sends;
//! - `loops`: automations and rules that would set each other off forever;
//! - `sun`: sunrise and sunset at the hub's place;
//! - `trace`: what each run saw and did.

pub mod catalog;
pub mod definition;
pub mod engine;
pub mod loops;
pub mod matching;
pub mod steps;
pub mod sun;
pub mod timers;
pub mod trace;

pub use catalog::{AutomationView, SceneView};
pub use definition::{Automation, AutomationError, Context, Scene};
pub use engine::{Effects, Engine, Setup};
pub use matching::Seen;
pub use sun::Place;
pub use trace::{Change, PendingRun, Trace};

#[cfg(test)]
mod tests;
