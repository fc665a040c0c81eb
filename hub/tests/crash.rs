//! Crash safety with the broker as its own process (the Kubernetes layout): `kill -9` the hub
//! while a publisher presses buttons at QoS 1, start it again, and compare what was stored.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Backend, BrokerProcess, TestDb, hub_process};
use hearth_testkit::{HANG_LIMIT, TestClient};
use rumqttc::QoS;
use sqlx::{Connection, Row};

const PRESSES: usize = 5_000;
const BUTTONS: usize = 5;

async fn stored_counts(url: &str) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    let rows = if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query("SELECT id, press_count FROM buttons")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.get::<String, _>("id"), r.get::<i64, _>("press_count")))
            .collect::<Vec<_>>()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query("SELECT id, press_count FROM buttons")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.get::<String, _>("id"), r.get::<i64, _>("press_count")))
            .collect::<Vec<_>>()
    };
    counts.extend(rows);
    counts
}

/// Waits until the database holds at least `presses` presses; panics after
/// [`HANG_LIMIT`] saying how many it held.
async fn wait_until_stored(url: &str, presses: i64) {
    let deadline = Instant::now() + HANG_LIMIT;
    loop {
        let got: i64 = stored_counts(url).await.values().sum();
        if got >= presses {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{got} of {presses} presses stored within {HANG_LIMIT:?}"
        );
        // The count is a state in the database: look again shortly.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Presses `PRESSES` times across `BUTTONS` buttons, killing the hub with
/// SIGKILL a third of the way through and starting it again.
async fn press_through_a_crash(
    backend: Backend,
    with_ids: bool,
) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
    let db = TestDb::new(backend).await;
    let broker = BrokerProcess::start();
    let mqtt_port = broker.port();
    let mut hub = hub_process(None, &db, mqtt_port, "hearth-hub-crash-test");
    hub.wait_ready().await;

    let publisher = TestClient::connect(mqtt_port, "presser").await;
    let mut sent: BTreeMap<String, i64> = BTreeMap::new();
    for n in 0..PRESSES {
        let button = format!("b{}", n % BUTTONS);
        let payload = if with_ids {
            format!("{{\"action\":\"single\",\"id\":\"{n}\"}}")
        } else {
            "single".to_owned()
        };
        publisher
            .client
            .publish(
                format!("hearth/button/{button}/press"),
                QoS::AtLeastOnce,
                false,
                payload,
            )
            .await
            .unwrap();
        *sent.entry(button).or_default() += 1;
        if n == PRESSES / 3 {
            // Once the hub is busy storing what is in flight, kill it mid-stream.
            wait_until_stored(&db.url, 1).await;
            hub.kill_9();
            drop(hub);
            hub = hub_process(None, &db, mqtt_port, "hearth-hub-crash-test");
        }
    }
    hub.wait_ready().await;
    // Wait until the hub has taken in everything the broker holds for it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let want: i64 = sent.values().sum();
    loop {
        let got: i64 = stored_counts(&db.url).await.values().sum();
        if got >= want || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Stop it properly so its last batch is flushed, then read the database.
    hub.terminate();
    (sent, stored_counts(&db.url).await)
}

// One test, two scenarios in a row: each runs a broker, a hub process and a
// 5,000-message publisher, and on two cores they disturb each other's timing
// when run side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_hub_under_load() {
    // With press ids: every press counted exactly once, on both backends.
    let (sent, stored) = press_through_a_crash(Backend::Sqlite, true).await;
    assert_eq!(stored, sent, "SQLite");
    let (sent, stored) = press_through_a_crash(Backend::Postgres, true).await;
    assert_eq!(stored, sent, "Postgres");

    // Plain presses: nothing lost; a redelivery of a press whose commit
    // finished but whose ack did not reach the broker counts twice.
    let (sent, stored) = press_through_a_crash(Backend::Sqlite, false).await;
    for (button, count) in &sent {
        let got = stored.get(button).copied().unwrap_or_default();
        assert!(got >= *count, "{button}: sent {count}, stored {got}");
        eprintln!(
            "{button}: sent {count}, stored {got} ({} counted twice)",
            got - count
        );
    }
}
