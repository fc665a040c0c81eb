//! State machine tests: commands, sequences stepping, take-over and safe state.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use hearth_protocol::Id;

use super::*;
use crate::config::Step;
use crate::gpio::PinSpec;

const RED: usize = 0;
const YELLOW: usize = 1;
const GREEN: usize = 2;
const LAMP: usize = 3;
const TRAFFIC: usize = 0;
const BLINK: usize = 1;

fn id(s: &str) -> Id {
    Id::new(s).unwrap()
}

fn output(name: &str, kind: OutputKind, pin: u8) -> OutputDef {
    OutputDef {
        name: id(name),
        kind,
        pin: PinSpec {
            pin,
            active_low: false,
        },
        dimmable: false,
    }
}

fn step(on: &[usize], ms: u64) -> Step {
    Step {
        on: on.to_vec(),
        duration: Duration::from_millis(ms),
    }
}

/// The demo board plus a switch and a blinking sequence sharing yellow.
fn board() -> Board {
    Board::new(
        vec![
            output("red", OutputKind::Light, 17),
            output("yellow", OutputKind::Light, 27),
            output("green", OutputKind::Light, 22),
            output("lamp", OutputKind::Switch, 5),
        ],
        vec![
            SequenceDef {
                name: id("traffic"),
                steps: vec![
                    step(&[RED], 2000),
                    step(&[YELLOW], 1000),
                    step(&[GREEN], 2000),
                    step(&[YELLOW], 2000),
                ],
            },
            SequenceDef {
                name: id("blink"),
                steps: vec![step(&[YELLOW], 500), step(&[], 500)],
            },
        ],
    )
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn on_states(board: &Board) -> Vec<&str> {
    board
        .outputs()
        .filter(|(_, s)| s.is_on())
        .map(|(d, _)| d.name.as_str())
        .collect()
}

#[test]
fn outputs_follow_commands_and_are_always_confirmed() {
    let mut b = board();
    let now = Instant::now();
    let target = b.find(OutputKind::Light, "red").unwrap();
    assert_eq!(target, Target::Output(RED));
    let changes = b.command(target, Command::On, now);
    assert_eq!(changes.outputs, [(RED, OnOff::On)]);
    let again = b.command(target, Command::On, now);
    assert_eq!(again.outputs, [(RED, OnOff::On)], "unchanged but confirmed");
    let toggled = b.command(target, Command::Toggle, now);
    assert_eq!(toggled.outputs, [(RED, OnOff::Off)]);
    assert!(toggled.sequences.is_empty());
}

#[test]
fn unknown_names_and_wrong_kinds_say_what_exists() {
    let b = board();
    let err = b.find(OutputKind::Light, "blue").unwrap_err();
    assert_eq!(
        err.to_string(),
        "no light named \"blue\" on this node; its lights are: red, yellow, green"
    );
    let err = b.find(OutputKind::Switch, "red").unwrap_err();
    assert_eq!(
        err.to_string(),
        "no switch named \"red\" on this node; its switches are: lamp"
    );
    assert_eq!(
        b.find(OutputKind::Sequence, "blink"),
        Ok(Target::Sequence(BLINK))
    );
    let empty = Board::new(Vec::new(), Vec::new());
    let err = empty.find(OutputKind::Sequence, "x").unwrap_err();
    assert!(err.to_string().ends_with("it has no sequences"), "{err}");
}

#[test]
fn the_traffic_light_steps_in_order_with_offs_first() {
    let mut b = board();
    let t0 = Instant::now();
    let start = b.command(Target::Sequence(TRAFFIC), Command::On, t0);
    assert_eq!(start.outputs, [(RED, OnOff::On)]);
    assert_eq!(start.sequences, [(TRAFFIC, OnOff::On)]);
    assert_eq!(b.next_due(), Some(t0 + ms(2000)));
    assert!(b.tick(t0 + ms(1999)).is_empty(), "not due yet");

    let mut log = Vec::new();
    let mut at = t0;
    for _ in 0..5 {
        at = b.next_due().unwrap();
        let changes = b.tick(at);
        log.push((
            (at - t0).as_millis(),
            changes
                .outputs
                .iter()
                .map(|(i, s)| format!("{}={s}", b.output(*i).unwrap().name))
                .collect::<Vec<_>>()
                .join(" "),
        ));
    }
    let expected = [
        (2000, "red=OFF yellow=ON"),
        (3000, "yellow=OFF green=ON"),
        (5000, "green=OFF yellow=ON"),
        (7000, "yellow=OFF red=ON"),
        (9000, "red=OFF yellow=ON"),
    ];
    let log: Vec<(u128, &str)> = log.iter().map(|(t, s)| (*t, s.as_str())).collect();
    assert_eq!(log, expected);
    assert_eq!(on_states(&b), ["yellow"]);
    assert_eq!(b.next_due(), Some(at + ms(1000)));
}

#[test]
fn a_late_tick_does_not_race_to_catch_up() {
    let mut b = board();
    let t0 = Instant::now();
    b.command(Target::Sequence(TRAFFIC), Command::On, t0);
    let late = t0 + Duration::from_secs(60);
    b.tick(late);
    assert_eq!(b.next_due(), Some(late + ms(1000)));
}

#[test]
fn stopping_a_sequence_turns_its_outputs_off() {
    let mut b = board();
    let t0 = Instant::now();
    b.command(Target::Output(LAMP), Command::On, t0);
    b.command(Target::Sequence(TRAFFIC), Command::On, t0);
    b.tick(t0 + ms(2000));
    let stop = b.command(Target::Sequence(TRAFFIC), Command::Off, t0 + ms(2500));
    assert_eq!(stop.outputs, [(YELLOW, OnOff::Off)]);
    assert_eq!(stop.sequences, [(TRAFFIC, OnOff::Off)]);
    assert_eq!(on_states(&b), ["lamp"], "outputs outside the sequence stay");
    assert_eq!(b.next_due(), None);
    let toggle = b.command(Target::Sequence(TRAFFIC), Command::Toggle, t0 + ms(3000));
    assert_eq!(toggle.sequences, [(TRAFFIC, OnOff::On)]);
}

#[test]
fn a_direct_command_takes_an_output_away_from_its_sequence() {
    let mut b = board();
    let t0 = Instant::now();
    b.command(Target::Sequence(TRAFFIC), Command::On, t0);
    b.tick(t0 + ms(2000)); // yellow on
    let changes = b.command(Target::Output(GREEN), Command::On, t0 + ms(2100));
    assert_eq!(changes.outputs, [(YELLOW, OnOff::Off), (GREEN, OnOff::On)]);
    assert_eq!(changes.sequences, [(TRAFFIC, OnOff::Off)]);
    assert_eq!(b.next_due(), None);
    assert!(b.tick(t0 + ms(10_000)).is_empty());

    // TOGGLE goes the other way from what was shown: red, lit by the
    // sequence, goes off (and the sequence stops); yellow, dark, goes on.
    b.command(Target::Sequence(TRAFFIC), Command::On, t0);
    assert_eq!(on_states(&b), ["red"]);
    let toggle = b.command(Target::Output(RED), Command::Toggle, t0 + ms(100));
    assert_eq!(toggle.outputs, [(RED, OnOff::Off)]);
    assert_eq!(toggle.sequences, [(TRAFFIC, OnOff::Off)]);
    assert!(on_states(&b).is_empty());
    b.command(Target::Sequence(TRAFFIC), Command::On, t0);
    let toggle = b.command(Target::Output(YELLOW), Command::Toggle, t0 + ms(100));
    assert_eq!(toggle.outputs, [(RED, OnOff::Off), (YELLOW, OnOff::On)]);
    assert_eq!(on_states(&b), ["yellow"]);

    // Outputs the sequence does not use leave it running.
    b.command(Target::Sequence(TRAFFIC), Command::On, t0);
    let lamp = b.command(Target::Output(LAMP), Command::On, t0);
    assert!(lamp.sequences.is_empty());
    assert!(b.next_due().is_some());
}

#[test]
fn starting_a_sequence_stops_one_sharing_its_outputs() {
    let mut b = board();
    let t0 = Instant::now();
    b.command(Target::Sequence(TRAFFIC), Command::On, t0);
    let blink = b.command(Target::Sequence(BLINK), Command::On, t0 + ms(10));
    assert_eq!(blink.outputs, [(RED, OnOff::Off), (YELLOW, OnOff::On)]);
    assert_eq!(blink.sequences, [(TRAFFIC, OnOff::Off), (BLINK, OnOff::On)]);
    let again = b.command(Target::Sequence(BLINK), Command::On, t0 + ms(20));
    assert!(again.outputs.is_empty(), "already running: no restart");
    assert_eq!(again.sequences, [(BLINK, OnOff::On)]);
    let off = b.tick(t0 + ms(510));
    assert_eq!(
        off.outputs,
        [(YELLOW, OnOff::Off)],
        "an empty step is all off"
    );
}

#[test]
fn all_off_is_the_safe_state() {
    let mut b = board();
    let t0 = Instant::now();
    b.command(Target::Output(LAMP), Command::On, t0);
    b.command(Target::Sequence(TRAFFIC), Command::On, t0);
    let changes = b.all_off();
    assert_eq!(changes.outputs, [(RED, OnOff::Off), (LAMP, OnOff::Off)]);
    assert_eq!(changes.sequences, [(TRAFFIC, OnOff::Off)]);
    assert!(on_states(&b).is_empty());
    assert_eq!(b.next_due(), None);
}
