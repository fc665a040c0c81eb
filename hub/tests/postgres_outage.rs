//! Postgres goes away for 10 s under load: the hub stays up, says it is not ready, loses
//! nothing it acknowledged, and catches up when the database returns.
//!
//! Runs alone in its own test binary because it stops the shared test Postgres.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Backend, TestDb, call, mqtt_port, spawn_hub, wait_ready};
use hearth_testkit::TestClient;
use rumqttc::QoS;

fn pg_ctl(args: &[&str]) {
    let pg_ctl = std::env::var("HEARTH_TEST_PG_CTL").expect(
        "HEARTH_TEST_PG_CTL is not set: run ./scripts/test.sh, which starts a throwaway Postgres",
    );
    let data = std::env::var("HEARTH_TEST_PGDATA").expect("HEARTH_TEST_PGDATA");
    let options = std::env::var("HEARTH_TEST_PG_OPTIONS").unwrap_or_default();
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let mut cmd = if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &pg_ctl]);
        c
    } else {
        Command::new(&pg_ctl)
    };
    cmd.args(["-D", &data, "-w"]).args(args);
    if args.first() == Some(&"start") {
        cmd.args(["-o", &options, "-l", &format!("{data}/../restart.log")]);
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "pg_ctl {args:?} failed");
}

async fn stored_presses(base: &str) -> i64 {
    let (_, _, body) = call("GET", &format!("{base}/api/v1/buttons"), None).await;
    let buttons: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    buttons
        .as_array()
        .map(|b| b.iter().filter_map(|b| b["press_count"].as_i64()).sum())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_second_postgres_outage_loses_nothing() {
    let db = TestDb::new(Backend::Postgres).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let base = format!("http://{}", hub.http_addr);
    let presser = TestClient::connect(mqtt_port(&hub), "presser").await;

    let mut sent = 0i64;
    let mut outage_started = None;
    let mut saw_not_ready = false;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(16) {
        presser
            .client
            .publish(
                "hearth/button/desk/press",
                QoS::AtLeastOnce,
                false,
                format!("{{\"action\":\"single\",\"id\":\"{sent}\"}}"),
            )
            .await
            .unwrap();
        sent += 1;
        let elapsed = started.elapsed();
        if outage_started.is_none() && elapsed > Duration::from_secs(2) {
            pg_ctl(&["stop", "-m", "fast"]);
            outage_started = Some(Instant::now());
        }
        if let Some(t) = outage_started {
            if t.elapsed() > Duration::from_secs(10) && t.elapsed() < Duration::from_secs(11) {
                pg_ctl(&["start"]);
                outage_started = Some(t - Duration::from_secs(100));
            } else if t.elapsed() < Duration::from_secs(10) && !saw_not_ready && sent % 20 == 0 {
                let (status, _, body) = call("GET", &format!("{base}/readyz"), None).await;
                if status == 503 {
                    assert!(body.contains("database unreachable"), "{body}");
                    saw_not_ready = true;
                }
                // The hub itself stays up.
                assert_eq!(call("GET", &format!("{base}/healthz"), None).await.0, 200);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(saw_not_ready, "/readyz never reported the outage");

    // Catch up: every press that was sent ends up stored exactly once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stored = 0;
    while Instant::now() < deadline {
        stored = stored_presses(&base).await;
        let (status, _, _) = call("GET", &format!("{base}/readyz"), None).await;
        if stored >= sent && status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    hub.stop().await;
    // What the API showed must be what the database holds.
    let reopened = spawn_hub(&db, "").await;
    let durable = reopened
        .house()
        .buttons
        .values()
        .map(|b| b.press_count)
        .sum::<i64>();
    reopened.stop().await;
    assert_eq!(stored, sent);
    assert_eq!(durable, sent);
}
