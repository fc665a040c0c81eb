//! Layer 2: the hub's decisions as pure functions: messages, rules, discovery payloads, the hello, the clock.
//!
//! Nothing here touches a socket, a lock or the database; every function
//! takes what it decides on (state, input, now) and returns effects
//! (`crate::model::effects`).

pub mod automations;
pub mod clock;
pub mod discovery;
pub mod gate;
pub mod hello;
pub mod logbook;
pub mod message;
pub mod network;
pub mod readings;
pub mod rules;
pub mod timeline;
