//! The recommended way to confine each client to its own topics: Debian's mosquitto with the
//! ACL in scripts/mosquitto-acl-example/, exercised with mosquitto_pub/sub and Hearth's own client.
//!
//! rumqttd (hearth-broker) has no topic ACLs, so this is where "a node may
//! only publish under its own hearth/node/<node>/" is actually enforced.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hearth_common::mqtt::{self, LinkEvent, MqttSettings, Secret};
use hearth_testkit::{MosquittoBroker, Subscriber, mosquitto_pub, require_tool};
use rumqttc::QoS;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(5);
/// How long to watch for a message that must not arrive.
const QUIET: Duration = Duration::from_millis(700);
const ACL: &str = include_str!("../../scripts/mosquitto-acl-example/acl");
const USERS: [(&str, &str); 5] = [
    ("hub", "hub-pw"),
    ("homeassistant", "ha-pw"),
    ("alice", "alice-pw"),
    ("pi-1", "pi1-pw"),
    ("pi-2", "pi2-pw"),
];

/// mosquitto with the example ACL and a password file made by mosquitto_passwd.
fn broker(dir: &Path) -> MosquittoBroker {
    require_tool("mosquitto_passwd");
    let passwd = dir.join("passwd");
    for (i, (user, password)) in USERS.iter().enumerate() {
        let mut cmd = Command::new("mosquitto_passwd");
        if i == 0 {
            cmd.arg("-c");
        }
        let out = cmd
            .arg("-b")
            .arg(&passwd)
            .args([user, password])
            .output()
            .unwrap();
        assert!(out.status.success(), "mosquitto_passwd: {out:?}");
    }
    let acl = dir.join("hearth.acl");
    std::fs::write(&acl, ACL).unwrap();
    MosquittoBroker::start_with_config(&format!(
        "allow_anonymous false\npassword_file {}\nacl_file {}\n",
        passwd.display(),
        acl.display()
    ))
}

fn pass(user: &str) -> &'static str {
    USERS.iter().find(|(u, _)| *u == user).unwrap().1
}

/// mosquitto_pub as `user`, QoS 1.
fn publish(port: u16, user: &str, topic: &str, payload: &str) {
    let out = mosquitto_pub(
        port,
        &[
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
        ],
    );
    assert!(
        out.status.success(),
        "{user} could not even connect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn subscriber(port: u16, user: &str, filter: &str) -> Subscriber {
    Subscriber::start(port, filter, &["-u", user, "-P", pass(user)])
}

#[test]
fn a_node_may_publish_only_under_its_own_node_and_the_hub_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let port = broker.port();
    let spy = subscriber(port, "hub", "hearth/#");

    // pi-1 reports its own state: delivered.
    publish(port, "pi-1", "hearth/node/pi-1/light/lamp/state", "ON");
    spy.expect_line("hearth/node/pi-1/light/lamp/state ON", WAIT);

    // pi-1 impersonating pi-2, the hub, or a button, or commanding pi-2: all dropped.
    for topic in [
        "hearth/node/pi-2/light/lamp/state",
        "hearth/node/pi-2/availability",
        "hearth/node/pi-2/light/lamp/set",
        "hearth/hub/availability",
        "hearth/hub/chimes/wake/set",
        "hearth/button/desk/state",
        "hearth/clock/hhmm",
    ] {
        publish(port, "pi-1", topic, "FORGED");
    }
    // A marker after the forgeries, from the same user on an allowed topic:
    // once it arrives, anything that got through would have arrived before it.
    publish(port, "pi-1", "hearth/node/pi-1/climate/temperature", "21.5");
    let before_marker = spy.expect_line("hearth/node/pi-1/climate/temperature 21.5", WAIT);
    assert!(
        before_marker.iter().all(|l| !l.contains("FORGED")),
        "a node published outside its subtree: {before_marker:?}"
    );

    // The hub may publish anywhere under hearth/.
    for topic in [
        "hearth/node/pi-1/light/lamp/set",
        "hearth/button/desk/state",
        "hearth/hub/availability",
    ] {
        publish(port, "hub", topic, "BY-HUB");
        spy.expect_line(&format!("{topic} BY-HUB"), WAIT);
    }
}

#[test]
fn a_node_reads_only_commands_for_itself() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let port = broker.port();
    // pi-1 asks for everything; mosquitto delivers only what it may read.
    let pi1 = subscriber(port, "pi-1", "hearth/#");
    publish(port, "hub", "hearth/node/pi-2/light/lamp/set", "ON");
    publish(port, "hub", "hearth/button/desk/state", "ON");
    publish(port, "alice", "hearth/node/pi-1/light/lamp/set", "TOGGLE");
    let seen = pi1.expect_line("hearth/node/pi-1/light/lamp/set TOGGLE", WAIT);
    assert!(seen.is_empty(), "pi-1 read other topics: {seen:?}");
    assert_eq!(pi1.next_line(QUIET), None);
}

#[test]
fn people_and_home_assistant_command_but_cannot_fake_state() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let port = broker.port();
    let spy = subscriber(port, "hub", "hearth/#");
    for user in ["alice", "homeassistant"] {
        publish(port, user, "hearth/button/desk/state", "FORGED");
        publish(port, user, "hearth/node/pi-1/light/lamp/state", "FORGED");
        publish(port, user, "hearth/button/desk/set", user);
        let seen = spy.expect_line(&format!("hearth/button/desk/set {user}"), WAIT);
        assert!(seen.is_empty(), "{user} faked a state: {seen:?}");
        // Every command Home Assistant's entities send gets through.
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
    // Wrong password, or no password: not even connected.
    let out = mosquitto_pub(port, &["-u", "alice", "-P", "nope", "-t", "x", "-m", "y"]);
    assert!(!out.status.success(), "a wrong password got in");
    let out = mosquitto_pub(port, &["-t", "hearth/button/desk/set", "-m", "ON"]);
    assert!(!out.status.success(), "an anonymous client got in");
}

/// Runs Hearth's MQTT link (settings -> options -> drive) as `user` with an
/// availability will, as the hub and agent do, until its first event.
async fn hearth_link(
    port: u16,
    user: &str,
    password: &str,
    will_topic: &str,
) -> (
    rumqttc::AsyncClient,
    mpsc::Receiver<LinkEvent>,
    CancellationToken,
) {
    let settings = MqttSettings {
        url: format!("mqtt://127.0.0.1:{port}"),
        username: Some(user.to_owned()),
        password: Some(Secret::new(password)),
        ..MqttSettings::default()
    };
    let options = settings
        .options(
            &format!("hearth-{user}"),
            Some(mqtt::offline_will(will_topic)),
        )
        .unwrap();
    let (client, eventloop) = mqtt::client(options);
    let (tx, rx) = mpsc::channel(mqtt::EVENT_CHANNEL_CAPACITY);
    let stop = CancellationToken::new();
    tokio::spawn(mqtt::drive(eventloop, tx, stop.clone()));
    (client, rx, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hearth_clients_log_in_with_their_own_identity() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let port = broker.port();
    let spy = subscriber(port, "hub", "hearth/#");

    // The node agent's identity: its availability will and state work.
    let (agent, mut events, stop) =
        hearth_link(port, "pi-1", "pi1-pw", "hearth/node/pi-1/availability").await;
    match tokio::time::timeout(WAIT, events.recv()).await.unwrap() {
        Some(LinkEvent::Connected { .. }) => {}
        other => panic!("pi-1 did not connect: {other:?}"),
    }
    agent
        .subscribe("hearth/node/pi-1/+/+/set", QoS::AtLeastOnce)
        .await
        .unwrap();
    agent
        .publish(
            "hearth/node/pi-1/availability",
            QoS::AtLeastOnce,
            true,
            "online",
        )
        .await
        .unwrap();
    spy.expect_line("hearth/node/pi-1/availability online", WAIT);
    // The command goes out once the broker acknowledged the subscription.
    loop {
        match tokio::time::timeout(WAIT, events.recv()).await {
            Ok(Some(LinkEvent::Subscribed)) => break,
            Ok(Some(LinkEvent::Message(_))) => continue,
            other => panic!("pi-1's SUBSCRIBE was not acknowledged: {other:?}"),
        }
    }
    publish(port, "hub", "hearth/node/pi-1/light/lamp/set", "ON");
    loop {
        match tokio::time::timeout(WAIT, events.recv()).await.unwrap() {
            Some(LinkEvent::Message(p)) => {
                assert_eq!(p.topic, "hearth/node/pi-1/light/lamp/set");
                break;
            }
            Some(_) => continue,
            None => panic!("link closed"),
        }
    }
    stop.cancel();

    // A wrong password is reported as a disconnect the driver retries, not a crash.
    let (_client, mut events, stop) =
        hearth_link(port, "pi-2", "wrong", "hearth/node/pi-2/availability").await;
    match tokio::time::timeout(WAIT, events.recv()).await.unwrap() {
        Some(LinkEvent::Disconnected { error, .. }) => {
            let error = error.to_lowercase().replace(' ', "");
            assert!(error.contains("notauthorized"), "{error}");
        }
        other => panic!("pi-2 with a wrong password: {other:?}"),
    }
    stop.cancel();
}
