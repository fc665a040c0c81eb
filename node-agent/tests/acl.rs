//! The node agent behind the broker's per-node ACL (`scripts/mosquitto-acl-example/acl`, as the Kubernetes deployment ships it): logged in as its node id it works in full; with another node's login nothing it says gets through.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{InProcessAgent, WAIT, line, node_toml, topic, write};
use hearth_broker::{BrokerConfig, Password, RunningBroker};
use hearth_node_agent::gpio::Level;
use hearth_testkit::{Subscriber, mosquitto_pub, start_broker};

const USERS: &[(&str, &str)] = &[("hub", "hub-pw"), ("pi-1", "pi1-pw"), ("pi-2", "pi2-pw")];

fn acl_broker() -> RunningBroker {
    start_broker(&BrokerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        users: USERS
            .iter()
            .map(|(u, p)| ((*u).to_owned(), Password::new(*p)))
            .collect::<BTreeMap<_, _>>(),
        acl_file: Some(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/mosquitto-acl-example/acl"),
        ),
        ..BrokerConfig::default()
    })
}

/// The agent's config (node `pi-1`) logging in as `user`.
fn config_as(port: u16, user: &str) -> String {
    let password = USERS.iter().find(|(u, _)| *u == user).unwrap().1;
    node_toml(port, "").replace(
        "keep_alive_secs = 5\n",
        &format!("keep_alive_secs = 5\nusername = \"{user}\"\npassword = \"{password}\"\n"),
    )
}

/// What the hub sees of node pi-1.
fn hub_view(port: u16) -> Subscriber {
    Subscriber::start(port, &topic("#"), &["-u", "hub", "-P", "hub-pw"])
}

fn hub_publishes(port: u16, rest: &str, payload: &str) {
    let out = mosquitto_pub(
        port,
        &[
            "-u",
            "hub",
            "-P",
            "hub-pw",
            "-q",
            "1",
            "-t",
            &topic(rest),
            "-m",
            payload,
        ],
    );
    assert!(out.status.success(), "the hub's publish of {rest}: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_logged_in_as_its_node_works_under_the_acl() {
    let broker = acl_broker();
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_view(port);
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &config_as(port, "pi-1")));

    hub.expect_line(&line("availability", "online"), WAIT);
    // Its subscription to its own commands was granted: a command works.
    hub_publishes(port, "light/red/set", "ON");
    hub.expect_line(&line("light/red/state", "ON"), WAIT);
    assert_eq!(agent.level(17), Some(Level::High), "the red light's pin");
    assert_eq!(
        broker.refusals().publish + broker.refusals().subscribe,
        0,
        "the ACL refused something of an agent logged in as its own node: {:?}",
        broker.refusals()
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_with_another_nodes_login_cannot_speak_for_this_node() {
    let broker = acl_broker();
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_view(port);
    // Node pi-1's config with pi-2's login: a copied credential, or a
    // compromised pi-2 trying to pose as pi-1.
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &config_as(port, "pi-2")));

    // Its availability (and its subscription to pi-1's commands) are
    // refused; wait for the broker to count the refusal.
    let deadline = Instant::now() + WAIT;
    while broker.refusals().publish == 0 {
        assert!(
            Instant::now() < deadline,
            "the broker never refused the agent's publish as pi-2: {:?}",
            broker.refusals()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The hub's marker comes after anything the agent got through.
    hub_publishes(port, "marker", "end");
    let seen = hub.expect_line(&line("marker", "end"), WAIT);
    assert!(
        seen.is_empty(),
        "an agent logged in as pi-2 published under pi-1: {seen:?}"
    );
    assert!(
        broker.refusals().subscribe >= 1,
        "its subscription to pi-1's commands was granted: {:?}",
        broker.refusals()
    );
    // Commands for pi-1 never reach it.
    hub_publishes(port, "light/red/set", "ON");
    hub_publishes(port, "marker", "again");
    hub.expect_line(&line("marker", "again"), WAIT);
    assert_ne!(
        agent.level(17),
        Some(Level::High),
        "a command for pi-1 reached an agent logged in as pi-2"
    );
    drop(agent);
}
