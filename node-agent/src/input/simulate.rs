//! `--simulate`: what a person does to a simulated input, as the edges a real contact would make.
//!
//! `hearth/node/<node>/input/<name>/simulate` with `press` (or `single`),
//! `double`, `long`, `ON` or `OFF` becomes a script of timestamped edges,
//! chatter included, fed to the same decoder a real pin feeds. So the
//! whole chain (debounce, press timing, MQTT, hub, rules, Home Assistant)
//! runs on a laptop exactly as it would on a Pi.

use std::time::Duration;

use super::decode::Timings;

/// What a person did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gesture {
    Single,
    Double,
    Long,
    /// A contact or motion sensor going active or inactive.
    On,
    Off,
}

/// A payload that names no gesture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected press, single, double, long, ON or OFF, got {0:?}")]
pub struct UnknownGesture(pub String);

impl Gesture {
    pub fn parse(payload: &[u8]) -> Result<Self, UnknownGesture> {
        let text = String::from_utf8_lossy(payload);
        match text.trim().to_ascii_lowercase().as_str() {
            "press" | "single" | "" => Ok(Self::Single),
            "double" => Ok(Self::Double),
            "long" => Ok(Self::Long),
            "on" => Ok(Self::On),
            "off" => Ok(Self::Off),
            _ => Err(UnknownGesture(text.into_owned())),
        }
    }
}

/// Chatter edges after each transition: what a cheap tactile switch does
/// for a few ms (issue 17's bounce table: 1-20 ms).
const CHATTER_EDGES: u32 = 4;

/// The edges `gesture` makes, as (time after the start, active), with
/// chatter shorter than `timings.debounce` after every transition.
pub fn script(gesture: Gesture, timings: &Timings) -> Vec<(Duration, bool)> {
    // Long enough to pass the debounce, short of a long press.
    let press = Duration::from_millis(120).max(timings.debounce * 3);
    let (mut at, mut out) = (Duration::ZERO, Vec::new());
    let transition = |out: &mut Vec<(Duration, bool)>, at: Duration, active: bool| {
        out.push((at, active));
        // Spaced so that the whole burst ends well inside one debounce.
        let step = timings.debounce / (CHATTER_EDGES * 2 + 2);
        if step > Duration::ZERO {
            for k in 1..=CHATTER_EDGES {
                out.push((at + step * k, k % 2 == 0 && active || k % 2 == 1 && !active));
            }
        }
    };
    match gesture {
        Gesture::Single => {
            transition(&mut out, at, true);
            transition(&mut out, at + press, false);
        }
        Gesture::Double => {
            let gap = (timings.double_within / 3).max(timings.debounce * 2);
            transition(&mut out, at, true);
            at += press;
            transition(&mut out, at, false);
            at += gap;
            transition(&mut out, at, true);
            transition(&mut out, at + press, false);
        }
        Gesture::Long => {
            transition(&mut out, at, true);
            transition(&mut out, at + timings.long_after + press, false);
        }
        Gesture::On => transition(&mut out, at, true),
        Gesture::Off => transition(&mut out, at, false),
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::input::decode::{Decoded, Decoder};
    use hearth_protocol::PressAction;

    /// Runs a script through a decoder, ticking at each deadline.
    fn decode(script: &[(Duration, bool)], timings: Timings, initial: bool) -> Vec<Decoded> {
        let mut decoder = Decoder::new(timings, initial);
        let mut out = Vec::new();
        for &(at, active) in script {
            while let Some(due) = decoder.next_deadline().filter(|d| *d < at) {
                out.extend(decoder.tick(due));
            }
            out.extend(decoder.edge(at, active));
        }
        while let Some(due) = decoder.next_deadline() {
            out.extend(decoder.tick(due));
        }
        out
    }

    #[test]
    fn each_gesture_decodes_to_what_a_person_meant_despite_the_chatter() {
        for debounce_ms in [1, 5, 30, 100] {
            let timings = Timings {
                debounce: Duration::from_millis(debounce_ms),
                ..Timings::default()
            };
            for (gesture, want) in [
                (Gesture::Single, Some(PressAction::Single)),
                (Gesture::Double, Some(PressAction::Double)),
                (Gesture::Long, Some(PressAction::Long)),
            ] {
                let presses: Vec<_> = decode(&script(gesture, &timings), timings, false)
                    .into_iter()
                    .filter_map(|d| match d {
                        Decoded::Press(a) => Some(a),
                        Decoded::State(_) => None,
                    })
                    .collect();
                assert_eq!(
                    presses,
                    want.into_iter().collect::<Vec<_>>(),
                    "{gesture:?} with debounce {debounce_ms} ms"
                );
            }
            // Contacts read states only (held, the decoder also sees a long press).
            let states = |gesture, initial| -> Vec<Decoded> {
                decode(&script(gesture, &timings), timings, initial)
                    .into_iter()
                    .filter(|d| matches!(d, Decoded::State(_)))
                    .collect()
            };
            assert_eq!(
                states(Gesture::On, false),
                [Decoded::State(true)],
                "ON, debounce {debounce_ms} ms"
            );
            assert_eq!(
                states(Gesture::Off, true),
                [Decoded::State(false)],
                "OFF, debounce {debounce_ms} ms"
            );
        }
    }

    #[test]
    fn gestures_are_parsed_from_plain_words() {
        assert_eq!(Gesture::parse(b" Long\n"), Ok(Gesture::Long));
        assert_eq!(Gesture::parse(b"press"), Ok(Gesture::Single));
        assert_eq!(Gesture::parse(b"ON"), Ok(Gesture::On));
        assert_eq!(
            Gesture::parse(b"tripple").unwrap_err().to_string(),
            "expected press, single, double, long, ON or OFF, got \"tripple\""
        );
    }
}
