//! Two hub replicas on one Postgres: exactly one acts, the other takes over within 10 s of the
//! leader's death, and no rule fires twice or is lost in normal operation.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, HubProcess, TestDb, call, hub_process, hub_role};
use hearth_testkit::{TestClient, broker_config, start_broker};
use rumqttc::QoS;

const RULES: &str = r#"
[[rules]]
when = { button = "desk", action = "single" }
then = [{ publish = "test/fired", payload = "lamp" }]

[[rules]]
when = { topic = "test/marker" }
then = [{ publish = "test/fired", payload = "marker" }]
"#;

async fn wait_for_role(http: u16, want: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if hub_role(http).await.as_deref() == Some(want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "hub on {http} was not {want} within {within:?} (is {:?})",
            hub_role(http).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two hub processes on the broker at `port`: a (on `db_a`) first, until
/// it leads, then b (on `db_b`), until it stands by. Returns them with
/// the HTTP ports they chose.
async fn leader_and_standby(
    config: Option<&std::path::Path>,
    (db_a, db_b): (&TestDb, &TestDb),
    port: u16,
) -> ((HubProcess, u16), (HubProcess, u16)) {
    let a = hub_process(config, db_a, port, "hub-a");
    let http_a = a.http_addr().port();
    wait_for_role(http_a, "leader", Duration::from_secs(20)).await;
    let b = hub_process(config, db_b, port, "hub-b");
    let http_b = b.http_addr().port();
    wait_for_role(http_b, "standby", Duration::from_secs(20)).await;
    ((a, http_a), (b, http_b))
}

async fn press(client: &TestClient, times: usize) {
    for _ in 0..times {
        client
            .publish(
                "hearth/button/desk/press",
                QoS::AtLeastOnce,
                false,
                "single",
            )
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Payloads on test/fired until `want` came, then until the marker rule
/// answers: a press that fired twice shows up before the marker (the hub
/// handles its messages in order; the marker is published after the
/// presses).
async fn firings(watcher: &mut TestClient, presser: &TestClient, want: usize) -> usize {
    let mut n = 0;
    while n < want {
        match watcher.recv(hearth_testkit::HANG_LIMIT).await {
            Some(_) => n += 1,
            None => panic!("the rule fired {n} times of {want}"),
        }
    }
    presser
        .publish("test/marker", QoS::AtLeastOnce, false, "end")
        .await;
    loop {
        match watcher.recv(hearth_testkit::HANG_LIMIT).await {
            Some(p) if p.payload.as_ref() == b"marker" => return n,
            Some(_) => n += 1,
            None => panic!("no marker after {n} firings"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_within_ten_seconds_and_rules_fire_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hearth.toml");
    std::fs::write(&config, RULES).unwrap();
    let ((a, _), (b, http_b)) = leader_and_standby(Some(&config), (&db, &db), port).await;

    let mut watcher = TestClient::connect(port, "watcher").await;
    watcher.subscribe("test/fired", QoS::AtLeastOnce).await;
    let presser = TestClient::connect(port, "presser").await;
    press(&presser, 20).await;
    assert_eq!(
        firings(&mut watcher, &presser, 20).await,
        20,
        "each press fires the rule once"
    );

    // Both replicas serve the API; the standby reads what the leader stored.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let body = reqwest::get(format!("http://127.0.0.1:{http_b}/api/v1/buttons/desk"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if body.contains("\"press_count\":20") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "standby never showed the presses: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The leader dies.
    let mut a = a;
    a.kill_9();
    let took = wait_for_role(http_b, "leader", Duration::from_secs(10)).await;
    eprintln!("standby took over {took:?} after the leader was killed");

    press(&presser, 20).await;
    assert_eq!(
        firings(&mut watcher, &presser, 20).await,
        20,
        "the new leader fires each press once"
    );
    drop(b);
}

/// The leader's view of Postgres is cut (a pulled cable between them, no
/// socket closed): it must stop leading on its own, before Postgres could
/// free its lock for the standby, and one hub leads again once the line is
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_postgres_steps_down_before_anyone_else_can_lead() {
    let db = TestDb::new(Backend::Postgres).await;
    let postgres: url::Url = db.url.parse().unwrap();
    let upstream = format!(
        "{}:{}",
        postgres.host_str().unwrap(),
        postgres.port().unwrap()
    );
    let proxy = hearth_testkit::Proxy::start(upstream.parse().unwrap()).await;
    let mut through_proxy = postgres.clone();
    through_proxy.set_port(Some(proxy.port())).unwrap();
    let db_a = TestDb::at(through_proxy.to_string());
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let ((_a, http_a), (_b, http_b)) = leader_and_standby(None, (&db_a, &db), port).await;

    proxy.cut();
    let cut_at = Instant::now();
    let stepped_down = loop {
        let (a, b) = (hub_role(http_a).await, hub_role(http_b).await);
        assert_ne!(b.as_deref(), Some("leader"), "two leaders");
        if a.as_deref() != Some("leader") {
            break cut_at.elapsed();
        }
        assert!(
            cut_at.elapsed() < hearth_hub::leader::SERVER_NOTICES_WITHIN,
            "the cut-off leader still leads after {:?}",
            cut_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("the cut-off leader stepped down after {stepped_down:?}");

    proxy.restore();
    let restored_at = Instant::now();
    loop {
        let (a, b) = (hub_role(http_a).await, hub_role(http_b).await);
        let leaders = [&a, &b]
            .iter()
            .filter(|r| r.as_deref() == Some("leader"))
            .count();
        assert!(leaders <= 1, "two leaders: {a:?} {b:?}");
        if leaders == 1 {
            break;
        }
        assert!(
            restored_at.elapsed() < Duration::from_secs(10),
            "nobody leads {:?} after the line came back ({a:?}, {b:?})",
            restored_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A chime made and switched off through the standby's API reaches the
/// leader, which schedules it and announces it to Home Assistant; the
/// entities never flicker away on the way (the standby publishes nothing
/// itself that the leader could take for a stale entity and clear).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chime_changed_through_the_standby_is_announced_by_the_leader_without_a_flicker() {
    let db = TestDb::new(Backend::Postgres).await;
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let ((_a, http_a), (_b, http_b)) = leader_and_standby(None, (&db, &db), port).await;
    let mut ha = TestClient::connect(port, "ha").await;
    ha.subscribe("homeassistant/+/hearth_hub/+/config", QoS::AtLeastOnce)
        .await;

    let standby = format!("http://127.0.0.1:{http_b}/api/v1/chimes/tea");
    let tea = r#"{"schedule":"16:20","speaker":"kitchen","sound":"tea.wav"}"#;
    let (status, _, body) = call("PUT", &standby, Some(tea)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = call(
        "PUT",
        &format!("{standby}/enabled"),
        Some(r#"{"state":"OFF"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Both entities announced (WAIT bounds a hang), then nothing cleared
    // up to a marker below.
    let mut announced = Vec::new();
    let wanted = ["button", "switch"]
        .map(|component| format!("homeassistant/{component}/hearth_hub/chime_tea/config"));
    while !wanted.iter().all(|w| announced.iter().any(|(t, _)| t == w)) {
        let Some(message) = ha.recv(hearth_testkit::HANG_LIMIT).await else {
            panic!("{wanted:?} never all announced: {announced:?}");
        };
        if message.topic.contains("/chime_tea/") {
            announced.push((message.topic.clone(), message.payload.is_empty()));
        }
    }
    // The leader has it, switched off.
    let leader = format!("http://127.0.0.1:{http_a}/api/v1/chimes/tea");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, body) = call("GET", &leader, None).await;
        if status == 200 && body.contains("\"enabled\":false") {
            break;
        }
        assert!(Instant::now() < deadline, "the leader never had it: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The marker: a config of the hub's device that nothing backs, which
    // the leader clears. It takes discovery messages in order from one
    // filter and publishes on one connection, so a clear of the new chime
    // (the flicker) comes before the marker's clear.
    const MARKER: &str = "homeassistant/button/hearth_hub/flicker_marker/config";
    ha.publish(MARKER, QoS::AtLeastOnce, false, r#"{"name":"marker"}"#)
        .await;
    let until_cleared = async {
        loop {
            let message = ha.recv(hearth_testkit::HANG_LIMIT).await;
            let Some(message) = message else { break false };
            if message.topic == MARKER && message.payload.is_empty() {
                break true;
            }
            if message.topic.contains("/chime_tea/") {
                announced.push((message.topic.clone(), message.payload.is_empty()));
            }
        }
    };
    let cleared = until_cleared.await;
    assert!(
        cleared,
        "the leader never cleared the marker; the new chime's messages: {announced:?}"
    );
    assert!(
        announced.iter().all(|(_, cleared)| !cleared),
        "an entity of the new chime was cleared: {announced:?}"
    );
}

const NIGHT_LIGHT: &str = r#"
[[automations]]
id = "night-light"
triggers = [{ button = "night", action = "single" }]
actions = [
  { publish = "test/fired", payload = "on" },
  { delay_s = 4 },
  { publish = "test/fired", payload = "off" },
]

[[rules]]
when = { topic = "test/marker" }
then = [{ publish = "test/fired", payload = "marker" }]
"#;

/// A run waiting on a delay when its leader dies goes on on the standby
/// that takes over (its deadline is in Postgres), once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_pending_when_the_leader_dies_finishes_on_the_new_leader_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hearth.toml");
    std::fs::write(&config, NIGHT_LIGHT).unwrap();
    let ((mut a, _), (b, http_b)) = leader_and_standby(Some(&config), (&db, &db), port).await;

    let mut watcher = TestClient::connect(port, "watcher").await;
    watcher.subscribe("test/fired", QoS::AtLeastOnce).await;
    let presser = TestClient::connect(port, "presser").await;
    presser
        .publish(
            "hearth/button/night/press",
            QoS::AtLeastOnce,
            false,
            "single",
        )
        .await;
    let on = watcher
        .recv(hearth_testkit::HANG_LIMIT)
        .await
        .map(|p| p.payload);
    assert_eq!(on.as_deref(), Some(&b"on"[..]), "the run started");

    // The run is stored by the leader's writer before it acknowledges the
    // press; no message says when, so the test asks the database (bounded).
    let store = common::store(&db).await;
    let cx = hearth_hub::decide::automations::Context {
        timezone: chrono_tz::UTC,
        located: false,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.load_catalog(cx).await.unwrap().runs.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the waiting run was never stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    a.kill_9();
    wait_for_role(http_b, "leader", Duration::from_secs(10)).await;
    let off = watcher
        .recv(hearth_testkit::HANG_LIMIT)
        .await
        .map(|p| p.payload);
    assert_eq!(
        off.as_deref(),
        Some(&b"off"[..]),
        "the new leader finished the run"
    );
    // Once: nothing else before the marker the new leader answers.
    presser
        .publish("test/marker", QoS::AtLeastOnce, false, "end")
        .await;
    let next = watcher
        .recv(hearth_testkit::HANG_LIMIT)
        .await
        .map(|p| p.payload);
    assert_eq!(
        next.as_deref(),
        Some(&b"marker"[..]),
        "the run finished twice"
    );
    drop(b);
}
