//! The embedded broker enforcing scripts/mosquitto-acl-example/acl, loaded
//! unchanged, and keeping client ids to their users: real clients over TCP
//! (mosquitto_pub/sub and rumqttc) logged in as the users of
//! docs/security.md. A refusal is checked up to a marker message sent after
//! it by the same client, never by waiting for quiet.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use hearth_broker::{BrokerConfig, Password, RefusalCounts, RunningBroker};
use hearth_testkit::{BrokerProcess, Subscriber, TestClient, mosquitto_pub, start_broker};
use rumqttc::{QoS, SubscribeReasonCode};

const WAIT: Duration = Duration::from_secs(10);
const USERS: [(&str, &str); 6] = [
    ("hub", "hub-pw"),
    ("homeassistant", "ha-pw"),
    ("alice", "alice-pw"),
    ("pi-1", "pi1-pw"),
    ("pi-2", "pi2-pw"),
    ("desk", "desk-pw"),
];

fn example_acl() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/mosquitto-acl-example/acl")
}

fn config() -> BrokerConfig {
    BrokerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        users: USERS
            .iter()
            .map(|(u, p)| ((*u).to_owned(), Password::new(*p)))
            .collect::<BTreeMap<_, _>>(),
        acl_file: Some(example_acl()),
        ..BrokerConfig::default()
    }
}

fn pass(user: &str) -> &'static str {
    USERS.iter().find(|(u, _)| *u == user).unwrap().1
}

/// mosquitto_pub as `user` at QoS 1: a refused PUBLISH still gets its
/// PUBACK (as from Mosquitto), so it exits 0 either way.
fn publish(port: u16, user: &str, topic: &str, payload: &str) {
    let args = [
        "-u",
        user,
        "-P",
        pass(user),
        "-q",
        "1",
        "-t",
        topic,
        "-m",
        payload,
    ];
    let out = mosquitto_pub(port, &args);
    assert!(
        out.status.success(),
        "{user} publishing {topic}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn subscriber(port: u16, user: &str, filter: &str) -> Subscriber {
    Subscriber::start(port, filter, &["-u", user, "-P", pass(user)])
}

async fn client(port: u16, user: &str, id: &str) -> Result<TestClient, String> {
    let mut options = TestClient::options(port, id);
    options.set_credentials(user, pass(user));
    TestClient::try_connect(options).await
}

fn refusals(broker: &RunningBroker) -> RefusalCounts {
    broker.refusals()
}

#[test]
fn a_node_publishes_only_under_its_own_node_and_the_hub_anywhere() {
    let broker = start_broker(&config());
    let port = broker.mqtt_addr().port();
    let spy = subscriber(port, "hub", "hearth/#");

    publish(port, "pi-1", "hearth/node/pi-1/light/lamp/state", "ON");
    spy.expect_line("hearth/node/pi-1/light/lamp/state ON", WAIT);
    let forged = [
        "hearth/node/pi-2/light/lamp/state",
        "hearth/node/pi-2/availability",
        "hearth/node/pi-2/light/lamp/set",
        "hearth/hub/availability",
        "hearth/hub/chimes/wake/set",
        "hearth/button/desk/state",
        "hearth/clock/hhmm",
    ];
    for topic in forged {
        publish(port, "pi-1", topic, "FORGED");
    }
    // The marker: sent after the forgeries by the same user, so anything
    // that got through would have arrived before it.
    publish(port, "pi-1", "hearth/node/pi-1/climate/temperature", "21.5");
    let before = spy.expect_line("hearth/node/pi-1/climate/temperature 21.5", WAIT);
    assert!(
        before.iter().all(|l| !l.contains("FORGED")),
        "a node published outside its subtree: {before:?}"
    );
    assert_eq!(
        refusals(&broker).publish,
        forged.len() as u64,
        "publish refusals counted"
    );

    for topic in [
        "hearth/node/pi-1/light/lamp/set",
        "hearth/button/desk/state",
        "hearth/hub/availability",
        "homeassistant/light/x/config",
    ] {
        publish(port, "hub", topic, "BY-HUB");
        if topic.starts_with("hearth/") {
            spy.expect_line(&format!("{topic} BY-HUB"), WAIT);
        }
    }
    assert_eq!(refusals(&broker).publish, forged.len() as u64);
}

#[test]
fn people_home_assistant_and_buttons_command_but_cannot_fake_state() {
    let broker = start_broker(&config());
    let port = broker.mqtt_addr().port();
    let spy = subscriber(port, "hub", "hearth/#");
    for user in ["alice", "homeassistant"] {
        publish(port, user, "hearth/button/desk/state", "FORGED");
        publish(port, user, "hearth/node/pi-1/light/lamp/state", "FORGED");
        publish(port, user, "hearth/button/desk/set", user);
        let seen = spy.expect_line(&format!("hearth/button/desk/set {user}"), WAIT);
        assert!(seen.is_empty(), "{user} faked a state: {seen:?}");
        for topic in [
            "hearth/button/desk/press",
            "hearth/node/pi-1/light/lamp/set",
            "hearth/hub/chimes/tea/set",
            "hearth/hub/chimes/tea/play",
            "hearth/hub/chimes/tea/enabled/set",
            "hearth/chime/kitchen/play",
        ] {
            publish(port, user, topic, user);
            spy.expect_line(&format!("{topic} {user}"), WAIT);
        }
    }
    // A button (user = its id) presses itself, not another button.
    publish(port, "desk", "hearth/button/hall/press", "FORGED");
    publish(port, "desk", "hearth/button/desk/press", "desk");
    let seen = spy.expect_line("hearth/button/desk/press desk", WAIT);
    assert!(seen.is_empty(), "a button pressed another: {seen:?}");
    assert_eq!(refusals(&broker).publish, 5);
}

#[test]
fn a_subscribe_outside_the_grants_gets_0x80_and_the_rest_of_it_is_granted() {
    let broker = start_broker(&config());
    let port = broker.mqtt_addr().port();
    // One SUBSCRIBE with three filters: the middle one is not pi-1's.
    let pi1 = Subscriber::start(
        port,
        "hearth/node/pi-1/+/+/set",
        &[
            "-t",
            "hearth/node/+/+/+/set",
            "-t",
            "homeassistant/status",
            "-u",
            "pi-1",
            "-P",
            pass("pi-1"),
        ],
    );
    assert_eq!(pi1.granted(), "0, 128, 0", "pi-1's SUBACK");
    assert_eq!(refusals(&broker).subscribe, 1);
    publish(port, "hub", "hearth/node/pi-2/light/lamp/set", "ON");
    publish(port, "hub", "hearth/node/pi-1/light/lamp/set", "TOGGLE");
    let seen = pi1.expect_line("hearth/node/pi-1/light/lamp/set TOGGLE", WAIT);
    assert!(
        seen.is_empty(),
        "pi-1 read another node's command: {seen:?}"
    );

    // Home Assistant and people read everything under hearth/, but not $SYS
    // or each other's discovery namespace beyond their grants.
    let ha = subscriber(port, "homeassistant", "hearth/#");
    assert_eq!(ha.granted(), "0");
    let alice = Subscriber::start(
        port,
        "hearth/#",
        &["-t", "homeassistant/#", "-u", "alice", "-P", pass("alice")],
    );
    assert_eq!(alice.granted(), "0, 128");
    assert_eq!(refusals(&broker).subscribe, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_sees_the_refusal_in_its_suback_and_keeps_its_connection() {
    let broker = start_broker(&config());
    let port = broker.mqtt_addr().port();
    let pi1 = client(port, "pi-1", "hearth-node-pi-1").await.unwrap();
    for filter in ["hearth/#", "#", "hearth/node/pi-2/+/+/set"] {
        let codes = pi1.try_subscribe(filter, QoS::AtLeastOnce).await;
        assert_eq!(codes, [SubscribeReasonCode::Failure], "SUBACK for {filter}");
    }
    // Still connected: its own command filter is granted afterwards.
    let codes = pi1
        .try_subscribe("hearth/node/pi-1/+/+/set", QoS::AtLeastOnce)
        .await;
    assert_eq!(codes, [SubscribeReasonCode::Success(QoS::AtLeastOnce)]);
    assert_eq!(refusals(&broker).subscribe, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_retained_publish_is_not_kept() {
    let broker = start_broker(&config());
    let port = broker.mqtt_addr().port();
    let mut spy = client(port, "hub", "spy").await.unwrap();
    spy.subscribe("hearth/node/pi-1/availability", QoS::AtLeastOnce)
        .await;
    let pi1 = client(port, "pi-1", "hearth-node-pi-1").await.unwrap();
    pi1.publish(
        "hearth/node/pi-2/availability",
        QoS::AtLeastOnce,
        true,
        "offline",
    )
    .await;
    pi1.publish(
        "hearth/node/pi-1/availability",
        QoS::AtLeastOnce,
        true,
        "online",
    )
    .await;
    // pi-1's own publish, after the forgery on the same connection: once it
    // arrived the broker has handled both.
    spy.recv_on("hearth/node/pi-1/availability", WAIT).await;
    assert_eq!(refusals(&broker).publish, 1);
    // The hub reads what is retained, ended by a marker it publishes after
    // its SUBACKs (the broker hands retained messages over first).
    const MARKER: &str = "hearth/hub/marker";
    let mut hub = client(port, "hub", "hearth-hub").await.unwrap();
    hub.subscribe("hearth/node/+/availability", QoS::AtLeastOnce)
        .await;
    hub.subscribe(MARKER, QoS::AtLeastOnce).await;
    hub.publish(MARKER, QoS::AtLeastOnce, false, "end").await;
    let kept: Vec<(String, String)> = hub
        .collect_until(MARKER)
        .await
        .into_iter()
        .map(|p| (p.topic, String::from_utf8_lossy(&p.payload).into_owned()))
        .collect();
    assert_eq!(
        kept,
        [(
            "hearth/node/pi-1/availability".to_owned(),
            "online".to_owned()
        )],
        "retained after pi-1 forged pi-2's availability"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_in_use_by_another_user_is_refused_and_its_own_user_takes_over() {
    let broker = start_broker(&config());
    let port = broker.mqtt_addr().port();
    let mut hub = client(port, "hub", "hearth-hub").await.unwrap();
    hub.subscribe("hearth/hub/marker", QoS::AtLeastOnce).await;

    let thief = client(port, "pi-1", "hearth-hub").await;
    let why = thief.expect_err("pi-1 took the hub's client id");
    assert!(why.contains("BadClientId"), "refusal: {why}");
    assert_eq!(refusals(&broker).client_id, 1);
    // The hub's connection survived: it still gets what it subscribed to.
    let other = client(port, "hub", "hub-tool").await.unwrap();
    other
        .publish("hearth/hub/marker", QoS::AtLeastOnce, false, "still-here")
        .await;
    let got = hub.recv_on("hearth/hub/marker", WAIT).await;
    assert_eq!(&got.payload[..], b"still-here");

    // The same user reconnecting takes its session over (MQTT 3.1.4-2).
    let again = client(port, "hub", "hearth-hub").await;
    assert!(
        again.is_ok(),
        "the hub could not take over its own id: {again:?}"
    );
    assert_eq!(refusals(&broker).client_id, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ids_can_be_required_to_start_with_the_user_name() {
    let broker = start_broker(&BrokerConfig {
        client_id_prefix_user: true,
        ..config()
    });
    let port = broker.mqtt_addr().port();
    let refused = client(port, "pi-1", "hearth-node-pi-1").await;
    let why = refused.expect_err("an id without the user name got in");
    assert!(why.contains("BadClientId"), "refusal: {why}");
    client(port, "pi-1", "pi-1-agent").await.unwrap();
    assert_eq!(refusals(&broker).client_id, 1);
}

#[test]
fn the_refusal_log_names_user_client_id_and_topic_and_no_password() {
    let acl = example_acl();
    let mut broker = BrokerProcess::start_exe(
        env!("CARGO_BIN_EXE_hearth-broker").as_ref(),
        &[
            ("HEARTH_BROKER__ACL_FILE", acl.to_str().unwrap()),
            ("HEARTH_BROKER__USERS__HUB", "Hub-Secret-3318"),
            ("HEARTH_BROKER__USERS__PIONE", "Node-Secret-7261"),
        ],
        &[],
    );
    let port = broker.port();
    let out = mosquitto_pub(
        port,
        &[
            "-u",
            "pione",
            "-P",
            "Node-Secret-7261",
            "-i",
            "agent-7",
            "-q",
            "1",
            "-t",
            "hearth/node/pitwo/availability",
            "-m",
            "x",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let line = broker
        .log()
        .wait_for(|l| l.contains("publish refused").then(|| l.to_owned()))
        .unwrap();
    for want in ["pione", "agent-7", "hearth/node/pitwo/availability"] {
        assert!(line.contains(want), "{want:?} missing from {line:?}");
    }
    let (_, log) = broker.terminate();
    let log = log.join("\n");
    for secret in ["Hub-Secret-3318", "Node-Secret-7261"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}
