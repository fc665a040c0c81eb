//! A checked automation: every id parsed, every filter, time and number
//! validated, so the engine never meets a bad value. Pure.

use std::time::Duration;

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;
use hearth_protocol::{
    ActionSpec, AutomationSpec, Availability, Command, ConditionSpec, Id, OnOff, OutputKind,
    OutputRef, PressAction, Quantity, SceneSpec, TriggerSpec,
};

use crate::decide::rules::{parse_output, validate_filter};
use crate::model::chime::{Schedule, parse_weekdays, validate_sound};

/// Most runs of one automation at once (`parallel`) or waiting (`queued`).
pub const MAX_RUNS_LIMIT: u32 = 100;
/// Longest delay, wait or cool-down: a week.
pub const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;
/// Deepest `and`/`or`/`not` nesting.
const MAX_DEPTH: usize = 8;

/// Why an automation was refused: the field (`triggers[0].above`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {why}")]
pub struct AutomationError {
    pub at: String,
    pub why: String,
}

fn bad(at: impl Into<String>, why: impl Into<String>) -> AutomationError {
    AutomationError {
        at: at.into(),
        why: why.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A trigger while a run is going is ignored.
    Single,
    /// A trigger while a run is going stops it and starts again.
    Restart,
    /// Runs wait their turn, at most this many waiting.
    Queued(u32),
    /// Runs go side by side, at most this many.
    Parallel(u32),
}

/// A number that fires when it crosses into `above < x < below` and can
/// fire again once it has left that range by `hysteresis`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub above: Option<f64>,
    pub below: Option<f64>,
    pub hysteresis: f64,
}

impl Threshold {
    /// Inside the range.
    pub fn inside(&self, x: f64) -> bool {
        self.above.is_none_or(|a| x > a) && self.below.is_none_or(|b| x < b)
    }

    /// Clear of the range by the hysteresis (so it may fire again).
    pub fn clear(&self, x: f64) -> bool {
        let h = self.hysteresis;
        self.above.is_some_and(|a| x <= a - h) || self.below.is_some_and(|b| x >= b + h)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PayloadMatch {
    Any,
    Exactly(String),
    FieldEquals(Vec<String>, serde_json::Value),
    FieldCrosses(Vec<String>, Threshold),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SunEvent {
    Sunrise,
    Sunset,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Press {
        button: Id,
        action: Option<PressAction>,
    },
    Button {
        button: Id,
        from: Option<OnOff>,
        to: Option<OnOff>,
    },
    Output {
        output: OutputRef,
        from: Option<OnOff>,
        to: Option<OnOff>,
    },
    Input {
        node: Id,
        name: Id,
        from: Option<OnOff>,
        to: Option<OnOff>,
    },
    Availability {
        node: Id,
        from: Option<Availability>,
        to: Option<Availability>,
    },
    Message {
        filter: String,
        matches: PayloadMatch,
    },
    Climate {
        node: Id,
        quantity: Quantity,
        threshold: Threshold,
    },
    Time {
        /// Boxed: a cron is large next to the other triggers.
        schedule: Box<Schedule>,
        timezone: Tz,
    },
    Sun {
        event: SunEvent,
        offset_min: i32,
    },
    HubStart,
}

impl Trigger {
    /// Whether it fires at instants (a time or the sun) rather than on events.
    pub fn is_timed(&self) -> bool {
        matches!(self, Trigger::Time { .. } | Trigger::Sun { .. })
    }

    /// Whether it keeps a crossing state between events.
    pub fn threshold(&self) -> Option<&Threshold> {
        match self {
            Trigger::Climate { threshold, .. }
            | Trigger::Message {
                matches: PayloadMatch::FieldCrosses(_, threshold),
                ..
            } => Some(threshold),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    /// In the hub's zone; `after > before` spans midnight.
    Time {
        after: Option<NaiveTime>,
        before: Option<NaiveTime>,
        weekdays: Option<Vec<Weekday>>,
    },
    SunUp(bool),
    Button(Id, OnOff),
    Output(OutputRef, OnOff),
    Input(Id, Id, OnOff),
    Availability(Id, Availability),
    Reading {
        node: Id,
        quantity: Quantity,
        above: Option<f64>,
        below: Option<f64>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    SetOutput {
        output: OutputRef,
        command: Command,
    },
    SetBrightness {
        output: OutputRef,
        level: u8,
    },
    Publish {
        topic: String,
        payload: String,
        retain: bool,
    },
    Play {
        sound: String,
        speakers: Vec<Id>,
        volume: Option<u8>,
    },
    Delay(Duration),
    Wait {
        trigger: Box<Trigger>,
        timeout: Option<Duration>,
        continue_on_timeout: bool,
    },
    Enable {
        automation: Id,
        enabled: bool,
    },
    Scene(Id),
}

/// A checked automation.
#[derive(Debug, Clone, PartialEq)]
pub struct Automation {
    pub id: Id,
    pub name: String,
    pub enabled: bool,
    pub mode: Mode,
    pub cooldown: Duration,
    pub triggers: Vec<Trigger>,
    pub conditions: Vec<Condition>,
    pub steps: Vec<Step>,
    /// The spec it was checked from, id filled in: what is stored and shown.
    pub spec: AutomationSpec,
}

/// A checked scene: output steps only.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub id: Id,
    pub name: String,
    pub steps: Vec<Step>,
    pub spec: SceneSpec,
}

impl Scene {
    pub fn validate(
        spec: &SceneSpec,
        id: Option<&Id>,
        cx: Context,
    ) -> Result<Self, AutomationError> {
        let id = checked_id(spec.id.as_deref(), id)?;
        let name = spec.name.clone().unwrap_or_else(|| id.to_string());
        if name.chars().count() > 100 {
            return Err(bad("name", "longer than 100 characters"));
        }
        if spec.outputs.is_empty() {
            return Err(bad("outputs", "empty: a scene sets at least one output"));
        }
        let steps = spec
            .outputs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let at = format!("outputs[{i}]");
                if a.output.is_none() {
                    return Err(bad(
                        at,
                        "a scene entry sets an `output` (with command or brightness)",
                    ));
                }
                step(a, &at, cx)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut spec = spec.clone();
        spec.id = Some(id.to_string());
        Ok(Self {
            id,
            name,
            steps,
            spec,
        })
    }
}

/// The id from the spec or the topic/path (which must agree).
fn checked_id(given: Option<&str>, path: Option<&Id>) -> Result<Id, AutomationError> {
    match (given, path) {
        (Some(given), Some(path)) if given != path.as_str() => Err(bad(
            "id",
            format!("{given:?} differs from {path:?} in the topic or path"),
        )),
        (_, Some(path)) => Ok(path.clone()),
        (Some(given), None) => Id::new(given).map_err(|e| bad("id", e.to_string())),
        (None, None) => Err(bad("id", "missing: give each one an id")),
    }
}

/// What validation needs from the hub.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub timezone: Tz,
    /// Whether the hub knows where it is (sun triggers need it).
    pub located: bool,
}

impl Automation {
    /// Checks `spec`; `id` comes from the topic or path when the spec has none.
    pub fn validate(
        spec: &AutomationSpec,
        id: Option<&Id>,
        cx: Context,
    ) -> Result<Self, AutomationError> {
        let id = checked_id(spec.id.as_deref(), id)?;
        let name = spec.name.clone().unwrap_or_else(|| id.to_string());
        if name.chars().count() > 100 {
            return Err(bad("name", "longer than 100 characters"));
        }
        let max = spec.max_runs.unwrap_or(10);
        if !(1..=MAX_RUNS_LIMIT).contains(&max) {
            return Err(bad("max_runs", format!("must be 1 to {MAX_RUNS_LIMIT}")));
        }
        let mode = match spec.mode.as_deref().unwrap_or("single") {
            "single" => Mode::Single,
            "restart" => Mode::Restart,
            "queued" => Mode::Queued(max),
            "parallel" => Mode::Parallel(max),
            other => {
                return Err(bad(
                    "mode",
                    format!("{other:?}: use single, restart, queued or parallel"),
                ));
            }
        };
        if spec.max_runs.is_some() && matches!(mode, Mode::Single | Mode::Restart) {
            return Err(bad("max_runs", "only goes with mode queued or parallel"));
        }
        let cooldown = spec
            .cooldown_s
            .map(|s| seconds("cooldown_s", s))
            .transpose()?
            .unwrap_or_default();
        if spec.triggers.is_empty() {
            return Err(bad(
                "triggers",
                "empty: give at least one (or use `run` to start it by hand)",
            ));
        }
        let triggers = spec
            .triggers
            .iter()
            .enumerate()
            .map(|(i, t)| trigger(t, &format!("triggers[{i}]"), cx))
            .collect::<Result<Vec<_>, _>>()?;
        let conditions = spec
            .conditions
            .iter()
            .enumerate()
            .map(|(i, c)| condition(c, &format!("conditions[{i}]"), 0))
            .collect::<Result<Vec<_>, _>>()?;
        if conditions.iter().any(uses_sun) && !cx.located {
            return Err(bad(
                "conditions",
                "sun: set hub.latitude and hub.longitude so the hub knows when the sun is up",
            ));
        }
        if spec.actions.is_empty() {
            return Err(bad("actions", "empty: an automation must do something"));
        }
        let steps = spec
            .actions
            .iter()
            .enumerate()
            .map(|(i, a)| step(a, &format!("actions[{i}]"), cx))
            .collect::<Result<Vec<_>, _>>()?;
        let mut spec = spec.clone();
        spec.id = Some(id.to_string());
        Ok(Self {
            id,
            name,
            enabled: spec.enabled.unwrap_or(true),
            mode,
            cooldown,
            triggers,
            conditions,
            steps,
            spec,
        })
    }
}

impl Automation {
    /// Whether one of its actions applies scene `id` (which must then stay).
    pub fn applies_scene(&self, id: &Id) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s, Step::Scene(scene) if scene == id))
    }

    /// The topic filters its triggers and waits listen on, for the hub's
    /// subscriptions.
    pub fn filters(&self) -> impl Iterator<Item = &str> {
        let waits = self.steps.iter().filter_map(|s| match s {
            Step::Wait { trigger, .. } => Some(&**trigger),
            _ => None,
        });
        self.triggers.iter().chain(waits).filter_map(|t| match t {
            Trigger::Message { filter, .. } => Some(filter.as_str()),
            _ => None,
        })
    }
}

fn uses_sun(c: &Condition) -> bool {
    match c {
        Condition::SunUp(_) => true,
        Condition::And(cs) | Condition::Or(cs) => cs.iter().any(uses_sun),
        Condition::Not(c) => uses_sun(c),
        _ => false,
    }
}

fn seconds(at: &str, s: f64) -> Result<Duration, AutomationError> {
    if !(0.0..=MAX_SECONDS).contains(&s) {
        return Err(bad(at, format!("{s} must be 0 to {MAX_SECONDS} seconds")));
    }
    Ok(Duration::from_secs_f64(s))
}

fn id(at: String, raw: &str) -> Result<Id, AutomationError> {
    Id::new(raw).map_err(|e| bad(at, e.to_string()))
}

fn on_off(at: String, raw: &Option<String>) -> Result<Option<OnOff>, AutomationError> {
    raw.as_deref()
        .map(|s| OnOff::parse(s.as_bytes()).map_err(|e| bad(at, e.to_string())))
        .transpose()
}

fn availability(at: String, raw: &Option<String>) -> Result<Option<Availability>, AutomationError> {
    raw.as_deref()
        .map(|s| Availability::parse(s.as_bytes()).map_err(|e| bad(at, e.to_string())))
        .transpose()
}

/// `node/name` of an input.
fn input_ref(at: String, raw: &str) -> Result<(Id, Id), AutomationError> {
    match raw.split_once('/') {
        Some((node, name)) if !name.contains('/') => Ok((id(at.clone(), node)?, id(at, name)?)),
        _ => Err(bad(
            at,
            format!("{raw:?} must look like node/name, e.g. pi-1/hall"),
        )),
    }
}

fn quantity(at: String, raw: &Option<String>) -> Result<Quantity, AutomationError> {
    let raw = raw
        .as_deref()
        .ok_or_else(|| bad(at.clone(), "missing: temperature or humidity"))?;
    raw.parse()
        .map_err(|_| bad(at, format!("{raw:?}: use temperature or humidity")))
}

fn threshold(
    at: &str,
    above: Option<f64>,
    below: Option<f64>,
    hysteresis: Option<f64>,
) -> Result<Threshold, AutomationError> {
    for (key, v) in [
        ("above", above),
        ("below", below),
        ("hysteresis", hysteresis),
    ] {
        if v.is_some_and(|v| !v.is_finite()) {
            return Err(bad(format!("{at}.{key}"), "must be a finite number"));
        }
    }
    if above.is_none() && below.is_none() {
        return Err(bad(at, "give `above`, `below` or both"));
    }
    if let (Some(a), Some(b)) = (above, below)
        && a >= b
    {
        return Err(bad(
            format!("{at}.below"),
            format!("{b} must be greater than above ({a})"),
        ));
    }
    let hysteresis = hysteresis.unwrap_or(0.0);
    if hysteresis < 0.0 {
        return Err(bad(format!("{at}.hysteresis"), "must not be negative"));
    }
    Ok(Threshold {
        above,
        below,
        hysteresis,
    })
}

fn field_path(at: &str, raw: &str) -> Result<Vec<String>, AutomationError> {
    let path: Vec<String> = raw.split('.').map(str::to_owned).collect();
    if path.iter().any(String::is_empty) {
        return Err(bad(
            format!("{at}.field"),
            format!("{raw:?}: dotted names, e.g. action or state.power"),
        ));
    }
    Ok(path)
}

/// The one kind key of `keys` that is set; none or two is refused,
/// naming every key that could be given and those that were.
fn one_kind<'k>(at: &str, keys: &[(&'k str, bool)]) -> Result<&'k str, AutomationError> {
    let given: Vec<&str> = keys
        .iter()
        .filter(|(_, set)| *set)
        .map(|(k, _)| *k)
        .collect();
    match given.as_slice() {
        [kind] => Ok(kind),
        _ => {
            let all: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
            let got = if given.is_empty() {
                "none".to_owned()
            } else {
                given.join(", ")
            };
            Err(bad(
                at,
                format!("give exactly one of {} (got {got})", all.join(", ")),
            ))
        }
    }
}

/// Refuses keys that do not go with the trigger's kind.
fn only(at: &str, kind: &str, t: &TriggerSpec, allowed: &[&str]) -> Result<(), AutomationError> {
    let set = [
        ("action", t.action.is_some()),
        ("from", t.from.is_some()),
        ("to", t.to.is_some()),
        ("payload", t.payload.is_some()),
        ("field", t.field.is_some()),
        ("equals", t.equals.is_some()),
        ("above", t.above.is_some()),
        ("below", t.below.is_some()),
        ("hysteresis", t.hysteresis.is_some()),
        ("reading", t.reading.is_some()),
        ("weekdays", !t.weekdays.is_empty()),
        ("timezone", t.timezone.is_some()),
        ("offset_min", t.offset_min.is_some()),
    ];
    match set.iter().find(|(k, s)| *s && !allowed.contains(k)) {
        Some((key, _)) => Err(bad(
            format!("{at}.{key}"),
            format!("does not go with a `{kind}` trigger"),
        )),
        None => Ok(()),
    }
}

pub fn trigger(t: &TriggerSpec, at: &str, cx: Context) -> Result<Trigger, AutomationError> {
    let kind = one_kind(
        at,
        &[
            ("button", t.button.is_some()),
            ("output", t.output.is_some()),
            ("input", t.input.is_some()),
            ("node", t.node.is_some()),
            ("topic", t.topic.is_some()),
            ("climate", t.climate.is_some()),
            ("at", t.at.is_some()),
            ("sun", t.sun.is_some()),
            ("hub", t.hub.is_some()),
        ],
    )?;
    let field = |key: &str| format!("{at}.{key}");
    match kind {
        "button" if t.action.is_some() => {
            only(at, "button press", t, &["action"])?;
            let action = t.action.as_deref().unwrap_or_default();
            Ok(Trigger::Press {
                button: id(field("button"), t.button.as_deref().unwrap_or_default())?,
                action: if action == "any" {
                    None
                } else {
                    Some(
                        PressAction::parse(action.as_bytes())
                            .map_err(|e| bad(field("action"), e.to_string()))?,
                    )
                },
            })
        }
        "button" => {
            only(at, "button", t, &["from", "to"])?;
            Ok(Trigger::Button {
                button: id(field("button"), t.button.as_deref().unwrap_or_default())?,
                from: on_off(field("from"), &t.from)?,
                to: on_off(field("to"), &t.to)?,
            })
        }
        "output" => {
            only(at, "output", t, &["from", "to"])?;
            let raw = t.output.as_deref().unwrap_or_default();
            Ok(Trigger::Output {
                output: parse_output(raw).map_err(|why| bad(field("output"), why))?,
                from: on_off(field("from"), &t.from)?,
                to: on_off(field("to"), &t.to)?,
            })
        }
        "input" => {
            only(at, "input", t, &["from", "to"])?;
            let (node, name) = input_ref(field("input"), t.input.as_deref().unwrap_or_default())?;
            Ok(Trigger::Input {
                node,
                name,
                from: on_off(field("from"), &t.from)?,
                to: on_off(field("to"), &t.to)?,
            })
        }
        "node" => {
            only(at, "node", t, &["from", "to"])?;
            Ok(Trigger::Availability {
                node: id(field("node"), t.node.as_deref().unwrap_or_default())?,
                from: availability(field("from"), &t.from)?,
                to: availability(field("to"), &t.to)?,
            })
        }
        "topic" => {
            only(
                at,
                "topic",
                t,
                &["payload", "field", "equals", "above", "below", "hysteresis"],
            )?;
            let filter = t.topic.clone().unwrap_or_default();
            validate_filter(&filter).map_err(|why| bad(field("topic"), why))?;
            let numeric = t.above.is_some() || t.below.is_some() || t.hysteresis.is_some();
            let matches = match (&t.payload, &t.field, &t.equals, numeric) {
                (None, None, None, false) => PayloadMatch::Any,
                (Some(p), None, None, false) => PayloadMatch::Exactly(p.trim().to_owned()),
                (None, Some(f), Some(v), false) => {
                    PayloadMatch::FieldEquals(field_path(at, f)?, v.clone())
                }
                // No field: the payload is the number (`21.5`).
                (None, f, None, true) => PayloadMatch::FieldCrosses(
                    f.as_deref()
                        .map(|f| field_path(at, f))
                        .transpose()?
                        .unwrap_or_default(),
                    threshold(at, t.above, t.below, t.hysteresis)?,
                ),
                _ => {
                    return Err(bad(
                        at,
                        "match a topic's payload with `payload`, or `field` with `equals`, or `field` with `above`/`below`",
                    ));
                }
            };
            Ok(Trigger::Message { filter, matches })
        }
        "climate" => {
            only(
                at,
                "climate",
                t,
                &["reading", "above", "below", "hysteresis"],
            )?;
            Ok(Trigger::Climate {
                node: id(field("climate"), t.climate.as_deref().unwrap_or_default())?,
                quantity: quantity(field("reading"), &t.reading)?,
                threshold: threshold(at, t.above, t.below, t.hysteresis)?,
            })
        }
        "at" => {
            only(at, "at", t, &["weekdays", "timezone"])?;
            let timezone = match &t.timezone {
                None => cx.timezone,
                Some(z) => z.parse().map_err(|_| {
                    bad(
                        field("timezone"),
                        format!("{z:?} is not an IANA time zone (e.g. \"Europe/Berlin\")"),
                    )
                })?,
            };
            let schedule = Schedule::parse(t.at.as_deref().unwrap_or_default(), &t.weekdays)
                .map_err(|e| {
                    let key = if e.field == "weekdays" {
                        "weekdays"
                    } else {
                        "at"
                    };
                    bad(field(key), e.why)
                })?;
            Ok(Trigger::Time {
                schedule: Box::new(schedule),
                timezone,
            })
        }
        "sun" => {
            only(at, "sun", t, &["offset_min"])?;
            if !cx.located {
                return Err(bad(
                    field("sun"),
                    "set hub.latitude and hub.longitude so the hub can compute sunrise and sunset",
                ));
            }
            let event = match t.sun.as_deref().unwrap_or_default() {
                "sunrise" => SunEvent::Sunrise,
                "sunset" => SunEvent::Sunset,
                other => {
                    return Err(bad(
                        field("sun"),
                        format!("{other:?}: use sunrise or sunset"),
                    ));
                }
            };
            let offset_min = t.offset_min.unwrap_or(0);
            if offset_min.abs() > 12 * 60 {
                return Err(bad(
                    field("offset_min"),
                    "must be within 720 minutes of the sun event",
                ));
            }
            Ok(Trigger::Sun { event, offset_min })
        }
        _ => {
            only(at, "hub", t, &[])?;
            match t.hub.as_deref() {
                Some("start") => Ok(Trigger::HubStart),
                other => Err(bad(
                    field("hub"),
                    format!("{other:?}: the hub trigger is `start`"),
                )),
            }
        }
    }
}

fn clock_time(at: String, raw: &str) -> Result<NaiveTime, AutomationError> {
    NaiveTime::parse_from_str(raw.trim(), "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(raw.trim(), "%H:%M:%S"))
        .map_err(|_| bad(at, format!("{raw:?} is not a time: use HH:MM (24-hour)")))
}

fn condition(c: &ConditionSpec, at: &str, depth: usize) -> Result<Condition, AutomationError> {
    if depth > MAX_DEPTH {
        return Err(bad(at, format!("nested deeper than {MAX_DEPTH}")));
    }
    let field = |key: &str| format!("{at}.{key}");
    let state = |key: &str| -> Result<OnOff, AutomationError> {
        on_off(field("state"), &c.state)?
            .ok_or_else(|| bad(field("state"), format!("missing: ON or OFF for the {key}")))
    };
    let kind = one_kind(
        at,
        &[
            ("and", c.and.is_some()),
            ("or", c.or.is_some()),
            ("not", c.not.is_some()),
            (
                "after/before/weekdays",
                c.after.is_some() || c.before.is_some() || c.weekdays.is_some(),
            ),
            ("sun", c.sun.is_some()),
            ("button", c.button.is_some()),
            ("output", c.output.is_some()),
            ("input", c.input.is_some()),
            ("node", c.node.is_some()),
            ("climate", c.climate.is_some()),
        ],
    )?;
    let list = |key: &str, cs: &[ConditionSpec]| -> Result<Vec<Condition>, AutomationError> {
        if cs.is_empty() {
            return Err(bad(field(key), "empty"));
        }
        cs.iter()
            .enumerate()
            .map(|(i, c)| condition(c, &format!("{at}.{key}[{i}]"), depth + 1))
            .collect()
    };
    Ok(match kind {
        "and" => Condition::And(list("and", c.and.as_deref().unwrap_or_default())?),
        "or" => Condition::Or(list("or", c.or.as_deref().unwrap_or_default())?),
        "not" => Condition::Not(Box::new(condition(
            c.not.as_deref().unwrap_or(&ConditionSpec::default()),
            &field("not"),
            depth + 1,
        )?)),
        "sun" => match c.sun.as_deref() {
            Some("up") => Condition::SunUp(true),
            Some("down") => Condition::SunUp(false),
            other => return Err(bad(field("sun"), format!("{other:?}: use up or down"))),
        },
        "button" => Condition::Button(
            id(field("button"), c.button.as_deref().unwrap_or_default())?,
            state("button")?,
        ),
        "output" => Condition::Output(
            parse_output(c.output.as_deref().unwrap_or_default())
                .map_err(|why| bad(field("output"), why))?,
            state("output")?,
        ),
        "input" => {
            let (node, name) = input_ref(field("input"), c.input.as_deref().unwrap_or_default())?;
            Condition::Input(node, name, state("input")?)
        }
        "node" => Condition::Availability(
            id(field("node"), c.node.as_deref().unwrap_or_default())?,
            availability(field("availability"), &c.availability)?
                .ok_or_else(|| bad(field("availability"), "missing: online or offline"))?,
        ),
        "climate" => {
            let t = threshold(at, c.above, c.below, None)?;
            Condition::Reading {
                node: id(field("climate"), c.climate.as_deref().unwrap_or_default())?,
                quantity: quantity(field("reading"), &c.reading)?,
                above: t.above,
                below: t.below,
            }
        }
        _ => Condition::Time {
            after: c
                .after
                .as_deref()
                .map(|t| clock_time(field("after"), t))
                .transpose()?,
            before: c
                .before
                .as_deref()
                .map(|t| clock_time(field("before"), t))
                .transpose()?,
            weekdays: c
                .weekdays
                .as_deref()
                .map(|w| parse_weekdays(w).map_err(|e| bad(field("weekdays"), e.why)))
                .transpose()?,
        },
    })
}

fn step(a: &ActionSpec, at: &str, cx: Context) -> Result<Step, AutomationError> {
    let field = |key: &str| format!("{at}.{key}");
    let kind = one_kind(
        at,
        &[
            ("output", a.output.is_some()),
            ("publish", a.publish.is_some()),
            ("play", a.play.is_some()),
            ("delay_s", a.delay_s.is_some()),
            ("wait", a.wait.is_some()),
            ("enable", a.enable.is_some()),
            ("disable", a.disable.is_some()),
            ("scene", a.scene.is_some()),
        ],
    )?;
    let stray = [
        ("command", a.command.is_some(), "output"),
        ("brightness", a.brightness.is_some(), "output"),
        ("brightness_pct", a.brightness_pct.is_some(), "output"),
        ("payload", a.payload.is_some(), "publish"),
        ("retain", a.retain.is_some(), "publish"),
        ("speakers", !a.speakers.is_empty(), "play"),
        ("volume", a.volume.is_some(), "play"),
        ("timeout_s", a.timeout_s.is_some(), "wait"),
        (
            "continue_on_timeout",
            a.continue_on_timeout.is_some(),
            "wait",
        ),
    ];
    if let Some((key, _, owner)) = stray.iter().find(|(_, set, owner)| *set && *owner != kind) {
        return Err(bad(
            field(key),
            format!("goes with `{owner}`, not `{kind}`"),
        ));
    }
    Ok(match kind {
        "output" => {
            let output = parse_output(a.output.as_deref().unwrap_or_default())
                .map_err(|why| bad(field("output"), why))?;
            let level = match (a.brightness, a.brightness_pct) {
                (Some(_), Some(_)) => {
                    return Err(bad(
                        field("brightness"),
                        "give brightness or brightness_pct, not both",
                    ));
                }
                (Some(b), None) => Some(
                    u8::try_from(b)
                        .map_err(|_| bad(field("brightness"), format!("{b} must be 0 to 255")))?,
                ),
                (None, Some(p)) if (0.0..=100.0).contains(&p) => {
                    Some((p * 255.0 / 100.0).round() as u8)
                }
                (None, Some(p)) => {
                    return Err(bad(
                        field("brightness_pct"),
                        format!("{p} must be 0 to 100"),
                    ));
                }
                (None, None) => None,
            };
            match (level, &a.command) {
                (Some(level), None) => {
                    if output.kind != OutputKind::Light {
                        return Err(bad(field("brightness"), "only a light dims"));
                    }
                    Step::SetBrightness { output, level }
                }
                (None, Some(command)) => Step::SetOutput {
                    output,
                    command: Command::parse(command.as_bytes())
                        .map_err(|e| bad(field("command"), e.to_string()))?,
                },
                (Some(_), Some(_)) => {
                    return Err(bad(
                        field("command"),
                        "give command or a brightness, not both (a brightness above 0 turns the light on)",
                    ));
                }
                (None, None) => {
                    return Err(bad(
                        field("command"),
                        "missing: ON, OFF, TOGGLE or a brightness",
                    ));
                }
            }
        }
        "publish" => {
            let topic = a.publish.clone().unwrap_or_default();
            if topic.is_empty() || topic.contains(['+', '#']) {
                return Err(bad(
                    field("publish"),
                    format!("{topic:?}: a topic to publish to must not be empty or contain + or #"),
                ));
            }
            Step::Publish {
                topic,
                payload: a.payload.clone().unwrap_or_default(),
                retain: a.retain.unwrap_or(false),
            }
        }
        "play" => {
            let sound = a.play.clone().unwrap_or_default();
            validate_sound(&sound).map_err(|e| bad(field("play"), e.why))?;
            if a.speakers.is_empty() {
                return Err(bad(field("speakers"), "missing: the speakers to play on"));
            }
            let speakers = a
                .speakers
                .iter()
                .enumerate()
                .map(|(i, s)| id(format!("{at}.speakers[{i}]"), s))
                .collect::<Result<Vec<_>, _>>()?;
            if a.volume.is_some_and(|v| v > 100) {
                return Err(bad(field("volume"), "must be 0 to 100"));
            }
            Step::Play {
                sound,
                speakers,
                volume: a.volume,
            }
        }
        "delay_s" => Step::Delay(seconds(&field("delay_s"), a.delay_s.unwrap_or_default())?),
        "wait" => {
            let inner = trigger(
                a.wait.as_ref().unwrap_or(&TriggerSpec::default()),
                &field("wait"),
                cx,
            )?;
            if inner.is_timed() || inner == Trigger::HubStart {
                return Err(bad(
                    field("wait"),
                    "wait for an event (a button, output, input, node, topic or climate); for a time use delay_s",
                ));
            }
            Step::Wait {
                trigger: Box::new(inner),
                timeout: a
                    .timeout_s
                    .map(|s| seconds(&field("timeout_s"), s))
                    .transpose()?,
                continue_on_timeout: a.continue_on_timeout.unwrap_or(false),
            }
        }
        "scene" => Step::Scene(id(field("scene"), a.scene.as_deref().unwrap_or_default())?),
        "enable" => Step::Enable {
            automation: id(field("enable"), a.enable.as_deref().unwrap_or_default())?,
            enabled: true,
        },
        _ => Step::Enable {
            automation: id(field("disable"), a.disable.as_deref().unwrap_or_default())?,
            enabled: false,
        },
    })
}
