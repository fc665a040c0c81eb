//! A push button wired to a Pi, end to end: a simulated `hearth-node-agent`
//! process (the demo board's `doorbell`, bounce included) presses through the
//! hub's embedded broker, the hub's rule switches the Pi's light, and the
//! dashboard in headless Chromium shows the press, as for an IoT button.

#![allow(clippy::unwrap_used)]

mod common;

mod browser;

use std::process::{Command, Stdio};

use browser::{ChromeDriver, until};
use common::{Backend, TestDb, WAIT, mqtt_port, spawn_hub, wait_ready};
use hearth_testkit::{Subscriber, mosquitto_pub};

const RULES: &str = r#"
[[rules]]
name = "doorbell double press lights the red lamp"
when = { button = "doorbell", action = "double" }
then = [{ output = "pi-1/light/red", command = "ON" }]
"#;

/// The agent process, killed when the test ends.
use common::KillOnDrop as Agent;

fn subscribe(port: u16, filter: &str) -> Subscriber {
    tokio::task::block_in_place(|| Subscriber::start(port, filter, &[]))
}

fn expect_line(subscriber: &Subscriber, line: &str) -> Vec<String> {
    tokio::task::block_in_place(|| subscriber.expect_line(line, WAIT))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wired_button_fires_a_rule_and_shows_on_the_dashboard() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, RULES).await;
    wait_ready(&hub).await;
    let port = mqtt_port(&hub);
    let availability = subscribe(port, "hearth/node/pi-1/availability");
    // The demo board: no config file, `--simulate`.
    let _agent = Agent(
        Command::new(hearth_testkit::binary("hearth-node-agent"))
            .arg("--simulate")
            .env_remove("HEARTH_CONFIG")
            .env("NODE_NAME", "pi-1")
            .env("HEARTH_MQTT__URL", format!("mqtt://127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hearth-node-agent"),
    );
    expect_line(&availability, "hearth/node/pi-1/availability online");

    let driver = ChromeDriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    browser
        .goto(&format!("http://{}/", hub.http_addr))
        .await
        .unwrap();
    until(
        &browser,
        "document.getElementById('link').textContent === 'live'",
        "the live link",
    )
    .await;

    let red = subscribe(port, "hearth/node/pi-1/light/red/state");
    expect_line(&red, "hearth/node/pi-1/light/red/state OFF");
    let presses = subscribe(port, "hearth/button/doorbell/press");
    let out = mosquitto_pub(
        port,
        &[
            "-q",
            "1",
            "-t",
            "hearth/node/pi-1/input/doorbell/simulate",
            "-m",
            "double",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let before = expect_line(&presses, "hearth/button/doorbell/press double");
    assert!(before.is_empty(), "presses before the double: {before:?}");
    // The hub's rule commanded the light and the agent switched it.
    expect_line(&red, "hearth/node/pi-1/light/red/state ON");
    until(
        &browser,
        r#"document.querySelector('[data-key="doorbell"] [data-part=meta]')?.textContent.includes('last press double') &&
           document.querySelector('[data-key="doorbell"] [data-part=meta]').textContent.includes('1 press')"#,
        "the doorbell's press on the dashboard",
    )
    .await;
    hub.stop().await;
}
