//! One module per benchmark scenario; each owns its orchestration and its report type.
//!
//! Scenarios build clients through [`crate::client`] and count through
//! [`crate::stats`], so each one only adds its own traffic pattern:
//! `broker` for any MQTT broker, `buttons` for the Hearth hub's topic contract.

pub mod broker;
pub mod buttons;
