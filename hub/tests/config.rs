//! The hub's config as a user meets it: the example file, typos, bad values, via the real binary.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn check(text: &str) -> (bool, String) {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth-hub"))
        .args(["--check-config", "--config"])
        .arg(f.path())
        .env_remove("HEARTH_CONFIG")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_documented_example_is_valid() {
    let example = include_str!("../hearth.example.toml");
    let (ok, out) = check(example);
    assert!(ok, "{out}");
    assert!(
        out.contains("3 rule(s), 3 automation(s), 1 scene(s), 1 switch(es), 1 chime(s)"),
        "{out}"
    );
}

#[test]
fn mistakes_are_named() {
    for (text, named) in [
        ("[hub]\ntimezone = \"Europe/Atlantis\"\n", "Europe/Atlantis"),
        ("[hub]\ntimezon = \"UTC\"\n", "timezon"),
        ("[http]\nlisten = \"localhost\"\n", "http.listen"),
        (
            "[[rules]]\nwhen = { button = \"desk\" }\nthen = [{ output = \"pi-1/lamp\", command = \"ON\" }]\n",
            "rules[0]: then[0].output",
        ),
        (
            "[[rules]]\nwhen = { topic = \"a/#/b\" }\nthen = [{ publish = \"x\" }]\n",
            "rules[0]: when.topic",
        ),
        ("[database]\nurl = \"mysql://db\"\n", "mysql://db"),
        (
            "[database]\nhistory_days = 4000000000\n",
            "database.history_days 4000000000 must be 1 to 36500",
        ),
        ("[database]\nhistory_days = 0\n", "database.history_days 0"),
        ("[broker]\nlisten = \"0.0.0.0:1883\"\n", "allow_anonymous"),
        ("[switches]\nlamp = \"pi-1/switch\"\n", "switches.lamp"),
        (
            "[[chimes]]\nid = \"tea\"\nschedule = \"16:20\"\ntimezone = \"Pacific/Atlantis\"\nspeaker = \"k\"\nsound = \"a.wav\"\n",
            "chimes[0].timezone",
        ),
        (
            "[[chimes]]\nschedule = \"16:20\"\nspeaker = \"k\"\nsound = \"a.wav\"\n",
            "chimes[0].id: missing",
        ),
        (
            "[[rules]]\nname = \"echo\"\nwhen = { topic = \"test/loop\" }\nthen = [{ publish = \"test/loop\", payload = \"again\" }]\n",
            "rules or automations set each other off forever: rules[0] (\"echo\") -> rules[0] (\"echo\")",
        ),
    ] {
        let (ok, out) = check(text);
        assert!(!ok, "{text} was accepted");
        assert!(out.contains(named), "{text}: {out}");
        if named.starts_with("rules[") || named.starts_with("chimes[") {
            // The cause is said once, not repeated by the error chain.
            assert_eq!(out.matches(named).count(), 1, "{text}: {out}");
        }
    }
}

#[test]
fn an_unknown_time_zone_stops_startup() {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth-hub"))
        .env("HEARTH_HUB__TIMEZONE", "Mars/Olympus_Mons")
        .env("HEARTH_HTTP__LISTEN", "127.0.0.1:0")
        .env("HEARTH_BROKER__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started anyway: {err}");
    assert!(
        err.contains("\"Mars/Olympus_Mons\" is not an IANA time zone"),
        "{err}"
    );
}

#[test]
fn a_broker_it_cannot_reach_is_a_warning_at_the_default_level() {
    // Settings from the environment, as in Kubernetes: a bool and a port
    // number still parse from text.
    let dir = tempfile::tempdir().unwrap();
    let nobody = hearth_testkit::RefusingPort::new();
    let mut hub = Command::new(env!("CARGO_BIN_EXE_hearth-hub"))
        .env_remove("HEARTH_CONFIG")
        .env_remove("HEARTH_LOG")
        .env_remove("RUST_LOG")
        .env("HEARTH_BROKER__EMBEDDED", "false")
        .env(
            "HEARTH_MQTT__URL",
            format!("mqtt://127.0.0.1:{}", nobody.port()),
        )
        .env("HEARTH_MQTT__KEEP_ALIVE_SECS", "5")
        .env(
            "HEARTH_DATABASE__URL",
            format!("sqlite://{}/hearth.db", dir.path().display()),
        )
        .env("HEARTH_HTTP__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = hub.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    let mut warned = false;
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        warned = line.contains("WARN") && line.contains("cannot connect to the broker");
        lines.push(line);
        if warned {
            break;
        }
    }
    hub.kill().unwrap();
    hub.wait().unwrap();
    assert!(warned, "no warning about the broker in {lines:#?}");
}
