//! One input pin, pure: timestamped raw edges to debounced states and button presses.
//!
//! The caller feeds edges as the kernel timestamped them and calls
//! [`Decoder::tick`] when [`Decoder::next_deadline`] says. Every decision
//! is taken from edge timestamps, never from when `tick` runs, so a busy Pi
//! that ticks late reports the same presses as one that ticks on time (only
//! later), and the tests need no clock.
//!
//! Debounce: a mechanical contact chatters for a few ms when it closes or
//! opens. Edges less than `debounce` apart form one burst; the burst changes
//! the level only if the line then rests at a new level for `debounce`, and
//! the change is dated at the burst's first edge, when the contact first
//! moved, so chatter neither stretches nor shortens a press.
//!
//! Presses: a press held for `long_after` is a long press, reported while
//! still held so the user gets feedback the moment it counts; its release
//! reports nothing. A shorter press waits `double_within` from its release:
//! a second press that begins inside that window makes a double, reported
//! when the second press is released, however long it was held (the user
//! chose double by pressing again; a held second press arms no long). No
//! second press: a single, reported when the window closes. A third quick
//! press starts a new sequence. A deadline is never decided while a burst
//! is unresolved, since that burst may turn out to be a release or a second
//! press that began before the deadline.
//!
//! Contacts and motion sensors use the same decoder and read only
//! [`Decoded::State`]; the press deadlines cost them a wake-up or two.

#[cfg(test)]
mod tests;

use std::ops::RangeInclusive;
use std::time::Duration;

use hearth_protocol::PressAction;

/// Accepted `debounce`: contacts settle within a few ms, while beyond half a
/// second the input would feel broken.
pub const DEBOUNCE_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_millis(500);
/// Accepted `double_within`: shorter than a human double press, or so long
/// that every single press feels delayed.
pub const DOUBLE_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(50)..=Duration::from_millis(2000);
/// Accepted `long_after`.
pub const LONG_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(200)..=Duration::from_millis(10_000);

/// Timings of one input; the config layer validates them with [`Timings::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// How long the raw level must rest before it counts.
    pub debounce: Duration,
    /// How soon after a release a second press makes a double.
    pub double_within: Duration,
    /// How long a press must be held to be a long press.
    pub long_after: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(30),
            double_within: Duration::from_millis(350),
            long_after: Duration::from_millis(800),
        }
    }
}

/// Why [`Timings`] were rejected; `field` is the [`Timings`] field's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimingError {
    #[error("{field} of {value:?} is outside {min:?}..={max:?}")]
    OutOfRange {
        field: &'static str,
        value: Duration,
        min: Duration,
        max: Duration,
    },
    #[error(
        "{field} of {value:?} must be longer than debounce ({debounce:?}): \
         a press or release is only known debounce after it begins"
    )]
    NotAboveDebounce {
        field: &'static str,
        value: Duration,
        debounce: Duration,
    },
}

impl Timings {
    /// Checks each field against its range, and that `long_after` and
    /// `double_within` exceed `debounce`: otherwise a long press would be
    /// reported before the press itself is known, and a second press could
    /// never begin inside the double window.
    pub fn check(&self) -> Result<(), TimingError> {
        let fields = [
            ("debounce", self.debounce, DEBOUNCE_RANGE),
            ("double_within", self.double_within, DOUBLE_RANGE),
            ("long_after", self.long_after, LONG_RANGE),
        ];
        for (field, value, range) in fields {
            if !range.contains(&value) {
                return Err(TimingError::OutOfRange {
                    field,
                    value,
                    min: *range.start(),
                    max: *range.end(),
                });
            }
        }
        for (field, value) in [
            ("double_within", self.double_within),
            ("long_after", self.long_after),
        ] {
            if value <= self.debounce {
                return Err(TimingError::NotAboveDebounce {
                    field,
                    value,
                    debounce: self.debounce,
                });
            }
        }
        Ok(())
    }
}

/// What the decoder reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// The debounced level changed; `true` is active (pressed, motion,
    /// open), the caller having applied the pin's polarity.
    State(bool),
    /// A button press was recognised.
    Press(PressAction),
}

/// Edges less than `debounce` apart, not yet resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Burst {
    first: Duration,
    last: Duration,
}

/// Where a press sequence stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sequence {
    /// Nothing to report: released, or held but already reported as long
    /// or already held when the decoder started.
    Idle,
    /// First press of a sequence, held since `since`.
    First { since: Duration },
    /// First press released short at `at`; a second press may follow.
    Released { at: Duration },
    /// Second press of a double, held.
    Second,
}

/// Debounces one input and recognises presses; see the module doc.
#[derive(Debug, Clone)]
pub struct Decoder {
    timings: Timings,
    /// Debounced level.
    active: bool,
    /// Level after the last raw edge.
    raw: bool,
    burst: Option<Burst>,
    sequence: Sequence,
    /// Latest time seen: decisions up to here are taken, so time never goes back.
    now: Duration,
}

impl Decoder {
    /// A decoder whose pin reads `initial_active` (debounced already: the
    /// caller read it at rest). A button held at start reports no press.
    pub fn new(timings: Timings, initial_active: bool) -> Self {
        Self {
            timings,
            active: initial_active,
            raw: initial_active,
            burst: None,
            sequence: Sequence::Idle,
            now: Duration::ZERO,
        }
    }

    /// The debounced level.
    pub fn active(&self) -> bool {
        self.active
    }

    /// A raw edge: the pin reads `active` from `at`. Deadlines up to `at`
    /// are decided first, exactly as [`Decoder::tick`] would. An `at`
    /// earlier than a time already seen counts as that time (decisions up
    /// to it are taken); an edge repeating the raw level is ignored.
    pub fn edge(&mut self, at: Duration, active: bool) -> Vec<Decoded> {
        let out = self.tick(at);
        if active != self.raw {
            self.raw = active;
            let first = self.burst.map_or(self.now, |b| b.first);
            self.burst = Some(Burst {
                first,
                last: self.now,
            });
        }
        out
    }

    /// When [`Decoder::tick`] must be called if no edge comes first; `None`
    /// when nothing is pending.
    pub fn next_deadline(&self) -> Option<Duration> {
        if let Some(burst) = self.burst {
            return Some(burst.last.saturating_add(self.timings.debounce));
        }
        match self.sequence {
            Sequence::First { since } => Some(since.saturating_add(self.timings.long_after)),
            Sequence::Released { at } => Some(at.saturating_add(self.timings.double_within)),
            Sequence::Idle | Sequence::Second => None,
        }
    }

    /// Time has passed with no edge up to `now`: decides every deadline
    /// at or before it, in order (a late tick catches up on several).
    pub fn tick(&mut self, now: Duration) -> Vec<Decoded> {
        self.now = self.now.max(now);
        let mut out = Vec::new();
        while let Some(deadline) = self.next_deadline()
            && deadline <= self.now
        {
            self.decide(&mut out);
        }
        out
    }

    /// Decides the deadline [`Decoder::next_deadline`] gives, which is due.
    fn decide(&mut self, out: &mut Vec<Decoded>) {
        if let Some(burst) = self.burst.take() {
            if self.raw != self.active {
                self.commit(burst.first, out);
            }
            return;
        }
        match self.sequence {
            Sequence::First { .. } => out.push(Decoded::Press(PressAction::Long)),
            Sequence::Released { .. } => out.push(Decoded::Press(PressAction::Single)),
            Sequence::Idle | Sequence::Second => {}
        }
        self.sequence = Sequence::Idle;
    }

    /// The raw level becomes the debounced one, dated `at`. Deadlines up to
    /// `at` were decided when the burst's first edge came, so the date
    /// guards below only hold on to the meaning if that ever changed.
    fn commit(&mut self, at: Duration, out: &mut Vec<Decoded>) {
        self.active = self.raw;
        out.push(Decoded::State(self.active));
        let Timings {
            double_within,
            long_after,
            ..
        } = self.timings;
        self.sequence = match (self.sequence, self.active) {
            (Sequence::Released { at: released }, true)
                if at < released.saturating_add(double_within) =>
            {
                Sequence::Second
            }
            (_, true) => Sequence::First { since: at },
            (Sequence::First { since }, false) if at < since.saturating_add(long_after) => {
                Sequence::Released { at }
            }
            (Sequence::First { .. }, false) => {
                out.push(Decoded::Press(PressAction::Long));
                Sequence::Idle
            }
            (Sequence::Second, false) => {
                out.push(Decoded::Press(PressAction::Double));
                Sequence::Idle
            }
            (Sequence::Idle | Sequence::Released { .. }, false) => Sequence::Idle,
        };
    }
}
