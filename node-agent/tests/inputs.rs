//! Wired inputs on a simulated Pi, over the real embedded broker: a push button
//! presses like an IoT button, a motion sensor keeps a retained ON/OFF, Home
//! Assistant gets a binary_sensor, and an input taken out of the config leaves
//! nothing behind. Gestures come in on `input/<name>/simulate` and go through
//! the same debounce and press decoder as a real pin's edges, chatter included.

#![allow(clippy::unwrap_used)]

mod common;

use common::{InProcessAgent, WAIT, node_toml, publish, topic, wait_online, write};
use hearth_testkit::home_assistant::{self, DISCOVERY_PREFIX};
use hearth_testkit::{Subscriber, TestClient, broker_config, start_broker};
use rumqttc::QoS;

const INPUTS: &str = r#"
[[inputs]]
name = "doorbell"
kind = "button"
button = "door"
pin = 23

[[inputs]]
name = "hall"
kind = "motion"
pin = 24
pull = "off"
"#;

fn simulate(port: u16, input: &str, gesture: &str) {
    publish(port, &format!("input/{input}/simulate"), gesture);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wired_button_presses_like_an_iot_button_exactly_once_per_gesture() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &node_toml(port, INPUTS)));
    wait_online(port);
    let presses = Subscriber::start(port, "hearth/button/door/press", &[]);
    for gesture in ["double", "long", "single", "press"] {
        simulate(port, "doorbell", gesture);
        let want = if gesture == "press" {
            "single"
        } else {
            gesture
        };
        let before = presses.expect_line(&format!("hearth/button/door/press {want}"), WAIT);
        assert!(
            before.is_empty(),
            "{gesture}: other presses came first: {before:?}"
        );
    }
    // The single above was reported when its double window closed; a
    // bounce mistaken for a second press would have come before the marker.
    let after = presses.until_marker("hearth/button/door/press");
    assert!(after.is_empty(), "presses nobody made: {after:?}");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_motion_sensor_keeps_a_retained_state_that_follows_it() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let states = Subscriber::start(port, &topic("input/+/state"), &[]);
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &node_toml(port, INPUTS)));
    wait_online(port);
    let hall = topic("input/hall/state");
    let before = states.expect_line(&format!("{hall} OFF"), WAIT);
    assert!(before.is_empty(), "a button has no state topic: {before:?}");
    simulate(port, "hall", "ON");
    states.expect_line(&format!("{hall} ON"), WAIT);
    // Someone who looks later (the dashboard, Home Assistant) sees it too.
    let late = Subscriber::start(port, &hall, &[]);
    late.expect_line(&format!("{hall} ON"), WAIT);
    simulate(port, "hall", "OFF");
    states.expect_line(&format!("{hall} OFF"), WAIT);
    // A gesture that is no gesture is refused on the node's error topic.
    let errors = Subscriber::start(port, &topic("error"), &[]);
    simulate(port, "hall", "wiggle");
    let (error, _) = errors.expect_where(|l| l.contains("wiggle"), WAIT);
    assert!(error.contains("bad payload for input hall"), "{error}");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_are_binary_sensors_in_home_assistant_and_leave_nothing_when_removed() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let ha = TestClient::connect(port, "ha").await;
    ha.subscribe("homeassistant/#", QoS::AtLeastOnce).await;
    let mut ha = ha;
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &node_toml(port, INPUTS)));
    // Connectivity is the last config the agent sends in its burst.
    let last = format!("{DISCOVERY_PREFIX}/binary_sensor/hearth_node_pi-1/connectivity/config");
    let seen = home_assistant::receive_until(&mut ha, Vec::new(), WAIT, |seen| {
        seen.iter().any(|s| s.topic == last)
    })
    .await;
    let configs = home_assistant::configs(&seen);
    let hall_config =
        format!("{DISCOVERY_PREFIX}/binary_sensor/hearth_node_pi-1/input_hall/config");
    let hall = configs
        .get(&hall_config)
        .unwrap_or_else(|| panic!("no {hall_config} in {:#?}", configs.keys()));
    assert_eq!(hall["device_class"], "motion");
    assert_eq!(hall["state_topic"], topic("input/hall/state"));
    assert!(
        !configs.keys().any(|k| k.contains("doorbell")),
        "a wired button is the hub's button entity, not the node's: {:#?}",
        configs.keys()
    );
    home_assistant::assert_valid(&seen, DISCOVERY_PREFIX);
    agent.stop().await;

    // The same Pi without its inputs: their state and config are cleared.
    let watch = Subscriber::start(port, &topic("input/#"), &[]);
    let discovery = Subscriber::start(port, &hall_config, &[]);
    let agent = InProcessAgent::start(&write(dir.path(), "bare.toml", &node_toml(port, "")));
    wait_online(port);
    let hall_state = topic("input/hall/state");
    // mosquitto_sub prints an empty (clearing) payload as "(null)".
    watch.expect_line(&format!("{hall_state} (null)"), WAIT);
    discovery.expect_line(&format!("{hall_config} (null)"), WAIT);
    agent.stop().await;
}
