//! The logbook live and as timelines, on SQLite and Postgres: a press made with
//! mosquitto_pub arrives on `/api/v1/events` as an `event: logbook` shaped as
//! `GET /api/v1/logbook` shapes it, and a day of stored states comes back
//! from `GET /api/v1/timeline` as spans.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use common::sse::EventStream;
use common::{TestDb, WAIT, call, spawn_hub, wait_ready};
use hearth_hub::model::house::OutputRecord;
use hearth_hub::model::logbook::{LogEntry, LogKind};
use hearth_hub::store::Write;
use hearth_protocol::{Id, OnOff, OutputKind, OutputRef};
use hearth_testkit::mosquitto_pub;
use serde_json::Value;

fn press(port: u16, topic: &str, payload: &str) {
    let out = mosquitto_pub(port, &["-t", topic, "-q", "1", "-m", payload]);
    assert!(
        out.status.success(),
        "mosquitto_pub {topic}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

on_both_backends!(a_press_arrives_live_as_a_logbook_event, async |backend| {
    let db = TestDb::new(backend).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let port = common::mqtt_port(&hub);
    let base = format!("http://{}/api/v1", hub.http_addr);
    let mut events = EventStream::open(&format!("{base}/events")).await;
    // The stream is subscribed to the logbook before its first snapshot.
    events.next_snapshot(WAIT).await;
    let deadline = tokio::time::Instant::now() + WAIT;

    press(port, "hearth/button/desk/press", "single");
    let mut seen = Vec::new();
    let streamed = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some((name, data)) = events.next(left).await else {
            panic!("no logbook event for the press within {WAIT:?}; saw {seen:?}");
        };
        if name == "logbook" {
            let batch: Value = serde_json::from_str(&data).unwrap();
            let entries = batch
                .as_array()
                .unwrap_or_else(|| panic!("event: logbook is not an array: {data}"));
            if let Some(press) = entries.iter().find(|e| e["entity"] == "button:desk") {
                break press.clone();
            }
        }
        seen.push((name, data));
    };
    assert_eq!(
        (&streamed["kind"], &streamed["detail"], &streamed["source"]),
        (
            &Value::from("press"),
            &Value::from("single"),
            &Value::from("mqtt")
        ),
        "{streamed}"
    );
    // Sent after the commit: the page holds it already, in the same shape.
    let (status, _, body) = call("GET", &format!("{base}/logbook?entity=button:desk"), None).await;
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["entries"][0], streamed, "page {page:#}");
    hub.stop().await;
});

/// `at` truncated to the second, as RFC 3339 compares cleanly then.
fn second(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(chrono::Duration::seconds(1)).unwrap()
}

fn spans(timeline: &Value) -> Vec<(DateTime<Utc>, DateTime<Utc>, String)> {
    let time = |v: &Value| {
        DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("no time: {v}")))
            .unwrap()
            .with_timezone(&Utc)
    };
    timeline["spans"]
        .as_array()
        .unwrap_or_else(|| panic!("no spans in {timeline}"))
        .iter()
        .map(|s| {
            (
                time(&s["from"]),
                time(&s["to"]),
                s["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

on_both_backends!(a_day_of_states_comes_back_as_spans, async |backend| {
    let db = TestDb::new(backend).await;
    let end = second(Utc::now()) - chrono::Duration::minutes(1);
    let h = |hours: f64| end - chrono::Duration::seconds((hours * 3600.0) as i64);
    let lamp = OutputRef {
        node: Id::new("pi-1").unwrap(),
        kind: OutputKind::Light,
        name: Id::new("lamp").unwrap(),
    };
    let entry = |at, entity: &str, kind, detail: &str, source: &str| {
        Write::Logbook(LogEntry::new(at, entity.to_owned(), kind, detail, source))
    };
    let state = |at, detail: &str| {
        entry(
            at,
            "output:pi-1/light/lamp",
            LogKind::State,
            detail,
            "agent",
        )
    };
    {
        let store = common::store(&db).await;
        store
            .apply(&[
                Write::Output(OutputRecord {
                    output: lamp.clone(),
                    state: OnOff::Off,
                    changed_at: h(1.0),
                }),
                state(h(30.0), "OFF"), // before the window: the state at its start
                state(h(20.0), "ON"),
                state(h(19.5), "OFF"),
                entry(
                    h(6.0),
                    "output:pi-1/light/lamp",
                    LogKind::Command,
                    "ON",
                    "rule:dusk",
                ),
                state(h(6.0), "ON"),
                state(h(5.0), "ON"), // the agent repeating itself
                entry(
                    h(3.0),
                    "output:pi-1/light/desk",
                    LogKind::State,
                    "OFF",
                    "agent",
                ),
                state(h(1.0), "OFF"),
                state(end + chrono::Duration::seconds(30), "ON"), // after the window
            ])
            .await
            .unwrap();
    }
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let base = format!("http://{}/api/v1/timeline", hub.http_addr);
    let iso = |t: DateTime<Utc>| t.to_rfc3339().replace('+', "%2B");
    let (status, _, body) = call(
        "GET",
        &format!(
            "{base}?entity=output:pi-1/light/lamp&since={}&until={}",
            iso(h(24.0)),
            iso(end)
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let timeline = &answer["timelines"][0];
    assert_eq!(timeline["entity"], "output:pi-1/light/lamp", "{answer:#}");
    assert_eq!(timeline["truncated"], false, "{answer:#}");
    let want = |from: f64, to: f64, s: &str| (h(from), h(to), s.to_owned());
    assert_eq!(
        spans(timeline),
        [
            want(24.0, 20.0, "OFF"),
            want(20.0, 19.5, "ON"),
            want(19.5, 6.0, "OFF"),
            want(6.0, 1.0, "ON"),
            want(1.0, 0.0, "OFF"),
        ],
        "{answer:#}"
    );

    // No entity: every output and input the hub knows, up to now. An
    // input's state from the shell becomes its own timeline.
    press(
        common::mqtt_port(&hub),
        "hearth/node/pi-1/input/hall/state",
        "ON",
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    let all = loop {
        let (status, _, body) = call("GET", &base, None).await;
        assert_eq!(status, 200, "{body}");
        let all: Value = serde_json::from_str(&body).unwrap();
        let hall = all["timelines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["entity"] == "input:pi-1/hall" && !spans(t).is_empty());
        if hall.is_some() {
            break all;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hall input never got a timeline: {all:#}"
        );
        // The writer commits after the hub took the message in; no message
        // marks that moment, so the test asks again.
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let by_entity = |entity: &str| {
        all["timelines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["entity"] == entity)
            .unwrap_or_else(|| panic!("no {entity} in {all:#}"))
            .clone()
    };
    let hall = spans(&by_entity("input:pi-1/hall"));
    assert_eq!(hall.len(), 1, "{all:#}");
    assert_eq!(hall[0].2, "ON", "{all:#}");
    let lamp_now = spans(&by_entity("output:pi-1/light/lamp"));
    assert_eq!(
        lamp_now.first().map(|s| s.2.as_str()),
        Some("OFF"),
        "the day began with the lamp off: {all:#}"
    );
    // The change at end + 30 s is inside this window, which ends now.
    assert_eq!(
        lamp_now.last().map(|s| (s.0, s.2.as_str())),
        Some((end + chrono::Duration::seconds(30), "ON")),
        "{all:#}"
    );

    // A bad parameter is a 400 naming it.
    for (query, named) in [
        ("entity=lamp", "entity"),
        ("entity=chime:tea", "entity"),
        ("since=yesterday", "since"),
        ("until=noon", "until"),
        ("since=2020-01-01T00:00:00Z", "since"),
        (
            "since=2020-01-02T00:00:00Z&until=2020-01-01T00:00:00Z",
            "until",
        ),
        ("entities=output:x", "entities"),
    ] {
        let (status, _, body) = call("GET", &format!("{base}?{query}"), None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains(&format!("\"{named}:")), "{query}: {body}");
    }
    hub.stop().await;
});

/// `method url` as alice, the one HTTP login of the hub below: (status, body).
async fn as_alice(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .request(method.parse().unwrap(), url)
        .basic_auth("alice", Some("open sesame"));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The entries of `entity`, newest first, as (kind, detail, source), once
/// `done` accepts them. The writer commits after the hub acted, and no
/// message marks that moment: the test asks again every 20 ms.
async fn entries_until(
    base: &str,
    entity: &str,
    done: impl Fn(&[(String, String, String)]) -> bool,
) -> Vec<(String, String, String)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) =
            as_alice("GET", &format!("{base}/logbook?entity={entity}"), None).await;
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        let entries: Vec<(String, String, String)> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let field = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
                (field("kind"), field("detail"), field("source"))
            })
            .collect();
        if done(&entries) {
            return entries;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{entity}'s entries never became what the test waits for: {entries:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn entry(kind: &str, detail: &str, source: &str) -> (String, String, String) {
    (kind.to_owned(), detail.to_owned(), source.to_owned())
}

on_both_backends!(
    entries_name_the_automation_and_the_http_user,
    async |backend| {
        let db = TestDb::new(backend).await;
        let hub = spawn_hub(&db, "[http.users]\nalice = \"open sesame\"\n").await;
        wait_ready(&hub).await;
        let port = common::mqtt_port(&hub);
        let base = format!("http://{}/api/v1", hub.http_addr);
        let automation = r#"{"id":"desk-lamp","triggers":[{"button":"desk","action":"single"}],
        "actions":[{"output":"pi-1/light/lamp","command":"ON"},
                   {"output":"pi-1/light/desk","brightness":102}]}"#;
        let (status, body) =
            as_alice("POST", &format!("{base}/automations"), Some(automation)).await;
        assert_eq!(status, 201, "{body}");
        let chime = r#"{"id":"tea","schedule":"16:20","speaker":"kitchen","sound":"tea.wav"}"#;
        let (status, body) = as_alice("POST", &format!("{base}/chimes"), Some(chime)).await;
        assert_eq!(status, 201, "{body}");

        // An automation's command names it.
        press(port, "hearth/button/desk/press", "single");
        let lamp = entries_until(&base, "output:pi-1/light/lamp", |e| !e.is_empty()).await;
        assert_eq!(lamp, [entry("command", "ON", "automation:desk-lamp")]);
        let desk = entries_until(&base, "output:pi-1/light/desk", |e| !e.is_empty()).await;
        assert_eq!(
            desk,
            [entry("command", "brightness 102", "automation:desk-lamp")]
        );

        // HTTP changes name the login that made them.
        let (status, body) = as_alice(
            "PUT",
            &format!("{base}/buttons/hall"),
            Some(r#"{"state":"ON"}"#),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let hall = entries_until(&base, "button:hall", |e| !e.is_empty()).await;
        assert_eq!(hall, [entry("state", "ON", "http:alice")]);
        let (status, body) = as_alice(
            "PUT",
            &format!("{base}/outputs/pi-1/light/lamp/brightness"),
            Some(r#"{"brightness":41}"#),
        )
        .await;
        assert_eq!(status, 202, "{body}");
        let lamp = entries_until(&base, "output:pi-1/light/lamp", |e| e.len() == 2).await;
        assert_eq!(
            lamp[0],
            entry("command", "brightness 41", "http:alice"),
            "a brightness set over HTTP: {lamp:?}"
        );

        // A scene applied by itself names the scene.
        let scene = r#"{"outputs":[{"output":"pi-1/light/hall","command":"ON"}]}"#;
        let (status, body) = as_alice("PUT", &format!("{base}/scenes/evening"), Some(scene)).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = as_alice("POST", &format!("{base}/scenes/evening/apply"), None).await;
        assert_eq!(status, 202, "{body}");
        let hall_light = entries_until(&base, "output:pi-1/light/hall", |e| !e.is_empty()).await;
        assert_eq!(hall_light, [entry("command", "ON", "scene:evening")]);

        // "Play now", over HTTP and over MQTT.
        let (status, body) = as_alice("POST", &format!("{base}/chimes/tea/play"), None).await;
        assert_eq!(status, 202, "{body}");
        press(port, "hearth/hub/chimes/tea/play", "");
        let tea = entries_until(&base, "chime:tea", |e| e.len() == 2).await;
        assert_eq!(
            tea,
            [
                entry("play", "played", "mqtt"),
                entry("play", "played", "http:alice"),
            ]
        );
        hub.stop().await;
    }
);

on_both_backends!(a_scheduled_chime_play_arrives_live, async |backend| {
    let db = TestDb::new(backend).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let base = format!("http://{}/api/v1", hub.http_addr);
    let mut events = EventStream::open(&format!("{base}/events")).await;
    events.next_snapshot(WAIT).await;
    // Every second: the scheduler's claim stores the play, then sends it.
    let chime = r#"{"id":"tick","schedule":"* * * * * *","speaker":"kitchen","sound":"tick.wav"}"#;
    let (status, _, body) = call("POST", &format!("{base}/chimes"), Some(chime)).await;
    assert_eq!(status, 201, "{body}");
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    let play = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some((name, data)) = events.next(left).await else {
            panic!("no scheduled play on the stream within {WAIT:?}; saw {seen:?}");
        };
        if name == "logbook" {
            let batch: Value = serde_json::from_str(&data).unwrap();
            if let Some(play) = batch
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["entity"] == "chime:tick")
            {
                break play.clone();
            }
        }
        seen.push((name, data));
    };
    assert_eq!(
        (&play["kind"], &play["detail"], &play["source"]),
        (
            &Value::from("play"),
            &Value::from("played"),
            &Value::from("schedule")
        ),
        "{play}"
    );
    hub.stop().await;
});

on_both_backends!(a_batchs_live_rows_are_the_stored_rows, async |backend| {
    // More entries than one statement takes (ROWS_PER_STATEMENT, 500), some
    // in one millisecond: the ids the live logbook pairs with them are
    // those a page reads back.
    let db = TestDb::new(backend).await;
    let store = common::store(&db).await;
    let now = second(Utc::now());
    let writes: Vec<Write> = (0..1200)
        .map(|i| {
            Write::Logbook(LogEntry::new(
                now - chrono::Duration::milliseconds(i / 3),
                format!("button:b{}", i % 7),
                LogKind::Press,
                format!("press {i}"),
                "mqtt",
            ))
        })
        .collect();
    let logged = store.apply(&writes).await.unwrap();
    assert_eq!(logged.len(), 1200);
    let mut page = Vec::new();
    let mut before = None;
    loop {
        let read = store
            .logbook(&hearth_hub::model::logbook::LogQuery {
                entity: None,
                since: None,
                until: None,
                before,
                limit: 1000,
            })
            .await
            .unwrap();
        page.extend(read.rows);
        match read.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    page.reverse(); // oldest first, as a live batch
    assert_eq!(logged, page);
});
