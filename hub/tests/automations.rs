//! Automations end to end: a hub with its embedded broker, devices played by
//! mosquitto_pub, what the hub commands read by mosquitto_sub. Each story
//! runs on SQLite and on Postgres. Time-dependent stories use short delays
//! (their day-long versions run on a manual clock in the engine's tests).

#![allow(clippy::unwrap_used)]

mod common;

use common::{Backend, TestDb, WAIT, publish, spawn_hub, wait_ready};
use hearth_testkit::Subscriber;

const HALL: &str = r#"
[[automations]]
id = "hall-motion"
mode = "restart"
triggers = [{ input = "pi-1/hall", to = "ON" }]
actions = [
  { output = "pi-1/light/hall", command = "ON" },
  { wait = { input = "pi-1/hall", to = "OFF" } },
  { delay_s = 0.3 },
  { output = "pi-1/light/hall", command = "OFF" },
]

[[automations]]
id = "started"
triggers = [{ hub = "start" }]
actions = [{ publish = "hearth/test/started", payload = "yes", retain = true }]
"#;

async fn hall_light_follows_motion(backend: Backend) {
    let db = TestDb::new(backend).await;
    let hub = spawn_hub(&db, HALL).await;
    wait_ready(&hub).await;
    let port = common::mqtt_port(&hub);
    let sub = Subscriber::start(port, "hearth/#", &["-q", "1"]);
    sub.expect_line("hearth/test/started yes", WAIT);

    publish(port, "hearth/node/pi-1/input/hall/state", "ON");
    sub.expect_line("hearth/node/pi-1/light/hall/set ON", WAIT);
    publish(port, "hearth/node/pi-1/input/hall/state", "OFF");
    let before = sub.expect_line("hearth/node/pi-1/light/hall/set OFF", WAIT);
    assert!(
        before
            .iter()
            .any(|l| l == "hearth/node/pi-1/input/hall/state OFF"),
        "the light went off before the motion ended: {before:?}"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hall_light_follows_motion_on_sqlite() {
    hall_light_follows_motion(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hall_light_follows_motion_on_postgres() {
    hall_light_follows_motion(Backend::Postgres).await;
}

const ALARM: &str = r#"
[[automations]]
id = "door-alarm"
cooldown_s = 600
triggers = [{ input = "porch/front-door", to = "ON" }]
conditions = [{ button = "away", state = "ON" }]
actions = [{ play = "alarm.wav", speakers = ["kitchen", "hall"], volume = 90 }]

[[automations]]
id = "remote"
triggers = [{ topic = "zigbee2mqtt/remote", field = "action", equals = "arrow_left_click" }]
actions = [{ output = "pi-1/light/lamp", brightness_pct = 40 }]

# A marker on the same filter as the door, so it is handled after it.
[[automations]]
id = "marker"
triggers = [{ input = "porch/marker" }]
actions = [{ publish = "hearth/test/marker", payload = "handled" }]
"#;

async fn door_alarm_while_away(backend: Backend) {
    let db = TestDb::new(backend).await;
    let hub = spawn_hub(&db, ALARM).await;
    wait_ready(&hub).await;
    let port = common::mqtt_port(&hub);
    let sub = Subscriber::start(port, "hearth/#", &["-q", "1"]);
    sub.expect_line("hearth/hub/availability online", WAIT);
    let door = "hearth/node/porch/input/front-door/state";
    let play = |speaker: &str| {
        format!(r#"hearth/chime/{speaker}/play {{"sound":"alarm.wav","volume":90}}"#)
    };

    // Home: the door opens and nothing plays.
    publish(port, door, "ON");
    publish(port, "hearth/node/porch/input/marker/state", "ON");
    let seen = sub.expect_line("hearth/test/marker handled", WAIT);
    assert!(
        !seen.iter().any(|l| l.contains("/play")),
        "played while at home: {seen:?}"
    );

    // Away: it plays on both speakers, once.
    publish(port, door, "OFF");
    publish(port, "hearth/button/away/set", "ON");
    sub.expect_line("hearth/button/away/state ON", WAIT);
    publish(port, door, "ON");
    sub.expect_all(&[play("kitchen"), play("hall")], WAIT);
    publish(port, door, "OFF");
    publish(port, door, "ON");
    publish(port, "hearth/node/porch/input/marker/state", "OFF");
    let seen = sub.expect_line("hearth/test/marker handled", WAIT);
    assert!(
        !seen.iter().any(|l| l.contains("/play")),
        "played again within the ten minutes: {seen:?}"
    );

    // The Zigbee remote's left arrow dims the lamp to 40 % (102 of 255).
    publish(
        port,
        "zigbee2mqtt/remote",
        r#"{"action":"arrow_left_click","linkquality":120}"#,
    );
    sub.expect_line("hearth/node/pi-1/light/lamp/brightness/set 102", WAIT);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_alarm_while_away_on_sqlite() {
    door_alarm_while_away(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_alarm_while_away_on_postgres() {
    door_alarm_while_away(Backend::Postgres).await;
}
