//! Broker restart: the agent reconnects, resubscribes and republishes what the broker forgot.
//!
//! rumqttd cannot be stopped inside a process, so the broker here is the
//! `hearth-broker` binary, killed and restarted on the same port.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{InProcessAgent, line, node_toml, topic, write};
use hearth_node_agent::gpio::Level;
use hearth_testkit::{Subscriber, free_port, mosquitto_pub};

/// Reconnect backoff tops out at 10 s; allow one full pause and change.
const RECONNECT_WAIT: Duration = Duration::from_secs(15);

fn broker_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let path = target.join("debug/hearth-broker");
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build -p hearth-broker --bin hearth-broker`",
        path.display()
    );
    path
}

/// The broker binary on `port`; waits until it accepts connections.
fn start_broker(port: u16) -> Child {
    let mut child = Command::new(broker_binary())
        .env("HEARTH_BROKER__LISTEN", format!("127.0.0.1:{port}"))
        .env("HEARTH_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("hearth-broker exited with {status} (port {port} still in use?)");
        }
        assert!(
            Instant::now() < deadline,
            "hearth-broker never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn publish(port: u16, rest: &str, payload: &str) {
    let out = mosquitto_pub(port, &["-t", &topic(rest), "-m", payload]);
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_states_are_republished_and_commands_obeyed() {
    let port = free_port();
    let mut broker = start_broker(port);
    let dir = tempfile::tempdir().unwrap();
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &node_toml(port, "")));
    let sub = Subscriber::start(port, &topic("#"), &[]);
    sub.expect_line(&line("availability", "online"), common::WAIT);
    publish(port, "light/red/set", "ON");
    sub.expect_line(&line("light/red/state", "ON"), common::WAIT);
    drop(sub);

    // A crash: retained messages and subscriptions are gone with it.
    broker.kill().unwrap();
    broker.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut broker = start_broker(port);

    let sub = Subscriber::start(port, &topic("#"), &[]);
    let deadline = Instant::now() + RECONNECT_WAIT;
    let mut seen = Vec::new();
    let wanted = [
        line("availability", "online"),
        line("light/red/state", "ON"),
        line("light/green/state", "OFF"),
        line("sequence/traffic/state", "OFF"),
    ];
    while !wanted.iter().all(|w| seen.contains(w)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match sub.next_line(left) {
            Some(l) => seen.push(l),
            None => panic!("not republished within {RECONNECT_WAIT:?}: {seen:?}"),
        }
    }
    // The subscription came back too: a new command is obeyed.
    publish(port, "light/green/set", "ON");
    sub.expect_line(&line("light/green/state", "ON"), common::WAIT);
    assert_eq!(agent.level(22), Some(Level::High));

    agent.stop().await;
    broker.kill().unwrap();
    broker.wait().unwrap();
}
