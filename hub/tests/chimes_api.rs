//! Chimes managed at run time over HTTP and MQTT, against a real hub, broker and database.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Backend, TestDb, WAIT, call, mqtt_port, spawn_hub, spawn_hub_on, wait_ready};
use hearth_testkit::{Subscriber, TestClient, broker_config, mosquitto_pub, start_broker};

const TEA: &str = r#"{"name":"Tea","schedule":"16:20","timezone":"America/Los_Angeles","speaker":"living-room","sound":"tea.wav","volume":40}"#;

on_both_backends!(
    http_crud_with_field_errors_and_nothing_half_saved,
    async |backend: Backend| {
        let db = TestDb::new(backend).await;
        let hub = spawn_hub(&db, "").await;
        wait_ready(&hub).await;
        let base = format!("http://{}/api/v1/chimes", hub.http_addr);
        let retained = Subscriber::start(mqtt_port(&hub), "hearth/hub/chimes/+", &[]);

        let (status, _, body) = call("PUT", &format!("{base}/tea"), Some(TEA)).await;
        assert_eq!(status, 200, "{body}");
        let view: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(view["timezone"], "America/Los_Angeles");
        assert!(
            view["next_at"].as_str().unwrap().contains("T16:20:00-0"),
            "{view}"
        );
        let line = retained.next_line(WAIT).unwrap();
        assert!(
            line.starts_with("hearth/hub/chimes/tea {") && line.contains("\"next_at\""),
            "{line}"
        );

        for (body, field) in [
            (
                r#"{"schedule":"25:61","speaker":"k","sound":"a.wav"}"#,
                "schedule",
            ),
            (
                r#"{"schedule":"07:00","timezone":"Mars/Base","speaker":"k","sound":"a.wav"}"#,
                "timezone",
            ),
            (
                r#"{"schedule":"07:00","speaker":"k","sound":"../../etc/passwd"}"#,
                "sound",
            ),
            (
                r#"{"schedule":"07:00","speaker":"k","sound":"a.wav","volume":300}"#,
                "volume",
            ),
            (
                r#"{"schedule":"07:00","speaker":"k","sound":"a.wav","colour":"red"}"#,
                "colour",
            ),
        ] {
            let (status, _, reply) = call("PUT", &format!("{base}/tea"), Some(body)).await;
            assert_eq!(status, 400, "{body}: {reply}");
            assert!(reply.contains(field), "{body}: {reply}");
        }
        let (_, _, body) = call("GET", &format!("{base}/tea"), None).await;
        assert!(
            body.contains("\"schedule\":\"16:20\""),
            "bad updates saved nothing: {body}"
        );

        // Play now, from HTTP: the speaker hears it at once.
        let speaker = Subscriber::start(mqtt_port(&hub), "hearth/chime/+/play", &[]);
        let (status, _, body) = call("POST", &format!("{base}/tea/play"), None).await;
        assert_eq!(status, 202, "{body}");
        speaker.expect_line(
            r#"hearth/chime/living-room/play {"sound":"tea.wav","volume":40,"chime":"tea"}"#,
            WAIT,
        );
        let (status, _, body) = call("POST", &format!("{base}/nope/play"), None).await;
        assert_eq!(status, 404, "{body}");
        for path in ["Tea%20Time", "tea.wav", &"x".repeat(65)] {
            let (status, _, body) = call("PUT", &format!("{base}/{path}"), Some(TEA)).await;
            assert_eq!(status, 400, "{path}: {body}");
            assert!(body.contains("id: "), "{path}: {body}");
        }

        let (status, _, body) = call("POST", &base, Some(r#"{"id":"wake","schedule":"07:00","weekdays":["weekdays"],"speaker":"bedroom","sound":"birds.wav"}"#)).await;
        assert_eq!(status, 201, "{body}");
        let (_, _, list) = call("GET", &base, None).await;
        let list: serde_json::Value = serde_json::from_str(&list).unwrap();
        assert_eq!(list.as_array().unwrap().len(), 2);

        let (status, _, _) = call("DELETE", &format!("{base}/wake"), None).await;
        assert_eq!(status, 204);
        let (status, _, _) = call("DELETE", &format!("{base}/wake"), None).await;
        assert_eq!(status, 404);
        let (status, _, _) = call("GET", &format!("{base}/wake"), None).await;
        assert_eq!(status, 404);
        hub.stop().await;

        // Runtime chimes survive a restart.
        let again = spawn_hub(&db, "").await;
        let (status, _, body) = call(
            "GET",
            &format!("http://{}/api/v1/chimes/tea", again.http_addr),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        again.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_set_play_and_delete() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let port = mqtt_port(&hub);
    let sub = Subscriber::start(port, "hearth/#", &[]);

    let published = mosquitto_pub(
        port,
        &["-t", "hearth/hub/chimes/tea/set", "-q", "1", "-m", TEA],
    );
    assert!(
        published.status.success(),
        "mosquitto_pub: {}",
        String::from_utf8_lossy(&published.stderr)
    );
    // WAIT bounds a hang: the retained view the hub publishes for the chime.
    sub.expect_where(|l| l.starts_with("hearth/hub/chimes/tea {"), WAIT);

    mosquitto_pub(port, &["-t", "hearth/hub/chimes/tea/play", "-q", "1", "-n"]);
    let played = sub.expect_line(
        "hearth/chime/living-room/play {\"sound\":\"tea.wav\",\"volume\":40,\"chime\":\"tea\"}",
        WAIT,
    );
    drop(played);

    // A bad chime names the field on hearth/hub/error and changes nothing.
    mosquitto_pub(
        port,
        &[
            "-t",
            "hearth/hub/chimes/tea/set",
            "-m",
            r#"{"schedule":"sometimes","speaker":"k","sound":"a.wav"}"#,
        ],
    );
    let (error, _) = sub.expect_where(|l| l.starts_with("hearth/hub/error"), WAIT);
    assert!(
        error.contains("schedule: \\\"sometimes\\\" is not a valid cron expression"),
        "{error}"
    );
    let (_, _, body) = call(
        "GET",
        &format!("http://{}/api/v1/chimes/tea", hub.http_addr),
        None,
    )
    .await;
    assert!(body.contains("\"schedule\":\"16:20\""), "{body}");

    // serde quotes an unknown key whole; a 10 KB one must not come back as
    // a 10 KB error (capped like the protocol's own JSON errors).
    let hostile = format!(r#"{{"{}":1}}"#, "k".repeat(10_000));
    mosquitto_pub(port, &["-t", "hearth/hub/chimes/tea/set", "-m", &hostile]);
    let (error, _) = sub.expect_where(|l| l.starts_with("hearth/hub/error"), WAIT);
    assert!(
        error.contains("invalid chime JSON: unknown field") && error.len() < 400,
        "{} bytes: {error:.300}",
        error.len()
    );

    // Empty payload deletes, and clears the retained view.
    mosquitto_pub(port, &["-t", "hearth/hub/chimes/tea/set", "-q", "1", "-n"]);
    // (mosquitto_sub shows an empty payload as "(null)")
    sub.expect_line("hearth/hub/chimes/tea (null)", WAIT);
    let (status, _, _) = call(
        "GET",
        &format!("http://{}/api/v1/chimes/tea", hub.http_addr),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let left = TestClient::retained(port, "hearth/hub/chimes/+").await;
    assert!(left.is_empty(), "a retained chime is left: {left:?}");
    hub.stop().await;
}

/// The chimes the hub lists, as (id, source, schedule, enabled).
async fn listed(hub: &hearth_hub::Hub) -> Vec<(String, String, String, bool)> {
    let (_, _, body) = call(
        "GET",
        &format!("http://{}/api/v1/chimes", hub.http_addr),
        None,
    )
    .await;
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["source"].as_str().unwrap().to_owned(),
                c["schedule"].as_str().unwrap().to_owned(),
                c["enabled"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Home Assistant discovery objects the broker holds for the hub's chimes,
/// read up to a marker (see [`TestClient::retained`]).
async fn discovered_chimes(port: u16) -> Vec<String> {
    let mut objects: Vec<String> =
        TestClient::retained(port, "homeassistant/+/hearth_hub/+/config")
            .await
            .into_iter()
            .filter_map(|(topic, payload)| {
                // A clear arriving live (empty) is no entity.
                if payload.is_empty() {
                    return None;
                }
                let object = topic.split('/').nth(3)?;
                object.starts_with("chime_").then(|| object.to_owned())
            })
            .collect();
    objects.sort();
    objects.dedup();
    objects
}

/// Waits until the chimes announced to Home Assistant are `expected`: a hub
/// announces after an API call answered and clears a removed chime's
/// entity after it is ready, so this is a state to wait for; panics with
/// the last set seen after [`WAIT`].
async fn wait_discovered_chimes(port: u16, expected: &[&str]) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let got = discovered_chimes(port).await;
        if got == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "announced chimes {got:?}, expected {expected:?}"
        );
    }
}

fn owned(rows: &[(&str, &str, &str, bool)]) -> Vec<(String, String, String, bool)> {
    rows.iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), *d))
        .collect()
}

on_both_backends!(
    config_chimes_sync_at_startup_keep_run_time_edits_and_leave_runtime_ones_alone,
    async |backend: Backend| {
        let db = TestDb::new(backend).await;
        // A broker that outlives the hub, as in a real home: retained
        // discovery must be cleared, not merely forgotten.
        let broker = start_broker(&broker_config());
        let port = broker.mqtt_addr().port();
        let url = format!("mqtt://127.0.0.1:{port}");
        let with_two = r#"
            [[chimes]]
            id = "tea"
            schedule = "16:20"
            timezone = "America/Los_Angeles"
            speaker = "living-room"
            sound = "tea.wav"

            [[chimes]]
            id = "wake"
            schedule = "07:00"
            weekdays = ["weekdays"]
            speaker = "bedroom"
            sound = "birds.wav"
        "#;
        let hub = spawn_hub_on(&db, &url, with_two).await;
        wait_ready(&hub).await;
        let base = format!("http://{}/api/v1/chimes", hub.http_addr);
        let (status, _, body) = call("PUT", &format!("{base}/mine"), Some(TEA)).await;
        assert_eq!(status, 200, "{body}");
        // Run-time edits of config chimes: wake switched off (as Home
        // Assistant's switch does), tea moved.
        let (status, _, body) = call(
            "PUT",
            &format!("{base}/wake/enabled"),
            Some(r#"{"state":"OFF"}"#),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let moved = TEA.replace("16:20", "16:25");
        let (status, _, body) = call("PUT", &format!("{base}/tea"), Some(&moved)).await;
        assert_eq!(status, 200, "{body}");
        // POST makes new chimes only.
        let (status, _, body) =
            call("POST", &base, Some(&TEA.replace("{", r#"{"id":"tea","#))).await;
        assert_eq!(status, 409, "{body}");
        assert!(body.contains("PUT /api/v1/chimes/tea"), "{body}");
        let expected = owned(&[
            ("mine", "runtime", "16:20", true),
            ("tea", "config", "16:25", true),
            ("wake", "config", "07:00", false),
        ]);
        assert_eq!(listed(&hub).await, expected);
        wait_discovered_chimes(port, &["chime_mine", "chime_tea", "chime_wake"]).await;
        hub.stop().await;

        // The same file again (a restart, a power cut): the edits stay.
        let hub = spawn_hub_on(&db, &url, with_two).await;
        wait_ready(&hub).await;
        assert_eq!(
            listed(&hub).await,
            expected,
            "run-time edits survive a restart"
        );
        hub.stop().await;

        // The file now lists only tea, at a new time: the file wins for
        // what it changed, wake goes (from Home Assistant too), mine stays.
        let with_one = r#"
            [[chimes]]
            id = "tea"
            schedule = "16:30"
            timezone = "America/Los_Angeles"
            speaker = "living-room"
            sound = "tea.wav"
        "#;
        let hub = spawn_hub_on(&db, &url, with_one).await;
        wait_ready(&hub).await;
        assert_eq!(
            listed(&hub).await,
            owned(&[
                ("mine", "runtime", "16:20", true),
                ("tea", "config", "16:30", true),
            ])
        );
        wait_discovered_chimes(port, &["chime_mine", "chime_tea"]).await;
        hub.stop().await;
    }
);
