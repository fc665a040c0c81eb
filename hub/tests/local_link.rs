//! The default hub's in-process link to its embedded broker
//! (broker/src/local_client.rs): nobody can take its session by client id,
//! and a backlog bigger than every queue of the hub is held by the broker,
//! not dropped.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Backend, TestDb, WAIT, call, mqtt_port, spawn_hub, wait_ready};
use hearth_testkit::TestClient;
use rumqttc::QoS;

/// More presses than the link's buffer, the core's queue and the writer's
/// queue hold together (1,024 + 256 + 1,024).
const BACKLOG: u64 = 3_000;

/// Waits until `button`'s stored press count is `want`, asking the API
/// every 20 ms (a commit sends no message); fails after `within` saying
/// `what` and the count it last read.
async fn until_press_count(base: &str, button: &str, want: u64, within: Duration, what: &str) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (status, _, body) = call("GET", &format!("{base}/api/v1/buttons/{button}"), None).await;
        let count = match status {
            200 => serde_json::from_str::<serde_json::Value>(&body).unwrap()["press_count"].clone(),
            _ => serde_json::Value::Null,
        };
        if count == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {button}'s press_count is {count}, not {want} (GET answered {status})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_can_take_the_hubs_session_by_its_client_id() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let port = mqtt_port(&hub);
    let client_id = hub.settings().client_id.clone();

    // Anonymous on loopback, as every local client is by default.
    let mut intruder = TcpStream::connect(("127.0.0.1", port)).unwrap();
    intruder
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    intruder
        .write_all(&hearth_testkit::raw::connect(&client_id, 60, None))
        .unwrap();
    let mut connack = [0u8; 4];
    intruder.read_exact(&mut connack).unwrap();
    assert_eq!(
        connack,
        [0x20, 2, 0, 2],
        "a client using the hub's client id {client_id:?} got this CONNACK instead of 'identifier rejected'"
    );

    // The hub still has its session: a press still counts.
    let presser = TestClient::connect(port, "presser").await;
    presser
        .publish("hearth/button/desk/press", QoS::AtLeastOnce, false, "")
        .await;
    let base = format!("http://{}", hub.http_addr);
    until_press_count(&base, "desk", 1, WAIT, "after the refused takeover").await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_bigger_than_the_hubs_queues_waits_in_the_broker_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::at(format!("sqlite://{}/hearth.db", dir.path().display()));
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let port = mqtt_port(&hub);
    let base = format!("http://{}", hub.http_addr);

    // Hold SQLite's write lock, as a stalled card would: the writer stops,
    // its queue fills, then the core's, then the link's.
    let mut lock = common::hold_write_lock(&db).await;
    // mosquitto_pub exits once the broker has acknowledged every one.
    let lines = "single\n".repeat(usize::try_from(BACKLOG).unwrap());
    let mut publisher = std::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "hearth/button/desk/press", "-q", "1", "-l"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    publisher
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let status = publisher.wait().unwrap();
    assert!(status.success(), "mosquitto_pub exited with {status}");
    // The hub cannot have taken them all in: the broker holds the rest.
    let (_, _, metrics) = call("GET", &format!("{base}/metrics"), None).await;
    let seen = common::counter(&metrics, "hearth_messages_in_total{kind=\"button_press\"}");
    assert!(
        seen < BACKLOG,
        "the hub took in {seen} of {BACKLOG} presses with its writer stalled: the test's backlog never built up"
    );
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    drop(lock);

    let what = format!("{BACKLOG} presses sent while the database was locked");
    until_press_count(&base, "desk", BACKLOG, WAIT * 4, &what).await;
    hub.stop().await;
}
