//! Chimes with real hub processes: the CLI, two hubs on one Postgres handing over, and a hub
//! killed just before an occurrence.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use common::{Backend, TestDb, call, hub_process, hub_role, spawn_hub_on, wait_ready};
use hearth_testkit::{HANG_LIMIT, TestClient, broker_config, start_broker};
use rumqttc::QoS;

fn write_config(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn cli(db: &TestDb, mqtt_port: u16, args: &[&str]) -> (bool, String) {
    let args: Vec<&str> = std::iter::once("chimes")
        .chain(args.iter().copied())
        .collect();
    common::hub_cli(db, mqtt_port, &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_chimes_a_running_hub_picks_up_at_once() {
    let db = TestDb::new(Backend::Sqlite).await;
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let hub = spawn_hub_on(&db, &format!("mqtt://127.0.0.1:{port}"), "").await;
    wait_ready(&hub).await;
    let api = format!("http://{}/api/v1/chimes", hub.http_addr);
    let mut speaker = TestClient::connect(port, "speaker").await;
    speaker
        .subscribe("hearth/chime/+/play", QoS::AtLeastOnce)
        .await;

    let (ok, out) = cli(
        &db,
        port,
        &[
            "add",
            "tea",
            "--schedule",
            "16:20",
            "--timezone",
            "America/Los_Angeles",
            "--speaker",
            "living-room",
            "--sound",
            "tea.wav",
            "--volume",
            "40",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("saved tea (next: ") && out.contains("the running hub was told"),
        "{out}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while call("GET", &format!("{api}/tea"), None).await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the hub never saw the CLI's chime"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (ok, out) = cli(&db, port, &["list"]);
    assert!(ok, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("tea ")
            && l.contains("America/Los_Angeles")
            && l.contains("living-room")),
        "{out}"
    );
    let (ok, out) = cli(&db, port, &["next", "tea", "--count", "3"]);
    assert!(ok, "{out}");
    let times: Vec<&str> = out.lines().collect();
    assert_eq!(times.len(), 3, "{out}");
    assert!(times.iter().all(|t| t.contains("T16:20:00-0")), "{out}");

    let (ok, out) = cli(&db, port, &["play", "tea"]);
    assert!(ok, "{out}");
    let played = speaker
        .recv_on("hearth/chime/living-room/play", Duration::from_secs(5))
        .await;
    assert_eq!(
        &played.payload[..],
        br#"{"sound":"tea.wav","volume":40,"chime":"tea"}"#
    );

    let (ok, out) = cli(
        &db,
        port,
        &[
            "add",
            "bad",
            "--schedule",
            "7 o'clock",
            "--speaker",
            "k",
            "--sound",
            "a.wav",
        ],
    );
    assert!(!ok, "accepted: {out}");
    assert!(out.contains("schedule:"), "{out}");
    let (ok, out) = cli(&db, port, &["rm", "nope"]);
    assert!(!ok, "accepted: {out}");
    assert!(out.contains("unknown chime nope"), "{out}");

    let (ok, out) = cli(&db, port, &["rm", "tea"]);
    assert!(ok, "{out}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while call("GET", &format!("{api}/tea"), None).await.0 != 404 {
        assert!(Instant::now() < deadline, "the hub kept the deleted chime");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hub.stop().await;
}

/// Collects every play on `hearth/chime/+/play` as (chime, scheduled_for).
async fn collect_plays(client: &mut TestClient, for_how_long: Duration) -> Vec<(String, String)> {
    let mut plays = Vec::new();
    let deadline = tokio::time::Instant::now() + for_how_long;
    while let Some(left) = deadline.checked_duration_since(tokio::time::Instant::now()) {
        match client.recv(left).await {
            // The hub's availability, for tests that watch it too.
            Some(p) if !p.topic.ends_with("/play") => {}
            Some(p) => {
                let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                plays.push((
                    v["chime"].as_str().unwrap().to_owned(),
                    v["scheduled_for"].as_str().unwrap_or("").to_owned(),
                ));
            }
            None => break,
        }
    }
    plays
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hub_processes_on_one_postgres_play_every_occurrence_exactly_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        "hearth.toml",
        r#"
        [[chimes]]
        id = "every-second"
        schedule = "* * * * * *"
        speaker = "hall"
        sound = "tick.wav"

        [[chimes]]
        id = "every-three"
        schedule = "*/3 * * * * *"
        speaker = "hall"
        sound = "tock.wav"
    "#,
    );
    let mut listener = TestClient::connect(port, "listener").await;
    listener
        .subscribe("hearth/chime/+/play", QoS::AtLeastOnce)
        .await;
    let mut a = hub_process(Some(&config), &db, port, "hub-a");
    let mut b = hub_process(Some(&config), &db, port, "hub-b");
    a.wait_ready().await;
    b.wait_ready().await;
    let (http_a, http_b) = (a.http_addr().port(), b.http_addr().port());

    let mut plays = collect_plays(&mut listener, Duration::from_secs(12)).await;
    // A rolling update: the leading hub is stopped (SIGTERM) mid-schedule
    // and the other takes over; still every occurrence plays, once.
    let roles = (hub_role(http_a).await, hub_role(http_b).await);
    let (mut leader, standby) = match (roles.0.as_deref(), roles.1.as_deref()) {
        (Some("leader"), Some("standby")) => (a, b),
        (Some("standby"), Some("leader")) => (b, a),
        other => panic!("expected one leader and one standby, got {other:?}"),
    };
    let stopped = tokio::task::spawn_blocking(move || {
        leader.terminate();
        leader
    });
    plays.extend(collect_plays(&mut listener, Duration::from_secs(12)).await);
    drop((stopped.await.unwrap(), standby));
    let mut per_chime: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
    for (chime, at) in &plays {
        let at = DateTime::parse_from_rfc3339(at)
            .unwrap()
            .with_timezone(&Utc);
        per_chime.entry(chime.clone()).or_default().push(at);
    }
    for (chime, step) in [("every-second", 1i64), ("every-three", 3)] {
        let mut times = per_chime.remove(chime).unwrap_or_default();
        let n = times.len();
        times.sort();
        times.dedup();
        assert_eq!(n, times.len(), "{chime}: an occurrence played twice");
        assert!(n as i64 >= 20 / step, "{chime}: only {n} plays in 24 s");
        // No gaps: consecutive plays are exactly one step apart.
        for pair in times.windows(2) {
            assert_eq!(
                (pair[1] - pair[0]).num_seconds(),
                step,
                "{chime}: gap between {} and {}",
                pair[0],
                pair[1]
            );
        }
        eprintln!("{chime}: {n} plays across a hand-over, none twice, none skipped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_before_an_occurrence_plays_it_late_once_or_records_it_missed() {
    let db = TestDb::new(Backend::Sqlite).await;
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    // An occurrence 5 s from now (UTC, whole second).
    let at = (Utc::now() + chrono::Duration::seconds(5))
        .with_nanosecond(0)
        .unwrap();
    let cron = format!("{} {} {} * * *", at.second(), at.minute(), at.hour());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        "hearth.toml",
        &format!(
            r#"
        [[chimes]]
        id = "inside"
        schedule = "{cron}"
        speaker = "hall"
        sound = "bell.wav"
        catch_up_secs = 60

        [[chimes]]
        id = "outside"
        schedule = "{cron}"
        speaker = "hall"
        sound = "bell.wav"
        catch_up_secs = 2
    "#
        ),
    );
    let mut listener = TestClient::connect(port, "listener").await;
    listener
        .subscribe("hearth/chime/+/play", QoS::AtLeastOnce)
        .await;
    // The hub's last will marks the end of everything it published.
    listener
        .subscribe("hearth/hub/availability", QoS::AtLeastOnce)
        .await;
    let mut hub = hub_process(Some(&config), &db, port, "hub");
    hub.wait_ready().await;
    // Kill it 2 s before the occurrence, bring it back 5 s after.
    tokio::time::sleep(
        (at - Utc::now() - chrono::Duration::seconds(2))
            .to_std()
            .unwrap_or_default(),
    )
    .await;
    hub.kill_9();
    tokio::time::sleep(
        (at - Utc::now() + chrono::Duration::seconds(5))
            .to_std()
            .unwrap_or_default(),
    )
    .await;
    // The broker sends the killed hub's will only after every message the
    // hub wrote before it died: a play arriving late is still seen here.
    let mut before_will = Vec::new();
    loop {
        let p = listener
            .recv(HANG_LIMIT)
            .await
            .unwrap_or_else(|| panic!("no last will from the killed hub; got {before_will:?}"));
        let payload = String::from_utf8_lossy(&p.payload).into_owned();
        if p.topic == "hearth/hub/availability" {
            if payload == "offline" {
                break;
            }
            continue;
        }
        before_will.push((p.topic, payload));
    }
    assert!(
        before_will.is_empty(),
        "nothing may play while the hub is down, nor before the kill; got {before_will:?}"
    );
    hub = hub_process(Some(&config), &db, port, "hub");
    hub.wait_ready().await;

    let plays = collect_plays(&mut listener, Duration::from_secs(3)).await;
    let expected = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(
        plays,
        [("inside".to_owned(), expected)],
        "inside the window: played late, once"
    );
    let (_, _, metrics) = call("GET", &format!("{}/metrics", hub.http_url()), None).await;
    assert!(
        metrics.contains("hearth_chime_runs_total{outcome=\"missed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hearth_chime_runs_total{outcome=\"played_late\"} 1"),
        "{metrics}"
    );
    drop(hub);
}
