//! `hearth-hub automations ...` and `scenes ...` as a person types them, against a running hub
//! (its own process's database, a real broker): good files are taken at
//! once, every mistake is refused naming what is wrong and nothing changes.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestDb, call, spawn_hub_on, wait_ready};
use hearth_testkit::{broker_config, start_broker};

/// `scenes ...` and `automations ...` as given; anything else is an
/// `automations` command.
fn cli(db: &TestDb, mqtt_port: u16, args: &[&str]) -> (bool, String) {
    match args {
        ["scenes" | "automations", ..] => common::hub_cli(db, mqtt_port, args),
        _ => {
            let args: Vec<&str> = std::iter::once("automations")
                .chain(args.iter().copied())
                .collect();
            common::hub_cli(db, mqtt_port, &args)
        }
    }
}

/// Polls the hub's view of `id` until `done` holds for it (bounded).
async fn until_view(api: &str, id: &str, what: &str, done: impl Fn(u16, &str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, body) = call("GET", &format!("{api}/{id}"), None).await;
        if done(status, &body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "the running hub never showed {what}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_refuses_every_mistake_and_changes_nothing() {
    let db = TestDb::new(Backend::Sqlite).await;
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let hub = spawn_hub_on(&db, &format!("mqtt://127.0.0.1:{port}"), "").await;
    wait_ready(&hub).await;
    let api = format!("http://{}/api/v1/automations", hub.http_addr);
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };

    let good = file(
        "desk.toml",
        r#"
id = "desk"
name = "Desk lamp"
triggers = [{ button = "desk", action = "single" }]
actions = [{ output = "pi-1/light/lamp", command = "TOGGLE" }]
"#,
    );
    let (ok, out) = cli(&db, port, &["set", &good]);
    assert!(ok && out.contains("saved desk"), "{out}");
    let before = until_view(&api, "desk", "the CLI's automation", |s, _| s == 200).await;

    // Each mistake: refused, the message naming what is wrong.
    let mistakes = [
        (
            file(
                "typo.toml",
                r#"
id = "desk"
triggers = [{ button = "desk", action = "tripple" }]
actions = [{ output = "pi-1/light/lamp", command = "ON" }]
"#,
            ),
            "triggers[0].action",
        ),
        (
            file("broken.json", r#"{"id": "desk", "triggers": ["#),
            "broken.json",
        ),
        (
            file(
                "unknown-key.toml",
                "id = \"desk\"\ntrigers = []\nactions = []\n",
            ),
            "trigers",
        ),
        (
            file(
                "scene.toml",
                r#"
id = "desk"
triggers = [{ button = "desk" }]
actions = [{ scene = "evening" }]
"#,
            ),
            "actions[0].scene: no scene evening",
        ),
        (
            file(
                "loop.toml",
                r#"
id = "desk"
triggers = [{ button = "desk", action = "single" }]
actions = [{ publish = "hearth/button/desk/press", payload = "single" }]
"#,
            ),
            "set automations off forever",
        ),
        (
            dir.path().join("missing.toml").display().to_string(),
            "missing.toml",
        ),
    ];
    for (path, named) in &mistakes {
        let (ok, out) = cli(&db, port, &["set", path]);
        assert!(!ok, "{path} was accepted: {out}");
        assert!(
            out.contains(named),
            "{path}: the refusal does not name {named:?}: {out}"
        );
    }
    for (args, named) in [
        (&["rm", "nope"][..], "unknown automation nope"),
        (&["enable", "nope"][..], "unknown automation nope"),
        (&["traces", "Bad Id"][..], "Bad Id"),
    ] {
        let (ok, out) = cli(&db, port, args);
        assert!(!ok, "{args:?} was accepted: {out}");
        assert!(out.contains(named), "{args:?}: {out}");
    }

    // Nothing changed: the hub, and the database a restart would read.
    let (_, _, after) = call("GET", &format!("{api}/desk"), None).await;
    assert_eq!(after, before, "a refused change reached the running hub");
    let (ok, out) = cli(&db, port, &["list"]);
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().skip(1).collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("desk ") && lines[0].contains("Desk lamp"),
        "the list after the mistakes: {out}"
    );

    // And the good commands still work.
    let (ok, out) = cli(&db, port, &["disable", "desk"]);
    assert!(ok, "{out}");
    until_view(&api, "desk", "desk disabled", |_, b| {
        b.contains(r#""enabled":false"#)
    })
    .await;
    let (ok, out) = cli(&db, port, &["rm", "desk"]);
    assert!(ok, "{out}");
    until_view(&api, "desk", "desk deleted", |s, _| s == 404).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_scenes_and_keeps_the_ones_automations_apply() {
    let db = TestDb::new(Backend::Sqlite).await;
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let hub = spawn_hub_on(&db, &format!("mqtt://127.0.0.1:{port}"), "").await;
    wait_ready(&hub).await;
    let api = format!("http://{}/api/v1/scenes", hub.http_addr);
    let sub = hearth_testkit::Subscriber::start(port, "hearth/node/#", &["-q", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let scene = file(
        "evening.toml",
        r#"
id = "evening"
name = "Evening"
outputs = [
  { output = "pi-1/light/lamp", brightness_pct = 30 },
  { output = "pi-1/switch/tv", command = "OFF" },
]
"#,
    );
    let (ok, out) = cli(&db, port, &["scenes", "set", &scene]);
    assert!(ok && out.contains("saved evening"), "{out}");
    until_view(&api, "evening", "the CLI's scene", |s, _| s == 200).await;

    let (ok, out) = cli(&db, port, &["scenes", "apply", "evening"]);
    assert!(ok, "{out}");
    sub.expect_all(
        &[
            "hearth/node/pi-1/light/lamp/brightness/set 77".to_owned(),
            "hearth/node/pi-1/switch/tv/set OFF".to_owned(),
        ],
        common::WAIT,
    );

    let bad = file(
        "bad.toml",
        "id = \"evening\"\noutputs = [{ output = \"pi-1/light/lamp\", brightness_pct = 140 }]\n",
    );
    let (ok, out) = cli(&db, port, &["scenes", "set", &bad]);
    assert!(!ok, "a brightness of 140 % was accepted: {out}");
    assert!(out.contains("outputs[0]"), "{out}");

    // An automation applies it, so it cannot go.
    let uses = file(
        "dusk.toml",
        r#"
id = "dusk"
triggers = [{ button = "dusk", action = "single" }]
actions = [{ scene = "evening" }]
"#,
    );
    let (ok, out) = cli(&db, port, &["automations", "set", &uses]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&db, port, &["scenes", "rm", "evening"]);
    assert!(!ok, "a scene an automation applies was deleted: {out}");
    assert!(out.contains("applied by automation dusk"), "{out}");
    let (status, _, body) = call("DELETE", &format!("{api}/evening"), None).await;
    assert_eq!(status, 400, "over HTTP too: {body}");
    assert!(body.contains("applied by automation dusk"), "{body}");

    let (ok, out) = cli(&db, port, &["scenes", "list"]);
    assert!(ok, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("evening ") && l.contains("Evening") && l.contains(" 2 ")),
        "{out}"
    );
    let (ok, out) = cli(&db, port, &["automations", "rm", "dusk"]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&db, port, &["scenes", "rm", "evening"]);
    assert!(ok, "{out}");
    until_view(&api, "evening", "the scene deleted", |s, _| s == 404).await;
    hub.stop().await;
}
