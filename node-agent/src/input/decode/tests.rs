//! Decoder tests: switch bounce at the timing boundaries, properties over
//! arbitrary press patterns with bounce noise and late ticks, a contact.

#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const NOTHING: [Decoded; 0] = [];

/// A raw edge: the pin reads `.1` from `.0`.
type Edge = (Duration, bool);

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Where the synthetic patterns start, well after the decoder's epoch.
const T0: Duration = Duration::from_secs(1);

/// Feeds `edges` in order. Before each edge, and after the last until
/// nothing is pending, ticks at `when(deadline)` for every deadline; a
/// tick time the next edge overtakes is skipped (the edge decides), one
/// before the deadline must report nothing.
fn decode_all(
    timings: Timings,
    edges: &[Edge],
    mut when: impl FnMut(Duration) -> Duration,
) -> Vec<Decoded> {
    let mut decoder = Decoder::new(timings, false);
    let mut out = Vec::new();
    let mut ticks = 0;
    for next in edges.iter().map(Some).chain([None]) {
        while let Some(deadline) = decoder.next_deadline() {
            let at = when(deadline);
            if next.is_some_and(|&(edge_at, _)| at >= edge_at) {
                break;
            }
            let decided = decoder.tick(at);
            assert!(
                at >= deadline || decided.is_empty(),
                "tick at {at:?} before the deadline {deadline:?} reported {decided:?}"
            );
            out.extend(decided);
            ticks += 1;
            assert!(
                ticks < 10_000,
                "deadline {deadline:?} never clears; so far {out:?}"
            );
        }
        if let Some(&(at, level)) = next {
            out.extend(decoder.edge(at, level));
        }
    }
    out
}

fn on_time(deadline: Duration) -> Duration {
    deadline
}

fn presses(decoded: &[Decoded]) -> Vec<PressAction> {
    decoded
        .iter()
        .filter_map(|d| match d {
            Decoded::Press(p) => Some(*p),
            Decoded::State(_) => None,
        })
        .collect()
}

/// `n` state changes from inactive: true, false, true, ...
fn alternating(n: usize) -> Vec<bool> {
    (0..n).map(|i| i.is_multiple_of(2)).collect()
}

fn states(decoded: &[Decoded]) -> Vec<bool> {
    decoded
        .iter()
        .filter_map(|d| match d {
            Decoded::State(s) => Some(*s),
            Decoded::Press(_) => None,
        })
        .collect()
}

/// A transition to `level` at `at` as a switch makes it: the first edge at
/// `at`, then `chatter` more edges, the last exactly `bounce` later, ending
/// at `level`. With an odd `chatter` the first of them repeats `level`, as
/// interrupt lines report duplicates (with one alone, no edge moves the
/// level after `at`).
fn bounced(
    at: Duration,
    level: bool,
    chatter: usize,
    bounce: Duration,
    rng: &mut StdRng,
) -> Vec<Edge> {
    let span = u64::try_from(bounce.as_micros()).unwrap().max(1);
    let mut offsets: Vec<u64> = (1..chatter).map(|_| rng.random_range(1..=span)).collect();
    offsets.sort_unstable();
    if chatter > 0 {
        offsets.push(span);
    }
    let mut edges = vec![(at, level)];
    for (i, offset) in offsets.into_iter().enumerate() {
        let away = (i + chatter).is_multiple_of(2);
        edges.push((at + Duration::from_micros(offset), level != away));
    }
    edges
}

/// Presses as a person would name the clean pattern of (hold, gap after)
/// in ms: held `long_after` is long; else a next press beginning within
/// `double_within` of the release makes a double with it; else single.
fn named(pattern: &[(u64, u64)], timings: Timings) -> Vec<PressAction> {
    let (long, double) = (timings.long_after, timings.double_within);
    let mut named = Vec::new();
    let mut i = 0;
    while let Some(&(hold, gap)) = pattern.get(i) {
        i += 1;
        named.push(if ms(hold) >= long {
            PressAction::Long
        } else if ms(gap) < double && i < pattern.len() {
            i += 1;
            PressAction::Double
        } else {
            PressAction::Single
        });
    }
    named
}

fn clean_edges(pattern: &[(u64, u64)]) -> Vec<Edge> {
    let mut t = T0;
    let mut edges = Vec::new();
    for &(hold, gap) in pattern {
        edges.push((t, true));
        edges.push((t + ms(hold), false));
        t += ms(hold + gap);
    }
    edges
}

#[test]
fn timings_default_is_valid_and_check_names_the_field() {
    assert_eq!(Timings::default().check(), Ok(()));
    let d = Timings::default();
    let cases = [
        (
            "debounce",
            Timings {
                debounce: Duration::ZERO,
                ..d
            },
        ),
        (
            "debounce",
            Timings {
                debounce: ms(501),
                ..d
            },
        ),
        (
            "double_within",
            Timings {
                double_within: ms(49),
                ..d
            },
        ),
        (
            "double_within",
            Timings {
                double_within: ms(2001),
                ..d
            },
        ),
        (
            "long_after",
            Timings {
                long_after: ms(199),
                ..d
            },
        ),
        (
            "long_after",
            Timings {
                long_after: ms(10_001),
                ..d
            },
        ),
        (
            "long_after",
            Timings {
                debounce: ms(300),
                long_after: ms(300),
                ..d
            },
        ),
        (
            "double_within",
            Timings {
                debounce: ms(400),
                double_within: ms(400),
                long_after: ms(900),
            },
        ),
    ];
    for (want, timings) in cases {
        let err = timings.check().unwrap_err();
        let field = match &err {
            TimingError::OutOfRange { field, .. } | TimingError::NotAboveDebounce { field, .. } => {
                *field
            }
        };
        assert_eq!(field, want, "{timings:?} gave {err}");
        assert!(
            err.to_string().starts_with(want),
            "message {err:?} does not name {want}"
        );
    }
    let edges = Timings {
        debounce: ms(1),
        double_within: ms(50),
        long_after: ms(200),
    };
    assert_eq!(edges.check(), Ok(()), "range starts must be accepted");
}

/// One row per pattern and bounce: the pattern's clean transitions (as a
/// function of the bounce, so "stable for" counts from a burst's last edge)
/// and the presses and state changes it must decode to.
type Pattern = (
    &'static str,
    fn(Duration) -> Vec<Edge>,
    &'static [PressAction],
    usize,
);

fn row(
    name: &'static str,
    transitions: fn(Duration) -> Vec<Edge>,
    presses: &'static [PressAction],
    states: usize,
) -> Pattern {
    (name, transitions, presses, states)
}

fn boundary_patterns() -> Vec<Pattern> {
    use PressAction::{Double, Long, Single};
    let t = Timings::default();
    let (long, double, debounce) = (t.long_after, t.double_within, t.debounce);
    assert_eq!(
        (long, double, debounce),
        (ms(800), ms(350), ms(30)),
        "the table assumes the defaults"
    );
    vec![
        row(
            "held exactly long_after",
            |_| vec![(T0, true), (T0 + ms(800), false)],
            &[Long],
            2,
        ),
        row(
            "held long_after - 1 ms",
            |_| vec![(T0, true), (T0 + ms(799), false)],
            &[Single],
            2,
        ),
        row(
            "second press double_within - 1 ms after release",
            |_| {
                vec![
                    (T0, true),
                    (T0 + ms(100), false),
                    (T0 + ms(449), true),
                    (T0 + ms(549), false),
                ]
            },
            &[Double],
            4,
        ),
        row(
            "second press double_within + 1 ms after release",
            |_| {
                vec![
                    (T0, true),
                    (T0 + ms(100), false),
                    (T0 + ms(451), true),
                    (T0 + ms(551), false),
                ]
            },
            &[Single, Single],
            4,
        ),
        row(
            "second press stable debounce - 1 ms",
            |b| {
                vec![
                    (T0, true),
                    (T0 + ms(100), false),
                    (T0 + ms(200), true),
                    (T0 + ms(229) + b, false),
                ]
            },
            &[Single],
            2,
        ),
        row(
            "second press stable exactly debounce",
            |b| {
                vec![
                    (T0, true),
                    (T0 + ms(100), false),
                    (T0 + ms(200), true),
                    (T0 + ms(230) + b, false),
                ]
            },
            &[Double],
            4,
        ),
        row(
            "long hold, release glitch stable debounce - 1 ms",
            |b| {
                vec![
                    (T0, true),
                    (T0 + ms(400), false),
                    (T0 + ms(429) + b, true),
                    (T0 + ms(1500), false),
                ]
            },
            &[Long],
            2,
        ),
        row(
            "long hold, release stable exactly debounce",
            |b| {
                vec![
                    (T0, true),
                    (T0 + ms(400), false),
                    (T0 + ms(430) + b, true),
                    (T0 + ms(1500), false),
                ]
            },
            &[Double],
            4,
        ),
    ]
}

#[test]
fn bounced_presses_at_the_boundaries_decode_to_exactly_the_named_presses() {
    let mut rng = StdRng::seed_from_u64(0xb0_0c3);
    for (pattern, transitions, want, want_states) in boundary_patterns() {
        for bounce in [1, 5, 10, 20].map(ms) {
            let mut chatter = Vec::new();
            let mut edges = Vec::new();
            for (at, level) in transitions(bounce) {
                let n = rng.random_range(2..=12);
                chatter.push(n);
                edges.extend(bounced(at, level, n, bounce, &mut rng));
            }
            let row = format!("{pattern}, {bounce:?} bounce, chatter {chatter:?}");
            let decoded = decode_all(Timings::default(), &edges, on_time);
            assert_eq!(presses(&decoded), want, "{row}: decoded {decoded:?}");
            let seen = states(&decoded);
            let want = alternating(want_states);
            assert_eq!(seen, want, "{row}: state changes {decoded:?}");
            let late = decode_all(Timings::default(), &edges, |d| {
                d + ms(rng.random_range(0..=700))
            });
            assert_eq!(
                late, decoded,
                "{row}: late ticks decoded {late:?}, on time {decoded:?}"
            );
        }
    }
}

#[test]
fn long_is_reported_while_held_and_the_release_adds_nothing() {
    let mut decoder = Decoder::new(Timings::default(), false);
    assert_eq!(decoder.edge(T0, true), NOTHING);
    assert_eq!(decoder.next_deadline(), Some(T0 + ms(30)));
    assert_eq!(decoder.tick(T0 + ms(30)), [Decoded::State(true)]);
    assert_eq!(decoder.next_deadline(), Some(T0 + ms(800)));
    let early = decoder.tick(T0 + ms(799));
    assert_eq!(early, NOTHING, "1 ms before long_after decoded {early:?}");
    let long = decoder.tick(T0 + ms(800));
    assert_eq!(
        long,
        [Decoded::Press(PressAction::Long)],
        "at long_after decoded {long:?}"
    );
    assert_eq!(decoder.next_deadline(), None);
    let release = [
        decoder.edge(T0 + ms(3000), false),
        decoder.tick(T0 + ms(9000)),
    ]
    .concat();
    assert_eq!(
        release,
        [Decoded::State(false)],
        "the release decoded {release:?}"
    );
}

#[test]
fn a_press_is_dated_at_the_first_edge_of_its_bounce() {
    let mut decoder = Decoder::new(Timings::default(), false);
    let mut decoded = Vec::new();
    for (at, level) in [(0, true), (3, false), (7, true), (12, false), (19, true)] {
        decoded.extend(decoder.edge(T0 + ms(at), level));
    }
    assert_eq!(
        decoder.next_deadline(),
        Some(T0 + ms(49)),
        "debounce runs from the last edge"
    );
    decoded.extend(decoder.tick(T0 + ms(49)));
    assert_eq!(decoded, [Decoded::State(true)]);
    assert_eq!(
        decoder.next_deadline(),
        Some(T0 + ms(800)),
        "long runs from the first edge"
    );
}

#[test]
fn single_waits_for_the_double_window() {
    let mut decoder = Decoder::new(Timings::default(), false);
    let mut decoded = [decoder.edge(T0, true), decoder.edge(T0 + ms(100), false)].concat();
    decoded.extend(decoder.tick(T0 + ms(130)));
    assert_eq!(decoded, [Decoded::State(true), Decoded::State(false)]);
    assert_eq!(decoder.next_deadline(), Some(T0 + ms(450)));
    let early = decoder.tick(T0 + ms(449));
    assert_eq!(early, NOTHING, "inside the double window decoded {early:?}");
    let single = decoder.tick(T0 + ms(450));
    assert_eq!(
        single,
        [Decoded::Press(PressAction::Single)],
        "at the window's end decoded {single:?}"
    );
    assert_eq!(decoder.next_deadline(), None);
}

#[test]
fn a_third_quick_press_starts_a_new_sequence() {
    let edges = clean_edges(&[(80, 150), (80, 150), (80, 150)]);
    let decoded = decode_all(Timings::default(), &edges, on_time);
    let got = presses(&decoded);
    assert_eq!(
        got,
        [PressAction::Double, PressAction::Single],
        "three quick presses decoded {decoded:?}"
    );
}

#[test]
fn a_long_held_second_press_is_still_a_double() {
    let edges = clean_edges(&[(100, 100), (2000, 0)]);
    let decoded = decode_all(Timings::default(), &edges, on_time);
    assert_eq!(
        presses(&decoded),
        [PressAction::Double],
        "short then held decoded {decoded:?}"
    );
    let last = decoded.last().copied();
    assert_eq!(
        last,
        Some(Decoded::Press(PressAction::Double)),
        "the double comes with the release: {decoded:?}"
    );
}

#[test]
fn a_button_held_at_start_gives_no_press() {
    let mut decoder = Decoder::new(Timings::default(), true);
    assert!(decoder.active());
    assert_eq!(decoder.next_deadline(), None);
    let decoded = [decoder.edge(T0, false), decoder.tick(T0 + ms(5000))].concat();
    assert_eq!(
        decoded,
        [Decoded::State(false)],
        "releasing a button held at start decoded {decoded:?}"
    );
}

#[test]
fn duplicate_and_out_of_order_edges_are_harmless() {
    let mut decoder = Decoder::new(Timings::default(), false);
    let mut decoded = decoder.edge(T0, false);
    decoded.extend(decoder.edge(T0 + ms(10), true));
    decoded.extend(decoder.edge(T0 + ms(20), true));
    assert_eq!(
        decoder.next_deadline(),
        Some(T0 + ms(40)),
        "a duplicate must not extend the burst"
    );
    decoded.extend(decoder.edge(T0 + ms(5), true));
    decoded.extend(decoder.edge(T0 + ms(1), false));
    assert_eq!(
        decoder.next_deadline(),
        Some(T0 + ms(50)),
        "an early edge counts at the latest time seen"
    );
    decoded.extend(decoder.tick(T0 + ms(50)));
    decoded.extend(decoder.tick(T0));
    assert_eq!(
        decoded, NOTHING,
        "a burst back to inactive decoded {decoded:?}"
    );
    assert!(!decoder.active());
    decoded.extend(decoder.edge(Duration::MAX, true));
    decoded.extend(decoder.tick(Duration::MAX));
    assert_eq!(
        decoded,
        [Decoded::State(true), Decoded::Press(PressAction::Long)],
        "at the end of time"
    );
}

#[test]
fn contact_state_changes_only_after_debounce() {
    let mut contact = Decoder::new(Timings::default(), false);
    assert_eq!(contact.edge(T0, true), NOTHING);
    assert_eq!(contact.edge(T0 + ms(4), false), NOTHING);
    assert_eq!(contact.edge(T0 + ms(6), true), NOTHING);
    let short = contact.tick(T0 + ms(35));
    assert_eq!(short, NOTHING, "1 ms short of debounce decoded {short:?}");
    assert!(!contact.active(), "active before debounce");
    assert_eq!(contact.tick(T0 + ms(36)), [Decoded::State(true)]);
    assert!(contact.active());
    let decoded = [
        contact.edge(T0 + ms(5000), false),
        contact.tick(T0 + ms(5030)),
    ]
    .concat();
    assert_eq!(states(&decoded), [false], "opening decoded {decoded:?}");
}

#[test]
fn contact_glitches_shorter_than_debounce_are_ignored() {
    for initial in [false, true] {
        let mut contact = Decoder::new(Timings::default(), initial);
        let mut t = T0;
        for glitch in 1..30 {
            let mut decoded = contact.edge(t, !initial);
            decoded.extend(contact.edge(t + ms(glitch), initial));
            decoded.extend(contact.tick(t + ms(1000)));
            assert!(
                states(&decoded).is_empty(),
                "a {glitch} ms glitch from {initial} decoded {decoded:?}"
            );
            assert_eq!(contact.active(), initial, "after a {glitch} ms glitch");
            t += ms(2000);
        }
        let mut decoded = contact.edge(t, !initial);
        decoded.extend(contact.edge(t + ms(30), initial));
        decoded.extend(contact.tick(t + ms(60)));
        assert_eq!(
            states(&decoded),
            [!initial, initial],
            "a 30 ms change from {initial} decoded {decoded:?}"
        );
    }
}

/// Presses: (hold, gap after) in ms, each away from debounce + bounce,
/// `long_after` and `double_within` by more than the bounce.
fn pattern() -> impl Strategy<Value = Vec<(u64, u64)>> {
    let hold = prop_oneof![60u64..=700, 900u64..=2500];
    let gap = prop_oneof![60u64..=300, 400u64..=1500];
    prop::collection::vec((hold, gap), 1..=8)
}

/// Per transition: chatter edges, bounce in µs (shorter than debounce by
/// more than the margin the pattern leaves), seed of the edge times.
fn noise() -> impl Strategy<Value = Vec<(usize, u64, u64)>> {
    prop::collection::vec((0usize..=12, 1u64..=25_000, any::<u64>()), 16)
}

fn noisy(clean: &[Edge], noise: &[(usize, u64, u64)]) -> Vec<Edge> {
    let mut edges = Vec::new();
    for (i, &(at, level)) in clean.iter().enumerate() {
        let (chatter, bounce, seed) = noise[i % noise.len()];
        let mut rng = StdRng::seed_from_u64(seed);
        edges.extend(bounced(
            at,
            level,
            chatter,
            Duration::from_micros(bounce),
            &mut rng,
        ));
    }
    edges
}

proptest! {
    #[test]
    fn bounce_noise_shorter_than_debounce_changes_nothing(pattern in pattern(), noise in noise()) {
        let timings = Timings::default();
        let clean = decode_all(timings, &clean_edges(&pattern), on_time);
        let want = named(&pattern, timings);
        prop_assert_eq!(presses(&clean), want, "clean {:?} decoded {:?}", pattern, clean);
        let want = alternating(2 * pattern.len());
        prop_assert_eq!(states(&clean), want, "clean {:?} decoded {:?}", pattern, clean);
        let bounced = decode_all(timings, &noisy(&clean_edges(&pattern), &noise), on_time);
        prop_assert_eq!(&bounced, &clean, "with bounce decoded {:?}, clean {:?}", bounced, clean);
    }

    #[test]
    fn late_ticks_decide_like_timely_ones(
        pattern in pattern(),
        noise in noise(),
        seed in any::<u64>(),
    ) {
        let timings = Timings::default();
        let edges = noisy(&clean_edges(&pattern), &noise);
        let timely = decode_all(timings, &edges, on_time);
        let mut rng = StdRng::seed_from_u64(seed);
        let late = decode_all(timings, &edges, |deadline| match rng.random_range(0..8) {
            // One in eight a spurious early wake-up, else late by up to 3 s.
            0 => deadline.saturating_sub(ms(rng.random_range(1..=100))),
            _ => deadline + ms(rng.random_range(0..=3000)),
        });
        prop_assert_eq!(&late, &timely, "late ticks decoded {:?}, timely {:?}", late, timely);
    }
}
