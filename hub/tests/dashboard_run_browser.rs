//! "Run the house" in a real headless Chromium against a real hub and
//! broker: input badges, an automation's trace showing the condition that
//! blocked it, a scene button whose commands `mosquitto_sub` sees, the
//! enabled switch, "Run" and the step its trace shows, the JSON editor
//! refusing a mistake with the hub's message, and a brightness slider
//! driven from the keyboard.
//!
//! Screenshots at 1280 px and 390 px land in `target/dashboard/`
//! (`run-1280.png`, `run-390.png`, and `run-390-dark.png` in dark mode).

#![allow(clippy::unwrap_used)]

mod common;

mod browser;

use browser::{ChromeDriver, click, expect_line, js, screenshot_dir, until};
use common::{Backend, TestDb, call, mqtt_port, spawn_hub, wait_ready};
use fantoccini::Locator;
use hearth_testkit::{Subscriber, mosquitto_pub};

/// `mosquitto_sub -v -t filter`, started without stalling the hub on this runtime.
fn subscribe(port: u16, filter: &str) -> Subscriber {
    tokio::task::block_in_place(|| Subscriber::start(port, filter, &["-R"]))
}

/// A retained message from the shell, as a node agent would publish it.
fn retain(port: u16, topic: &str, payload: &str) {
    let out = mosquitto_pub(port, &["-t", topic, "-m", payload, "-r", "-q", "1"]);
    assert!(out.status.success(), "mosquitto_pub {topic}: {out:?}");
}

async fn post(base: &str, path: &str, body: &str) {
    let (status, _, answer) = call("POST", &format!("{base}{path}"), Some(body)).await;
    assert_eq!(status, 201, "POST {path}: {answer}");
}

const ALARM: &str = r#"{"id":"alarm","name":"Door alarm",
    "triggers":[{"input":"hall/door","to":"ON"}],
    "conditions":[{"button":"away","state":"ON"}],
    "actions":[{"output":"hall/switch/fan","command":"ON"}]}"#;
const MORNING: &str = r#"{"id":"morning","name":"Morning light",
    "triggers":[{"at":"07:00"}],
    "actions":[{"output":"hall/light/lamp","brightness_pct":40}]}"#;
const EVENING: &str = r#"{"id":"evening","name":"Evening",
    "outputs":[{"output":"hall/light/lamp","command":"ON"},{"output":"hall/switch/fan","command":"ON"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_runs_the_house() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let port = mqtt_port(&hub);
    let base = format!("http://{}", hub.http_addr);

    // The hall node, as its agent reports it: a dimmable lamp at 40, a fan,
    // a door contact.
    retain(port, "hearth/node/hall/availability", "online");
    retain(port, "hearth/node/hall/light/lamp/state", "OFF");
    retain(port, "hearth/node/hall/light/lamp/brightness", "40");
    retain(port, "hearth/node/hall/switch/fan/state", "OFF");
    retain(port, "hearth/node/hall/input/door/state", "OFF");
    post(&base, "/api/v1/automations", ALARM).await;
    post(&base, "/api/v1/automations", MORNING).await;
    post(&base, "/api/v1/scenes", EVENING).await;

    let driver = ChromeDriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    browser.set_window_size(1280, 1000).await.unwrap();
    browser.goto(&format!("{base}/")).await.unwrap();
    until(
        &browser,
        "document.getElementById('link').textContent === 'live'",
        "the live link",
    )
    .await;

    // The door is a badge on the hall's card, and follows the agent live.
    let door =
        r#"document.querySelector('[data-key="hall"] [data-part=inputs] [data-key="door"]')"#;
    until(
        &browser,
        &format!("{door}?.textContent === 'door OFF'"),
        "the hall door's badge, OFF",
    )
    .await;
    retain(port, "hearth/node/hall/input/door/state", "ON");
    until(
        &browser,
        &format!("{door}.textContent === 'door ON'"),
        "the hall door's badge, ON",
    )
    .await;

    // The door opening fired the alarm, but `away` was never set: the row
    // says the run's outcome, the trace shows the condition that blocked it.
    let alarm = r#"[data-key="alarm"]"#;
    until(
        &browser,
        &format!(
            "document.querySelector('{alarm} [data-part=meta]')?.textContent.includes('conditions failed')"
        ),
        "the alarm's last run, blocked",
    )
    .await;
    let morning_meta = js(
        &browser,
        r#"document.querySelector('[data-key="morning"] [data-part=meta]').textContent"#,
    )
    .await;
    assert!(
        morning_meta.as_str().unwrap().contains("never run")
            && morning_meta.as_str().unwrap().contains("next "),
        "the morning automation should show its next time: {morning_meta}"
    );
    click(&browser, &format!("{alarm} [data-part=trace]")).await;
    until(
        &browser,
        &format!("document.querySelector('{alarm} .traces .run .failed')"),
        "the alarm's trace",
    )
    .await;
    let trace = js(
        &browser,
        &format!("document.querySelector('{alarm} .traces .run').innerText"),
    )
    .await;
    let trace = trace.as_str().unwrap();
    assert!(
        trace.contains("conditions failed")
            && trace.contains("input hall/door")
            && trace.contains("✗ blocked: button away is unknown"),
        "the trace should show the trigger and the blocking condition: {trace:?}"
    );

    // A scene button sends each of its outputs' commands.
    let commands = subscribe(port, "hearth/node/hall/+/+/set");
    click(&browser, r#"[data-key="evening"] [data-part=apply]"#).await;
    expect_line(&commands, "hearth/node/hall/light/lamp/set ON");
    expect_line(&commands, "hearth/node/hall/switch/fan/set ON");

    // "Run" runs the morning automation now; its trace lists the step with
    // what it sent.
    let levels = subscribe(port, "hearth/node/hall/light/lamp/brightness/set");
    click(&browser, r#"[data-key="morning"] [data-part=run]"#).await;
    expect_line(&levels, "hearth/node/hall/light/lamp/brightness/set 102");
    click(&browser, r#"[data-key="morning"] [data-part=trace]"#).await;
    until(
        &browser,
        r#"document.querySelector('[data-key="morning"] .traces .run ol')?.textContent.includes('brightness/set <- 102')"#,
        "the morning run's step in its trace",
    )
    .await;
    let step = js(
        &browser,
        r#"document.querySelector('[data-key="morning"] .traces .run').innerText"#,
    )
    .await;
    assert!(
        step.as_str().unwrap().starts_with("done"),
        "the run's outcome first: {step}"
    );

    // The enabled switch turns the alarm off, as the API then says.
    click(&browser, &format!("{alarm} [role=switch]")).await;
    until(
        &browser,
        &format!(
            "document.querySelector('{alarm} [role=switch]').getAttribute('aria-checked') === 'false'"
        ),
        "the alarm's switch off",
    )
    .await;
    let (status, _, body) = call("GET", &format!("{base}/api/v1/automations/alarm"), None).await;
    assert_eq!(status, 200, "{body}");
    let stored: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stored["enabled"], false, "{body}");

    // The editor: a mistake is refused with the hub's message naming the
    // field, and nothing is saved.
    click(&browser, &format!("{alarm} [data-part=edit]")).await;
    until(
        &browser,
        r#"document.getElementById('edit-json').value.includes('"id": "alarm"')"#,
        "the alarm's definition in the editor",
    )
    .await;
    let typed = js(
        &browser,
        r#"(() => { const t = document.getElementById('edit-json');
            t.value = t.value.replace('"to": "ON"', '"to": "MAYBE"').replace('Door alarm', 'Renamed');
            return t.value.includes('MAYBE'); })()"#,
    )
    .await;
    assert_eq!(typed, true, "the editor should hold the alarm's trigger");
    click(&browser, "#edit-save").await;
    until(
        &browser,
        "!document.getElementById('edit-error').hidden",
        "the hub's refusal next to the editor",
    )
    .await;
    let error = js(
        &browser,
        "document.getElementById('edit-error').textContent",
    )
    .await;
    assert!(
        error.as_str().unwrap().contains("triggers[0].to"),
        "the message should name the field: {error}"
    );
    assert_eq!(
        js(
            &browser,
            "document.getElementById('edit-json').getAttribute('aria-invalid')"
        )
        .await,
        "true"
    );
    let (_, _, after) = call("GET", &format!("{base}/api/v1/automations/alarm"), None).await;
    let after: serde_json::Value = serde_json::from_str(&after).unwrap();
    assert_eq!(after, stored, "a refused edit must change nothing");

    // Mended, it saves through the same API.
    js(
        &browser,
        r#"(() => { const t = document.getElementById('edit-json');
            t.value = t.value.replace('"to": "MAYBE"', '"to": "ON"'); return 0; })()"#,
    )
    .await;
    click(&browser, "#edit-save").await;
    until(
        &browser,
        "document.getElementById('edit-status').textContent === 'Saved alarm.' && document.getElementById('edit-error').hidden",
        "the saved alarm",
    )
    .await;
    let (_, _, saved) = call("GET", &format!("{base}/api/v1/automations/alarm"), None).await;
    let saved: serde_json::Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(saved["name"], "Renamed", "{saved}");
    until(
        &browser,
        &format!("document.querySelector('{alarm} [data-part=name]').textContent === 'Renamed'"),
        "the new name in the list",
    )
    .await;

    // A new scene from the editor is created (POST) and gets its button.
    browser
        .find(Locator::Css("#edit-kind"))
        .await
        .unwrap()
        .select_by_value("scenes")
        .await
        .unwrap();
    click(&browser, "#edit-new").await;
    until(
        &browser,
        r#"document.getElementById('edit-json').value.includes('"id": "new-scene"')"#,
        "the scene template",
    )
    .await;
    js(
        &browser,
        r#"(() => { document.getElementById('edit-json').value =
            '{"id":"night","name":"Night","outputs":[{"output":"hall/light/lamp","command":"OFF"}]}';
            return 0; })()"#,
    )
    .await;
    click(&browser, "#edit-save").await;
    until(
        &browser,
        r#"document.querySelector('[data-key="night"] [data-part=apply]')?.textContent === 'Night'"#,
        "the new scene's button",
    )
    .await;
    let (status, _, night) = call("GET", &format!("{base}/api/v1/scenes/night"), None).await;
    assert_eq!(status, 200, "{night}");

    // Deleting takes two presses; then the scene and its button are gone.
    assert_eq!(
        js(
            &browser,
            "document.getElementById('edit-delete').getAttribute('aria-label')"
        )
        .await,
        "delete scene night",
        "the delete button of the scene just saved"
    );
    click(&browser, "#edit-delete").await;
    until(
        &browser,
        "document.getElementById('edit-delete').textContent === 'Really delete?'",
        "the delete button asking again",
    )
    .await;
    let (status, _, still) = call("GET", &format!("{base}/api/v1/scenes/night"), None).await;
    assert_eq!(status, 200, "one press deleted the scene already: {still}");
    click(&browser, "#edit-delete").await;
    until(
        &browser,
        "document.getElementById('edit-status').textContent === 'Deleted night.'",
        "'Deleted night.' as the editor's status",
    )
    .await;
    until(
        &browser,
        r#"!document.querySelector('[data-key="night"]')"#,
        "the deleted scene's button gone",
    )
    .await;
    assert_eq!(
        js(&browser, "document.getElementById('edit-delete').hidden").await,
        true,
        "the delete button still shows with no scene in the editor"
    );
    let (status, _, gone) = call("GET", &format!("{base}/api/v1/scenes/night"), None).await;
    assert_eq!(status, 404, "the deleted scene: {gone}");

    // The dimmable lamp has a labelled slider at the agent's level; a key
    // press sends one brightness command.
    let dim = r#"[data-key="hall/light/lamp"] input[type=range]"#;
    until(
        &browser,
        &format!(
            "document.querySelector('{dim}')?.value === '40' && document.querySelector('{dim}').getAttribute('aria-label') === 'brightness of lamp on hall'"
        ),
        "the lamp's brightness slider at 40",
    )
    .await;
    assert_eq!(
        js(
            &browser,
            r#"document.querySelector('[data-key="hall/switch/fan"] input[type=range]') === null"#
        )
        .await,
        true,
        "a fan does not dim"
    );
    let slider = browser.find(Locator::Css(dim)).await.unwrap();
    slider
        .send_keys(&char::from(fantoccini::key::Key::Right).to_string())
        .await
        .unwrap();
    expect_line(&levels, "hearth/node/hall/light/lamp/brightness/set 41");

    // The panels this test drove, in view for the screenshots.
    let show = "document.getElementById('h-automations').scrollIntoView(); return 0;";
    let dir = screenshot_dir();
    browser.execute(show, vec![]).await.unwrap();
    std::fs::write(
        dir.join("run-1280.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();
    browser.set_window_size(390, 844).await.unwrap();
    until(
        &browser,
        "document.documentElement.scrollWidth <= window.innerWidth",
        "a page that fits a 390 px phone",
    )
    .await;
    browser.execute(show, vec![]).await.unwrap();
    std::fs::write(dir.join("run-390.png"), browser.screenshot().await.unwrap()).unwrap();

    browser.close().await.unwrap();

    // Dark mode, as a phone set to it shows the same panels.
    let profile = tempfile::tempdir().unwrap();
    let dark = driver
        .browser_with(profile.path(), &["--force-dark-mode"])
        .await;
    dark.set_window_size(390, 844).await.unwrap();
    dark.goto(&format!("{base}/")).await.unwrap();
    until(
        &dark,
        "matchMedia('(prefers-color-scheme: dark)').matches && document.querySelector('[data-key=\"alarm\"]')",
        "the dashboard in dark mode",
    )
    .await;
    click(&dark, r#"[data-key="alarm"] [data-part=trace]"#).await;
    until(
        &dark,
        r#"document.querySelector('[data-key="alarm"] .traces .run')"#,
        "the alarm's trace in dark mode",
    )
    .await;
    dark.execute(show, vec![]).await.unwrap();
    std::fs::write(
        dir.join("run-390-dark.png"),
        dark.screenshot().await.unwrap(),
    )
    .unwrap();
    dark.close().await.unwrap();
    hub.stop().await;
}
