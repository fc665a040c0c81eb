//! The stories where time, the sun or a thermometer decides, end to end: a
//! hub with its embedded broker, devices played by mosquitto_pub, commands
//! read by mosquitto_sub, on SQLite and Postgres.
//!
//! Time runs on the real clock: the kitchen's "weekdays at 07:00" is set a
//! few seconds ahead (its DST days run on the engine's manual clock in
//! `hub/src/decide/automations/tests.rs`). The sun is placed by longitude
//! rather than by waiting for an evening: on the equator at local solar
//! midnight it is down, at solar noon up, with hours to spare either way.

#![allow(clippy::unwrap_used)]

mod common;

use chrono::{Datelike, Duration as Span, SubsecRound, Timelike, Utc};
use common::{Backend, TestDb, WAIT, publish, spawn_hub, wait_ready};
use hearth_testkit::Subscriber;

/// The longitude where local solar time is now `hour` (0..24), on the
/// equator's time of day (the equation of time moves it by at most 17
/// minutes, far inside the six hours the tests rely on).
fn longitude_at_solar_hour(hour: f64) -> f64 {
    let now = Utc::now();
    let utc_hours = f64::from(now.num_seconds_from_midnight()) / 3600.0;
    let longitude = (hour - utc_hours) * 15.0;
    (longitude + 540.0).rem_euclid(360.0) - 180.0
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Weekdays at 07:00 Berlin: kitchen light on at 40 %, off at 07:45. Here
/// "07:00" is six seconds from now (room for three mosquitto_pub runs on a
/// loaded machine before the hub must see it) and "07:45" two seconds
/// after it; a twin automation on every other weekday must not fire.
async fn kitchen_morning(backend: Backend) {
    let db = TestDb::new(backend).await;
    let hub = spawn_hub(&db, "[hub]\ntimezone = \"Europe/Berlin\"\n").await;
    wait_ready(&hub).await;
    let port = common::mqtt_port(&hub);
    let sub = Subscriber::start(port, "hearth/#", &["-q", "1"]);
    sub.expect_line("hearth/hub/availability online", WAIT);

    let berlin = chrono_tz::Europe::Berlin;
    let on_at = (Utc::now() + Span::seconds(6)).trunc_subsecs(0);
    let off_at = on_at + Span::seconds(2);
    let clock = |at: chrono::DateTime<Utc>| at.with_timezone(&berlin).format("%H:%M:%S");
    let today = WEEKDAYS[on_at
        .with_timezone(&berlin)
        .weekday()
        .num_days_from_monday() as usize];
    let other_days: Vec<&str> = WEEKDAYS.into_iter().filter(|d| *d != today).collect();
    let automation = |at: String, days: &[&str], action: &str| {
        format!(
            r#"{{"triggers":[{{"at":"{at}","weekdays":{days:?},"timezone":"Europe/Berlin"}}],
              "actions":[{action}]}}"#
        )
    };
    publish(
        port,
        "hearth/hub/automations/kitchen-on/set",
        &automation(
            clock(on_at).to_string(),
            &[today],
            r#"{"output":"pi-1/light/kitchen","brightness_pct":40}"#,
        ),
    );
    publish(
        port,
        "hearth/hub/automations/kitchen-off/set",
        &automation(
            clock(off_at).to_string(),
            &[today],
            r#"{"output":"pi-1/light/kitchen","command":"OFF"}"#,
        ),
    );
    publish(
        port,
        "hearth/hub/automations/kitchen-other-days/set",
        &automation(
            clock(on_at).to_string(),
            &other_days,
            r#"{"publish":"hearth/test/other-days","payload":"fired"}"#,
        ),
    );

    // The views say when each fires next: today for the kitchen, a later day
    // for the twin.
    let on_stamp = on_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (view, _) = sub.expect_where(
        |l| l.starts_with("hearth/hub/automations/kitchen-on {"),
        WAIT,
    );
    assert!(
        view.contains(&format!(r#""next_at":"{on_stamp}""#)),
        "kitchen-on is not due at {on_stamp} (six seconds ahead when sent); its view: {view}"
    );
    let (twin, _) = sub.expect_where(
        |l| l.starts_with("hearth/hub/automations/kitchen-other-days {"),
        WAIT,
    );
    assert!(
        !twin.contains(&format!(r#""next_at":"{on_stamp}""#)) && twin.contains(r#""next_at":""#),
        "the other-days twin is due today ({today}): {twin}"
    );

    let until_due = (off_at - Utc::now()).to_std().unwrap_or_default();
    let seen = sub.expect_line(
        "hearth/node/pi-1/light/kitchen/brightness/set 102",
        until_due + WAIT,
    );
    let seen_off = sub.expect_line("hearth/node/pi-1/light/kitchen/set OFF", until_due + WAIT);
    let all: Vec<&String> = seen.iter().chain(&seen_off).collect();
    assert!(
        !all.iter().any(|l| l.starts_with("hearth/test/other-days")),
        "the automation for the other weekdays fired today ({today}): {all:?}"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kitchen_light_on_weekday_mornings_on_sqlite() {
    kitchen_morning(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kitchen_light_on_weekday_mornings_on_postgres() {
    kitchen_morning(Backend::Postgres).await;
}

/// Bedroom above 26 °C: fan on; below 24.5 °C: fan off. A thermometer
/// wobbling around each threshold switches the fan once.
async fn bedroom_fan(backend: Backend) {
    const BEDROOM: &str = r#"
[[automations]]
id = "fan-on"
triggers = [{ climate = "bedroom", reading = "temperature", above = 26.0, hysteresis = 0.5 }]
actions = [{ output = "bedroom/switch/fan", command = "ON" }]

[[automations]]
id = "fan-off"
triggers = [{ climate = "bedroom", reading = "temperature", below = 24.5, hysteresis = 0.5 }]
actions = [{ output = "bedroom/switch/fan", command = "OFF" }]
"#;
    let db = TestDb::new(backend).await;
    let hub = spawn_hub(&db, BEDROOM).await;
    wait_ready(&hub).await;
    let port = common::mqtt_port(&hub);
    let sub = Subscriber::start(port, "hearth/#", &["-q", "1"]);
    sub.expect_line("hearth/hub/availability online", WAIT);
    let reading = |celsius: f64| {
        let at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        publish(
            port,
            "hearth/node/bedroom/climate",
            &format!(r#"{{"temperature":{celsius},"humidity":45.0,"at":"{at}"}}"#),
        );
    };
    let fan_on = "hearth/node/bedroom/switch/fan/set ON";
    let fan_off = "hearth/node/bedroom/switch/fan/set OFF";
    let count = |lines: &[String], line: &str| lines.iter().filter(|l| *l == line).count();

    // The first reading only says where the room stands; the warm night
    // then crosses 26, wobbles on it, cools through the dead band and
    // crosses 24.5. Readings on one topic reach the hub in order, so a
    // second ON would be seen before the OFF.
    for celsius in [22.0, 26.4, 25.9, 26.2, 25.0] {
        reading(celsius);
    }
    sub.expect_line(fan_on, WAIT);
    for celsius in [24.3, 24.6, 24.2, 23.5] {
        reading(celsius);
    }
    let seen = sub.expect_line(fan_off, WAIT);
    assert_eq!(
        count(&seen, fan_on),
        0,
        "the fan was switched on again while the room wobbled on 26 °C: {seen:?}"
    );
    reading(27.0);
    let seen = sub.expect_line(fan_on, WAIT);
    assert_eq!(
        count(&seen, fan_off),
        0,
        "the fan was switched off again while the room stayed cool: {seen:?}"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedroom_fan_follows_the_temperature_on_sqlite() {
    bedroom_fan(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedroom_fan_follows_the_temperature_on_postgres() {
    bedroom_fan(Backend::Postgres).await;
}

/// Hall motion after sunset turns the light on; the same motion in daylight
/// does not. Two hubs on opposite sides of the earth, one motion each.
async fn hall_after_sunset(backend: Backend) {
    let hall = |longitude: f64| {
        format!(
            r#"
[hub]
latitude = 0.0
longitude = {longitude:.3}

[[automations]]
id = "hall-after-sunset"
triggers = [{{ input = "pi-1/hall", to = "ON" }}]
conditions = [{{ sun = "down" }}]
actions = [{{ output = "pi-1/light/hall", command = "ON" }}]

[[automations]]
id = "marker"
triggers = [{{ input = "pi-1/marker" }}]
actions = [{{ publish = "hearth/test/marker", payload = "handled" }}]
"#
        )
    };
    for (solar_hour, dark) in [(0.0, true), (12.0, false)] {
        let db = TestDb::new(backend).await;
        let hub = spawn_hub(&db, &hall(longitude_at_solar_hour(solar_hour))).await;
        wait_ready(&hub).await;
        let port = common::mqtt_port(&hub);
        let sub = Subscriber::start(port, "hearth/#", &["-q", "1"]);
        sub.expect_line("hearth/hub/availability online", WAIT);
        publish(port, "hearth/node/pi-1/input/hall/state", "ON");
        // On the hall's filter, so handled after the motion.
        publish(port, "hearth/node/pi-1/input/marker/state", "ON");
        let seen = sub.expect_line("hearth/test/marker handled", WAIT);
        let lit = seen
            .iter()
            .any(|l| l == "hearth/node/pi-1/light/hall/set ON");
        assert_eq!(
            lit,
            dark,
            "at solar hour {solar_hour} the hall light {} on motion: {seen:?}",
            if lit { "came on" } else { "stayed off" }
        );
        hub.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hall_light_only_after_sunset_on_sqlite() {
    hall_after_sunset(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hall_light_only_after_sunset_on_postgres() {
    hall_after_sunset(Backend::Postgres).await;
}

#[test]
fn the_solar_longitudes_are_half_a_world_apart() {
    let midnight = longitude_at_solar_hour(0.0);
    let noon = longitude_at_solar_hour(12.0);
    let apart = (midnight - noon).rem_euclid(360.0);
    assert!(
        (apart - 180.0).abs() < 0.5 && (-180.0..180.0).contains(&midnight),
        "midnight at {midnight}, noon at {noon}"
    );
}

/// Says the database's automations were last written, and their timers
/// dealt with, at `at`: as if the hub had stopped then.
async fn stopped_at(db: &TestDb, at: chrono::DateTime<Utc>) {
    use sqlx::Connection;
    let sql = "UPDATE automations SET updated_at = $1, timers_until = $1";
    let ms = at.timestamp_millis();
    if db.url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query(sql).bind(ms).execute(&mut conn).await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(sql).bind(ms).execute(&mut conn).await.unwrap();
    }
}

/// The hub was down when two daily times came: the one 20 s ago (inside
/// the 120 s catch-up window, with 100 s to spare for the starts) fires late as the hub starts, the one five
/// minutes ago is recorded missed and sends nothing.
async fn time_triggers_missed_while_down(backend: Backend) {
    let now = Utc::now().trunc_subsecs(0);
    let at = |ago: i64| (now - Span::seconds(ago)).format("%H:%M:%S").to_string();
    let config = format!(
        r#"
[hub]
automation_catch_up_s = 120

[[automations]]
id = "porch-on"
triggers = [{{ at = "{}" }}]
actions = [{{ output = "porch/light/lamp", command = "ON" }}]

[[automations]]
id = "porch-chime"
triggers = [{{ at = "{}" }}]
actions = [{{ publish = "hearth/test/chime", payload = "late" }}]
"#,
        at(20),
        at(300)
    );
    let db = TestDb::new(backend).await;
    // A first start stores the automations; then the hub "stopped" ten
    // minutes ago, before either time.
    let hub = spawn_hub(&db, &config).await;
    wait_ready(&hub).await;
    hub.stop().await;
    stopped_at(&db, now - Span::minutes(10)).await;

    // The hub as a client of Mosquitto, so the subscriber is there first:
    // the late command goes out as soon as the hub starts.
    let broker = hearth_testkit::MosquittoBroker::start();
    let port = broker.port();
    let sub = Subscriber::start(port, "hearth/#", &["-q", "1"]);
    let hub = common::spawn_hub_on(&db, &format!("mqtt://127.0.0.1:{port}"), &config).await;
    wait_ready(&hub).await;
    sub.expect_line("hearth/node/porch/light/lamp/set ON", WAIT);
    let (view, seen) = sub.expect_where(
        |l| l.starts_with("hearth/hub/automations/porch-chime {") && l.contains("missed"),
        WAIT,
    );
    assert!(
        !seen.iter().any(|l| l.starts_with("hearth/test/chime")),
        "the time five minutes ago ran: {seen:?}"
    );
    assert!(view.contains(r#""outcome":"missed""#), "{view}");

    // Where the timers stand is stored, so the next start resumes from
    // there and does not fire the late one again.
    hub.stop().await;
    let until = timers_until(&db, "porch-on").await;
    assert!(
        until.is_some_and(|ms| ms >= (now - Span::seconds(20)).timestamp_millis()),
        "porch-on's timers are stored as dealt with up to {until:?}, before its late run"
    );
}

async fn timers_until(db: &TestDb, id: &str) -> Option<i64> {
    use sqlx::{Connection, Row};
    let sql = "SELECT timers_until FROM automations WHERE id = $1";
    if db.url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        row.get::<Option<i64>, _>("timers_until")
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        row.get::<Option<i64>, _>("timers_until")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_triggers_missed_while_down_fire_late_or_are_recorded_on_sqlite() {
    time_triggers_missed_while_down(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_triggers_missed_while_down_fire_late_or_are_recorded_on_postgres() {
    time_triggers_missed_while_down(Backend::Postgres).await;
}
