//! Rate-limited logging of rejected messages: a flood of bad input cannot flood the log.

use std::time::{Duration, Instant};

use crate::model::effects::Rejection;

/// Most rejected messages logged per window; the rest are only counted.
const ERROR_LOG_BURST: u32 = 20;
const ERROR_LOG_WINDOW: Duration = Duration::from_secs(10);

/// Logs the first few rejected messages of each window, counts them all.
#[derive(Debug)]
pub(super) struct ErrorLog {
    window_start: Instant,
    logged: u32,
    suppressed: u64,
}

impl ErrorLog {
    pub(super) fn new() -> Self {
        Self {
            window_start: Instant::now(),
            logged: 0,
            suppressed: 0,
        }
    }

    pub(super) fn rejected(&mut self, topic: &str, rejection: &Rejection) {
        if self.window_start.elapsed() > ERROR_LOG_WINDOW {
            if self.suppressed > 0 {
                tracing::warn!(
                    suppressed = self.suppressed,
                    "more messages were rejected (see hearth_errors_total)"
                );
            }
            *self = Self::new();
        }
        if self.logged < ERROR_LOG_BURST {
            self.logged += 1;
            tracing::warn!(topic, error = %rejection, "rejected message");
        } else {
            self.suppressed += 1;
        }
    }
}
