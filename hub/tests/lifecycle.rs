//! How the hub leaves: `offline` on `hearth/hub/availability` on a clean
//! stop (in-process and SIGTERM) and as its last will after `kill -9`, and
//! SIGTERM committing the writes still queued.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{
    Backend, BrokerProcess, HubProcess, TestDb, call, counter, hub_command, spawn_hub, spawn_hub_on,
};
use hearth_testkit::TestClient;
use rumqttc::QoS;

/// Bounds a hang only.
const WAIT: Duration = Duration::from_secs(30);
const AVAILABILITY: &str = "hearth/hub/availability";

/// A client watching the hub's availability.
async fn watch_availability(port: u16, id: &str) -> TestClient {
    let watcher = TestClient::connect(port, id).await;
    watcher.subscribe(AVAILABILITY, QoS::AtLeastOnce).await;
    watcher
}

/// Waits for `expected` on the availability topic, skipping other payloads
/// (a retained `online` from before, for one); panics naming what it saw.
async fn wait_availability(watcher: &mut TestClient, expected: &str, while_: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match watcher.recv(left).await {
            Some(p) if p.topic == AVAILABILITY => {
                let payload = String::from_utf8_lossy(&p.payload).into_owned();
                if payload == expected {
                    return;
                }
                seen.push(payload);
            }
            Some(_) => {}
            None => {
                panic!("no {expected:?} on {AVAILABILITY} {while_} within {WAIT:?}; saw {seen:?}")
            }
        }
    }
}

/// What a fresh subscriber gets as the retained availability.
async fn retained_availability(port: u16, id: &str) -> String {
    let mut late = watch_availability(port, id).await;
    let p = late.recv_on(AVAILABILITY, WAIT).await;
    assert!(p.retain, "availability {:?} is not retained", p.payload);
    String::from_utf8_lossy(&p.payload).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_stop_says_offline_and_leaves_it_retained() {
    let broker = hearth_testkit::AnyBroker::embedded();
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub_on(&db, &broker.url(), "").await;
    let mut watcher = watch_availability(broker.port(), "watcher").await;
    wait_availability(&mut watcher, "online", "after the start").await;

    hub.stop().await;
    wait_availability(&mut watcher, "offline", "after Hub::stop").await;
    assert_eq!(
        retained_availability(broker.port(), "late").await,
        "offline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_says_offline_and_exits_cleanly() {
    let broker = BrokerProcess::start();
    let db = TestDb::new(Backend::Sqlite).await;
    let mut hub = HubProcess::start(hub_command(None, &db, broker.port(), "hub-sigterm")).await;
    let mut watcher = watch_availability(broker.port(), "watcher").await;
    wait_availability(&mut watcher, "online", "after the start").await;

    hub.sigterm();
    wait_availability(&mut watcher, "offline", "after SIGTERM").await;
    let (status, log) = hub.wait_exit();
    assert!(
        status.success(),
        "hearth-hub exited with {status} on SIGTERM; it printed {log:?}"
    );
    assert_eq!(
        retained_availability(broker.port(), "late").await,
        "offline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_leaves_offline_as_the_last_will() {
    let broker = BrokerProcess::start();
    let db = TestDb::new(Backend::Sqlite).await;
    let mut hub = HubProcess::start(hub_command(None, &db, broker.port(), "hub-kill-9")).await;
    let mut watcher = watch_availability(broker.port(), "watcher").await;
    wait_availability(&mut watcher, "online", "after the start").await;

    // The process is gone before anything could publish: only the broker,
    // holding the hub's will, can say `offline` now.
    hub.kill_9();
    wait_availability(&mut watcher, "offline", "after kill -9").await;
    assert_eq!(
        retained_availability(broker.port(), "late").await,
        "offline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_commits_the_writes_still_queued() {
    const PRESSES: u64 = 40;
    const TOGGLES: u64 = 11;
    let broker = BrokerProcess::start();
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::at(format!("sqlite://{}/hearth.db", dir.path().display()));
    let mut hub = HubProcess::start(hub_command(None, &db, broker.port(), "hub-flush")).await;
    let mut watcher = watch_availability(broker.port(), "watcher").await;
    wait_availability(&mut watcher, "online", "after the start").await;

    // Hold SQLite's write lock, as a slow card would: the hub's writer
    // blocks on its first batch and the rest queue up behind it.
    let mut lock = common::hold_write_lock(&db).await;

    let publisher = TestClient::connect(broker.port(), "presser").await;
    for _ in 0..PRESSES {
        publisher
            .publish("hearth/button/desk/press", QoS::AtLeastOnce, false, "")
            .await;
    }
    for _ in 0..TOGGLES {
        publisher
            .publish("hearth/button/hall/set", QoS::AtLeastOnce, false, "TOGGLE")
            .await;
    }
    // Every message has reached the hub's core (and so its write queue).
    let metrics_url = format!("{}/metrics", hub.http_url());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, _, text) = call("GET", &metrics_url, None).await;
        let presses = counter(&text, "hearth_messages_in_total{kind=\"button_press\"}");
        let sets = counter(&text, "hearth_messages_in_total{kind=\"button_set\"}");
        if presses == PRESSES && sets == TOGGLES {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hub saw {presses} of {PRESSES} presses and {sets} of {TOGGLES} sets:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    hub.sigterm();
    // The core has stopped (it says offline last); the writes are still
    // waiting for the lock. Only now may the writer commit.
    wait_availability(&mut watcher, "offline", "after SIGTERM").await;
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    drop(lock);
    let (status, log) = hub.wait_exit();
    assert!(
        status.success(),
        "hearth-hub exited with {status}; it printed {log:?}"
    );
    drop(broker);

    // A fresh hub on the same file, with a broker that holds no session of
    // the old one to redeliver from: what it shows was committed at stop.
    let hub = spawn_hub(&db, "").await;
    let base = format!("http://{}", hub.http_addr);
    let (status, _, desk) = call("GET", &format!("{base}/api/v1/buttons/desk"), None).await;
    assert_eq!(status, 200, "desk after the restart: {desk}");
    let desk: serde_json::Value = serde_json::from_str(&desk).unwrap();
    assert_eq!(
        desk["press_count"], PRESSES,
        "presses committed by SIGTERM: {desk}"
    );
    let (status, _, hall) = call("GET", &format!("{base}/api/v1/buttons/hall"), None).await;
    assert_eq!(status, 200, "hall after the restart: {hall}");
    let hall: serde_json::Value = serde_json::from_str(&hall).unwrap();
    // Eleven toggles from OFF end ON.
    assert_eq!(hall["state"], "ON", "hall after {TOGGLES} toggles: {hall}");
    hub.stop().await;
}
