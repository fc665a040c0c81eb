//! `/api/v1` endpoints the README's tour and the dashboard use, each field
//! as docs/http-api.md names it: the hub view, nodes, one output, and
//! setting buttons and outputs with POST.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Backend, TestDb, call, mqtt_port, spawn_hub, spawn_hub_on, wait_ready};
use hearth_testkit::{MosquittoBroker, TestClient, mosquitto_pub};
use rumqttc::QoS;
use serde_json::Value;

/// Bounds a hang only.
const WAIT: Duration = Duration::from_secs(30);

/// `GET url` parsed, once `done` accepts it; panics naming the last answer.
async fn get_until(url: &str, done: impl Fn(u16, &Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _, body) = call("GET", url, None).await;
        let value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if done(status, &value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "GET {url} never became what the test waits for; last {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The keys of a JSON object, to compare with the documented ones.
fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn rfc3339(value: &Value) -> chrono::DateTime<chrono::Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
        .to_utc()
}

/// A time zone far from UTC with a 45-minute offset: a clock in UTC, or in
/// any whole-hour zone, cannot match it by chance.
const CHATHAM: &str = "[hub]\ntimezone = \"Pacific/Chatham\"\n";

on_both_backends!(
    the_hub_view_has_every_documented_field,
    async |backend: Backend| {
        let mosquitto = MosquittoBroker::start();
        let db = TestDb::new(backend).await;
        let hub = spawn_hub_on(
            &db,
            &format!("mqtt://127.0.0.1:{}", mosquitto.port()),
            CHATHAM,
        )
        .await;
        wait_ready(&hub).await;
        let url = format!("http://{}/api/v1/hub", hub.http_addr);

        // A lone hub leads, also on Postgres once it holds the lock.
        let before = chrono::Utc::now().with_timezone(&chrono_tz::Pacific::Chatham);
        let view = get_until(&url, |s, v| s == 200 && v["role"] == "leader").await;
        let after = chrono::Utc::now().with_timezone(&chrono_tz::Pacific::Chatham);
        assert_eq!(
            keys(&view),
            BTreeSet::from([
                "role",
                "version",
                "timezone",
                "clock",
                "broker_connected",
                "database_ok"
            ]),
            "{view}"
        );
        assert_eq!(view["version"], env!("CARGO_PKG_VERSION"), "{view}");
        assert_eq!(view["timezone"], "Pacific/Chatham", "{view}");
        // The minute may turn during the request: either side of it.
        let clocks = [
            before.format("%H%M").to_string(),
            after.format("%H%M").to_string(),
        ];
        assert!(
            clocks.iter().any(|c| view["clock"] == c.as_str()),
            "clock {} is not Chatham's {clocks:?}",
            view["clock"]
        );
        assert_eq!(view["broker_connected"], true, "{view}");
        assert_eq!(view["database_ok"], true, "{view}");

        // The broker goes: the view says so.
        drop(mosquitto);
        let view = get_until(&url, |s, v| s == 200 && v["broker_connected"] != true).await;
        assert_eq!(view["broker_connected"], false, "{view}");
        assert_eq!(view["database_ok"], true, "{view}");
        hub.stop().await;
    }
);

on_both_backends!(
    nodes_are_listed_with_availability_last_seen_and_climate,
    async |backend: Backend| {
        let db = TestDb::new(backend).await;
        let hub = spawn_hub(&db, "").await;
        wait_ready(&hub).await;
        let port = mqtt_port(&hub);
        let url = format!("http://{}/api/v1/nodes", hub.http_addr);

        let (status, _, body) = call("GET", &url, None).await;
        assert_eq!((status, body.as_str()), (200, "[]"), "no node yet");

        let climate = r#"{"temperature":21.5,"humidity":40.0,"at":"2026-11-22T14:20:00Z"}"#;
        for (topic, payload) in [
            ("hearth/node/pi-1/availability", "online"),
            ("hearth/node/pi-1/climate", climate),
            ("hearth/node/pi-2/availability", "offline"),
        ] {
            let out = mosquitto_pub(port, &["-t", topic, "-q", "1", "-r", "-m", payload]);
            assert!(out.status.success(), "mosquitto_pub {topic}: {out:?}");
        }
        let nodes = get_until(&url, |s, v| {
            s == 200
                && v.as_array()
                    .is_some_and(|n| n.len() == 2 && n.iter().any(|n| !n["climate"].is_null()))
        })
        .await;
        let node = |id: &str| {
            nodes
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["id"] == id)
                .unwrap_or_else(|| panic!("no {id} in {nodes}"))
                .clone()
        };
        let pi1 = node("pi-1");
        assert_eq!(
            keys(&pi1),
            BTreeSet::from(["id", "availability", "last_seen", "climate"]),
            "{pi1}"
        );
        assert_eq!(pi1["availability"], "online", "{pi1}");
        rfc3339(&pi1["last_seen"]);
        assert_eq!(
            keys(&pi1["climate"]),
            BTreeSet::from(["temperature", "humidity", "at"]),
            "{pi1}"
        );
        assert_eq!(pi1["climate"]["temperature"], 21.5, "{pi1}");
        assert_eq!(pi1["climate"]["humidity"], 40.0, "{pi1}");
        assert_eq!(
            rfc3339(&pi1["climate"]["at"]),
            rfc3339(&Value::from("2026-11-22T14:20:00Z")),
            "{pi1}"
        );
        let pi2 = node("pi-2");
        assert_eq!(pi2["availability"], "offline", "{pi2}");
        assert!(pi2["climate"].is_null(), "pi-2 sent no reading: {pi2}");
        hub.stop().await;
    }
);

on_both_backends!(
    one_output_is_read_and_set_with_post,
    async |backend: Backend| {
        let db = TestDb::new(backend).await;
        let hub = spawn_hub(&db, "").await;
        wait_ready(&hub).await;
        let port = mqtt_port(&hub);
        let base = format!("http://{}/api/v1/outputs", hub.http_addr);
        let red = format!("{base}/pi-1/light/red");

        let (status, _, body) = call("GET", &red, None).await;
        assert_eq!(status, 404, "before the node reported it: {body}");
        assert!(body.contains("no state known for pi-1/light/red"), "{body}");
        let (status, _, body) = call("GET", &format!("{base}/pi-1/lamp/red"), None).await;
        assert_eq!(status, 400, "an unknown kind: {body}");

        // A stand-in agent: the light is ON, and it obeys its set topic.
        let mut agent = TestClient::connect(port, "pi-1").await;
        agent
            .publish(
                "hearth/node/pi-1/light/red/state",
                QoS::AtLeastOnce,
                true,
                "ON",
            )
            .await;
        let output = get_until(&red, |s, _| s == 200).await;
        assert_eq!(
            keys(&output),
            BTreeSet::from(["output", "state", "changed_at"]),
            "{output}"
        );
        assert_eq!(output["output"], "pi-1/light/red", "{output}");
        assert_eq!(output["state"], "ON", "{output}");
        rfc3339(&output["changed_at"]);

        agent
            .subscribe("hearth/node/pi-1/light/red/set", QoS::AtLeastOnce)
            .await;
        let client = agent.client.clone();
        let obey = tokio::spawn(async move {
            let command = agent.recv_on("hearth/node/pi-1/light/red/set", WAIT).await;
            client
                .publish(
                    "hearth/node/pi-1/light/red/state",
                    QoS::AtLeastOnce,
                    true,
                    command.payload.to_vec(),
                )
                .await
                .unwrap();
            command
        });
        let (status, _, body) = call("POST", &red, Some(r#"{"state":"TOGGLE"}"#)).await;
        assert_eq!(status, 200, "{body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            answer,
            serde_json::json!({"output": "pi-1/light/red", "state": "OFF"}),
            "TOGGLE of an ON light"
        );
        let command = obey.await.unwrap();
        assert_eq!(
            &command.payload[..],
            b"OFF",
            "the hub resolves TOGGLE from the confirmed state"
        );
        let output = get_until(&red, |s, v| s == 200 && v["state"] == "OFF").await;
        assert_eq!(output["output"], "pi-1/light/red", "{output}");
        hub.stop().await;
    }
);

on_both_backends!(post_sets_a_button_durably, async |backend: Backend| {
    let db = TestDb::new(backend).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let url = format!("http://{}/api/v1/buttons/porch", hub.http_addr);
    let mut watcher = TestClient::connect(mqtt_port(&hub), "watcher").await;
    watcher
        .subscribe("hearth/button/porch/state", QoS::AtLeastOnce)
        .await;

    let (status, _, body) = call("POST", &url, Some(r#"{"state":"TOGGLE"}"#)).await;
    assert_eq!(status, 200, "{body}");
    let button: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        keys(&button),
        BTreeSet::from([
            "id",
            "state",
            "changed_at",
            "last_action",
            "last_press_at",
            "press_count"
        ]),
        "{button}"
    );
    assert_eq!(button["id"], "porch", "{button}");
    assert_eq!(button["state"], "ON", "TOGGLE of a new button: {button}");
    assert_eq!(button["press_count"], 0, "a set is no press: {button}");
    assert!(button["last_action"].is_null(), "{button}");
    assert!(button["last_press_at"].is_null(), "{button}");
    let changed_at = rfc3339(&button["changed_at"]);
    let state = watcher.recv_on("hearth/button/porch/state", WAIT).await;
    assert_eq!(&state.payload[..], b"ON", "retained state after POST");

    let (status, _, body) = call("POST", &url, Some(r#"{"state":"sideways"}"#)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("error"), "{body}");

    // "answers once the change is stored": a new hub on the database sees it.
    hub.stop().await;
    let hub = spawn_hub(&db, "").await;
    let (status, _, body) = call(
        "GET",
        &format!("http://{}/api/v1/buttons/porch", hub.http_addr),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let button: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(button["state"], "ON", "after a restart: {button}");
    // Stored to the millisecond.
    assert_eq!(
        rfc3339(&button["changed_at"]).timestamp_millis(),
        changed_at.timestamp_millis(),
        "after a restart: {button}"
    );
    hub.stop().await;
});
