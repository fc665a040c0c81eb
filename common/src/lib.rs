//! Runtime plumbing every Hearth binary shares: layered settings, tracing, shutdown and MQTT links.
//!
//! Kept out of `hearth-protocol` because all of it does I/O; kept out of the
//! binaries so the hub, the agent and the bench behave the same way.

pub mod backoff;
pub mod mqtt;
pub mod settings;
#[cfg(test)]
mod settings_props;
pub mod shutdown;
pub mod telemetry;
pub mod tls;
