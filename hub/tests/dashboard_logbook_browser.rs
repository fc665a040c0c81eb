//! The dashboard's logbook panel, timelines and chart range in a real headless Chromium (through chromedriver) against a real hub and broker: a press made with `mosquitto_pub` shows on top (the time it took is printed), the filter and "older" paging work from the keyboard, a stored day of a lamp is drawn as a bar.
//!
//! Screenshots (390 px and 1280 px wide, and 390 px dark) land in
//! `target/dashboard/`, beside dashboard_browser.rs's.

#![allow(clippy::unwrap_used)]

mod common;

mod browser;

use std::time::Duration;

use browser::{ChromeDriver, click, js, screenshot_dir, until};
use chrono::Utc;
use common::{Backend, TestDb, WAIT, mqtt_port, spawn_hub, wait_ready};
use fantoccini::{Client, Locator};
use hearth_hub::model::house::OutputRecord;
use hearth_hub::model::logbook::{LogEntry, LogKind};
use hearth_hub::store::Write;
use hearth_protocol::{Id, OnOff, OutputKind, OutputRef};
use hearth_testkit::mosquitto_pub;

/// Old entries stored before the page opens: more than the panel keeps
/// (logbook.js's LOGBOOK_ROWS, 200), so paging back hits its bound.
const OLD_ENTRIES: i64 = 230;

fn publish(port: u16, topic: &str, payload: &str, extra: &[&str]) {
    let mut args = vec!["-t", topic, "-q", "1", "-m", payload];
    args.extend_from_slice(extra);
    let out = mosquitto_pub(port, &args);
    assert!(out.status.success(), "mosquitto_pub {topic}: {out:?}");
}

const ROWS: &str = "document.querySelectorAll('#logbook li[data-id]')";

async fn rows(browser: &Client) -> u64 {
    js(browser, &format!("{ROWS}.length"))
        .await
        .as_u64()
        .unwrap()
}

async fn screenshot(browser: &Client, name: &str) {
    browser
        .execute(
            "document.getElementById('h-logbook').scrollIntoView(); return 0;",
            vec![],
        )
        .await
        .unwrap();
    std::fs::write(
        screenshot_dir().join(name),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logbook_panel_shows_presses_live_filters_and_pages_back() {
    let db = TestDb::new(Backend::Sqlite).await;
    let now = Utc::now();
    let ago = |minutes: i64| now - chrono::Duration::minutes(minutes);
    let lamp = OutputRef {
        node: Id::new("pi-1").unwrap(),
        kind: OutputKind::Light,
        name: Id::new("lamp").unwrap(),
    };
    {
        let store = common::store(&db).await;
        let mut writes: Vec<Write> = (0..OLD_ENTRIES)
            .map(|i| {
                Write::Logbook(LogEntry::new(
                    ago(3 * 24 * 60 - i),
                    "button:porch".to_owned(),
                    LogKind::Press,
                    "single",
                    "mqtt",
                ))
            })
            .collect();
        writes.push(Write::Output(OutputRecord {
            output: lamp.clone(),
            state: OnOff::Off,
            changed_at: ago(60),
        }));
        // A lamp's day: on for 30 min in the morning, 5 h in the evening.
        for (minutes, state) in [
            (26 * 60, "OFF"),
            (20 * 60, "ON"),
            (19 * 60 + 30, "OFF"),
            (6 * 60, "ON"),
            (60, "OFF"),
        ] {
            writes.push(Write::Logbook(LogEntry::new(
                ago(minutes),
                "output:pi-1/light/lamp".to_owned(),
                LogKind::State,
                state,
                "agent",
            )));
        }
        store.apply(&writes).await.unwrap();
    }
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let port = mqtt_port(&hub);
    let base = format!("http://{}", hub.http_addr);
    // A week of climate readings, for the chart's range.
    for hours_ago in (1..=14).rev() {
        let at = now - chrono::Duration::hours(hours_ago * 12 - 6);
        let payload = format!(
            r#"{{"temperature":{:.1},"humidity":45.0,"at":"{}"}}"#,
            18.0 + hours_ago as f64 / 7.0,
            at.to_rfc3339()
        );
        publish(port, "hearth/node/kitchen/climate", &payload, &[]);
    }

    let driver = ChromeDriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    browser.goto(&format!("{base}/")).await.unwrap();
    until(
        &browser,
        "document.getElementById('link').textContent === 'live'",
        "the live link",
    )
    .await;
    until(
        &browser,
        &format!("{ROWS}.length === 50 && !document.getElementById('logbook-older').hidden"),
        "the first page of 50 entries and an Older button",
    )
    .await;

    // A press from the shell, on top within a second.
    // Issue 19 asks for "within a second": how long it took is printed (a
    // test that asserted it would fail on a loaded machine, not on a slow
    // hub); the test waits for the row as long as for any event.
    let sent = tokio::time::Instant::now();
    publish(port, "hearth/button/desk/press", "single", &[]);
    let deadline = sent + WAIT;
    let first = "document.querySelector('#logbook li[data-id]')";
    loop {
        let shown = js(
            &browser,
            &format!("{first}.dataset.entity + ' ' + {first}.textContent"),
        )
        .await;
        let shown = shown.as_str().unwrap_or_default().to_owned();
        if shown.starts_with("button:desk ") {
            assert!(
                shown.contains("press single · mqtt"),
                "the press row reads {shown:?}"
            );
            println!(
                "press on top of the logbook {:?} after mosquitto_pub started",
                sent.elapsed()
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no press on top of the logbook within {WAIT:?}; the top row reads {shown:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(rows(&browser).await, 51);

    // Older pages, by the cursor, until the panel's bound: then the newest
    // go and a Newest button brings them back.
    for want in [101, 151] {
        click(&browser, "#logbook-older").await;
        until(
            &browser,
            &format!("{ROWS}.length === {want}"),
            &format!("{want} entries"),
        )
        .await;
    }
    click(&browser, "#logbook-older").await;
    until(
        &browser,
        &format!("{ROWS}.length === 200 && !document.getElementById('logbook-newest').hidden"),
        "200 entries (the bound) and a Newest button",
    )
    .await;
    let ids = js(
        &browser,
        &format!("new Set([...{ROWS}].map((li) => li.dataset.id)).size"),
    )
    .await;
    assert_eq!(ids, 200, "an entry shown twice");
    click(&browser, "#logbook-newest").await;
    until(
        &browser,
        &format!("{ROWS}.length === 50 && {first}.dataset.entity === 'button:desk'"),
        "the newest page again",
    )
    .await;

    // The filter, from the keyboard: only the desk's entries, live too.
    let filter = browser.find(Locator::Id("logbook-entity")).await.unwrap();
    filter.send_keys("button:desk\u{E007}").await.unwrap();
    until(
        &browser,
        &format!("{ROWS}.length === 1 && {first}.dataset.entity === 'button:desk'"),
        "only the desk's press",
    )
    .await;
    publish(port, "hearth/button/hall/press", "long", &[]);
    publish(port, "hearth/button/desk/press", "double", &[]);
    until(
        &browser,
        &format!("{ROWS}.length === 2 && {first}.textContent.includes('press double')"),
        "the desk's second press, live",
    )
    .await;
    let entities = js(
        &browser,
        &format!("[...{ROWS}].map((li) => li.dataset.entity).join(' ')"),
    )
    .await;
    assert_eq!(
        entities, "button:desk button:desk",
        "the hall's press came before the desk's and is filtered out"
    );

    // A filter the hub refuses: its message, and the list as it was.
    // Ctrl+A then the new text: WebDriver's clear() would commit an empty
    // filter first.
    filter
        .send_keys("\u{E009}a\u{E000}desk\u{E007}")
        .await
        .unwrap();
    until(
        &browser,
        "document.getElementById('logbook-status').textContent.includes('entity:')",
        "the hub's message naming the entity parameter",
    )
    .await;
    assert_eq!(rows(&browser).await, 2, "a refused filter changed the list");

    // The lamp's day as a bar: 5 h 30 min on.
    let lamp_bar =
        r#"document.querySelector('#timelines li[data-entity="output:pi-1/light/lamp"] svg')"#;
    until(
        &browser,
        &format!("{lamp_bar} && {lamp_bar}.querySelectorAll('rect.on').length === 2"),
        "the lamp's timeline with its two ON spans",
    )
    .await;
    let label = js(&browser, &format!("{lamp_bar}.getAttribute('aria-label')")).await;
    assert_eq!(
        label, "lamp: on for 5 h 30 min of the last 24 h, OFF now",
        "the lamp's timeline"
    );

    // The climate chart's range: a week.
    let caption = r#"document.querySelector('[data-key="kitchen"] svg.chart text')"#;
    until(
        &browser,
        &format!("{caption} && {caption}.textContent.startsWith('24 h')"),
        "the kitchen's 24 h chart",
    )
    .await;
    browser
        .find(Locator::Id("range"))
        .await
        .unwrap()
        .select_by_value("168")
        .await
        .unwrap();
    until(
        &browser,
        &format!("{caption} && {caption}.textContent.startsWith('7 d')"),
        "the kitchen's 7 d chart",
    )
    .await;
    let points = js(
        &browser,
        r#"document.querySelector('[data-key="kitchen"] svg.chart polyline').getAttribute('points').split(' ').length"#,
    )
    .await;
    assert_eq!(points, 14, "a week holds all 14 readings");

    browser.set_window_size(1280, 1000).await.unwrap();
    screenshot(&browser, "logbook-1280.png").await;
    browser.set_window_size(390, 844).await.unwrap();
    until(
        &browser,
        "document.documentElement.scrollWidth <= window.innerWidth",
        "a page that fits a 390 px phone",
    )
    .await;
    screenshot(&browser, "logbook-390.png").await;
    browser.close().await.unwrap();

    // Dark mode: the panel follows the page's dark colours.
    let dark_profile = tempfile::tempdir().unwrap();
    let dark = driver
        .browser_with(dark_profile.path(), &["--force-dark-mode"])
        .await;
    dark.set_window_size(390, 844).await.unwrap();
    dark.goto(&format!("{base}/")).await.unwrap();
    until(
        &dark,
        &format!("matchMedia('(prefers-color-scheme: dark)').matches && {ROWS}.length > 0"),
        "the logbook in dark mode",
    )
    .await;
    let colours = js(
        &dark,
        "[document.body, document.getElementById('logbook'), document.getElementById('logbook-entity')]\
         .map((e) => getComputedStyle(e).backgroundColor).join(' ')",
    )
    .await;
    assert_eq!(
        colours, "rgb(21, 19, 17) rgb(32, 29, 26) rgb(32, 29, 26)",
        "page, logbook and filter in app.css's dark colours"
    );
    screenshot(&dark, "logbook-390-dark.png").await;
    dark.close().await.unwrap();
    hub.stop().await;
}
