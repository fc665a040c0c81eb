//! A dimmable light on a simulated PWM pin, over the real embedded broker:
//! levels from the shell and from Home Assistant's advertised topics, `0` and
//! `OFF` keep the level for the next `ON`, and a stopped agent leaves it dark.

#![allow(clippy::unwrap_used)]

mod common;

use common::{InProcessAgent, WAIT, node_toml, publish, topic, wait_online, write};
use hearth_testkit::home_assistant::{self, DISCOVERY_PREFIX};
use hearth_testkit::{Subscriber, TestClient, broker_config, start_broker};
use rumqttc::QoS;

const LAMP: &str = "[[outputs]]\nname = \"dimmer\"\nkind = \"light\"\npin = 18\ndimmable = true\n";

/// The simulated lamp's duty is `want`: the agent sets the pin before it
/// publishes the state, so once the state line came this holds.
fn assert_duty(agent: &InProcessAgent, want: f64) {
    let duty = agent.pins.duty(18);
    assert!(
        duty.is_some_and(|d| (d - want).abs() < 0.001),
        "lamp duty {duty:?}, want {want}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn levels_dim_the_lamp_and_on_off_keep_the_level() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let lamp = Subscriber::start(port, &topic("light/dimmer/#"), &[]);
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &node_toml(port, LAMP)));
    wait_online(port);
    let (state, level) = (
        topic("light/dimmer/state"),
        topic("light/dimmer/brightness"),
    );
    lamp.expect_all(&[format!("{state} OFF"), format!("{level} 255")], WAIT);

    publish(port, "light/dimmer/brightness/set", "64");
    lamp.expect_all(&[format!("{state} ON"), format!("{level} 64")], WAIT);
    assert_duty(&agent, 64.0 / 255.0);
    publish(port, "light/dimmer/brightness/set", r#"{"brightness":200}"#);
    lamp.expect_line(&format!("{level} 200"), WAIT);
    assert_duty(&agent, 200.0 / 255.0);

    publish(port, "light/dimmer/set", "OFF");
    lamp.expect_line(&format!("{state} OFF"), WAIT);
    assert_duty(&agent, 0.0);
    publish(port, "light/dimmer/set", "ON");
    lamp.expect_line(&format!("{state} ON"), WAIT);
    assert_duty(&agent, 200.0 / 255.0);
    // 0 is off, and the level stays for the next ON.
    publish(port, "light/dimmer/brightness/set", "0");
    lamp.expect_line(&format!("{state} OFF"), WAIT);
    assert_duty(&agent, 0.0);

    // Bad levels and lights that do not dim are refused, nothing changes.
    let errors = Subscriber::start(port, &topic("error"), &[]);
    publish(port, "light/dimmer/brightness/set", "300");
    let (error, _) = errors.expect_where(|l| l.contains("brightness 0..255"), WAIT);
    assert!(error.contains("light dimmer"), "{error}");
    publish(port, "light/red/brightness/set", "10");
    let (error, _) = errors.expect_where(|l| l.contains("not dimmable"), WAIT);
    assert!(error.contains("light red"), "{error}");
    assert_duty(&agent, 0.0);

    publish(port, "light/dimmer/set", "ON");
    lamp.expect_line(&format!("{state} ON"), WAIT);
    agent
        .pins
        .duty(18)
        .filter(|d| *d > 0.5)
        .expect("lit at 200 before the stop");
    let pins = agent.pins.clone();
    agent.stop().await;
    assert_eq!(
        pins.duty(18),
        Some(0.0),
        "a stopped agent leaves the dimmed lamp dark"
    );
}

/// What Home Assistant does with its slider at 50 %: the level on the
/// advertised brightness topic, then ON on the command topic
/// (`on_command_type: last`, its default), read from the discovery config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_turns_the_lamp_on_at_half_brightness() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let mut ha = TestClient::connect(port, "ha").await;
    ha.subscribe("homeassistant/#", QoS::AtLeastOnce).await;
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &node_toml(port, LAMP)));
    // Connectivity is the last config the agent sends in its burst.
    let last = format!("{DISCOVERY_PREFIX}/binary_sensor/hearth_node_pi-1/connectivity/config");
    let seen = home_assistant::receive_until(&mut ha, Vec::new(), WAIT, |seen| {
        seen.iter().any(|s| s.topic == last)
    })
    .await;
    home_assistant::assert_valid(&seen, DISCOVERY_PREFIX);
    let configs = home_assistant::configs(&seen);
    let config =
        &configs[&format!("{DISCOVERY_PREFIX}/light/hearth_node_pi-1/light_dimmer/config")];
    assert_eq!(config["brightness_scale"], 255);
    let red = &configs[&format!("{DISCOVERY_PREFIX}/light/hearth_node_pi-1/light_red/config")];
    assert!(
        red.get("brightness_command_topic").is_none(),
        "red does not dim: {red}"
    );

    let lamp = Subscriber::start(port, &topic("light/dimmer/#"), &[]);
    let brightness = config["brightness_command_topic"].as_str().unwrap();
    let command = config["command_topic"].as_str().unwrap();
    ha.publish(brightness, QoS::AtLeastOnce, false, "128").await;
    ha.publish(command, QoS::AtLeastOnce, false, "ON").await;
    let state_topic = config["state_topic"].as_str().unwrap();
    let level_topic = config["brightness_state_topic"].as_str().unwrap();
    lamp.expect_all(
        &[format!("{state_topic} ON"), format!("{level_topic} 128")],
        WAIT,
    );
    assert_duty(&agent, 128.0 / 255.0);
    agent.stop().await;
}
