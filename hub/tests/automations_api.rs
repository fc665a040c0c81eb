//! Automations and scenes changed at run time, over MQTT and HTTP, on
//! SQLite and Postgres; runs waiting on a delay across a restart. Real hub,
//! embedded broker, mosquitto_pub/sub; a change is seen as its retained
//! view, a command as the message the hub sends.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Backend, TestDb, WAIT, call, publish, spawn_hub, spawn_hub_on, wait_ready};
use hearth_testkit::{MosquittoBroker, Subscriber};

const DESK: &str = r#"{"triggers":[{"button":"desk","action":"single"}],
  "actions":[{"output":"pi-1/light/lamp","command":"ON"}]}"#;

async fn edited_over_mqtt(backend: Backend) {
    let db = TestDb::new(backend).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let port = common::mqtt_port(&hub);
    let sub = Subscriber::start(port, "hearth/#", &["-q", "1"]);
    sub.expect_line("hearth/hub/availability online", WAIT);

    publish(port, "hearth/hub/automations/desk/set", DESK);
    let (view, _) = sub.expect_where(|l| l.starts_with("hearth/hub/automations/desk {"), WAIT);
    assert!(
        view.contains(r#""id":"desk""#) && view.contains(r#""source":"runtime""#),
        "{view}"
    );
    publish(port, "hearth/button/desk/press", "single");
    sub.expect_line("hearth/node/pi-1/light/lamp/set ON", WAIT);

    // A mistake is refused naming the field; the automation stays as it was.
    publish(
        port,
        "hearth/hub/automations/desk/set",
        r#"{"triggers":[{"button":"desk","action":"tripple"}],"actions":[{"output":"pi-1/light/lamp","command":"ON"}]}"#,
    );
    let (error, seen) = sub.expect_where(|l| l.starts_with("hearth/hub/error "), WAIT);
    assert!(error.contains("triggers[0].action"), "{error}");
    let after_set = seen
        .iter()
        .skip_while(|l| !l.starts_with("hearth/hub/automations/desk/set "));
    assert!(
        !after_set
            .clone()
            .any(|l| l.starts_with("hearth/hub/automations/desk ")),
        "a refused change published a view: {seen:?}"
    );

    // One that would set itself off forever is refused the same way.
    publish(
        port,
        "hearth/hub/automations/echo/set",
        r#"{"triggers":[{"topic":"test/echo"}],"actions":[{"publish":"test/echo","payload":"again"}]}"#,
    );
    let (error, _) = sub.expect_where(|l| l.starts_with("hearth/hub/error "), WAIT);
    assert!(
        error.contains("automation echo -> automation echo"),
        "{error}"
    );

    // Switched off, a press does nothing; the press's event is the marker
    // (the hub publishes an automation's commands before the event).
    publish(port, "hearth/hub/automations/desk/enabled/set", "OFF");
    sub.expect_where(
        |l| l.starts_with("hearth/hub/automations/desk {") && l.contains(r#""enabled":false"#),
        WAIT,
    );
    publish(port, "hearth/button/desk/press", "single");
    let (_, seen) = sub.expect_where(|l| l.starts_with("hearth/button/desk/event"), WAIT);
    assert!(
        !seen.iter().any(|l| l.contains("lamp/set")),
        "ran while off: {seen:?}"
    );

    // Run by hand, it runs even while off.
    publish(port, "hearth/hub/automations/desk/run", "");
    sub.expect_line("hearth/node/pi-1/light/lamp/set ON", WAIT);

    // Deleted: its retained view is cleared, and a new hub on the same
    // database does not have it.
    publish(port, "hearth/hub/automations/desk/set", "");
    // mosquitto_sub -v shows an empty payload as (null).
    sub.expect_line("hearth/hub/automations/desk (null)", WAIT);
    hub.stop().await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let (status, _, body) = call(
        "GET",
        &format!("http://{}/api/v1/automations", hub.http_addr),
        None,
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "[]"));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_over_mqtt_on_sqlite() {
    edited_over_mqtt(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_over_mqtt_on_postgres() {
    edited_over_mqtt(Backend::Postgres).await;
}

async fn edited_over_http(backend: Backend) {
    let db = TestDb::new(backend).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let port = common::mqtt_port(&hub);
    let base = format!("http://{}/api/v1", hub.http_addr);
    let sub = Subscriber::start(port, "hearth/#", &["-q", "1"]);
    sub.expect_line("hearth/hub/availability online", WAIT);

    // Nothing is saved until it is valid, and the answer names the field.
    let bad = r#"{"id":"porch","triggers":[{"sun":"sunset"}],"actions":[{"scene":"evening"}]}"#;
    let (status, _, body) = call("POST", &format!("{base}/automations"), Some(bad)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("triggers[0].sun") && body.contains("hub.latitude"),
        "{body}"
    );
    let (_, _, list) = call("GET", &format!("{base}/automations"), None).await;
    assert_eq!(list, "[]");

    // A scene, then an automation that applies it and would not run by day.
    let scene = r#"{"outputs":[{"output":"pi-1/light/lamp","brightness_pct":30},
        {"output":"pi-1/light/ceiling","command":"OFF"}]}"#;
    let (status, _, body) = call("PUT", &format!("{base}/scenes/evening"), Some(scene)).await;
    assert_eq!(status, 200, "{body}");
    let good = r#"{"id":"evening-button","triggers":[{"button":"evening","action":"any"}],
        "conditions":[{"button":"away","state":"ON"}],
        "actions":[{"scene":"evening"}]}"#;
    let (status, _, body) = call("POST", &format!("{base}/automations"), Some(good)).await;
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = call("POST", &format!("{base}/automations"), Some(good)).await;
    assert_eq!(status, 409, "POST of an existing id: {body}");

    publish(port, "hearth/button/evening/press", "single");
    let (_, seen) = sub.expect_where(|l| l.starts_with("hearth/button/evening/event"), WAIT);
    assert!(
        !seen.iter().any(|l| l.contains("/set ")),
        "ran though away is not ON: {seen:?}"
    );
    // Why not: the trace says which condition failed and what it saw. The
    // hub answers from what it holds (the database has it once the writer
    // commits), so a call after the press's event sees it.
    let (_, _, traces) = call(
        "GET",
        &format!("{base}/automations/evening-button/traces"),
        None,
    )
    .await;
    let traces: serde_json::Value = serde_json::from_str(&traces).unwrap();
    assert_eq!(traces[0]["outcome"], "conditions_failed", "{traces:#}");
    assert_eq!(
        traces[0]["conditions"][0]["saw"], "button away is unknown",
        "{traces:#}"
    );

    // Applied from HTTP, the scene switches its outputs.
    let (status, _, body) = call("POST", &format!("{base}/scenes/evening/apply"), None).await;
    assert_eq!(status, 202, "{body}");
    sub.expect_all(
        &[
            "hearth/node/pi-1/light/lamp/brightness/set 77".to_owned(),
            "hearth/node/pi-1/light/ceiling/set OFF".to_owned(),
        ],
        WAIT,
    );
    let (status, _, _) = call("POST", &format!("{base}/scenes/nope/apply"), None).await;
    assert_eq!(status, 404);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_over_http_on_sqlite() {
    edited_over_http(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_over_http_on_postgres() {
    edited_over_http(Backend::Postgres).await;
}

const NIGHT_LIGHT: &str = r#"
[hub]
automation_catch_up_s = 60

[[automations]]
id = "night-light"
triggers = [{ button = "night", action = "single" }]
actions = [
  { output = "pi-1/light/hall", command = "ON" },
  { delay_s = 600 },
  { output = "pi-1/light/hall", command = "OFF" },
]
"#;

/// Stores a run of `night-light` waiting on its delay until `until`, as a
/// hub that stopped would have left it.
async fn leave_waiting(db: &TestDb, run: u64, until: chrono::DateTime<chrono::Utc>) {
    use hearth_hub::model::effects::{CatalogWrite, Write};
    let state = serde_json::json!({
        "automation": "night-light", "run": run, "next_step": 1,
        "until": until,
        "trace": {"run": run, "automation": "night-light", "started_at": until - chrono::Duration::minutes(10),
                  "trigger": "button night pressed single", "outcome": "running"}
    });
    let store = common::store(db).await;
    store
        .apply(&[Write::Catalog(CatalogWrite::Run {
            automation: hearth_protocol::Id::new("night-light").unwrap(),
            run,
            state: state.to_string(),
        })])
        .await
        .unwrap();
}

async fn delays_survive_a_restart(backend: Backend) {
    let db = TestDb::new(backend).await;
    // A first start syncs the automation from the file into the database.
    let hub = spawn_hub(&db, NIGHT_LIGHT).await;
    wait_ready(&hub).await;
    hub.stop().await;
    let now = chrono::Utc::now();
    // Due 20 s ago (inside the 60 s window): goes on at once after the start.
    leave_waiting(&db, 1, now - chrono::Duration::seconds(20)).await;
    // Due an hour ago: recorded missed, nothing sent.
    leave_waiting(&db, 2, now - chrono::Duration::hours(1)).await;

    // The hub as a client of Mosquitto, so the subscriber is there first:
    // the late run's command goes out as soon as the hub starts.
    let broker = MosquittoBroker::start();
    let port = broker.port();
    let sub = Subscriber::start(port, "hearth/#", &["-q", "1"]);
    let hub = spawn_hub_on(&db, &format!("mqtt://127.0.0.1:{port}"), NIGHT_LIGHT).await;
    wait_ready(&hub).await;
    sub.expect_line("hearth/node/pi-1/light/hall/set OFF", WAIT);
    let base = format!("http://{}/api/v1", hub.http_addr);
    // The press's run, for an event to order the trace reads after.
    publish(port, "hearth/button/night/press", "single");
    sub.expect_line("hearth/node/pi-1/light/hall/set ON", WAIT);
    sub.expect_where(|l| l.starts_with("hearth/button/night/event"), WAIT);
    let (_, _, traces) = call(
        "GET",
        &format!("{base}/automations/night-light/traces?limit=10"),
        None,
    )
    .await;
    let traces: Vec<serde_json::Value> = serde_json::from_str(&traces).unwrap();
    let outcome = |run: u64| {
        traces
            .iter()
            .find(|t| t["run"] == run)
            .map(|t| t["outcome"].as_str().unwrap().to_owned())
    };
    assert_eq!(outcome(1).as_deref(), Some("done"), "{traces:#?}");
    assert_eq!(outcome(2).as_deref(), Some("missed"), "{traces:#?}");
    // The new press waits on its delay, stored.
    let (_, _, list) = call("GET", &format!("{base}/automations"), None).await;
    assert!(list.contains(r#""running":1"#), "{list}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delays_survive_a_restart_on_sqlite() {
    delays_survive_a_restart(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delays_survive_a_restart_on_postgres() {
    delays_survive_a_restart(Backend::Postgres).await;
}
