//! The HTTP API against a real hub, broker and database (SQLite and Postgres).

#![allow(clippy::unwrap_used)]

mod common;

use common::{Backend, TestDb, WAIT, call, mqtt_port, spawn_hub, wait_ready};
use hearth_testkit::{TestClient, mosquitto_pub};
use rumqttc::QoS;

/// `GET /api/v1/nodes/<node>` once its body mentions `text`.
async fn node_showing(base: &str, node: &str, text: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _, body) = call("GET", &format!("{base}/api/v1/nodes/{node}"), None).await;
        if status == 200 && body.contains(text) {
            return serde_json::from_str(&body).unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{node} never showed {text}: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

on_both_backends!(
    homeslice_buttons_are_byte_exact,
    async |backend: Backend| {
        let db = TestDb::new(backend).await;
        let hub = spawn_hub(&db, "").await;
        wait_ready(&hub).await;
        let base = format!("http://{}", hub.http_addr);

        // Unknown button: 404 with a one-line reason.
        let (status, _, body) = call("GET", &format!("{base}/api/v0/buttons/desk/"), None).await;
        assert_eq!((status, body.as_str()), (404, "unknown button desk\n"));

        for path in ["/api/v0/buttons/desk/on/", "/api/v0/buttons/desk/on"] {
            let (status, ctype, body) = call("POST", &format!("{base}{path}"), None).await;
            assert_eq!((status, body.as_str()), (200, "OK"), "{path}");
            assert!(ctype.starts_with("text/plain"), "{ctype}");
        }
        for path in ["/api/v0/buttons/desk/", "/api/v0/buttons/desk"] {
            let (status, _, body) = call("GET", &format!("{base}{path}"), None).await;
            assert_eq!((status, body.as_str()), (200, "ON\n"), "{path}");
        }
        let (_, _, body) = call("POST", &format!("{base}/api/v0/buttons/desk/off/"), None).await;
        assert_eq!(body, "OK");
        let (_, _, body) = call("GET", &format!("{base}/api/v0/buttons/desk/"), None).await;
        assert_eq!(body, "OFF\n");

        // State and local time in one call, and the clock alone.
        let (status, _, body) =
            call("GET", &format!("{base}/api/v0/buttontimes/desk/"), None).await;
        assert_eq!(status, 200);
        assert!(
            body.len() == 9 && body.starts_with("OFF:") && body.ends_with('\n'),
            "{body:?}"
        );
        let (status, ctype, clock) = call("GET", &format!("{base}/api/v0/clocktime/"), None).await;
        assert_eq!(status, 200);
        assert!(ctype.starts_with("text/plain"), "{ctype}");
        assert!(
            clock.len() == 4 && clock.chars().all(|c| c.is_ascii_digit()),
            "{clock:?}"
        );
        let (_, _, clock2) = call("GET", &format!("{base}/api/v0/clocktime"), None).await;
        assert_eq!(clock2.len(), 4);

        // The list.
        let (status, ctype, body) = call("GET", &format!("{base}/api/v0/buttons/"), None).await;
        assert_eq!(status, 200);
        assert!(ctype.starts_with("application/json"), "{ctype}");
        assert_eq!(body, r#"[{"id":"desk","state":"OFF"}]"#);

        // toggle, as over MQTT: OFF -> ON -> OFF.
        for want in ["ON\n", "OFF\n"] {
            let (status, _, body) =
                call("POST", &format!("{base}/api/v0/buttons/desk/toggle/"), None).await;
            assert_eq!((status, body.as_str()), (200, "OK"));
            let (_, _, state) = call("GET", &format!("{base}/api/v0/buttons/desk/"), None).await;
            assert_eq!(state, want);
        }

        // Bad operation and bad id: 400 with a reason; wrong method: 405.
        let (status, _, body) =
            call("POST", &format!("{base}/api/v0/buttons/desk/blink/"), None).await;
        assert_eq!(status, 400);
        assert!(body.contains("unknown operation \"blink\""), "{body}");
        let (status, _, body) =
            call("POST", &format!("{base}/api/v0/buttons/Desk!/on/"), None).await;
        assert_eq!(status, 400);
        assert!(body.starts_with("bad id"), "{body}");
        let (status, _, _) = call("DELETE", &format!("{base}/api/v0/buttons/desk/"), None).await;
        assert_eq!(status, 405);
        hub.stop().await;
    }
);

on_both_backends!(
    http_button_changes_reach_mqtt_and_mqtt_changes_reach_http,
    async |backend: Backend| {
        let db = TestDb::new(backend).await;
        let hub = spawn_hub(&db, "").await;
        wait_ready(&hub).await;
        let base = format!("http://{}", hub.http_addr);
        let port = mqtt_port(&hub);
        let mut watcher = TestClient::connect(port, "watcher").await;
        watcher
            .subscribe("hearth/button/+/state", QoS::AtLeastOnce)
            .await;

        call("POST", &format!("{base}/api/v0/buttons/hall/on/"), None).await;
        let state = watcher.recv_on("hearth/button/hall/state", WAIT).await;
        assert_eq!(&state.payload[..], b"ON");

        let published = mosquitto_pub(
            port,
            &["-t", "hearth/button/hall/set", "-q", "1", "-m", "toggle"],
        );
        assert!(
            published.status.success(),
            "mosquitto_pub: {}",
            String::from_utf8_lossy(&published.stderr)
        );
        let state = watcher.recv_on("hearth/button/hall/state", WAIT).await;
        assert_eq!(&state.payload[..], b"OFF");
        let (_, _, body) = call("GET", &format!("{base}/api/v0/buttons/hall/"), None).await;
        assert_eq!(body, "OFF\n");
        hub.stop().await;
    }
);

const SWITCHES: &str = r#"
[switches]
lamp = "pi-1/switch/lamp"
dead = "pi-9/switch/nothing"

[hub]
switch_timeout_ms = 500
"#;

on_both_backends!(
    homeslice_switches_wait_for_the_agent,
    async |backend: Backend| {
        let db = TestDb::new(backend).await;
        let hub = spawn_hub(&db, SWITCHES).await;
        wait_ready(&hub).await;
        let base = format!("http://{}", hub.http_addr);
        let port = mqtt_port(&hub);

        // A stand-in agent that obeys its set topic and confirms on its state topic.
        let mut agent = TestClient::connect(port, "pi-1").await;
        agent
            .subscribe("hearth/node/pi-1/switch/lamp/set", QoS::AtLeastOnce)
            .await;
        let client = agent.client.clone();
        let obey = tokio::spawn(async move {
            while let Some(cmd) = agent.recv(std::time::Duration::from_secs(10)).await {
                client
                    .publish(
                        "hearth/node/pi-1/switch/lamp/state",
                        QoS::AtLeastOnce,
                        true,
                        cmd.payload.to_vec(),
                    )
                    .await
                    .unwrap();
            }
        });

        let (status, _, body) =
            call("POST", &format!("{base}/api/v0/switches/lamp/on/"), None).await;
        assert_eq!((status, body.as_str()), (200, "OK"));
        // TOGGLE is resolved by the hub from the confirmed state: ON -> OFF.
        let (status, _, _) =
            call("POST", &format!("{base}/api/v0/switches/lamp/toggle"), None).await;
        assert_eq!(status, 200);
        let (_, _, outputs) = call("GET", &format!("{base}/api/v1/outputs"), None).await;
        let outputs: serde_json::Value = serde_json::from_str(&outputs).unwrap();
        assert_eq!(outputs[0]["state"], "OFF", "{outputs}");
        assert_eq!(outputs[0]["node"], "pi-1");

        // No agent answers for `dead`: 504 with a reason, after the timeout.
        let (status, _, body) =
            call("POST", &format!("{base}/api/v0/switches/dead/on/"), None).await;
        assert_eq!(status, 504);
        assert!(body.contains("did not confirm within 500 ms"), "{body}");
        let (status, _, body) =
            call("POST", &format!("{base}/api/v0/switches/nope/on/"), None).await;
        assert_eq!(status, 404, "{body}");
        let (status, _, _) = call("POST", &format!("{base}/api/v0/switches/lamp/dim/"), None).await;
        assert_eq!(status, 400);
        obey.abort();
        hub.stop().await;
    }
);

on_both_backends!(
    json_api_for_buttons_nodes_and_outputs,
    async |backend: Backend| {
        let db = TestDb::new(backend).await;
        let hub = spawn_hub(&db, "").await;
        wait_ready(&hub).await;
        let base = format!("http://{}", hub.http_addr);
        let port = mqtt_port(&hub);

        let (status, _, body) = call(
            "PUT",
            &format!("{base}/api/v1/buttons/desk"),
            Some(r#"{"state":"ON"}"#),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let button: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(button["state"], "ON");
        assert_eq!(button["press_count"], 0);

        for (body, why) in [
            ("{\"state\":", "EOF"),
            ("{\"state\":\"BLINK\"}", "expected ON, OFF, TOGGLE"),
            ("[1,2]", "expected"),
        ] {
            let (status, _, reply) =
                call("PUT", &format!("{base}/api/v1/buttons/desk"), Some(body)).await;
            assert_eq!(status, 400, "{body}");
            let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
            assert!(reply["error"].as_str().unwrap().contains(why), "{reply}");
        }
        let huge = format!("{{\"state\":\"{}\"}}", "x".repeat(100_000));
        let (status, _, _) = call("PUT", &format!("{base}/api/v1/buttons/desk"), Some(&huge)).await;
        assert_eq!(status, 413);
        let (_, _, body) = call("GET", &format!("{base}/api/v1/buttons/desk"), None).await;
        assert!(
            body.contains("\"state\":\"ON\""),
            "bad requests changed nothing: {body}"
        );

        // A node reports in over MQTT; the API shows availability, climate and history.
        let climate = r#"{"temperature":21.5,"humidity":40.0,"at":"2026-11-22T14:20:00Z"}"#;
        mosquitto_pub(
            port,
            &[
                "-t",
                "hearth/node/pi-1/availability",
                "-q",
                "1",
                "-m",
                "online",
            ],
        );
        mosquitto_pub(
            port,
            &["-t", "hearth/node/pi-1/climate", "-q", "1", "-m", climate],
        );
        let node = node_showing(&base, "pi-1", "21.5").await;
        assert_eq!(node["availability"], "online");
        assert_eq!(node["climate"]["humidity"], 40.0);
        // History is read from the database, which the writer fills a moment later.
        let deadline = tokio::time::Instant::now() + WAIT;
        let history = loop {
            let (status, _, body) = call(
                "GET",
                &format!("{base}/api/v1/nodes/pi-1/history?hours=744"),
                None,
            )
            .await;
            assert_eq!(status, 200);
            let history: serde_json::Value = serde_json::from_str(&body).unwrap();
            if history.as_array().is_some_and(|h| !h.is_empty())
                || tokio::time::Instant::now() > deadline
            {
                break history;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(history.as_array().map(Vec::len), Some(1), "{history}");
        assert_eq!(history[0]["temperature"], 21.5);
        let (status, _, _) = call(
            "GET",
            &format!("{base}/api/v1/nodes/pi-1/history?hours=0"),
            None,
        )
        .await;
        assert_eq!(status, 400);
        let (status, _, _) = call("GET", &format!("{base}/api/v1/nodes/nobody"), None).await;
        assert_eq!(status, 404);

        // A DIY sensor (or a shell) sends a reading without `at`: it counts
        // as measured when the hub received it.
        let sent = chrono::Utc::now();
        mosquitto_pub(
            port,
            &[
                "-t",
                "hearth/node/esp-1/climate",
                "-q",
                "1",
                "-m",
                r#"{"temperature":19.5,"humidity":55}"#,
            ],
        );
        let node = node_showing(&base, "esp-1", "19.5").await;
        let at = chrono::DateTime::parse_from_rfc3339(node["climate"]["at"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert!(
            at >= sent - chrono::Duration::seconds(1) && at <= chrono::Utc::now(),
            "stamped {at}, sent {sent}"
        );
        hub.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let base = format!("http://{}", hub.http_addr);
    assert_eq!(
        call("GET", &format!("{base}/healthz"), None).await.2,
        "ok\n"
    );
    assert_eq!(call("GET", &format!("{base}/readyz"), None).await.0, 200);
    mosquitto_pub(
        mqtt_port(&hub),
        &[
            "-t",
            "hearth/button/desk/press",
            "-q",
            "1",
            "-m",
            "nonsense",
        ],
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, ctype, text) = call("GET", &format!("{base}/metrics"), None).await;
        assert!(ctype.starts_with("text/plain"), "{ctype}");
        if text.contains("hearth_errors_total{reason=\"invalid_message\"} 1") {
            assert!(text.contains("hearth_broker_connected 1"), "{text}");
            // The embedded broker's per-client losses: declared, none yet.
            assert!(
                text.contains("# TYPE hearth_broker_lost_messages_total counter\n")
                    && !text.contains("hearth_broker_lost_messages_total{"),
                "{text}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_a_button_clears_its_state_row_and_home_assistant_entities() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let base = format!("http://{}", hub.http_addr);
    let port = mqtt_port(&hub);
    mosquitto_pub(
        port,
        &["-t", "hearth/button/desk/set", "-q", "1", "-m", "ON"],
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while call("GET", &format!("{base}/api/v1/buttons/desk"), None)
        .await
        .0
        != 200
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the press never reached the API (waited {WAIT:?})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, _, _) = call("DELETE", &format!("{base}/api/v1/buttons/desk"), None).await;
    assert_eq!(status, 204);
    let (status, _, _) = call("GET", &format!("{base}/api/v1/buttons/desk"), None).await;
    assert_eq!(status, 404);
    let (status, _, _) = call("DELETE", &format!("{base}/api/v1/buttons/desk"), None).await;
    assert_eq!(status, 404);
    // Nothing retained is left for it: no state, no discovery config.
    let left: Vec<_> = TestClient::retained(port, "#")
        .await
        .into_iter()
        .filter(|(topic, _)| topic.contains("button/desk") || topic.contains("button_desk"))
        .collect();
    assert!(
        left.is_empty(),
        "still retained for the deleted button: {left:?}"
    );
    hub.stop().await;
    // Gone from the database too.
    let again = spawn_hub(&db, "").await;
    let buttons = again.house().buttons.clone();
    assert!(buttons.is_empty(), "still stored: {buttons:?}");
    again.stop().await;
}
