//! GPIO inputs: buttons, contacts and motion sensors, from raw edges to debounced states and presses.

pub mod decode;
pub mod run;
pub mod simulate;
