//! The agent as Home Assistant sees it, on the real embedded broker: discovery
//! configs accepted by Home Assistant's own code, re-sent on its birth
//! message, stale ones cleared, commands through the advertised topics.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{InProcessAgent, WAIT, node_toml, sensor_section, topic, wait_online, write};
use hearth_testkit::home_assistant::{self, DISCOVERY_PREFIX, Seen};
use hearth_testkit::{TestClient, broker_config, start_broker};
use rumqttc::QoS;

/// Quiet time that ends a burst of retained messages.
const QUIET: Duration = Duration::from_millis(700);

async fn watcher(port: u16, id: &str, filters: &[&str]) -> TestClient {
    let client = TestClient::connect(port, id).await;
    for filter in filters {
        client.subscribe(filter, QoS::AtLeastOnce).await;
    }
    client
}

fn speaker(dir: &std::path::Path) -> String {
    format!(
        "[speaker]\nname = \"kitchen\"\nplayer = [\"true\", \"{{sound}}\"]\nsounds_dir = \"{}\"\n",
        dir.display()
    )
}

fn config_topic(component: &str, object: &str) -> String {
    format!("{DISCOVERY_PREFIX}/{component}/hearth_node_pi-1/{object}/config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_config_is_accepted_by_home_assistant() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("{}{}", sensor_section(), speaker(dir.path()));
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &node_toml(port, &extra)));
    wait_online(port);
    let mut ha = watcher(port, "ha", &["homeassistant/#"]).await;
    let seen = home_assistant::collect(&mut ha, QUIET, WAIT).await;
    let configs = home_assistant::configs(&seen);
    let topics: BTreeSet<&str> = configs.keys().map(String::as_str).collect();
    let want: BTreeSet<String> = [
        config_topic("light", "light_red"),
        config_topic("light", "light_yellow"),
        config_topic("light", "light_green"),
        config_topic("switch", "switch_lamp"),
        config_topic("switch", "sequence_traffic"),
        config_topic("sensor", "temperature"),
        config_topic("sensor", "humidity"),
        config_topic("binary_sensor", "connectivity"),
    ]
    .into();
    assert_eq!(topics, want.iter().map(String::as_str).collect());
    let report = home_assistant::assert_valid(&seen, DISCOVERY_PREFIX);
    assert!(report.contains("8 discovery message(s)"), "{report}");
    agent.stop().await;

    // Another prefix for both Hearth and Home Assistant, a buzzer speaker,
    // no sensor: still accepted, and everything follows the prefixes.
    let toml = format!(
        "[node]\nid = \"pi-2\"\ntopic_prefix = \"home/hearth\"\ndiscovery_prefix = \"ha\"\n\
         [mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\n\
         [[outputs]]\nname = \"relay\"\nkind = \"switch\"\npin = 6\nactive_low = true\n\
         [speaker]\nname = \"hall\"\n[speaker.buzzer]\npin = 18\n"
    );
    let mut ha = watcher(port, "ha-2", &["ha/#"]).await;
    let agent = InProcessAgent::start(&write(dir.path(), "pi-2.toml", &toml));
    let seen = home_assistant::collect(&mut ha, QUIET, WAIT).await;
    let configs = home_assistant::configs(&seen);
    let relay = &configs["ha/switch/hearth_node_pi-2/switch_relay/config"];
    assert_eq!(
        relay["command_topic"],
        "home/hearth/node/pi-2/switch/relay/set"
    );
    assert_eq!(
        relay["availability_topic"],
        "home/hearth/node/pi-2/availability"
    );
    assert_eq!(configs.len(), 2, "{configs:#?}");
    home_assistant::assert_valid(&seen, "ha");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn birth_resends_every_config_and_state_and_commands_follow() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    // One reading at start, then none for the rest of the test: whatever
    // climate comes after the birth is the agent re-sending it.
    let sensor = sensor_section().replace("interval_secs = 2", "interval_secs = 600");
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &node_toml(port, &sensor)));
    wait_online(port);
    let mut ha = watcher(port, "ha", &["homeassistant/#", &topic("#")]).await;
    let seen = home_assistant::collect(&mut ha, QUIET, WAIT).await;
    let first = home_assistant::configs(&seen);
    assert_eq!(first.len(), 8, "{first:#?}");
    let reading = home_assistant::latest(&seen)
        .get(&topic("climate"))
        .cloned()
        .expect("the first reading");

    // Home Assistant starts: every config again, then the current states.
    ha.publish("homeassistant/status", QoS::AtLeastOnce, false, "online")
        .await;
    let again = home_assistant::collect(&mut ha, QUIET, WAIT).await;
    assert_eq!(home_assistant::configs(&again), first, "same configs again");
    let states = home_assistant::latest(&again);
    for (rest, payload) in [
        ("availability", "online"),
        ("light/red/state", "OFF"),
        ("switch/lamp/state", "OFF"),
        ("sequence/traffic/state", "OFF"),
        ("climate", reading.as_str()),
    ] {
        assert_eq!(
            states.get(&topic(rest)).map(String::as_str),
            Some(payload),
            "{rest} not re-sent: {states:#?}"
        );
    }
    for plain in ["climate/temperature", "climate/humidity"] {
        assert!(
            states.contains_key(&topic(plain)),
            "{plain} not re-sent: {states:#?}"
        );
    }
    // Home Assistant going away asks for nothing.
    ha.publish("homeassistant/status", QoS::AtLeastOnce, false, "offline")
        .await;
    assert_eq!(home_assistant::collect(&mut ha, QUIET, WAIT).await.len(), 1);

    // A command on the advertised command topic, as Home Assistant sends it.
    let red = &first[&config_topic("light", "light_red")];
    let command = red["command_topic"].as_str().unwrap();
    let state = red["state_topic"].as_str().unwrap().to_owned();
    ha.publish(
        command,
        QoS::AtLeastOnce,
        false,
        red["payload_on"].as_str().unwrap(),
    )
    .await;
    let on = ha.recv_on(&state, WAIT).await;
    assert_eq!(&on.payload[..], b"ON");
    assert_eq!(agent.level(17), Some(hearth_node_agent::gpio::Level::High));
    let traffic = &first[&config_topic("switch", "sequence_traffic")];
    ha.publish(
        traffic["command_topic"].as_str().unwrap(),
        QoS::AtLeastOnce,
        false,
        "ON",
    )
    .await;
    let running = ha
        .recv_on(traffic["state_topic"].as_str().unwrap(), WAIT)
        .await;
    assert_eq!(&running.payload[..], b"ON");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_taken_out_of_the_config_is_removed_from_home_assistant() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let extra = sensor_section();
    let path = write(dir.path(), "node.toml", &node_toml(port, &extra));
    let agent = InProcessAgent::start(&path);
    wait_online(port);
    agent.stop().await;

    // The same Pi without the lamp and the sensor.
    let without = node_toml(port, "").replace(
        "[[outputs]]\nname = \"lamp\"\nkind = \"switch\"\npin = 5\nactive_low = true\n",
        "",
    );
    assert!(!without.contains("lamp"), "the lamp is still in\n{without}");
    let mut ha = watcher(port, "ha", &["homeassistant/#"]).await;
    let before = home_assistant::configs(&home_assistant::collect(&mut ha, QUIET, WAIT).await);
    assert!(
        before.contains_key(&config_topic("switch", "switch_lamp")),
        "no lamp config before: {:?}",
        before.keys()
    );
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &without));
    let seen = home_assistant::collect(&mut ha, QUIET, WAIT).await;
    let removed: BTreeSet<&str> = seen
        .iter()
        .filter(|s| s.is_removal())
        .map(|s| s.topic.as_str())
        .collect();
    let want = [
        config_topic("switch", "switch_lamp"),
        config_topic("sensor", "temperature"),
        config_topic("sensor", "humidity"),
    ];
    assert_eq!(removed, want.iter().map(String::as_str).collect());

    // What a Home Assistant connecting now finds: only what the Pi has.
    let mut late = watcher(port, "ha-late", &["homeassistant/#"]).await;
    let retained = home_assistant::configs(&home_assistant::collect(&mut late, QUIET, WAIT).await);
    assert_eq!(retained.len(), 5, "{retained:#?}");
    assert!(
        want.iter().all(|t| !retained.contains_key(t)),
        "a removed config is still retained: {:?}",
        retained.keys()
    );
    // The lamp's retained state is cleared too (so the hub forgets the
    // output); the outputs the Pi still has keep theirs.
    let mut states = watcher(port, "states", &[&topic("+/+/state")]).await;
    let kept = home_assistant::latest(&home_assistant::collect(&mut states, QUIET, WAIT).await);
    assert!(!kept.contains_key(&topic("switch/lamp/state")), "{kept:#?}");
    assert_eq!(
        kept.get(&topic("light/red/state")).map(String::as_str),
        Some("OFF")
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_off_it_says_nothing_to_home_assistant() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let toml = node_toml(port, "").replace("[node]\n", "[node]\ndiscovery = false\n");
    let mut ha = watcher(port, "ha", &["homeassistant/#"]).await;
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &toml));
    wait_online(port);
    ha.publish("homeassistant/status", QoS::AtLeastOnce, false, "online")
        .await;
    let seen: Vec<Seen> = home_assistant::collect(&mut ha, QUIET, WAIT).await;
    assert_eq!(
        seen.iter().map(|s| s.topic.as_str()).collect::<Vec<_>>(),
        ["homeassistant/status"]
    );
    agent.stop().await;
}

#[test]
fn home_assistant_refuses_what_it_would_not_set_up() {
    // Proof that the validation has teeth: payloads Home Assistant would
    // refuse, or would half-ignore, fail it, each named with the reason.
    let device = r#""device":{"identifiers":["hearth_node_x"]}"#;
    let seen = |object: &str, component: &str, body: String| Seen {
        topic: format!("homeassistant/{component}/hearth_node_x/{object}/config"),
        payload: body,
    };
    let broken = [
        seen(
            "no_command",
            "light",
            format!(r#"{{"name":"a","unique_id":"u1","state_topic":"a/b",{device}}}"#),
        ),
        seen(
            "typo",
            "switch",
            format!(
                r#"{{"name":"b","unique_id":"u2","comand_topic":"a/b","command_topic":"a/c",{device}}}"#
            ),
        ),
        seen(
            "bad_class",
            "sensor",
            format!(
                r#"{{"name":"c","unique_id":"u3","state_topic":"a/b","device_class":"temprature",{device}}}"#
            ),
        ),
        seen(
            "twin",
            "light",
            format!(r#"{{"name":"d","unique_id":"u4","command_topic":"a/b",{device}}}"#),
        ),
        seen(
            "twin_again",
            "light",
            format!(r#"{{"name":"e","unique_id":"u4","command_topic":"a/c",{device}}}"#),
        ),
        seen(
            "old_name",
            "light",
            format!(
                r#"{{"name":"f","unique_id":"u5","command_topic":"a/b","object_id":"f",{device}}}"#
            ),
        ),
        seen(
            "wrong_domain",
            "light",
            format!(
                r#"{{"name":"g","unique_id":"u6","command_topic":"a/b","default_entity_id":"switch.g",{device}}}"#
            ),
        ),
        seen(
            "not_a_slug",
            "light",
            format!(
                r#"{{"name":"h","unique_id":"u7","command_topic":"a/b","default_entity_id":"light.pi-1",{device}}}"#
            ),
        ),
        seen(
            "named",
            "light",
            format!(
                r#"{{"name":"i","unique_id":"u8","command_topic":"a/b","default_entity_id":"light.pi_1_i",{device}}}"#
            ),
        ),
        seen(
            "named_twice",
            "light",
            format!(
                r#"{{"name":"j","unique_id":"u9","command_topic":"a/b","default_entity_id":"light.pi_1_i",{device}}}"#
            ),
        ),
        seen("removed", "light", String::new()),
    ];
    let (accepted, report) = home_assistant::validate(&broken, DISCOVERY_PREFIX);
    assert!(!accepted, "{report}");
    for (object, why) in [
        ("no_command", "command_topic"),
        ("typo", "ignores comand_topic"),
        ("bad_class", "device_class"),
        ("twin_again", "also used by"),
        ("old_name", "object_id is deprecated"),
        ("wrong_domain", "not in the light domain"),
        ("not_a_slug", "is not an entity id"),
        ("named_twice", "also used by"),
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.contains(&format!("/{object}/config")) && l.contains(why)),
            "{object} not refused for {why}:\n{report}"
        );
    }
    assert!(
        !report.contains("/named/config: "),
        "a good default_entity_id passes (older Home Assistant drops it harmlessly):\n{report}"
    );
    assert!(report.contains("8 rejected"), "{report}");
    assert!(report.contains("1 removal(s)"), "{report}");
}
