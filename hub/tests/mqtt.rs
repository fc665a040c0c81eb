//! The hub over MQTT: rules, events, retained state, restarts, bad input. Each scenario runs
//! against the embedded broker and against Debian's mosquitto (the hub as an external client).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestDb, WAIT, call, spawn_hub, spawn_hub_on, wait_ready};
use hearth_hub::Hub;
use hearth_protocol::OnOff;
use hearth_testkit::{MosquittoBroker, Subscriber, TestClient, mosquitto_pub};
use rumqttc::QoS;

const LAMP_RULE: &str = r#"
[[rules]]
name = "desk toggles the lamp"
when = { button = "desk", action = "single" }
then = [{ output = "pi-1/light/lamp", command = "TOGGLE" }]
"#;

/// A hub plus the broker it talks to.
struct Setup {
    hub: Hub,
    port: u16,
    _mosquitto: Option<MosquittoBroker>,
}

async fn setup(db: &TestDb, mosquitto: bool, extra: &str) -> Setup {
    if mosquitto {
        let broker = MosquittoBroker::start();
        let hub = spawn_hub_on(db, &format!("mqtt://127.0.0.1:{}", broker.port()), extra).await;
        wait_ready(&hub).await;
        Setup {
            port: broker.port(),
            hub,
            _mosquitto: Some(broker),
        }
    } else {
        let hub = spawn_hub(db, extra).await;
        wait_ready(&hub).await;
        Setup {
            port: common::mqtt_port(&hub),
            hub,
            _mosquitto: None,
        }
    }
}

macro_rules! on_both_brokers {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                ($body)(false).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mosquitto() {
                ($body)(true).await
            }
        }
    };
}

on_both_brokers!(
    a_press_sends_the_rule_command_and_the_event,
    async |mosquitto: bool| {
        let db = TestDb::new(Backend::Sqlite).await;
        let s = setup(&db, mosquitto, LAMP_RULE).await;
        let sub = Subscriber::start(s.port, "hearth/#", &["-q", "1"]);
        sub.expect_line("hearth/hub/availability online", WAIT);

        let out = mosquitto_pub(
            s.port,
            &["-t", "hearth/button/desk/press", "-q", "1", "-m", "single"],
        );
        assert!(
            out.status.success(),
            "mosquitto_pub: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // expect_line's WAIT only bounds a hang; how soon is hearth-bench's figure.
        let before = sub.expect_line("hearth/node/pi-1/light/lamp/set ON", WAIT);
        assert!(before.iter().all(|l| !l.contains("lamp/set")), "{before:?}");
        let event = sub.next_line(WAIT).unwrap();
        assert!(
            event.starts_with("hearth/button/desk/event {\"event_type\":\"single\",\"at\":\""),
            "{event}"
        );

        // A double press does not match the single-press rule: only the event.
        mosquitto_pub(
            s.port,
            &[
                "-t",
                "hearth/button/desk/press",
                "-m",
                "{\"action\":\"double\"}",
            ],
        );
        // The hub publishes a press's commands before its event (the lamp's
        // set came before the single press's event above), on one
        // connection, and this subscriber's one filter keeps that order: a
        // lamp command for the double press would come before its event.
        let (event, before) = sub.expect_where(
            |l| {
                l.starts_with("hearth/button/desk/event") && l.contains("\"event_type\":\"double\"")
            },
            WAIT,
        );
        assert!(
            before.iter().all(|l| !l.contains("lamp/set")),
            "a double press set the lamp: {before:?}, then {event}"
        );
        s.hub.stop().await;
    }
);

on_both_brokers!(
    states_are_retained_and_bad_input_is_reported,
    async |mosquitto: bool| {
        let db = TestDb::new(Backend::Sqlite).await;
        let s = setup(&db, mosquitto, "").await;
        let published = mosquitto_pub(
            s.port,
            &["-t", "hearth/button/desk/set", "-q", "1", "-m", "ON"],
        );
        assert!(
            published.status.success(),
            "mosquitto_pub: {}",
            String::from_utf8_lossy(&published.stderr)
        );
        let errors = Subscriber::start(s.port, "hearth/hub/error", &[]);
        // A late subscriber sees the retained state.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let late = Subscriber::start(s.port, "hearth/button/desk/state", &[]);
        late.expect_line("hearth/button/desk/state ON", WAIT);

        mosquitto_pub(s.port, &["-t", "hearth/button/desk/set", "-m", "sideways"]);
        let line = errors.next_line(WAIT).unwrap();
        assert!(
            line.starts_with(
                "hearth/hub/error {\"topic\":\"hearth/button/desk/set\",\"error\":\"expected ON"
            ),
            "{line}"
        );
        let (_, _, body) = call(
            "GET",
            &format!("http://{}/api/v0/buttons/desk", s.hub.http_addr),
            None,
        )
        .await;
        assert_eq!(body, "ON\n", "bad input changed nothing");
        s.hub.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart_of_hub_and_broker_together() {
    let db = TestDb::new(Backend::Sqlite).await;
    let first = spawn_hub(&db, "").await;
    wait_ready(&first).await;
    let port = common::mqtt_port(&first);
    mosquitto_pub(
        port,
        &["-t", "hearth/button/desk/set", "-q", "1", "-m", "ON"],
    );
    mosquitto_pub(port, &["-t", "hearth/button/desk/press", "-q", "1", "-n"]);
    // The hub has taken both (stopping flushes what it has not stored yet).
    let deadline = Instant::now() + WAIT;
    loop {
        let desk = first.house().buttons.values().next().cloned();
        if desk
            .as_ref()
            .is_some_and(|b| b.state == OnOff::On && b.press_count == 1)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hub never took the command and the press: {desk:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.stop().await;

    // A new process: a new embedded broker with no retained messages at all.
    let second = spawn_hub(&db, "").await;
    wait_ready(&second).await;
    let sub = Subscriber::start(common::mqtt_port(&second), "hearth/button/+/state", &[]);
    sub.expect_line("hearth/button/desk/state ON", WAIT);
    let house = second.house();
    assert_eq!(
        house.buttons.values().next().map(|b| b.press_count),
        Some(1)
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_state_returns_after_a_broker_restart() {
    let db = TestDb::new(Backend::Sqlite).await;
    let broker = MosquittoBroker::start();
    let port = broker.port();
    let hub = spawn_hub_on(&db, &format!("mqtt://127.0.0.1:{port}"), "").await;
    wait_ready(&hub).await;
    let before = Subscriber::start(port, "hearth/button/desk/state", &[]);
    mosquitto_pub(
        port,
        &["-t", "hearth/button/desk/set", "-q", "1", "-m", "ON"],
    );
    // The hub has taken the command (and stored it) before the broker dies.
    before.expect_line("hearth/button/desk/state ON", WAIT);
    drop(before);

    let restarted = broker.restart();
    let back = Instant::now();
    let sub = Subscriber::start(port, "hearth/button/desk/state", &[]);
    // WAIT only bounds a hang: the figure below is what a user waits.
    sub.expect_line("hearth/button/desk/state ON", WAIT);
    eprintln!(
        "retained state back {:?} after the broker restarted",
        back.elapsed()
    );
    // And the hub obeys new commands on the new broker.
    mosquitto_pub(
        port,
        &["-t", "hearth/button/desk/set", "-q", "1", "-m", "OFF"],
    );
    sub.expect_line("hearth/button/desk/state OFF", WAIT);
    hub.stop().await;
    drop(restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_random_messages_never_stop_the_hub() {
    use rand::{Rng, SeedableRng};
    let db = TestDb::new(Backend::Sqlite).await;
    let s = setup(&db, false, LAMP_RULE).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x4ea7);
    let fuzzer = TestClient::connect(s.port, "fuzzer").await;
    let levels = [
        "button",
        "node",
        "desk",
        "press",
        "set",
        "state",
        "climate",
        "light",
        "+x",
        "",
        "Desk",
        "availability",
        "hub",
        "chimes",
    ];
    let real = [
        "hearth/button/desk/set",
        "hearth/button/desk/press",
        "hearth/node/pi-1/climate",
        "hearth/node/pi-1/availability",
        "hearth/node/pi-1/light/red/state",
    ];
    for i in 0..10_000 {
        let mut topic = String::from("hearth");
        if i % 2 == 0 {
            topic = real[rng.random_range(0..real.len())].to_owned();
        } else {
            for _ in 0..rng.random_range(1..6) {
                topic.push('/');
                topic.push_str(levels[rng.random_range(0..levels.len())]);
            }
        }
        let len = rng.random_range(0..64);
        let payload: Vec<u8> = match i % 3 {
            0 => (0..len).map(|_| rng.random()).collect(),
            1 => [
                "ON",
                "{\"state\":",
                "{\"action\":\"triple\"}",
                "",
                "TOGGLE",
                "{\"temperature\":1e999}",
            ][rng.random_range(0..6)]
            .into(),
            _ => (0..len).map(|_| rng.random_range(b' '..b'~')).collect(),
        };
        let topic = topic.replace("+x", "x").replace("//", "/");
        let qos = if i % 4 < 2 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        fuzzer
            .client
            .publish(topic, qos, false, payload)
            .await
            .unwrap();
    }
    // Still answering HTTP, and still acting on a real press.
    let base = format!("http://{}", s.hub.http_addr);
    assert_eq!(call("GET", &format!("{base}/healthz"), None).await.0, 200);
    let sub = Subscriber::start(s.port, "hearth/node/pi-1/light/lamp/set", &[]);
    mosquitto_pub(
        s.port,
        &["-t", "hearth/button/desk/press", "-q", "1", "-m", "single"],
    );
    sub.next_line(Duration::from_secs(20))
        .expect("the hub still acts on presses");
    // The broker keeps order within a filter only: the press can overtake
    // random messages still queued under the hub's other filters, so the
    // count is read until it is in (bounded; no message marks the moment).
    let deadline = Instant::now() + Duration::from_secs(20);
    let invalid = loop {
        let (_, _, metrics) = call("GET", &format!("{base}/metrics"), None).await;
        let invalid: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("hearth_errors_total{reason=\"invalid_message\"} "))
            .and_then(|v| v.parse().ok())
            .unwrap();
        if invalid > 1_000 || Instant::now() > deadline {
            break invalid;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(invalid > 1_000, "rejections are counted: {invalid}");
    s.hub.stop().await;
}

const STATE_RULES: &str = r#"
[[rules]]
name = "bedroom on"
when = { topic = "hearth/button/bedroom/state", payload = "ON" }
then = [{ publish = "test/fired", payload = "state" }]

[[rules]]
name = "bedroom set"
when = { topic = "hearth/button/bedroom/set", payload = "ON" }
then = [{ publish = "test/fired", payload = "set" }]

[[rules]]
name = "retained command"
when = { topic = "hearth/test/retained" }
then = [{ publish = "test/fired", payload = "retained" }]
"#;

/// Where a hub with [`marker_rule`] answers [`FIRED_MARKER`].
const MARKED: &str = "test/marked";

/// Published by the test after what must not fire; every hub answers it.
const FIRED_MARKER: &str = "hearth/test/marker";

/// A rule answering the marker on `answer`. Its filter, `hearth/#`, covers
/// every other filter of STATE_RULES and the hub's own, so the hub
/// subscribes to that one filter and gets the marker after everything the
/// broker took before it (a broker keeps the order within one
/// subscription; rumqttd may reorder across subscriptions). Its answer
/// goes out after anything the hub published for earlier messages.
fn marker_rule(answer: &str) -> String {
    format!(
        r#"
[[rules]]
name = "marker"
when = {{ topic = "hearth/#", payload = "marker" }}
then = [{{ publish = "{answer}", payload = "marker" }}]
"#
    )
}

/// What fired (payloads on test/fired) before the hub answered the marker
/// on `answer`. The watcher's one filter, `test/#`, keeps the order in
/// which each hub published.
async fn fired_until(watcher: &mut TestClient, port: u16, answer: &str) -> Vec<String> {
    let published = mosquitto_pub(port, &["-t", FIRED_MARKER, "-q", "1", "-m", "marker"]);
    assert!(
        published.status.success(),
        "mosquitto_pub: {}",
        String::from_utf8_lossy(&published.stderr)
    );
    watcher
        .collect_until(answer)
        .await
        .into_iter()
        .filter(|p| p.topic == "test/fired")
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect()
}

on_both_brokers!(
    rules_fire_on_news_not_on_repeats_or_replays,
    async |mosquitto: bool| {
        let db = TestDb::new(Backend::Sqlite).await;
        let rules = format!("{STATE_RULES}{}", marker_rule(MARKED));
        let s = setup(&db, mosquitto, &rules).await;
        let mut watcher = TestClient::connect(s.port, "watcher").await;
        watcher.subscribe("test/#", QoS::AtLeastOnce).await;

        // Over HTTP, exactly as over MQTT: the set rule and the state rule.
        let base = format!("http://{}", s.hub.http_addr);
        let (status, _, _) =
            call("POST", &format!("{base}/api/v0/buttons/bedroom/on/"), None).await;
        assert_eq!(status, 200);
        let mut seen = fired_until(&mut watcher, s.port, MARKED).await;
        seen.sort();
        assert_eq!(seen, ["set", "state"], "the rules that fired on the press");

        // Home Assistant restarts: the hub re-sends every state, and the
        // state rule does not fire again (the lamp a person switched off
        // stays off). The marker goes out once the re-sent state is seen:
        // the hub took Home Assistant's birth (and anything it fired for
        // it) before, and its own echo is then on the broker before the
        // marker, on the same filter (see marker_rule).
        let states = Subscriber::start(s.port, "hearth/button/bedroom/state", &["-q", "1"]);
        states.expect_line("hearth/button/bedroom/state ON", WAIT);
        mosquitto_pub(s.port, &["-t", "homeassistant/status", "-m", "online"]);
        states.expect_line("hearth/button/bedroom/state ON", WAIT);
        let again = fired_until(&mut watcher, s.port, MARKED).await;
        assert!(again.is_empty(), "fired again: {again:?}");

        // A command someone retained fires once, live; a hub starting
        // later gets it replayed and leaves it alone.
        mosquitto_pub(
            s.port,
            &["-t", "hearth/test/retained", "-r", "-q", "1", "-m", "go"],
        );
        assert_eq!(
            fired_until(&mut watcher, s.port, MARKED).await,
            ["retained"],
            "what fired on the retained command"
        );
        if mosquitto {
            // A second hub on the same broker (new session, so the broker
            // replays what is retained) with the same rules; it answers the
            // marker on its own topic, after the replay (a broker sends a
            // new subscription what it retains before later messages).
            const LATE_MARKED: &str = "test/marked-late";
            let other = TestDb::new(Backend::Sqlite).await;
            let late_rules = format!("{STATE_RULES}{}", marker_rule(LATE_MARKED));
            let late =
                spawn_hub_on(&other, &format!("mqtt://127.0.0.1:{}", s.port), &late_rules).await;
            wait_ready(&late).await;
            let replayed = fired_until(&mut watcher, s.port, LATE_MARKED).await;
            assert!(replayed.is_empty(), "a replay fired a rule: {replayed:?}");
            late.stop().await;
        }
        s.hub.stop().await;
    }
);

/// A Pi retired the MQTT way: `mosquitto_sub --remove-retained` over its
/// topics clears what the broker kept, and the hub forgets the node, its
/// outputs and its history, without a single error, across a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_a_nodes_retained_topics_retires_it() {
    let db = TestDb::new(Backend::Sqlite).await;
    let broker = hearth_testkit::start_broker(&hearth_testkit::broker_config());
    let port = broker.mqtt_addr().port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let hub = spawn_hub_on(&db, &url, "").await;
    wait_ready(&hub).await;
    let errors = Subscriber::start(port, "hearth/hub/error", &[]);
    for (topic, payload) in [
        ("hearth/node/pi-9/availability", "online"),
        (
            "hearth/node/pi-9/climate",
            r#"{"temperature":20.5,"humidity":40}"#,
        ),
        ("hearth/node/pi-9/climate/temperature", "20.5"),
        ("hearth/node/pi-9/light/red/state", "ON"),
        ("hearth/node/pi-9/switch/fan/state", "OFF"),
        ("hearth/node/pi-1/light/lamp/state", "ON"),
    ] {
        let published = mosquitto_pub(port, &["-t", topic, "-r", "-q", "1", "-m", payload]);
        assert!(
            published.status.success(),
            "mosquitto_pub: {}",
            String::from_utf8_lossy(&published.stderr)
        );
    }
    let api = format!("http://{}/api/v1", hub.http_addr);
    let outputs = async || {
        let (_, _, body) = call("GET", &format!("{api}/outputs"), None).await;
        body
    };
    let deadline = Instant::now() + WAIT;
    while !outputs().await.contains("fan") {
        assert!(Instant::now() < deadline, "pi-9 never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    hearth_testkit::require_tool("mosquitto_sub");
    let cleared = std::process::Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "hearth/node/pi-9/#", "--remove-retained", "-W", "1"])
        .output()
        .unwrap();
    drop(cleared); // ends by its -W timeout, whatever it cleared
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, _, _) = call("GET", &format!("{api}/nodes/pi-9"), None).await;
        let left = outputs().await;
        if status == 404 && !left.contains("pi-9") {
            assert!(
                left.contains("lamp"),
                "another node's output went too: {left}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pi-9 still known: {status} {left}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One bad message on each hub filter the clearing went through: the
    // hub takes a filter's messages in order and publishes its errors in
    // the order it took them, so an error about a cleared topic would come
    // before the marker's own.
    for marker in [
        "hearth/node/marker/availability",
        "hearth/node/marker/climate",
        "hearth/node/marker/light/x/state",
    ] {
        mosquitto_pub(port, &["-t", marker, "-q", "1", "-m", "sideways"]);
        let about = format!("{{\"topic\":\"{marker}\"");
        let (_, before) = errors.expect_where(|l| l.contains(&about), WAIT);
        assert!(
            before.is_empty(),
            "clearing retained topics is not an error, but the hub said {before:?}"
        );
    }
    hub.stop().await;

    // Gone from the database too.
    let again = spawn_hub_on(&db, &url, "").await;
    wait_ready(&again).await;
    let (status, _, _) = call(
        "GET",
        &format!("http://{}/api/v1/nodes/pi-9", again.http_addr),
        None,
    )
    .await;
    assert_eq!(status, 404);
    again.stop().await;
}
