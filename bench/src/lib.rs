//! hearth-bench: load generator and latency meter for MQTT brokers and the Hearth hub.
//!
//! Run `hearth-bench broker --help` for the options. Example, against a
//! broker on this machine:
//!
//! ```text
//! cargo run --release -p hearth-bench -- broker --url mqtt://127.0.0.1:1883 \
//!     --publishers 10 --subscribers 1 --messages 10000 --qos 1
//! ```
//!
//! `hearth-bench buttons --help` measures press-to-command latency through a
//! broker and a running hub.
//!
//! Only loopback brokers are accepted unless `--allow-remote` is given.
//! The binary is a thin shell over [`scenarios`] so tests can run a scenario
//! in-process.

pub mod cli;
pub mod client;
pub mod http;
pub mod hub;
pub mod payload;
pub mod report;
pub mod scenarios;
pub mod stats;
