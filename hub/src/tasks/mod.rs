//! Layer 4: the hub's long-running tasks, each owning its I/O: the core, the writer, the clock and housekeeping.
//!
//! The chime scheduler and publisher tasks live with the chimes
//! (`crate::chimes::scheduler::run_while_leader`, `crate::chimes::manage::run_publisher`).

pub mod clock;
pub mod core;
pub mod housekeeping;
pub mod writer;
