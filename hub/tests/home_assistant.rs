//! Home Assistant's side of Hearth, played over MQTT against a real hub and a
//! real `hearth-node-agent --simulate` process: every discovery payload is
//! checked by Home Assistant's own discovery code, the birth message brings
//! every config and state back, and commands on the advertised topics work.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Backend, TestDb, mqtt_port, spawn_hub, wait_ready};
use hearth_testkit::home_assistant::{self, DISCOVERY_PREFIX, Seen};
use hearth_testkit::{TestClient, mosquitto_pub};
use rumqttc::QoS;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

const HUB_TOML: &str = r#"
[[chimes]]
id = "tea"
name = "Tea time"
schedule = "16:20"
speaker = "kitchen"
sound = "tea.wav"

[[scenes]]
id = "evening"
outputs = [{ output = "pi-1/light/red", command = "ON" }, { output = "pi-1/switch/fan", command = "OFF" }]
"#;

/// The agent process, killed when the test ends.
use common::KillOnDrop as Agent;

/// A simulated Pi with two lights, a relay, a sequence, a DHT22 and a speaker.
fn start_agent(dir: &std::path::Path, port: u16) -> Agent {
    std::fs::write(dir.join("tea.wav"), b"RIFF").unwrap();
    let toml = format!(
        r#"
[node]
id = "pi-1"

[mqtt]
url = "mqtt://127.0.0.1:{port}"
keep_alive_secs = 5

[[outputs]]
name = "red"
kind = "light"
pin = 17

[[outputs]]
name = "green"
kind = "light"
pin = 22

[[outputs]]
name = "fan"
kind = "switch"
pin = 5
active_low = true

[[sequences]]
name = "blink"
steps = [{{ on = ["red"], duration_ms = 300 }}, {{ on = ["green"], duration_ms = 300 }}]

[sensor]
model = "dht22"
# Slow: a reading every 2 s would keep "quiet" collections from ending.
interval_secs = 60

[speaker]
name = "kitchen"
player = ["true", "{{sound}}"]
sounds_dir = "{}"
"#,
        dir.display()
    );
    let config = dir.join("node.toml");
    std::fs::write(&config, toml).unwrap();
    let child = Command::new(hearth_testkit::binary("hearth-node-agent"))
        .args(["--simulate", "--config"])
        .arg(&config)
        .env_remove("HEARTH_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hearth-node-agent");
    Agent(child)
}

fn publish(port: u16, topic: &str, payload: &str) {
    let out = mosquitto_pub(port, &["-q", "1", "-t", topic, "-m", payload]);
    assert!(out.status.success(), "mosquitto_pub: {out:?}");
}

fn hub_config(object: &str, component: &str) -> String {
    format!("{DISCOVERY_PREFIX}/{component}/hearth_hub/{object}/config")
}

fn node_config(object: &str, component: &str) -> String {
    format!("{DISCOVERY_PREFIX}/{component}/hearth_node_pi-1/{object}/config")
}

/// Every config the hub and the agent should have out, given the buttons.
fn expected_configs(buttons: &[&str]) -> BTreeSet<String> {
    let mut want: BTreeSet<String> = [
        hub_config("clock", "sensor"),
        hub_config("connectivity", "binary_sensor"),
        hub_config("chime_tea", "button"),
        hub_config("chime_tea", "switch"),
        hub_config("scene_evening", "scene"),
        node_config("light_red", "light"),
        node_config("light_green", "light"),
        node_config("switch_fan", "switch"),
        node_config("sequence_blink", "switch"),
        node_config("temperature", "sensor"),
        node_config("humidity", "sensor"),
        node_config("connectivity", "binary_sensor"),
    ]
    .into();
    for b in buttons {
        want.insert(hub_config(&format!("button_{b}"), "event"));
        want.insert(hub_config(&format!("button_{b}"), "binary_sensor"));
        for action in ["single", "double", "long"] {
            want.insert(hub_config(
                &format!("button_{b}_{action}"),
                "device_automation",
            ));
        }
    }
    want
}

async fn home_assistant(port: u16) -> TestClient {
    let ha = TestClient::connect(port, "home-assistant").await;
    ha.subscribe("homeassistant/#", QoS::AtLeastOnce).await;
    ha.subscribe("hearth/#", QoS::AtLeastOnce).await;
    ha
}

/// Every message `ha` receives until `done` holds for them (see
/// [`home_assistant::receive_until`]), within [`WAIT`] twice.
async fn receive_until(
    ha: &mut TestClient,
    seen: Vec<Seen>,
    done: impl Fn(&[Seen]) -> bool,
) -> Vec<Seen> {
    home_assistant::receive_until(ha, seen, WAIT * 2, done).await
}

/// Collects until every config of `want` is in (the agent connects last).
async fn collect_until(ha: &mut TestClient, want: &BTreeSet<String>) -> Vec<Seen> {
    receive_until(ha, Vec::new(), |seen| {
        let have: BTreeSet<String> = home_assistant::configs(seen).into_keys().collect();
        want.is_subset(&have)
    })
    .await
}

/// What the broker retains under the discovery prefix, read up to a
/// marker (see [`TestClient::retained`]), as Home Assistant starting now
/// would see it.
async fn retained_discovery(port: u16) -> Vec<Seen> {
    TestClient::retained(port, &format!("{DISCOVERY_PREFIX}/#"))
        .await
        .into_iter()
        .map(|(topic, payload)| Seen { topic, payload })
        .collect()
}

fn str_of<'v>(config: &'v Value, key: &str) -> &'v str {
    config[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {config}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_discovery_payload_of_hub_and_agent_is_accepted_by_home_assistant() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, HUB_TOML).await;
    wait_ready(&hub).await;
    let port = mqtt_port(&hub);
    let mut ha = home_assistant(port).await;
    let dir = tempfile::tempdir().unwrap();
    let _agent = start_agent(dir.path(), port);

    // Buttons appear with their first message, whatever it is.
    publish(port, "hearth/button/desk/set", "ON");
    publish(port, "hearth/button/hall/press", "long");
    // A chime made and deleted at run time: announced, then removed.
    publish(
        port,
        "hearth/hub/chimes/bell/set",
        r#"{"name":"Door bell","schedule":"0 0 9 * * *","speaker":"kitchen","sound":"tea.wav"}"#,
    );
    let want = expected_configs(&["desk", "hall"]);
    let bell = [
        hub_config("chime_bell", "button"),
        hub_config("chime_bell", "switch"),
    ];
    let mut with_bell = want.clone();
    with_bell.insert(bell[0].clone());
    let seen = collect_until(&mut ha, &with_bell).await;
    assert!(
        seen.iter().any(|s| s.topic == bell[0] && !s.is_removal()),
        "the new chime was announced"
    );
    publish(port, "hearth/hub/chimes/bell/set", "");
    let seen = receive_until(&mut ha, seen, |seen| {
        bell.iter()
            .all(|b| seen.iter().any(|s| s.topic == *b && s.is_removal()))
    })
    .await;
    let removed: BTreeSet<&str> = seen
        .iter()
        .filter(|s| s.is_removal() && s.topic.ends_with("/config"))
        .map(|s| s.topic.as_str())
        .collect();
    assert_eq!(
        removed,
        bell.iter().map(String::as_str).collect(),
        "the entities removed"
    );

    // Exactly these entities, as the broker keeps them for Home Assistant.
    let configs = home_assistant::configs(&retained_discovery(port).await);
    let have: BTreeSet<String> = configs.keys().cloned().collect();
    assert_eq!(have, want, "exactly these entities");

    let discovery: Vec<Seen> = seen
        .iter()
        .filter(|s| s.topic.starts_with("homeassistant/") && s.topic.ends_with("/config"))
        .cloned()
        .collect();
    let report = home_assistant::assert_valid(&discovery, DISCOVERY_PREFIX);
    println!("{report}");
    assert!(report.contains("0 rejected"), "{report}");

    // The device tree: every node entity hangs off its node device, which
    // hangs off the hub's.
    for (topic, config) in &configs {
        let device = &config["device"];
        assert_eq!(device["manufacturer"], "Hearth", "{topic}");
        // Home Assistant's "Visit" link leads to the dashboard.
        assert!(
            device["configuration_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("http://")),
            "{topic}: {device}"
        );
        // Named the way Home Assistant 2026.4 and later name entities,
        // with the id the deprecated object_id gave before.
        let component = topic.split('/').nth(1).unwrap();
        if component == "device_automation" {
            assert!(config.get("default_entity_id").is_none(), "{topic}");
        } else {
            let unique = str_of(config, "unique_id").replace('-', "_");
            assert_eq!(
                config["default_entity_id"],
                format!("{component}.{unique}"),
                "{topic}"
            );
        }
        assert!(config.get("object_id").is_none(), "{topic}: {config}");
        assert!(config["origin"]["name"].is_string(), "{topic}");
        if topic.contains("/hearth_node_pi-1/") {
            assert_eq!(device["identifiers"][0], "hearth_node_pi-1");
            assert_eq!(device["via_device"], "hearth_hub");
            if !topic.contains("/connectivity/") {
                assert_eq!(
                    config["availability_topic"],
                    "hearth/node/pi-1/availability"
                );
            }
        } else {
            assert_eq!(device["identifiers"][0], "hearth_hub");
        }
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_restarts_then_drives_hearth_through_the_advertised_topics() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, HUB_TOML).await;
    wait_ready(&hub).await;
    let port = mqtt_port(&hub);
    let dir = tempfile::tempdir().unwrap();
    let _agent = start_agent(dir.path(), port);
    publish(port, "hearth/button/desk/set", "ON");
    let want = expected_configs(&["desk"]);
    let mut ha = home_assistant(port).await;
    let first = home_assistant::configs(&collect_until(&mut ha, &want).await);
    assert_eq!(first.keys().cloned().collect::<BTreeSet<_>>(), want);

    // Home Assistant's birth message: every config again, and the states.
    ha.publish("homeassistant/status", QoS::AtLeastOnce, false, "online")
        .await;
    let resent = [
        ("hearth/hub/availability", Some("online")),
        ("hearth/button/desk/state", Some("ON")),
        ("hearth/clock/hhmm", None),
        ("hearth/hub/chimes/tea", None),
        ("hearth/node/pi-1/availability", Some("online")),
        ("hearth/node/pi-1/light/red/state", Some("OFF")),
        ("hearth/node/pi-1/sequence/blink/state", Some("OFF")),
    ];
    // Every config and every state again: the states follow the configs,
    // so the wait is for both (it panics naming what came if one is missing).
    let again = receive_until(&mut ha, Vec::new(), |seen| {
        let have: BTreeSet<String> = home_assistant::configs(seen).into_keys().collect();
        let states = home_assistant::latest(seen);
        want.is_subset(&have) && resent.iter().all(|(topic, _)| states.contains_key(*topic))
    })
    .await;
    assert_eq!(
        home_assistant::configs(&again),
        first,
        "the same configs again"
    );
    let states = home_assistant::latest(&again);
    for (topic, payload) in resent {
        if let Some(payload) = payload {
            assert_eq!(states[topic], payload, "{topic}");
        }
    }

    // A node light, through the light's advertised command topic.
    let red = &first[&node_config("light_red", "light")];
    ha.publish(
        str_of(red, "command_topic"),
        QoS::AtLeastOnce,
        false,
        str_of(red, "payload_on"),
    )
    .await;
    // The agent's answer to the birth (its states, OFF) may still be on its
    // way; the light is on once its state says so.
    loop {
        let state = ha.recv_on(str_of(red, "state_topic"), WAIT).await;
        if &state.payload[..] == b"ON" {
            break;
        }
        assert_eq!(&state.payload[..], b"OFF", "the red light's state");
    }

    // The chime's "enabled" switch: OFF from Home Assistant, ON from the
    // shell on the same topic; the state topic follows both.
    let switch = &first[&hub_config("chime_tea", "switch")];
    let enabled_topic = str_of(switch, "command_topic");
    assert_eq!(enabled_topic, "hearth/hub/chimes/tea/enabled/set");
    let view = str_of(switch, "state_topic").to_owned();
    ha.publish(
        enabled_topic,
        QoS::AtLeastOnce,
        false,
        str_of(switch, "payload_off"),
    )
    .await;
    let off: Value = serde_json::from_slice(&ha.recv_on(&view, WAIT).await.payload).unwrap();
    assert_eq!(off["enabled"], false, "{off}");
    assert_eq!(
        off["next_at"],
        Value::Null,
        "a disabled chime has no next time"
    );
    publish(port, enabled_topic, "ON");
    let on: Value = serde_json::from_slice(&ha.recv_on(&view, WAIT).await.payload).unwrap();
    assert_eq!(on["enabled"], true, "{on}");
    assert_eq!(on["schedule"], "16:20", "nothing else changed");
    assert_eq!(on["source"], "config", "a config chime stays one");
    publish(port, enabled_topic, "maybe");
    let error = ha.recv_on("hearth/hub/error", WAIT).await;
    assert!(
        String::from_utf8_lossy(&error.payload).contains("enabled/set"),
        "{error:?}"
    );

    // "Play now": the chime plays on its speaker at once.
    let play = &first[&hub_config("chime_tea", "button")];
    ha.publish(
        str_of(play, "command_topic"),
        QoS::AtLeastOnce,
        false,
        str_of(play, "payload_press"),
    )
    .await;
    let played: Value =
        serde_json::from_slice(&ha.recv_on("hearth/chime/kitchen/play", WAIT).await.payload)
            .unwrap();
    assert_eq!(played["sound"], "tea.wav");
    assert_eq!(played["chime"], "tea");

    // A press reaches the event entity and matches exactly one device
    // trigger: the one whose payload equals the event's event_type.
    let event = &first[&hub_config("button_desk", "event")];
    publish(port, "hearth/button/desk/press", "double");
    let fired: Value =
        serde_json::from_slice(&ha.recv_on(str_of(event, "state_topic"), WAIT).await.payload)
            .unwrap();
    let types: Vec<&str> = event["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        types.contains(&fired["event_type"].as_str().unwrap()),
        "event {fired} is not one of {types:?}"
    );
    let matching: BTreeMap<&String, &Value> = first
        .iter()
        .filter(|(topic, c)| {
            topic.contains("/device_automation/")
                && c["topic"] == event["state_topic"]
                && c["payload"] == fired["event_type"]
        })
        .collect();
    assert_eq!(matching.len(), 1, "{matching:#?}");
    assert_eq!(
        matching.values().next().unwrap()["type"],
        "button_double_press"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_off_the_hub_says_nothing_to_home_assistant() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, &format!("[hub]\ndiscovery = false\n{HUB_TOML}")).await;
    wait_ready(&hub).await;
    let port = mqtt_port(&hub);
    // One filter for everything, so the order the hub published in holds.
    let mut ha = TestClient::connect(port, "home-assistant").await;
    ha.subscribe("#", QoS::AtLeastOnce).await;
    publish(port, "hearth/button/desk/set", "ON");
    ha.publish("homeassistant/status", QoS::AtLeastOnce, false, "online")
        .await;
    // The marker: a bad command the hub reports on hearth/hub/error once it
    // took the ones before (it takes its commands in order and publishes on
    // one connection), so an announcement of desk comes before the report.
    publish(port, "hearth/button/desk/set", "sideways");
    let seen: Vec<String> = ha
        .collect_until("hearth/hub/error")
        .await
        .into_iter()
        .map(|p| p.topic)
        .filter(|t| t.starts_with("homeassistant/"))
        .collect();
    assert_eq!(
        seen,
        ["homeassistant/status"],
        "the hub told Home Assistant something"
    );
    hub.stop().await;
}

/// Retained configs of the hub's device that nothing backs any more (a
/// button and a chime removed while the hub was down, a database restored
/// from an old backup) are cleared when the hub connects; current ones and
/// other devices' configs are left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_hub_entities_left_on_the_broker_are_cleared() {
    let db = TestDb::new(Backend::Sqlite).await;
    let broker = hearth_testkit::start_broker(&hearth_testkit::broker_config());
    let port = broker.mqtt_addr().port();
    let stale = [
        hub_config("chime_gone", "button"),
        hub_config("button_ghost", "event"),
        hub_config("button_ghost_single", "device_automation"),
    ];
    let foreign = format!("{DISCOVERY_PREFIX}/sensor/someone_else/x/config");
    for topic in stale.iter().chain([&foreign]) {
        let publish = mosquitto_pub(
            port,
            &["-t", topic, "-r", "-q", "1", "-m", r#"{"name":"x"}"#],
        );
        assert!(
            publish.status.success(),
            "{}",
            String::from_utf8_lossy(&publish.stderr)
        );
    }
    let hub = common::spawn_hub_on(&db, &format!("mqtt://127.0.0.1:{port}"), HUB_TOML).await;
    wait_ready(&hub).await;

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let topics: BTreeSet<String> = retained_discovery(port)
            .await
            .into_iter()
            // A clear arriving live while reading is no entity.
            .filter(|s| !s.is_removal())
            .map(|s| s.topic)
            .collect();
        let left: Vec<_> = stale.iter().filter(|t| topics.contains(*t)).collect();
        if left.is_empty() {
            for kept in [
                hub_config("chime_tea", "button"),
                hub_config("clock", "sensor"),
                foreign.clone(),
            ] {
                assert!(topics.contains(&kept), "{kept} was cleared: {topics:?}");
            }
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still retained: {left:?}"
        );
    }
    hub.stop().await;
}
