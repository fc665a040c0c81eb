//! The dashboard's HTTP side against a real hub and broker: small self-contained files, the live event stream, and the API calls the page makes.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::sse::EventStream;
use common::{Backend, TestDb, WAIT, call, mqtt_port, spawn_hub, wait_ready};
use hearth_testkit::{TestClient, mosquitto_pub};
use rumqttc::QoS;

/// The page is useless on a phone if it is heavy; a budget catches a
/// dependency sneaking in. 12 KiB until issue 19's panels (run the house,
/// the logbook, the timelines) brought the page to 15,788 B gzipped.
const PAGE_BUDGET_GZIP_BYTES: usize = 16 * 1024;

#[derive(Debug)]
struct Fetched {
    status: u16,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
}

async fn get(url: &str, headers: &[(&str, &str)]) -> Fetched {
    let mut request = reqwest::Client::new().get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    Fetched {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        bytes: response.bytes().await.unwrap().to_vec(),
    }
}

fn header<'a>(f: &'a Fetched, name: &str) -> &'a str {
    f.headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_small_self_contained_and_cached_by_etag() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, "").await;
    let base = format!("http://{}", hub.http_addr);

    let page = get(&format!("{base}/"), &[]).await;
    assert_eq!(page.status, 200);
    let ctype = header(&page, "content-type");
    assert!(ctype.starts_with("text/html"), "{ctype}");
    let csp = header(&page, "content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = String::from_utf8(page.bytes.clone()).unwrap();

    // Every file the page loads comes from the hub itself: no CDN. (Links
    // the user may follow, `<a href>`, are not loaded with the page.)
    let mut referenced = Vec::new();
    for tag in html.split('<').filter(|t| !t.starts_with("a ")) {
        for attr in ["src=\"", "href=\""] {
            if let Some((_, rest)) = tag.split_once(attr) {
                referenced.push(rest.split('"').next().unwrap().to_owned());
            }
        }
    }
    referenced.sort();
    referenced.dedup();
    assert!(referenced.len() >= 4, "{referenced:?}");
    let mut report = Vec::new();
    let mut total_gzip = 0;
    for path in std::iter::once(String::new()).chain(referenced) {
        assert!(
            !path.contains("//") && !path.starts_with('/'),
            "{path}: the page must only load relative, same-origin files"
        );
        let plain = get(&format!("{base}/{path}"), &[]).await;
        assert_eq!(plain.status, 200, "{path}");
        let packed = get(&format!("{base}/{path}"), &[("accept-encoding", "gzip")]).await;
        let sent = if header(&packed, "content-encoding") == "gzip" {
            packed.bytes.len()
        } else {
            assert_eq!(packed.bytes, plain.bytes, "{path}");
            plain.bytes.len()
        };
        total_gzip += sent;
        report.push(format!("/{path}: {} B, {sent} B gzip", plain.bytes.len()));

        // Revalidation costs a 304 and no body.
        let etag = header(&plain, "etag").to_owned();
        assert!(etag.starts_with('"') && etag.len() == 18, "{path}: {etag}");
        let again = get(&format!("{base}/{path}"), &[("if-none-match", &etag)]).await;
        assert_eq!(again.status, 304, "{path}");
        assert!(
            again.bytes.is_empty(),
            "{path}: a 304 with {} bytes",
            again.bytes.len()
        );
    }
    println!("dashboard bytes:\n  {}", report.join("\n  "));
    println!("total gzip: {total_gzip} B");
    assert!(
        total_gzip <= PAGE_BUDGET_GZIP_BYTES,
        "the page weighs {total_gzip} B gzipped: {report:?}"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_sends_the_house_then_every_change_coalesced() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let port = mqtt_port(&hub);
    let base = format!("http://{}", hub.http_addr);

    let mut events = EventStream::open(&format!("{base}/api/v1/events")).await;
    let first = events.next_snapshot(WAIT).await;
    assert_eq!(first["hub"]["role"], "leader");
    assert_eq!(first["hub"]["clock"].as_str().unwrap().len(), 4);
    assert_eq!(first["buttons"], serde_json::json!([]));

    // A node reports from the shell; the stream shows it without asking.
    mosquitto_pub(
        port,
        &[
            "-t",
            "hearth/node/attic/climate",
            "-m",
            &format!(
                r#"{{"temperature":19.5,"humidity":48.0,"at":"{}"}}"#,
                chrono::Utc::now().to_rfc3339()
            ),
        ],
    );
    mosquitto_pub(
        port,
        &["-t", "hearth/node/attic/light/lamp/state", "-m", "ON", "-r"],
    );
    let seen = events
        .until(WAIT, |s| {
            s["nodes"][0]["climate"]["temperature"] == 19.5 && s["outputs"][0]["state"] == "ON"
        })
        .await;
    assert_eq!(seen["outputs"][0]["node"], "attic");
    assert_eq!(seen["outputs"][0]["kind"], "light");

    // A burst of 300 presses: a few events, the last one with all of them.
    let button = TestClient::connect(port, "dashboard-test-button").await;
    let started = tokio::time::Instant::now();
    for _ in 0..300 {
        button
            .publish(
                "hearth/button/door/press",
                QoS::AtLeastOnce,
                false,
                "single",
            )
            .await;
    }
    let mut events_seen = 0;
    let last = loop {
        let snapshot = events.next_snapshot(WAIT).await;
        events_seen += 1;
        if snapshot["buttons"][0]["press_count"] == 300 {
            break snapshot;
        }
    };
    let elapsed = started.elapsed();
    assert_eq!(last["buttons"][0]["id"], "door");
    assert_eq!(last["buttons"][0]["last_action"], "single");
    // One event per 250 ms at most, whatever the machine's speed.
    let allowed = (elapsed.as_millis() / 250) as usize + 2;
    println!("300 presses in {elapsed:?} reached the page in {events_seen} events");
    assert!(
        events_seen <= allowed,
        "{events_seen} events in {elapsed:?}: not coalesced"
    );

    // A stopping hub ends open streams instead of waiting on them.
    tokio::time::timeout(Duration::from_secs(10), hub.stop())
        .await
        .expect("an open event stream must not hold up shutdown");
    assert_eq!(events.next(WAIT).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboards_api_calls_work_and_refuse_bad_input() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let port = mqtt_port(&hub);
    let base = format!("http://{}", hub.http_addr);

    // History, averaged into as many points as a chart wants.
    for (minutes_ago, t) in [(40, 20.0), (30, 21.0), (20, 22.0), (10, 23.0)] {
        let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
        mosquitto_pub(
            port,
            &[
                "-t",
                "hearth/node/den/climate",
                "-q",
                "1",
                "-m",
                &format!(
                    r#"{{"temperature":{t},"humidity":40.0,"at":"{}"}}"#,
                    at.to_rfc3339()
                ),
            ],
        );
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    let all = loop {
        let (status, _, body) =
            call("GET", &format!("{base}/api/v1/nodes/den/history"), None).await;
        assert_eq!(status, 200);
        let all: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        if all.len() == 4 || tokio::time::Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(all.len(), 4);
    let (status, _, body) = call(
        "GET",
        &format!("{base}/api/v1/nodes/den/history?hours=24&points=1"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let one: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["temperature"], 21.5);
    for bad in ["points=0", "points=100000", "points=lots"] {
        let (status, _, body) = call(
            "GET",
            &format!("{base}/api/v1/nodes/den/history?{bad}"),
            None,
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // The chime switch: enabled off and on, nothing else changes.
    let chime = r#"{"id":"tea","name":"Tea","schedule":"0 17 * * *","speaker":"kitchen","sound":"ding.wav","timezone":"Europe/Berlin"}"#;
    let (status, _, body) = call("POST", &format!("{base}/api/v1/chimes"), Some(chime)).await;
    assert_eq!(status, 201, "{body}");
    let url = format!("{base}/api/v1/chimes/tea/enabled");
    let (status, _, body) = call("PUT", &url, Some(r#"{"state":"OFF"}"#)).await;
    assert_eq!(status, 200, "{body}");
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["enabled"], false);
    assert_eq!(view["next_at"], serde_json::Value::Null);
    assert_eq!(view["schedule"], "0 17 * * *");
    let (status, _, body) = call("PUT", &url, Some(r#"{"state":"TOGGLE"}"#)).await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""enabled":true"#), "{body}");
    let (status, _, body) = call("PUT", &url, Some(r#"{"state":"sideways"}"#)).await;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = call("PUT", &url, Some("{not json")).await;
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = call(
        "PUT",
        &format!("{base}/api/v1/chimes/nope/enabled"),
        Some(r#"{"state":"ON"}"#),
    )
    .await;
    assert_eq!(status, 404);
    let (_, _, body) = call("GET", &format!("{base}/api/v1/chimes/tea"), None).await;
    assert!(body.contains(r#""enabled":true"#), "{body}");

    // The snapshot is the stream's document, on request.
    let (status, _, body) = call("GET", &format!("{base}/api/v1/snapshot"), None).await;
    assert_eq!(status, 200);
    let snapshot: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(snapshot["chimes"][0]["id"], "tea");
    assert_eq!(snapshot["nodes"][0]["id"], "den");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_views_are_bounded() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, "").await;
    let url = format!("http://{}/api/v1/events", hub.http_addr);
    let mut open = Vec::new();
    for _ in 0..64 {
        open.push(EventStream::open(&url).await);
    }
    let (status, _, body) = call("GET", &url, None).await;
    assert_eq!(status, 503);
    assert!(body.contains("live views"), "{body}");
    // Closing one makes room.
    open.pop();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let response = reqwest::get(&url).await.unwrap();
        if response.status() == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no room freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_carries_automations_scenes_inputs_and_brightness() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let port = mqtt_port(&hub);
    let base = format!("http://{}", hub.http_addr);
    let mut stream = EventStream::open(&format!("{base}/api/v1/events")).await;
    let first = stream.next_snapshot(WAIT).await;
    assert_eq!(first["automations"], serde_json::json!([]), "{first}");
    assert_eq!(first["automations_total"], 0, "{first}");
    println!("snapshot, empty house: {} B", first.to_string().len());

    let porch = r#"{"id":"porch","name":"Porch light","triggers":[{"input":"hall/door","to":"ON"}],
        "actions":[{"output":"hall/light/lamp","command":"ON"}]}"#;
    let (status, _, body) = call("POST", &format!("{base}/api/v1/automations"), Some(porch)).await;
    assert_eq!(status, 201, "{body}");
    let scene = r#"{"id":"evening","outputs":[{"output":"hall/light/lamp","brightness":80}]}"#;
    let (status, _, body) = call("POST", &format!("{base}/api/v1/scenes"), Some(scene)).await;
    assert_eq!(status, 201, "{body}");
    for (topic, payload) in [
        ("hearth/node/hall/light/lamp/state", "OFF"),
        ("hearth/node/hall/light/lamp/brightness", "128"),
        ("hearth/node/hall/switch/fan/state", "OFF"),
        ("hearth/node/hall/input/door/state", "ON"),
    ] {
        let out = mosquitto_pub(port, &["-t", topic, "-m", payload, "-r", "-q", "1"]);
        assert!(out.status.success(), "{out:?}");
    }
    let seen = stream
        .until(WAIT, |s| {
            s["automations"][0]["last_run"]["outcome"] == "done"
                && s["scenes"][0]["id"] == "evening"
                && s["outputs"][0]["brightness"] == 128
        })
        .await;
    let porch = &seen["automations"][0];
    assert_eq!(porch["id"], "porch", "{seen}");
    assert_eq!(porch["name"], "Porch light", "{seen}");
    assert_eq!(porch["enabled"], true, "{seen}");
    assert_eq!(porch["source"], "runtime", "{seen}");
    assert!(
        porch.get("triggers").is_none(),
        "a summary, not the definition: {porch}"
    );
    assert_eq!(
        seen["inputs"],
        serde_json::json!([{"node":"hall","name":"door","state":"ON"}]),
        "{seen}"
    );
    assert_eq!(seen["outputs"][1]["name"], "fan", "{seen}");
    assert!(
        seen["outputs"][1].get("brightness").is_none(),
        "a fan reports no brightness: {seen}"
    );

    // Switching it off shows at once.
    let (status, _, body) = call(
        "PUT",
        &format!("{base}/api/v1/automations/porch/enabled"),
        Some(r#"{"state":"OFF"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    stream
        .until(WAIT, |s| s["automations"][0]["enabled"] == false)
        .await;

    // Brightness over HTTP: a bad level or a light that does not dim is
    // refused naming the field and sends nothing; a good one goes out.
    let levels = tokio::task::block_in_place(|| {
        hearth_testkit::Subscriber::start(port, "hearth/node/hall/+/+/brightness/set", &[])
    });
    for (path, body, field) in [
        ("hall/light/lamp", r#"{"brightness":300}"#, "brightness"),
        ("hall/light/lamp", r#"{"level":3}"#, "brightness"),
        ("hall/switch/fan", r#"{"brightness":3}"#, "kind"),
    ] {
        let url = format!("{base}/api/v1/outputs/{path}/brightness");
        let (status, _, answer) = call("PUT", &url, Some(body)).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert!(answer.contains(field), "{path} {body}: {answer}");
    }
    let url = format!("{base}/api/v1/outputs/hall/light/lamp/brightness");
    let (status, _, answer) = call("PUT", &url, Some(r#"{"brightness":77}"#)).await;
    assert_eq!(status, 202, "{answer}");
    let before = tokio::task::block_in_place(|| {
        levels.expect_line("hearth/node/hall/light/lamp/brightness/set 77", WAIT)
    });
    assert!(before.is_empty(), "refused levels were sent: {before:?}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_lists_a_bounded_number_of_automations() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let base = format!("http://{}", hub.http_addr);
    let bound = hearth_hub::http::MAX_LISTED_IN_SNAPSHOT;
    for i in 0..=bound {
        let body = format!(
            r#"{{"id":"a{i:04}","triggers":[{{"button":"b{i}","action":"single"}}],"actions":[{{"publish":"x/{i}","payload":"1"}}]}}"#
        );
        let (status, _, answer) =
            call("POST", &format!("{base}/api/v1/automations"), Some(&body)).await;
        assert_eq!(status, 201, "{answer}");
    }
    let (status, _, body) = call("GET", &format!("{base}/api/v1/snapshot"), None).await;
    assert_eq!(status, 200);
    println!(
        "snapshot with {} automations ({bound} listed): {} B",
        bound + 1,
        body.len()
    );
    let snapshot: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(snapshot["automations_total"], bound + 1);
    let listed = snapshot["automations"].as_array().unwrap();
    assert_eq!(listed.len(), bound, "listed {}", listed.len());
    assert_eq!(listed[0]["id"], "a0000");
    hub.stop().await;
}
