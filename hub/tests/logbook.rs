//! The logbook (`GET /api/v1/logbook`) on SQLite and Postgres: a press made
//! with mosquitto_pub and a button set over HTTP show up with their source,
//! filtered by entity, paged by the cursor; old entries go with the prune.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::{TestDb, WAIT, call, spawn_hub, wait_ready};
use hearth_hub::model::logbook::{LogEntry, LogKind, LogQuery};
use hearth_hub::store::Write;
use hearth_testkit::{Subscriber, mosquitto_pub};
use serde_json::Value;

fn press(port: u16, button: &str, action: &str) {
    let topic = format!("hearth/button/{button}/press");
    let out = mosquitto_pub(port, &["-t", &topic, "-q", "1", "-m", action]);
    assert!(
        out.status.success(),
        "mosquitto_pub {topic}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `GET url` parsed, once `done` accepts it. The writer commits after the
/// hub has published (the press path never waits for the database), so
/// no MQTT message marks the moment an entry is readable: the test asks
/// again every 20 ms until it is, and fails at the deadline naming the
/// last answer.
async fn get_until(url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _, body) = call("GET", url, None).await;
        let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if status == 200 && done(&value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "GET {url} never became what the test waits for; last {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn entries(page: &Value) -> &Vec<Value> {
    page["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries in {page}"))
}

/// (entity, kind, detail, source) of each entry, newest first.
fn summary(page: &Value) -> Vec<(String, String, String, String)> {
    entries(page)
        .iter()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (
                field("entity"),
                field("kind"),
                field("detail"),
                field("source"),
            )
        })
        .collect()
}

fn row(
    entity: &str,
    kind: LogKind,
    detail: &str,
    source: &str,
) -> (String, String, String, String) {
    (
        entity.to_owned(),
        kind.as_str().to_owned(),
        detail.to_owned(),
        source.to_owned(),
    )
}

on_both_backends!(presses_are_logged_filtered_and_paged, async |backend| {
    let db = TestDb::new(backend).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let port = common::mqtt_port(&hub);
    let base = format!("http://{}/api/v1/logbook", hub.http_addr);
    let sub = Subscriber::start(port, "hearth/button/#", &["-q", "1"]);

    press(port, "desk", "single");
    press(port, "hall", "long");
    press(port, "desk", "double");
    // The last press's event marks that the hub took all three in.
    sub.expect_where(
        |l| l.starts_with("hearth/button/desk/event ") && l.contains("double"),
        WAIT,
    );
    let desk = get_until(&format!("{base}?entity=button:desk"), |p| {
        entries(p).len() >= 2
    })
    .await;
    assert_eq!(
        summary(&desk),
        [
            row("button:desk", LogKind::Press, "double", "mqtt"),
            row("button:desk", LogKind::Press, "single", "mqtt"),
        ],
        "{desk:#}"
    );
    assert_eq!(desk["next"], Value::Null, "{desk:#}");
    let hall = get_until(&format!("{base}?entity=button:hall"), |p| {
        !entries(p).is_empty()
    })
    .await;
    assert_eq!(
        summary(&hall),
        [row("button:hall", LogKind::Press, "long", "mqtt")],
        "{hall:#}"
    );

    // Three entries, two to a page: the cursor gives the third, and no more.
    let first = get_until(&format!("{base}?limit=2"), |p| entries(p).len() == 2).await;
    assert_eq!(
        summary(&first),
        [
            row("button:desk", LogKind::Press, "double", "mqtt"),
            row("button:hall", LogKind::Press, "long", "mqtt"),
        ],
        "{first:#}"
    );
    let cursor = first["next"]
        .as_str()
        .unwrap_or_else(|| panic!("no cursor on a full page: {first:#}"));
    let (status, _, body) = call("GET", &format!("{base}?limit=2&before={cursor}"), None).await;
    assert_eq!(status, 200, "{body}");
    let second: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        summary(&second),
        [row("button:desk", LogKind::Press, "single", "mqtt")],
        "{second:#}"
    );
    assert_eq!(second["next"], Value::Null, "{second:#}");

    // A time range that ends before the presses holds none of them.
    let (status, _, body) = call(
        "GET",
        &format!("{base}?since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z"),
        None,
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"entries":[],"next":null}"#)
    );

    // Set over HTTP: the state change names http as its source.
    let (status, _, body) = call(
        "PUT",
        &format!("http://{}/api/v1/buttons/desk", hub.http_addr),
        Some(r#"{"state":"ON"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The PUT answers once the change is stored, so this reads it at once.
    let (_, _, body) = call("GET", &format!("{base}?entity=button:desk&limit=1"), None).await;
    let latest: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        summary(&latest),
        [row("button:desk", LogKind::State, "ON", "http")],
        "{latest:#}"
    );

    // A bad parameter is a 400 that names it.
    for (query, named) in [
        ("entity=desk", "entity"),
        ("since=yesterday", "since"),
        ("limit=0", "limit"),
        ("before=nope", "before"),
    ] {
        let (status, _, body) = call("GET", &format!("{base}?{query}"), None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains(&format!("\"{named}:")), "{query}: {body}");
    }
    hub.stop().await;
});

on_both_backends!(old_entries_are_pruned, async |backend| {
    let db = TestDb::new(backend).await;
    let store = common::store(&db).await;
    let now = Utc::now();
    let entry = |days_ago: i64, detail: &str| {
        Write::Logbook(LogEntry::new(
            now - chrono::Duration::days(days_ago),
            "button:desk".to_owned(),
            LogKind::Press,
            detail,
            "mqtt",
        ))
    };
    store
        .apply(&[
            entry(40, "single"),
            entry(31, "double"),
            entry(29, "long"),
            entry(0, "single"),
        ])
        .await
        .unwrap();
    let pruned = store
        .prune_logbook(now - chrono::Duration::days(30))
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    let page = store
        .logbook(&LogQuery {
            entity: None,
            since: Some(Utc.timestamp_opt(0, 0).unwrap()),
            until: None,
            before: None,
            limit: 100,
        })
        .await
        .unwrap();
    let kept: Vec<&str> = page.rows.iter().map(|r| r.entry.detail.as_str()).collect();
    assert_eq!(kept, ["single", "long"], "{page:?}");
});
