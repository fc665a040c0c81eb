//! An entity's on/off timeline: the spans between its logged state changes over a window.
//!
//! Pure: the caller reads the state in force when the window opens (the
//! last `state` entry before it) and the changes inside it from the
//! logbook, and gets back the spans to draw.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One stretch of time in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The entry's detail: `ON` or `OFF` for outputs, inputs and buttons.
    pub state: String,
}

/// The spans of `[since, until)`: from `since` in the state `before` (if
/// one was logged before the window), then one span per change, each
/// lasting until the next change or `until`. `changes` are (time, state),
/// oldest first; a change repeating the state in force extends its span,
/// and changes outside the window are ignored. Time before the first
/// known state is left out: the timeline shows only what was logged.
pub fn spans(
    before: Option<&str>,
    changes: &[(DateTime<Utc>, String)],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    if since >= until {
        return out;
    }
    if let Some(state) = before {
        out.push(Span {
            from: since,
            to: until,
            state: state.to_owned(),
        });
    }
    for (at, state) in changes {
        if *at < since || *at >= until {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.state == *state => continue,
            Some(last) if last.from == *at => {
                // A change at the very instant the span began replaces it.
                last.state.clone_from(state);
                continue;
            }
            Some(last) => last.to = *at,
            None => {}
        }
        out.push(Span {
            from: *at,
            to: until,
            state: state.clone(),
        });
    }
    // Two replaced spans can leave equal neighbours: join them.
    out.dedup_by(|later, earlier| {
        if later.state == earlier.state {
            earlier.to = later.to;
            true
        } else {
            false
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, hour, minute, 0).unwrap()
    }

    fn span(from: DateTime<Utc>, to: DateTime<Utc>, state: &str) -> Span {
        Span {
            from,
            to,
            state: state.to_owned(),
        }
    }

    fn change(t: DateTime<Utc>, state: &str) -> (DateTime<Utc>, String) {
        (t, state.to_owned())
    }

    #[test]
    fn a_day_of_a_lamp_is_its_evening_and_its_night_light() {
        let changes = [
            change(at(6, 30), "ON"),
            change(at(7, 15), "OFF"),
            change(at(18, 0), "ON"),
            change(at(18, 5), "ON"), // repeated: no new span
            change(at(23, 30), "OFF"),
        ];
        assert_eq!(
            spans(Some("OFF"), &changes, at(0, 0), at(23, 59)),
            [
                span(at(0, 0), at(6, 30), "OFF"),
                span(at(6, 30), at(7, 15), "ON"),
                span(at(7, 15), at(18, 0), "OFF"),
                span(at(18, 0), at(23, 30), "ON"),
                span(at(23, 30), at(23, 59), "OFF"),
            ]
        );
    }

    #[test]
    fn nothing_known_before_the_first_change_is_left_out() {
        assert_eq!(
            spans(None, &[change(at(9, 0), "ON")], at(0, 0), at(12, 0)),
            [span(at(9, 0), at(12, 0), "ON")]
        );
        assert_eq!(spans(None, &[], at(0, 0), at(12, 0)), []);
    }

    #[test]
    fn a_state_held_all_window_is_one_span() {
        assert_eq!(
            spans(Some("ON"), &[change(at(3, 0), "ON")], at(0, 0), at(12, 0)),
            [span(at(0, 0), at(12, 0), "ON")]
        );
    }

    #[test]
    fn a_change_at_the_window_start_replaces_the_state_before() {
        assert_eq!(
            spans(
                Some("OFF"),
                &[change(at(0, 0), "ON"), change(at(0, 0), "OFF")],
                at(0, 0),
                at(1, 0)
            ),
            [span(at(0, 0), at(1, 0), "OFF")]
        );
    }

    #[test]
    fn changes_outside_the_window_and_empty_windows_make_nothing() {
        let changes = [change(at(1, 0), "ON"), change(at(5, 0), "OFF")];
        assert_eq!(
            spans(Some("OFF"), &changes, at(2, 0), at(4, 0)),
            [span(at(2, 0), at(4, 0), "OFF")]
        );
        assert_eq!(spans(Some("ON"), &changes, at(4, 0), at(4, 0)), []);
    }
}
