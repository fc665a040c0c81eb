//! Two agents started with the same node id (one config file copied to two Pis): each
//! connect kicks the other off the broker; they must slow down and say why.
//!
//! They share an MQTT client id, so the broker closes the older connection
//! whenever the other one connects. With the backoff reset on every ConnAck
//! both reconnected within ~100 ms forever: over ten availability messages
//! a second, and "Connection closed by peer abruptly" in a loop.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{InProcessAgent, NODE, line, node_toml, wait_online, write};
use hearth_testkit::{Subscriber, broker_config, start_broker};

/// Long enough for many flaps at full speed, short for a test.
const WINDOW: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_with_one_node_id_back_off_and_name_the_client_id() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "node.toml", &node_toml(port, ""));
    let first = InProcessAgent::start(&config);
    wait_online(port);
    let sub = Subscriber::start(port, &common::topic("availability"), &[]);

    // The second one as a real process, its log at the default level.
    let mut second = Command::new(env!("CARGO_BIN_EXE_hearth-node-agent"));
    for (key, _) in std::env::vars() {
        if key.starts_with("HEARTH_") || key == "RUST_LOG" || key == "NODE_NAME" {
            second.env_remove(key);
        }
    }
    let mut second = second
        .args(["--simulate", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = second.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });

    let lines = sub.collect_for(WINDOW);
    second.kill().unwrap();
    second.wait().unwrap();
    first.stop().await;
    let log = log.join().unwrap();

    let online = lines
        .iter()
        .filter(|l| **l == line("availability", "online"))
        .count();
    eprintln!("{online} online announcements in {WINDOW:?}");
    // Each connect needs a failure before it, and the pauses after links
    // that keep dying double from 50-100 ms: in 6 s a client gets at most 7
    // of them, so both together stay far below 30 (at full speed, 79).
    assert!(
        (2..30).contains(&online),
        "{online} online announcements in {WINDOW:?}: {lines:#?}"
    );
    assert!(
        log.contains("another client may be using the same client id")
            && log.contains(&format!("hearth-node-{NODE}")),
        "{log}"
    );
}
