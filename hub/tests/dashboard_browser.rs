//! The dashboard in a real headless Chromium (through chromedriver) against a real hub and broker: clicks become MQTT commands seen by `mosquitto_sub`, and what `mosquitto_pub` publishes appears without a reload.
//!
//! Screenshots (desktop and phone width) land in `target/dashboard/`.

#![allow(clippy::unwrap_used)]

mod common;

mod browser;

use std::time::Duration;

use browser::{ChromeDriver, expect_line, js, screenshot_dir, until};
use common::{Backend, TestDb, WAIT, call, mqtt_port, spawn_hub, wait_ready};
use fantoccini::Locator;
use hearth_testkit::{Subscriber, mosquitto_pub};

/// `mosquitto_sub -v -t filter`, started without stalling the hub on this runtime.
fn subscribe(port: u16, filter: &str) -> Subscriber {
    tokio::task::block_in_place(|| Subscriber::start(port, filter, &[]))
}

fn switch(key: &str) -> String {
    format!(r#"document.querySelector('[data-key="{key}"] [role=switch]')"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_drives_the_house_and_sees_it_change_live() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let port = mqtt_port(&hub);
    let base = format!("http://{}", hub.http_addr);
    let chime = r#"{"id":"tea","name":"Tea time","schedule":"16:20","timezone":"Europe/London","speaker":"kitchen","sound":"tea.wav","volume":40}"#;
    let (status, _, body) = call("POST", &format!("{base}/api/v1/chimes"), Some(chime)).await;
    assert_eq!(status, 201, "{body}");

    // A day of history for the chart: a reading every two hours.
    for hours_ago in (1..=12).rev() {
        let at = chrono::Utc::now() - chrono::Duration::hours(hours_ago * 2);
        let temperature = 18.0 + (hours_ago as f64 / 2.0).sin() * 2.0;
        let payload = format!(
            r#"{{"temperature":{temperature:.1},"humidity":{:.1},"at":"{}"}}"#,
            50.0 - hours_ago as f64,
            at.to_rfc3339()
        );
        mosquitto_pub(
            port,
            &[
                "-t",
                "hearth/node/kitchen/climate",
                "-q",
                "1",
                "-m",
                &payload,
            ],
        );
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
    // Survives only if the page is never reloaded.
    browser
        .execute("window.hearthTestMarker = 'no reload'; return 0;", vec![])
        .await
        .unwrap();
    let clock = js(&browser, "document.getElementById('clock').textContent").await;
    assert!(
        clock.as_str().unwrap().len() == 5 && clock.as_str().unwrap().contains(':'),
        "{clock}"
    );

    // A node agent's reports, from the shell, appear live.
    let now = chrono::Utc::now().to_rfc3339();
    for (topic, payload) in [
        ("hearth/node/kitchen/availability", "online".to_owned()),
        (
            "hearth/node/kitchen/climate",
            format!(r#"{{"temperature":21.5,"humidity":44.0,"at":"{now}"}}"#),
        ),
        ("hearth/node/kitchen/light/ceiling/state", "OFF".to_owned()),
    ] {
        let out = mosquitto_pub(port, &["-t", topic, "-m", &payload, "-r", "-q", "1"]);
        assert!(out.status.success(), "{out:?}");
    }
    let ceiling = switch("kitchen/light/ceiling");
    until(
        &browser,
        &format!("{ceiling} && {ceiling}.getAttribute('aria-checked') === 'false'"),
        "the ceiling light, off",
    )
    .await;
    until(
        &browser,
        r#"document.querySelector('[data-key="kitchen"] [data-part=temperature]').textContent === '21.5 °C'"#,
        "the kitchen temperature",
    )
    .await;
    until(
        &browser,
        r#"document.querySelector('[data-key="kitchen"] .badge').textContent === 'online'"#,
        "the kitchen online",
    )
    .await;
    until(
        &browser,
        r#"document.querySelectorAll('[data-key="kitchen"] svg polyline').length === 2"#,
        "the kitchen's 24-hour chart",
    )
    .await;

    // A click sends the real command; the switch flips only once the
    // "agent" (mosquitto_pub here) confirms the new state.
    let commands = subscribe(port, "hearth/node/kitchen/light/ceiling/set");
    browser
        .find(Locator::Css(
            r#"[data-key="kitchen/light/ceiling"] [role=switch]"#,
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    expect_line(&commands, "hearth/node/kitchen/light/ceiling/set ON");
    assert_eq!(
        js(&browser, &format!("{ceiling}.getAttribute('aria-checked')")).await,
        "false",
        "the switch must show the confirmed state, not the wished one"
    );
    assert_eq!(
        js(&browser, &format!("{ceiling}.getAttribute('aria-busy')")).await,
        "true"
    );
    mosquitto_pub(
        port,
        &[
            "-t",
            "hearth/node/kitchen/light/ceiling/state",
            "-m",
            "ON",
            "-r",
        ],
    );
    until(
        &browser,
        &format!(
            "{ceiling}.getAttribute('aria-checked') === 'true' && {ceiling}.getAttribute('aria-busy') === 'false'"
        ),
        "the ceiling light on, confirmed",
    )
    .await;

    // A button pressed in the shell shows up; the page's switch sets it.
    mosquitto_pub(port, &["-t", "hearth/button/door/press", "-m", "double"]);
    until(
        &browser,
        r#"document.querySelector('[data-key="door"] [data-part=meta]')?.textContent.includes('last press double')"#,
        "the door button's press",
    )
    .await;
    // `-R`: only what the click causes, not a state the broker retains.
    let states = tokio::task::block_in_place(|| {
        Subscriber::start(port, "hearth/button/door/state", &["-R"])
    });
    browser
        .find(Locator::Css(r#"[data-key="door"] [role=switch]"#))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    expect_line(&states, "hearth/button/door/state ON");
    until(
        &browser,
        &format!("{}.getAttribute('aria-checked') === 'true'", switch("door")),
        "the door button on",
    )
    .await;

    // Chimes: "play now" plays on the speaker; the switch disables it.
    let plays = subscribe(port, "hearth/chime/+/play");
    until(
        &browser,
        r#"document.querySelector('[data-key="tea"] [data-part=meta]')?.textContent.includes('next ')"#,
        "the tea chime's next play",
    )
    .await;
    browser
        .find(Locator::Css(r#"[data-key="tea"] [data-part=play]"#))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let line = tokio::task::block_in_place(|| plays.next_line(WAIT)).expect("a play message");
    assert!(
        line.starts_with("hearth/chime/kitchen/play ") && line.contains(r#""chime":"tea""#),
        "{line}"
    );
    until(
        &browser,
        "document.getElementById('toast').textContent.startsWith('Playing Tea time')",
        "the play confirmation",
    )
    .await;
    browser
        .find(Locator::Css(r#"[data-key="tea"] [role=switch]"#))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &browser,
        r#"document.querySelector('[data-key="tea"] [data-part=meta]').textContent.endsWith('disabled')"#,
        "the tea chime disabled",
    )
    .await;
    let (_, _, body) = call("GET", &format!("{base}/api/v1/chimes/tea"), None).await;
    assert!(body.contains(r#""enabled":false"#), "{body}");

    // A refused command is explained, and nothing changes.
    mosquitto_pub(
        port,
        &[
            "-t",
            "hearth/node/attic/switch/fan/state",
            "-m",
            "OFF",
            "-r",
        ],
    );
    let fan = switch("attic/switch/fan");
    until(&browser, &fan, "the attic fan").await;
    // The new row lands above where the page is scrolled (at the chimes),
    // maybe under the sticky header, where a click is intercepted: bring
    // it to the middle first, as a person would.
    browser
        .execute(
            &format!("{fan}.scrollIntoView({{block: 'center'}}); return 0;"),
            vec![],
        )
        .await
        .unwrap();
    browser
        .find(Locator::Css(
            r#"[data-key="attic/switch/fan"] [role=switch]"#,
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // No agent answers for the attic: the hub gives up after its switch timeout.
    let deadline = tokio::time::Instant::now() + WAIT + Duration::from_secs(3);
    loop {
        let toast = js(&browser, "document.getElementById('toast').textContent").await;
        if toast.as_str().unwrap().contains("did not confirm") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no error shown: {toast}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        js(&browser, &format!("{fan}.getAttribute('aria-checked')")).await,
        "false"
    );

    let dir = screenshot_dir();
    std::fs::write(
        dir.join("dashboard-desktop.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    // A phone: nothing wider than the screen.
    browser.set_window_size(390, 844).await.unwrap();
    until(
        &browser,
        "document.documentElement.scrollWidth <= window.innerWidth",
        "a page that fits a 390 px phone",
    )
    .await;
    std::fs::write(
        dir.join("dashboard-phone.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    assert_eq!(js(&browser, "window.hearthTestMarker").await, "no reload");
    browser.close().await.unwrap();
    hub.stop().await;
}
