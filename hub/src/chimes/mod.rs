//! Scheduled chimes at run time: the registry of chimes, the scheduler that plays them, and the tasks that store and announce changes.
//!
//! What a chime is and when it plays next is pure and lives in
//! [`crate::model::chime`]; it is re-exported here, where the rest of the
//! hub has always found it.

pub mod commands;
pub mod manage;
pub mod registry;
pub mod scheduler;

pub use crate::model::chime::*;
