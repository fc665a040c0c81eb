//! Capped exponential backoff with full jitter, as a pure state machine.
//!
//! rumqttc reconnects as soon as it is polled again; without a pause a dead
//! broker turns every client into a busy loop, and a restarted broker is hit by
//! every client in the same millisecond. Jitter spreads them out.

use std::time::Duration;

use rand::Rng;

/// First pause after a failure.
pub const DEFAULT_INITIAL: Duration = Duration::from_millis(100);
/// Longest pause between attempts.
pub const DEFAULT_CAP: Duration = Duration::from_secs(10);

/// Backoff state: call [`Backoff::next_delay`] after each failure and
/// [`Backoff::reset`] after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    cap: Duration,
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(DEFAULT_INITIAL, DEFAULT_CAP)
    }
}

impl Backoff {
    pub fn new(initial: Duration, cap: Duration) -> Self {
        Self {
            initial,
            cap: cap.max(initial),
            failures: 0,
        }
    }

    /// The upper bound of the next pause: `initial * 2^failures`, capped.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.cap)
    }

    /// The pause before the next attempt, uniformly drawn from
    /// `[ceiling/2, ceiling]` so that clients restarted together spread out
    /// without ever retrying immediately.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        let spread = (ceiling - half).as_micros() as u64;
        half + Duration::from_micros(rng.random_range(0..=spread))
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn grows_exponentially_up_to_the_cap_with_jitter_inside_bounds() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut ceilings = Vec::new();
        for _ in 0..8 {
            let ceiling = backoff.ceiling();
            let delay = backoff.next_delay(&mut rng);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} vs {ceiling:?}"
            );
            ceilings.push(ceiling.as_millis());
        }
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        backoff.reset();
        assert_eq!(backoff.ceiling(), Duration::from_millis(100));
    }

    #[test]
    fn never_overflows_after_many_failures() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut backoff = Backoff::default();
        for _ in 0..10_000 {
            assert!(backoff.next_delay(&mut rng) <= DEFAULT_CAP);
        }
    }
}
