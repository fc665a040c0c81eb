//! One module per benchmark scenario; each owns its orchestration and its report type.
//!
//! Scenarios build clients through [`crate::client`] and count through
//! [`crate::stats`], so a new one (e.g. `buttons`, driving the hub's topic
//! contract) only adds its own traffic pattern.

pub mod broker;
