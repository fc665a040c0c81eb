//! Pure accounting shared by every scenario: percentiles, latency summaries and loss/duplicate tracking.
//!
//! Nothing here does I/O or reads a clock, so each rule is unit-tested on its own.

use serde::Serialize;

/// Nearest-rank percentile of an ascending slice: the smallest sample such
/// that at least `pct` percent of samples are less than or equal to it.
///
/// Nearest-rank (rather than interpolation) always returns a latency that was
/// really observed, which is what a reader of "p99 = 1.2 ms" assumes.
/// Returns `None` for an empty slice.
pub fn percentile(sorted: &[u64], pct: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let pct = pct.clamp(0.0, 100.0);
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Latency distribution in nanoseconds; all zero when nothing was measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
    pub mean_ns: u64,
}

impl LatencySummary {
    /// Summarises samples given in any order (sorts them in place).
    pub fn from_samples(samples: &mut [u64]) -> Self {
        samples.sort_unstable();
        let Some(&max_ns) = samples.last() else {
            return Self::default();
        };
        let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        let count = samples.len() as u64;
        Self {
            count,
            p50_ns: percentile(samples, 50.0).unwrap_or_default(),
            p99_ns: percentile(samples, 99.0).unwrap_or_default(),
            max_ns,
            mean_ns: u64::try_from(sum / u128::from(count)).unwrap_or(u64::MAX),
        }
    }
}

/// What one received probe meant to a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First copy of this (publisher, seq).
    New,
    /// A copy this subscriber already had (QoS 1 may redeliver).
    Duplicate,
    /// A publisher or sequence number this run never sent.
    Unexpected,
}

/// One subscriber's view of which (publisher, seq) pairs arrived.
///
/// A bitset per publisher keeps memory at one bit per expected message, so a
/// million-message run costs ~125 KB per subscriber rather than a hash set.
#[derive(Debug, Clone)]
pub struct DeliveryTracker {
    per_publisher: Vec<Vec<u64>>,
    expected_per_publisher: u64,
    distinct: u64,
    duplicated: u64,
    unexpected: u64,
}

/// Counts from one or more [`DeliveryTracker`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    /// Messages the subscribers should have received between them.
    pub expected: u64,
    /// Every copy received, duplicates included.
    pub delivered: u64,
    /// Expected messages that never arrived.
    pub lost: u64,
    /// Extra copies of a message the same subscriber already had.
    pub duplicated: u64,
    /// Probes naming a publisher or sequence number this run never sent.
    pub unexpected: u64,
}

impl std::ops::Add for DeliveryCounts {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self {
            expected: self.expected + rhs.expected,
            delivered: self.delivered + rhs.delivered,
            lost: self.lost + rhs.lost,
            duplicated: self.duplicated + rhs.duplicated,
            unexpected: self.unexpected + rhs.unexpected,
        }
    }
}

impl std::iter::Sum for DeliveryCounts {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), |a, b| a + b)
    }
}

impl DeliveryTracker {
    /// Expects sequence numbers `0..messages` from each of `publishers`.
    pub fn new(publishers: u32, messages: u64) -> Self {
        let words = usize::try_from(messages.div_ceil(64)).unwrap_or(usize::MAX);
        Self {
            per_publisher: (0..publishers).map(|_| vec![0; words]).collect(),
            expected_per_publisher: messages,
            distinct: 0,
            duplicated: 0,
            unexpected: 0,
        }
    }

    pub fn record(&mut self, publisher: u32, seq: u64) -> Seen {
        let Some(bits) = self.per_publisher.get_mut(publisher as usize) else {
            self.unexpected += 1;
            return Seen::Unexpected;
        };
        if seq >= self.expected_per_publisher {
            self.unexpected += 1;
            return Seen::Unexpected;
        }
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        let mask = 1u64 << bit;
        if bits[word] & mask != 0 {
            self.duplicated += 1;
            Seen::Duplicate
        } else {
            bits[word] |= mask;
            self.distinct += 1;
            Seen::New
        }
    }

    /// Counts a payload that is not a probe at all (foreign traffic on the
    /// same topics): reported, never mistaken for one of ours.
    pub fn record_foreign(&mut self) {
        self.unexpected += 1;
    }

    /// True once every expected message has arrived at least once.
    pub fn complete(&self) -> bool {
        self.distinct == self.expected()
    }

    fn expected(&self) -> u64 {
        self.per_publisher.len() as u64 * self.expected_per_publisher
    }

    pub fn counts(&self) -> DeliveryCounts {
        DeliveryCounts {
            expected: self.expected(),
            delivered: self.distinct + self.duplicated,
            lost: self.expected() - self.distinct,
            duplicated: self.duplicated,
            unexpected: self.unexpected,
        }
    }
}

/// Matches commands to presses for the `buttons` scenario.
///
/// A command's payload is just `ON`, so it cannot name its press; its topic
/// names the button. The hub handles messages one at a time and publishes at
/// QoS 1, and MQTT keeps the order of one client's messages on one topic, so
/// the nth command for a button answers that button's nth press (FIFO per
/// button). Should a press ever get no command, every later command of that
/// button would be matched one press early; the count of lost presses stays
/// right either way.
#[derive(Debug, Clone)]
pub struct PressLedger {
    /// Commands matched so far, per button.
    matched: Vec<u64>,
    /// Presses sent to each button in the whole run.
    expected: Vec<u64>,
    total_matched: u64,
    extra: u64,
}

/// What one received command meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// It answers the `nth` press (0-based) of the button.
    Press { nth: u64 },
    /// The button already had every command it was owed (or is not ours).
    Extra,
}

impl PressLedger {
    /// `expected[k]` presses will be sent to button `k`.
    pub fn new(expected: Vec<u64>) -> Self {
        Self {
            matched: vec![0; expected.len()],
            expected,
            total_matched: 0,
            extra: 0,
        }
    }

    /// Records a command for `button`.
    pub fn command(&mut self, button: u32) -> Answer {
        let k = button as usize;
        match (self.matched.get_mut(k), self.expected.get(k)) {
            (Some(matched), Some(&expected)) if *matched < expected => {
                let nth = *matched;
                *matched += 1;
                self.total_matched += 1;
                Answer::Press { nth }
            }
            _ => {
                self.extra += 1;
                Answer::Extra
            }
        }
    }

    /// Records a command on a topic that names no bench button.
    pub fn foreign(&mut self) {
        self.extra += 1;
    }

    pub fn matched(&self) -> u64 {
        self.total_matched
    }

    /// Commands beyond what any press asked for.
    pub fn extra(&self) -> u64 {
        self.extra
    }

    /// True once every press of the run has its command.
    pub fn complete(&self) -> bool {
        self.total_matched == self.expected.iter().sum::<u64>()
    }

    /// Buttons that were pressed but got no command at all: usually a hub
    /// without the rule for them, not a slow one.
    pub fn silent_buttons(&self) -> Vec<u32> {
        (0u32..)
            .zip(self.matched.iter().zip(&self.expected))
            .filter(|(_, (matched, expected))| **matched == 0 && **expected > 0)
            .map(|(k, _)| k)
            .collect()
    }

    /// Presses that never got a command.
    pub fn unanswered(&self) -> u64 {
        self.expected.iter().sum::<u64>() - self.total_matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(50));
        assert_eq!(percentile(&sorted, 99.0), Some(99));
        assert_eq!(percentile(&sorted, 100.0), Some(100));
        assert_eq!(percentile(&sorted, 0.0), Some(1));
        assert_eq!(percentile(&[42], 99.0), Some(42));
        assert_eq!(percentile(&[], 50.0), None);
        // With 10 samples p99 must be the maximum, not an interpolated value.
        let ten: Vec<u64> = (1..=10).map(|v| v * 10).collect();
        assert_eq!(percentile(&ten, 99.0), Some(100));
        assert_eq!(percentile(&ten, 50.0), Some(50));
    }

    #[test]
    fn summary_sorts_and_handles_empty() {
        let mut samples = vec![30, 10, 20, 40];
        let s = LatencySummary::from_samples(&mut samples);
        assert_eq!(
            s,
            LatencySummary {
                count: 4,
                p50_ns: 20,
                p99_ns: 40,
                max_ns: 40,
                mean_ns: 25,
            }
        );
        assert_eq!(
            LatencySummary::from_samples(&mut []),
            LatencySummary::default()
        );
    }

    #[test]
    fn counts_loss_and_duplicates_per_publisher() {
        let mut t = DeliveryTracker::new(2, 100);
        for seq in 0..100 {
            if seq != 63 && seq != 64 {
                assert_eq!(t.record(0, seq), Seen::New);
            }
        }
        assert_eq!(t.record(0, 5), Seen::Duplicate);
        assert_eq!(t.record(0, 5), Seen::Duplicate);
        // The same sequence number from another publisher is a different message.
        assert_eq!(t.record(1, 5), Seen::New);
        assert_eq!(t.record(2, 0), Seen::Unexpected);
        assert_eq!(t.record(1, 100), Seen::Unexpected);
        assert!(!t.complete());
        assert_eq!(
            t.counts(),
            DeliveryCounts {
                expected: 200,
                delivered: 98 + 1 + 2,
                lost: 2 + 99,
                duplicated: 2,
                unexpected: 2,
            }
        );
    }

    #[test]
    fn completes_when_every_message_arrived_once() {
        let mut t = DeliveryTracker::new(3, 65);
        for p in 0..3 {
            for seq in (0..65).rev() {
                t.record(p, seq);
            }
        }
        assert!(t.complete());
        let c = t.counts();
        assert_eq!((c.delivered, c.lost, c.duplicated), (195, 0, 0));
    }

    #[test]
    fn counts_sum_across_subscribers() {
        let a = DeliveryCounts {
            expected: 10,
            delivered: 9,
            lost: 1,
            duplicated: 0,
            unexpected: 0,
        };
        let b = DeliveryCounts {
            expected: 10,
            delivered: 11,
            lost: 0,
            duplicated: 1,
            unexpected: 2,
        };
        let total: DeliveryCounts = [a, b].into_iter().sum();
        assert_eq!((total.expected, total.delivered, total.lost), (20, 20, 1));
        assert_eq!((total.duplicated, total.unexpected), (1, 2));
    }

    #[test]
    fn ledger_matches_fifo_per_button() {
        let mut l = PressLedger::new(vec![2, 1]);
        assert!(!l.complete());
        assert_eq!(l.command(1), Answer::Press { nth: 0 });
        assert_eq!(l.command(0), Answer::Press { nth: 0 });
        assert_eq!(l.command(1), Answer::Extra);
        assert_eq!(l.command(7), Answer::Extra);
        l.foreign();
        assert_eq!((l.matched(), l.unanswered(), l.extra()), (2, 1, 3));
        assert_eq!(l.silent_buttons(), Vec::<u32>::new());
        assert_eq!(PressLedger::new(vec![1, 0, 2]).silent_buttons(), [0, 2]);
        assert_eq!(l.command(0), Answer::Press { nth: 1 });
        assert!(l.complete());
        assert_eq!(l.unanswered(), 0);
    }
}
