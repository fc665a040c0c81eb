//! The issue's five stories and the run modes, on the pure engine with a
//! manual clock: each test says which instant it is.

use chrono::{DateTime, Duration, TimeZone, Utc};
use hearth_protocol::{AutomationSpec, Id, OnOff, OutputRef, PressAction, Quantity, Topics};

use super::definition::Automation;
use super::engine::{Effects, Engine, Setup};
use super::matching::Seen;
use super::sun::Place;
use super::trace::Outcome;
use super::{AutomationError, Context};
use crate::model::effects::HouseEvent;
use crate::model::house::{ButtonRecord, House};

fn berlin() -> chrono_tz::Tz {
    "Europe/Berlin".parse().unwrap()
}

fn setup() -> Setup {
    Setup {
        topics: Topics::new("hearth").unwrap(),
        timezone: berlin(),
        place: Place::new(52.52, 13.405),
        catch_up: std::time::Duration::from_secs(60),
    }
}

fn cx() -> Context {
    Context {
        timezone: berlin(),
        located: true,
    }
}

fn automation(toml_text: &str) -> Automation {
    let spec: AutomationSpec = toml::from_str(toml_text).expect("the test's TOML parses");
    Automation::validate(&spec, None, cx()).expect("the test's automation is valid")
}

fn refused(toml_text: &str) -> AutomationError {
    let spec: AutomationSpec = toml::from_str(toml_text).expect("the test's TOML parses");
    Automation::validate(&spec, None, cx()).expect_err("the automation should be refused")
}

fn engine(automations: Vec<Automation>, now: DateTime<Utc>) -> Engine {
    let automations = automations
        .into_iter()
        .map(|a| (a, crate::model::chime::Source::Config))
        .collect();
    Engine::new(setup(), automations, Vec::new(), now)
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn id(s: &str) -> Id {
    Id::new(s).unwrap()
}

fn input(node: &str, name: &str, from: Option<OnOff>, to: OnOff) -> HouseEvent {
    HouseEvent::Input {
        node: id(node),
        name: id(name),
        from,
        to,
    }
}

/// What was published, as `topic <- payload` lines.
fn sent(fx: &Effects) -> Vec<String> {
    fx.publish
        .iter()
        .map(|p| format!("{} <- {}", p.topic, String::from_utf8_lossy(&p.payload)))
        .collect()
}

const HALL: &str = r#"
id = "hall-motion"
mode = "restart"
triggers = [{ input = "pi-1/hall", to = "ON" }]
conditions = [{ sun = "down" }]
actions = [
  { output = "pi-1/light/hall", command = "ON" },
  { wait = { input = "pi-1/hall", to = "OFF" } },
  { delay_s = 120 },
  { output = "pi-1/light/hall", command = "OFF" },
]
"#;

#[test]
fn hall_motion_after_sunset_turns_the_light_on_and_off_two_minutes_after_the_last_motion() {
    let evening = utc(2026, 12, 5, 18, 0); // 19:00 in Berlin, long after sunset
    let house = House::default();
    let mut engine = engine(vec![automation(HALL)], evening);

    let on = input("pi-1", "hall", Some(OnOff::Off), OnOff::On);
    let fx = engine.on_event(&house, Seen::House(&on), evening);
    assert_eq!(sent(&fx), ["hearth/node/pi-1/light/hall/set <- ON"]);
    assert_eq!(
        engine.next_deadline(),
        None,
        "it waits for the motion to end"
    );

    let quiet = evening + Duration::seconds(30);
    let off = input("pi-1", "hall", Some(OnOff::On), OnOff::Off);
    assert!(sent(&engine.on_event(&house, Seen::House(&off), quiet)).is_empty());
    let due = quiet + Duration::seconds(120);
    assert_eq!(engine.next_deadline(), Some(due));

    // Motion again 100 s into the delay: the run starts over.
    let again = quiet + Duration::seconds(100);
    let fx = engine.on_event(&house, Seen::House(&on), again);
    assert_eq!(sent(&fx), ["hearth/node/pi-1/light/hall/set <- ON"]);
    assert!(
        sent(&engine.on_time(&house, due, true)).is_empty(),
        "the old delay was cancelled"
    );

    let last_off = again + Duration::seconds(10);
    engine.on_event(&house, Seen::House(&off), last_off);
    let fx = engine.on_time(&house, last_off + Duration::seconds(120), true);
    assert_eq!(sent(&fx), ["hearth/node/pi-1/light/hall/set <- OFF"]);
    assert_eq!(engine.running(), 0);
    let traces = engine.traces(&id("hall-motion")).unwrap();
    let outcomes: Vec<Outcome> = traces.iter().map(|t| t.outcome).collect();
    assert_eq!(outcomes, [Outcome::Restarted, Outcome::Done], "{traces:#?}");
}

#[test]
fn hall_motion_by_day_is_blocked_and_the_trace_says_the_sun_was_up() {
    let noon = utc(2026, 12, 5, 11, 0);
    let mut engine = engine(vec![automation(HALL)], noon);
    let on = input("pi-1", "hall", None, OnOff::On);
    assert!(sent(&engine.on_event(&House::default(), Seen::House(&on), noon)).is_empty());
    let trace = engine.traces(&id("hall-motion")).unwrap().pop().unwrap();
    assert_eq!(trace.outcome, Outcome::ConditionsFailed);
    assert_eq!(trace.trigger, "input pi-1/hall turned ON");
    assert_eq!(trace.conditions[0].saw, "sun is up", "{trace:#?}");
}

const KITCHEN: &str = r#"
id = "kitchen-morning"
triggers = [{ at = "07:00", weekdays = ["weekdays"], timezone = "Europe/Berlin" }]
actions = [
  { output = "pi-1/light/kitchen", brightness_pct = 40 },
  { delay_s = 2700 },
  { output = "pi-1/light/kitchen", command = "OFF" },
]
"#;

#[test]
fn weekdays_at_seven_in_berlin_the_kitchen_light_goes_to_40_percent_then_off_at_7_45() {
    // Saturday 5 December 2026: the next run is Monday 07:00 CET (06:00 UTC).
    let saturday = utc(2026, 12, 5, 12, 0);
    let house = House::default();
    let mut engine = engine(vec![automation(KITCHEN)], saturday);
    let monday = utc(2026, 12, 7, 6, 0);
    assert_eq!(engine.next_deadline(), Some(monday));
    assert!(sent(&engine.on_time(&house, monday - Duration::seconds(1), true)).is_empty());

    let fx = engine.on_time(&house, monday, true);
    assert_eq!(
        sent(&fx),
        ["hearth/node/pi-1/light/kitchen/brightness/set <- 102"]
    );
    let off_at = monday + Duration::minutes(45);
    assert_eq!(engine.next_deadline(), Some(off_at));
    let fx = engine.on_time(&house, off_at, true);
    assert_eq!(sent(&fx), ["hearth/node/pi-1/light/kitchen/set <- OFF"]);
    assert_eq!(
        engine.next_deadline(),
        Some(utc(2026, 12, 8, 6, 0)),
        "Tuesday next"
    );
}

#[test]
fn a_time_trigger_follows_the_clock_change() {
    // Summer time starts on Sunday 29 March 2026: 07:00 on Monday the 30th
    // is 05:00 UTC, on Friday the 27th it was 06:00 UTC.
    let friday = utc(2026, 3, 27, 5, 30);
    let house = House::default();
    let mut engine = engine(vec![automation(KITCHEN)], friday);
    assert_eq!(engine.next_deadline(), Some(utc(2026, 3, 27, 6, 0)));
    engine.on_time(&house, utc(2026, 3, 27, 6, 0), true);
    engine.on_time(&house, utc(2026, 3, 27, 6, 45), true);
    assert_eq!(engine.next_deadline(), Some(utc(2026, 3, 30, 5, 0)));
}

#[test]
fn a_standby_hub_lets_time_triggers_pass_without_firing() {
    let saturday = utc(2026, 12, 5, 12, 0);
    let mut engine = engine(vec![automation(KITCHEN)], saturday);
    let monday = utc(2026, 12, 7, 6, 0);
    assert!(sent(&engine.on_time(&House::default(), monday, false)).is_empty());
    assert_eq!(engine.next_deadline(), Some(utc(2026, 12, 8, 6, 0)));
}

/// A hub that starts at `now` and resumes `KITCHEN`'s timers from `from`.
fn resumed(from: DateTime<Utc>, now: DateTime<Utc>) -> (Engine, Effects) {
    let mut engine = engine(vec![automation(KITCHEN)], now);
    let timers = [(id("kitchen-morning"), from)].into_iter().collect();
    engine.resume_timers(&timers, now);
    let fx = engine.on_time(&House::default(), now, true);
    (engine, fx)
}

#[test]
fn seven_oclock_missed_by_a_restart_fires_late_within_the_catch_up_window() {
    // Monday 7 December 2026, 07:00 CET is 06:00 UTC; the hub was down
    // from 06:59 to 07:00:30 (catch-up: 60 s).
    let seven = utc(2026, 12, 7, 6, 0);
    let (engine, fx) = resumed(seven - Duration::minutes(1), seven + Duration::seconds(30));
    assert_eq!(
        sent(&fx),
        ["hearth/node/pi-1/light/kitchen/brightness/set <- 102"]
    );
    assert!(
        fx.changes.iter().any(|c| matches!(
            c,
            super::Change::TimersPassed(a, at) if *a == id("kitchen-morning")
                && *at == seven + Duration::seconds(30)
        )),
        "where the timers stand is not stored: {:?}",
        fx.changes
    );
    let trace = engine
        .traces(&id("kitchen-morning"))
        .unwrap()
        .pop()
        .unwrap();
    assert!(trace.trigger.contains("late"), "{}", trace.trigger);
}

#[test]
fn seven_oclock_missed_by_longer_than_the_window_is_recorded_missed() {
    let seven = utc(2026, 12, 7, 6, 0);
    let (mut engine, fx) = resumed(seven - Duration::minutes(1), seven + Duration::minutes(5));
    assert!(
        sent(&fx).is_empty(),
        "ran five minutes late: {:?}",
        sent(&fx)
    );
    let trace = engine
        .traces(&id("kitchen-morning"))
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(trace.outcome, Outcome::Missed, "{trace:#?}");
    assert_eq!(engine.next_deadline(), Some(utc(2026, 12, 8, 6, 0)));
}

#[test]
fn an_every_20_seconds_trigger_down_for_ten_minutes_is_missed_once_and_fires_once() {
    let every = automation(
        r#"
        id = "every"
        triggers = [{ at = "*/20 * * * * *" }]
        actions = [{ publish = "t", payload = "tick" }]
        "#,
    );
    let now = utc(2026, 12, 5, 9, 0) + Duration::seconds(5);
    let mut engine = engine(vec![every], now);
    let timers = [(id("every"), now - Duration::minutes(10))]
        .into_iter()
        .collect();
    engine.resume_timers(&timers, now);
    let fx = engine.on_time(&House::default(), now, true);
    assert_eq!(sent(&fx), ["t <- tick"]);
    let outcomes: Vec<Outcome> = engine
        .traces(&id("every"))
        .unwrap()
        .iter()
        .map(|t| t.outcome)
        .collect();
    assert_eq!(outcomes, [Outcome::Missed, Outcome::Done]);
}

#[test]
fn a_standby_resuming_timers_neither_fires_nor_stores_them() {
    let seven = utc(2026, 12, 7, 6, 0);
    let mut engine = engine(vec![automation(KITCHEN)], seven);
    let timers = [(id("kitchen-morning"), seven - Duration::minutes(1))]
        .into_iter()
        .collect();
    engine.resume_timers(&timers, seven + Duration::seconds(30));
    let fx = engine.on_time(&House::default(), seven + Duration::seconds(30), false);
    assert!(sent(&fx).is_empty() && fx.changes.is_empty(), "{fx:?}");
}

fn reading(node: &str, value: f64) -> HouseEvent {
    HouseEvent::Reading {
        node: id(node),
        quantity: Quantity::Temperature,
        value,
    }
}

#[test]
fn the_bedroom_fan_goes_on_above_26_and_off_below_24_5_once_per_crossing() {
    let on = automation(
        r#"
        id = "fan-on"
        triggers = [{ climate = "bedroom", reading = "temperature", above = 26.0 }]
        actions = [{ output = "bedroom/switch/fan", command = "ON" }]
        "#,
    );
    let off = automation(
        r#"
        id = "fan-off"
        triggers = [{ climate = "bedroom", reading = "temperature", below = 24.5 }]
        actions = [{ output = "bedroom/switch/fan", command = "OFF" }]
        "#,
    );
    let now = utc(2026, 7, 1, 12, 0);
    let mut engine = engine(vec![on, off], now);
    let house = House::default();
    let mut run = |t: f64| sent(&engine.on_event(&house, Seen::House(&reading("bedroom", t)), now));
    assert!(
        run(25.0).is_empty(),
        "the first reading only says where it stands"
    );
    assert_eq!(run(26.5), ["hearth/node/bedroom/switch/fan/set <- ON"]);
    assert!(run(26.8).is_empty(), "still above: no second command");
    assert!(run(25.5).is_empty());
    assert_eq!(run(24.0), ["hearth/node/bedroom/switch/fan/set <- OFF"]);
    assert!(run(24.2).is_empty());
    assert_eq!(run(26.1), ["hearth/node/bedroom/switch/fan/set <- ON"]);
}

#[test]
fn hysteresis_keeps_a_number_wobbling_on_its_threshold_from_firing_again() {
    let fan = automation(
        r#"
        id = "fan"
        triggers = [{ climate = "bedroom", reading = "temperature", above = 26.0, hysteresis = 0.5 }]
        actions = [{ output = "bedroom/switch/fan", command = "ON" }]
        "#,
    );
    let now = utc(2026, 7, 1, 12, 0);
    let mut engine = engine(vec![fan], now);
    let house = House::default();
    let mut fired = |t: f64| {
        !engine
            .on_event(&house, Seen::House(&reading("bedroom", t)), now)
            .publish
            .is_empty()
    };
    let seen: Vec<bool> = [25.0, 26.1, 25.8, 26.2, 25.4, 26.1]
        .map(&mut fired)
        .to_vec();
    assert_eq!(seen, [false, true, false, false, false, true]);
}

#[test]
fn a_plain_number_on_a_topic_crosses_a_threshold_too() {
    let power = automation(
        r#"
        id = "washer-done"
        triggers = [{ topic = "shellies/washer/power", below = 5.0, hysteresis = 2.0 }]
        actions = [{ publish = "notify", payload = "washer done" }]
        "#,
    );
    let now = utc(2026, 12, 5, 20, 0);
    let mut engine = engine(vec![power], now);
    let house = House::default();
    let mut fired = |payload: &str| {
        let seen = Seen::Message {
            topic: "shellies/washer/power",
            payload: payload.as_bytes(),
        };
        !engine.on_event(&house, seen, now).publish.is_empty()
    };
    let seen: Vec<bool> = ["1800", "450", "3.2", "6.0", "2.0", "not a number", "8", "1"]
        .map(&mut fired)
        .to_vec();
    assert_eq!(seen, [false, false, true, false, false, false, false, true]);
}

#[test]
fn the_zigbee_remotes_left_arrow_fires_on_its_json_field_only() {
    let remote = automation(
        r#"
        id = "remote-evening"
        triggers = [{ topic = "zigbee2mqtt/remote", field = "action", equals = "arrow_left_click" }]
        actions = [
          { output = "pi-1/light/lamp", brightness = 80 },
          { output = "pi-1/light/ceiling", command = "OFF" },
        ]
        "#,
    );
    let now = utc(2026, 12, 5, 20, 0);
    let mut engine = engine(vec![remote], now);
    let house = House::default();
    let mut on = |topic: &str, payload: &str| {
        sent(&engine.on_event(
            &house,
            Seen::Message {
                topic,
                payload: payload.as_bytes(),
            },
            now,
        ))
    };
    assert_eq!(
        on(
            "zigbee2mqtt/remote",
            r#"{"action":"arrow_left_click","battery":97}"#
        ),
        [
            "hearth/node/pi-1/light/lamp/brightness/set <- 80",
            "hearth/node/pi-1/light/ceiling/set <- OFF"
        ]
    );
    assert!(on("zigbee2mqtt/remote", r#"{"action":"arrow_right_click"}"#).is_empty());
    assert!(
        on("zigbee2mqtt/remote", "arrow_left_click").is_empty(),
        "not JSON"
    );
    assert!(on("zigbee2mqtt/other", r#"{"action":"arrow_left_click"}"#).is_empty());
}

#[test]
fn the_front_door_while_away_plays_the_alarm_everywhere_once_per_ten_minutes() {
    let alarm = automation(
        r#"
        id = "door-alarm"
        cooldown_s = 600
        triggers = [{ input = "porch/front-door", to = "ON" }]
        conditions = [{ button = "away", state = "ON" }]
        actions = [{ play = "alarm.wav", speakers = ["kitchen", "hall"], volume = 90 }]
        "#,
    );
    let t0 = utc(2026, 12, 5, 9, 0);
    let mut engine = engine(vec![alarm], t0);
    let mut house = House::default();
    let open = input("porch", "front-door", Some(OnOff::Off), OnOff::On);

    assert!(
        sent(&engine.on_event(&house, Seen::House(&open), t0)).is_empty(),
        "away is not ON"
    );
    let mut away = ButtonRecord::new(id("away"), t0);
    away.state = OnOff::On;
    house.buttons.insert(id("away"), away);
    let fx = engine.on_event(&house, Seen::House(&open), t0);
    assert_eq!(
        sent(&fx),
        [
            r#"hearth/chime/kitchen/play <- {"sound":"alarm.wav","volume":90}"#,
            r#"hearth/chime/hall/play <- {"sound":"alarm.wav","volume":90}"#
        ]
    );
    let later = t0 + Duration::minutes(5);
    assert!(sent(&engine.on_event(&house, Seen::House(&open), later)).is_empty());
    let trace = engine.traces(&id("door-alarm")).unwrap().pop().unwrap();
    assert_eq!(trace.outcome, Outcome::CoolingDown);
    let after = t0 + Duration::minutes(10);
    assert_eq!(
        sent(&engine.on_event(&house, Seen::House(&open), after)).len(),
        2
    );
}

#[test]
fn every_trigger_keeps_a_trace_of_its_own_in_the_database() {
    let alarm = automation(
        r#"
        id = "door-alarm"
        triggers = [{ input = "porch/front-door", to = "ON" }]
        conditions = [{ button = "away", state = "ON" }]
        actions = [{ play = "alarm.wav", speakers = ["hall"] }]
        "#,
    );
    let t0 = utc(2026, 12, 5, 9, 0);
    let mut engine = engine(vec![alarm], t0);
    let mut house = House::default();
    let open = input("porch", "front-door", Some(OnOff::Off), OnOff::On);
    let mut stored = Vec::new();
    let mut traced = |fx: Effects| {
        for change in fx.changes {
            if let super::Change::Traced(trace) = change {
                stored.push((trace.run, trace.outcome));
            }
        }
    };
    // Twice blocked while at home, then a run once away.
    traced(engine.on_event(&house, Seen::House(&open), t0));
    traced(engine.on_event(&house, Seen::House(&open), t0 + Duration::seconds(1)));
    let mut away = ButtonRecord::new(id("away"), t0);
    away.state = OnOff::On;
    house.buttons.insert(id("away"), away);
    traced(engine.on_event(&house, Seen::House(&open), t0 + Duration::seconds(2)));
    let runs: std::collections::BTreeSet<u64> = stored.iter().map(|(run, _)| *run).collect();
    assert_eq!(
        runs.len(),
        3,
        "traces share an id, so the database keeps one in place of the other: {stored:?}"
    );
}

fn press(button: &str) -> HouseEvent {
    HouseEvent::Press {
        button: id(button),
        action: PressAction::Single,
    }
}

fn slow(mode: &str) -> Automation {
    automation(&format!(
        r#"
        id = "slow"
        {mode}
        triggers = [{{ button = "b", action = "single" }}]
        actions = [{{ publish = "t", payload = "start" }}, {{ delay_s = 10 }}, {{ publish = "t", payload = "end" }}]
        "#
    ))
}

/// Presses at 0, 1 and 2 s, then lets 30 s pass one second at a time;
/// returns every payload with its second.
fn three_presses(mode: &str) -> Vec<(i64, String)> {
    let t0 = utc(2026, 12, 5, 9, 0);
    let mut engine = engine(vec![slow(mode)], t0);
    let house = House::default();
    let mut out = Vec::new();
    for s in 0..30 {
        let now = t0 + Duration::seconds(s);
        let mut fx = engine.on_time(&house, now, true);
        if s < 3 {
            let more = engine.on_event(&house, Seen::House(&press("b")), now);
            fx.publish.extend(more.publish);
        }
        out.extend(
            fx.publish
                .iter()
                .map(|p| (s, String::from_utf8_lossy(&p.payload).into_owned())),
        );
    }
    out
}

#[test]
fn run_modes_decide_what_a_trigger_does_while_a_run_is_going() {
    let p = |v: &[(i64, &str)]| {
        v.iter()
            .map(|(s, t)| (*s, t.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(three_presses(""), p(&[(0, "start"), (10, "end")]), "single");
    assert_eq!(
        three_presses(r#"mode = "restart""#),
        p(&[(0, "start"), (1, "start"), (2, "start"), (12, "end")])
    );
    assert_eq!(
        three_presses(r#"mode = "queued""#),
        p(&[
            (0, "start"),
            (10, "end"),
            (10, "start"),
            (20, "end"),
            (20, "start")
        ])
    );
    assert_eq!(
        three_presses("mode = \"parallel\"\nmax_runs = 2"),
        p(&[(0, "start"), (1, "start"), (10, "end"), (11, "end")])
    );
}

#[test]
fn a_wait_with_a_timeout_ends_the_run_or_goes_on_as_told() {
    let spec = |go_on: bool| {
        automation(&format!(
            r#"
            id = "w"
            triggers = [{{ button = "b", action = "any" }}]
            actions = [
              {{ wait = {{ output = "pi-1/light/x", to = "ON" }}, timeout_s = 5, continue_on_timeout = {go_on} }},
              {{ publish = "t", payload = "after" }},
            ]
            "#
        ))
    };
    let t0 = utc(2026, 12, 5, 9, 0);
    for go_on in [false, true] {
        let mut engine = engine(vec![spec(go_on)], t0);
        engine.on_event(&House::default(), Seen::House(&press("b")), t0);
        let fx = engine.on_time(&House::default(), t0 + Duration::seconds(5), true);
        assert_eq!(
            fx.publish.len(),
            usize::from(go_on),
            "continue_on_timeout = {go_on}"
        );
        assert_eq!(engine.running(), 0);
    }
}

#[test]
fn an_automation_can_switch_another_off_and_a_disabled_one_never_fires() {
    let switcher = automation(
        r#"
        id = "quiet-mode"
        triggers = [{ button = "quiet", action = "single" }]
        actions = [{ disable = "door-bell" }]
        "#,
    );
    let bell = automation(
        r#"
        id = "door-bell"
        triggers = [{ button = "door", action = "single" }]
        actions = [{ publish = "bell", payload = "ring" }]
        "#,
    );
    let t0 = utc(2026, 12, 5, 9, 0);
    let mut engine = engine(vec![switcher, bell], t0);
    let house = House::default();
    assert_eq!(
        engine
            .on_event(&house, Seen::House(&press("door")), t0)
            .publish
            .len(),
        1
    );
    engine.on_event(&house, Seen::House(&press("quiet")), t0);
    assert!(
        engine
            .on_event(&house, Seen::House(&press("door")), t0)
            .publish
            .is_empty()
    );
    engine.set_enabled(&id("door-bell"), true, t0).unwrap();
    assert_eq!(
        engine
            .on_event(&house, Seen::House(&press("door")), t0)
            .publish
            .len(),
        1
    );
}

#[test]
fn toggle_is_resolved_from_the_outputs_last_confirmed_state() {
    let toggle = automation(
        r#"
        id = "t"
        triggers = [{ button = "desk", action = "single" }]
        actions = [{ output = "pi-1/light/lamp", command = "TOGGLE" }]
        "#,
    );
    let t0 = utc(2026, 12, 5, 9, 0);
    let mut engine = engine(vec![toggle], t0);
    let mut house = House::default();
    let lamp: OutputRef = crate::decide::rules::parse_output("pi-1/light/lamp").unwrap();
    house.outputs.insert(
        lamp.clone(),
        crate::model::house::OutputRecord {
            output: lamp,
            state: OnOff::On,
            changed_at: t0,
        },
    );
    let fx = engine.on_event(&house, Seen::House(&press("desk")), t0);
    assert_eq!(sent(&fx), ["hearth/node/pi-1/light/lamp/set <- OFF"]);
}

#[test]
fn a_bad_automation_is_refused_naming_the_field() {
    let cases = [
        (
            r#"triggers = [{ button = "b" }]
            actions = [{ publish = "t" }]"#,
            "id: missing",
        ),
        (
            r#"id = "x"
            triggers = [{ climate = "bedroom", reading = "temperature", above = 26.0, below = 20.0 }]
            actions = [{ publish = "t" }]"#,
            "triggers[0].below: 20 must be greater than above (26)",
        ),
        (
            r#"id = "x"
            triggers = [{ at = "25:00" }]
            actions = [{ publish = "t" }]"#,
            "triggers[0].at: \"25:00\" is not a time",
        ),
        (
            r#"id = "x"
            triggers = [{ at = "07:00", timezone = "Mars/Olympus" }]
            actions = [{ publish = "t" }]"#,
            "triggers[0].timezone: \"Mars/Olympus\"",
        ),
        (
            r#"id = "x"
            triggers = [{ button = "b", output = "pi-1/light/x" }]
            actions = [{ publish = "t" }]"#,
            "triggers[0]: give exactly one of",
        ),
        (
            r#"id = "x"
            triggers = [{ topic = "a/#/b" }]
            actions = [{ publish = "t" }]"#,
            "triggers[0].topic:",
        ),
        (
            r#"id = "x"
            triggers = [{ button = "b", action = "triple" }]
            actions = [{ publish = "t" }]"#,
            "triggers[0].action:",
        ),
        (
            r#"id = "x"
            triggers = [{ button = "b" }]
            conditions = [{ or = [{ button = "away" }] }]
            actions = [{ publish = "t" }]"#,
            "conditions[0].or[0].state: missing",
        ),
        (
            r#"id = "x"
            triggers = [{ button = "b" }]
            actions = [{ output = "pi-1/light/x", brightness = 300 }]"#,
            "actions[0].brightness: 300 must be 0 to 255",
        ),
        (
            r#"id = "x"
            triggers = [{ button = "b" }]
            actions = [{ output = "pi-1/switch/x", brightness_pct = 50 }]"#,
            "actions[0].brightness: only a light dims",
        ),
        (
            r#"id = "x"
            triggers = [{ button = "b" }]
            actions = [{ play = "../../etc/passwd", speakers = ["k"] }]"#,
            "actions[0].play:",
        ),
        (
            r#"id = "x"
            triggers = [{ button = "b" }]
            actions = [{ delay_s = -1 }]"#,
            "actions[0].delay_s:",
        ),
        (
            r#"id = "x"
            mode = "sometimes"
            triggers = [{ button = "b" }]
            actions = [{ publish = "t" }]"#,
            "mode: \"sometimes\"",
        ),
        (
            r#"id = "x"
            triggers = [{ button = "b" }]
            actions = [{ publish = "t", command = "ON" }]"#,
            "actions[0].command: goes with `output`",
        ),
        (
            r#"id = "x"
            triggers = [{ button = "b" }]
            actions = [{ wait = { at = "07:00" } }]"#,
            "actions[0].wait: wait for an event",
        ),
    ];
    for (text, want) in cases {
        let got = refused(text).to_string();
        assert!(
            got.starts_with(want),
            "for\n{text}\nwanted {want:?}, got {got:?}"
        );
    }
}

#[test]
fn sun_triggers_and_conditions_need_the_hubs_place() {
    let spec: AutomationSpec = toml::from_str(
        r#"
        id = "x"
        triggers = [{ sun = "sunset", offset_min = -15 }]
        actions = [{ publish = "t" }]
        "#,
    )
    .unwrap();
    let nowhere = Context {
        timezone: berlin(),
        located: false,
    };
    let err = Automation::validate(&spec, None, nowhere)
        .unwrap_err()
        .to_string();
    assert!(err.contains("hub.latitude"), "{err}");
    let a = Automation::validate(&spec, None, cx()).unwrap();
    let noon = utc(2026, 12, 5, 11, 0);
    let mut engine = engine(vec![a], noon);
    let sunset = Place::new(52.52, 13.405)
        .unwrap()
        .next(super::definition::SunEvent::Sunset, 0, noon)
        .unwrap();
    assert_eq!(engine.next_deadline(), Some(sunset - Duration::minutes(15)));
}
