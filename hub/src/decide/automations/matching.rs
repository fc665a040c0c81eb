//! Does this event fire that trigger; does this condition hold in this
//! house now. Pure; every answer says what it saw, for traces.

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use hearth_protocol::OnOff;

use super::definition::{Condition, PayloadMatch, Threshold, Trigger};
use super::sun::Place;
use crate::decide::rules::filter_matches;
use crate::model::effects::HouseEvent;
use crate::model::house::House;

/// An event as triggers see it: a change in the house, or a message.
#[derive(Debug, Clone, Copy)]
pub enum Seen<'a> {
    House(&'a HouseEvent),
    Message { topic: &'a str, payload: &'a [u8] },
}

/// Where a threshold stands between events: `Some(true)` once the number
/// has been clear of its range (it may fire), `Some(false)` inside it.
pub type Crossing = Option<bool>;

/// Moves `crossing` with the new number `x`; true when it fires.
pub fn cross(threshold: &Threshold, crossing: &mut Crossing, x: f64) -> bool {
    if threshold.inside(x) {
        let fires = *crossing == Some(true);
        *crossing = Some(false);
        fires
    } else {
        if threshold.clear(x) {
            *crossing = Some(true);
        }
        false
    }
}

fn wants<T: PartialEq>(want: &Option<T>, got: Option<&T>) -> bool {
    want.as_ref().is_none_or(|w| got == Some(w))
}

/// Whether `seen` fires `trigger`, and what it was, for the trace.
pub fn fires(trigger: &Trigger, crossing: &mut Crossing, seen: Seen<'_>) -> Option<String> {
    use HouseEvent as E;
    match (trigger, seen) {
        (
            Trigger::Press { button, action },
            Seen::House(E::Press {
                button: b,
                action: a,
            }),
        ) if b == button && action.is_none_or(|w| w == *a) => {
            Some(format!("button {b} pressed {a}"))
        }
        (
            Trigger::Button { button, from, to },
            Seen::House(E::Button {
                button: b,
                from: f,
                to: t,
            }),
        ) if b == button && wants(from, f.as_ref()) && wants(to, Some(t)) => {
            Some(format!("button {b} turned {t}"))
        }
        (
            Trigger::Output { output, from, to },
            Seen::House(E::Output {
                output: o,
                from: f,
                to: t,
            }),
        ) if o == output && wants(from, f.as_ref()) && wants(to, Some(t)) => {
            Some(format!("output {o} turned {t}"))
        }
        (
            Trigger::Input {
                node,
                name,
                from,
                to,
            },
            Seen::House(E::Input {
                node: n,
                name: m,
                from: f,
                to: t,
            }),
        ) if n == node && m == name && wants(from, f.as_ref()) && wants(to, Some(t)) => {
            Some(format!("input {n}/{m} turned {t}"))
        }
        (
            Trigger::Availability { node, from, to },
            Seen::House(E::Availability {
                node: n,
                from: f,
                to: t,
            }),
        ) if n == node && wants(from, f.as_ref()) && wants(to, Some(t)) => {
            Some(format!("node {n} went {t}"))
        }
        (
            Trigger::Climate {
                node,
                quantity,
                threshold,
            },
            Seen::House(E::Reading {
                node: n,
                quantity: q,
                value,
            }),
        ) if n == node && q == quantity => {
            cross(threshold, crossing, *value).then(|| format!("{q} of {n} crossed to {value}"))
        }
        (Trigger::Message { filter, matches }, Seen::Message { topic, payload })
            if filter_matches(filter, topic) =>
        {
            payload_matches(matches, crossing, payload).then(|| {
                let text = String::from_utf8_lossy(payload);
                let shown: String = text.chars().take(200).collect();
                format!("message on {topic}: {shown}")
            })
        }
        _ => None,
    }
}

fn payload_matches(matches: &PayloadMatch, crossing: &mut Crossing, payload: &[u8]) -> bool {
    match matches {
        PayloadMatch::Any => true,
        PayloadMatch::Exactly(want) => std::str::from_utf8(payload).is_ok_and(|p| p.trim() == want),
        PayloadMatch::FieldEquals(path, want) => field(payload, path).is_some_and(|got| {
            got == *want || (got.as_f64().is_some() && got.as_f64() == want.as_f64())
        }),
        PayloadMatch::FieldCrosses(path, threshold) => {
            let number = match field(payload, path) {
                Some(serde_json::Value::Number(n)) => n.as_f64(),
                Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            };
            number.is_some_and(|x| x.is_finite() && cross(threshold, crossing, x))
        }
    }
}

/// The value at `path` in a JSON payload; an empty path is the whole
/// payload (a plain number is JSON too).
fn field(payload: &[u8], path: &[String]) -> Option<serde_json::Value> {
    let mut value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    for key in path {
        value = value.get_mut(key.as_str())?.take();
    }
    Some(value)
}

/// What condition evaluation needs besides the house.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub at: DateTime<Utc>,
    pub timezone: Tz,
    pub place: Option<Place>,
}

/// One condition as evaluated: what it looked at and whether it held.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Checked {
    pub saw: String,
    pub held: bool,
}

/// Whether every one of `conditions` holds, each evaluated (no short
/// cut) so a trace shows everything that was seen.
pub fn all_hold(
    conditions: &[Condition],
    house: &House,
    now: &Now,
    seen: &mut Vec<Checked>,
) -> bool {
    let mut all = true;
    for c in conditions {
        all &= holds(c, house, now, seen);
    }
    all
}

/// Whether `condition` holds; each leaf's view is pushed on `seen`.
pub fn holds(condition: &Condition, house: &House, now: &Now, seen: &mut Vec<Checked>) -> bool {
    let mut leaf = |saw: String, held: bool| {
        seen.push(Checked { saw, held });
        held
    };
    let state = |s: Option<OnOff>| s.map_or("unknown", OnOff::as_str);
    match condition {
        Condition::And(cs) => all_hold(cs, house, now, seen),
        Condition::Or(cs) => {
            let mut any = false;
            for c in cs {
                any |= holds(c, house, now, seen);
            }
            any
        }
        Condition::Not(c) => !holds(c, house, now, seen),
        Condition::Time {
            after,
            before,
            weekdays,
        } => {
            let local = now.at.with_timezone(&now.timezone);
            let time = local.time();
            let in_window = match (after, before) {
                (Some(a), Some(b)) if a > b => time >= *a || time < *b,
                (a, b) => a.is_none_or(|a| time >= a) && b.is_none_or(|b| time < b),
            };
            let on_day = weekdays
                .as_ref()
                .is_none_or(|d| d.contains(&local.weekday()));
            leaf(
                format!(
                    "local time {} {}",
                    local.format("%a %H:%M:%S"),
                    now.timezone
                ),
                in_window && on_day,
            )
        }
        Condition::SunUp(up) => {
            let is_up = now.place.is_some_and(|p| p.sun_up(now.at));
            leaf(
                format!("sun is {}", if is_up { "up" } else { "down" }),
                is_up == *up,
            )
        }
        Condition::Button(id, want) => {
            let got = house.buttons.get(id).map(|b| b.state);
            leaf(format!("button {id} is {}", state(got)), got == Some(*want))
        }
        Condition::Output(output, want) => {
            let got = house.outputs.get(output).map(|o| o.state);
            leaf(
                format!("output {output} is {}", state(got)),
                got == Some(*want),
            )
        }
        Condition::Input(node, name, want) => {
            let got = house.inputs.get(&(node.clone(), name.clone())).copied();
            leaf(
                format!("input {node}/{name} is {}", state(got)),
                got == Some(*want),
            )
        }
        Condition::Availability(node, want) => {
            let got = house.nodes.get(node).and_then(|n| n.availability);
            let shown = got.map_or("unknown", |a| a.as_str());
            leaf(format!("node {node} is {shown}"), got == Some(*want))
        }
        Condition::Reading {
            node,
            quantity,
            above,
            below,
        } => {
            let got = house
                .nodes
                .get(node)
                .and_then(|n| n.readings.value(*quantity));
            let held =
                got.is_some_and(|x| above.is_none_or(|a| x > a) && below.is_none_or(|b| x < b));
            let shown = got.map_or("unknown".to_owned(), |x| x.to_string());
            leaf(format!("{quantity} of {node} is {shown}"), held)
        }
    }
}
