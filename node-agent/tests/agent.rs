//! The agent in simulate mode against the real embedded broker: commands from
//! `mosquitto_pub`, states seen by `mosquitto_sub`, pins checked on the simulation.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{
    InProcessAgent, WAIT, line, node_toml, publish, sensor_section, topic, wait_online, write,
};
use hearth_node_agent::dht::Reading;
use hearth_node_agent::gpio::Level;
use hearth_node_agent::sensor::{ClimateSensor, ReadError};
use hearth_protocol::{Climate, ErrorReport};
use hearth_testkit::{Subscriber, TestClient, broker_config, mosquitto_pub, start_broker};

fn error_line(rest: &str, error: &str) -> String {
    let report = ErrorReport {
        topic: topic(rest),
        error: error.to_owned(),
    };
    line("error", &serde_json::to_string(&report).unwrap())
}

fn states(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l.strip_prefix("hearth/node/pi-1/").unwrap_or(l))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_switch_pins_and_publish_retained_states() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &node_toml(port, "")));
    wait_online(port);
    assert_eq!(agent.level(17), Some(Level::Low), "every output starts off");
    assert_eq!(agent.level(5), Some(Level::High), "active-low off is high");

    let sub = Subscriber::start(port, &topic("#"), &["-R"]);
    publish(port, "light/red/set", "ON");
    sub.expect_line(&line("light/red/state", "ON"), WAIT);
    assert_eq!(agent.level(17), Some(Level::High));

    publish(port, "light/red/set", "TOGGLE");
    sub.expect_line(&line("light/red/state", "OFF"), WAIT);
    assert_eq!(agent.level(17), Some(Level::Low));

    publish(port, "switch/lamp/set", r#"{"state":"ON"}"#);
    sub.expect_line(&line("switch/lamp/state", "ON"), WAIT);
    assert_eq!(agent.level(5), Some(Level::Low), "active low: on is low");

    // Unknown outputs and payloads: a clear error, nothing changes.
    let before = agent.pins.transitions().len();
    publish(port, "light/blue/set", "ON");
    sub.expect_line(
        &error_line(
            "light/blue/set",
            "no light named \"blue\" on this node; its lights are: red, yellow, green",
        ),
        WAIT,
    );
    publish(port, "light/red/set", "maybe");
    sub.expect_line(
        &error_line(
            "light/red/set",
            r#"bad payload for light red: expected ON, OFF, TOGGLE or {"state":"ON"}, got "maybe""#,
        ),
        WAIT,
    );
    publish(port, "lihgt/red/set", "ON");
    // A marker after the typo on the same path (this publisher, the agent's
    // one connection): whatever the typo caused was published before it.
    publish(port, "light/blue/set", "ON");
    let seen = sub.expect_line(
        &error_line(
            "light/blue/set",
            "no light named \"blue\" on this node; its lights are: red, yellow, green",
        ),
        WAIT,
    );
    assert!(
        seen.iter()
            .any(|l| l.starts_with(&topic("error")) && l.contains("lihgt")),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|l| l.contains("/state ")),
        "no state changed: {seen:?}"
    );
    assert_eq!(agent.pins.transitions().len(), before, "no pin touched");

    // A late subscriber gets the current states from the broker.
    let late = Subscriber::start(port, &topic("+/+/state"), &[]);
    late.expect_all(
        &[
            line("light/red/state", "OFF"),
            line("switch/lamp/state", "ON"),
            line("sequence/traffic/state", "OFF"),
        ],
        WAIT,
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_step_in_order_and_yield_to_direct_commands() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &node_toml(port, "")));
    wait_online(port);
    let sub = Subscriber::start(port, &topic("+/+/state"), &["-R"]);
    publish(port, "switch/lamp/set", "ON");
    sub.expect_line(&line("switch/lamp/state", "ON"), WAIT);
    let started = Instant::now();
    publish(port, "sequence/traffic/set", "ON");
    // Cycles of 1 s; the first nine changes are one cycle and a step. The
    // order is the check; the step timing is board/tests.rs's (manual clock).
    let mut lines = Vec::new();
    while lines.len() < 10 {
        match sub.next_line(WAIT) {
            Some(l) => lines.push(l),
            None => panic!("the sequence stopped after {lines:?}"),
        }
    }
    assert_eq!(
        states(&lines),
        [
            "light/red/state ON",
            "sequence/traffic/state ON",
            "light/red/state OFF",
            "light/yellow/state ON",
            "light/yellow/state OFF",
            "light/green/state ON",
            "light/green/state OFF",
            "light/yellow/state ON",
            "light/yellow/state OFF",
            "light/red/state ON",
        ],
        "{lines:?}"
    );
    // A lower bound only (a busy machine makes it longer): one whole
    // cycle passed, the steps were not fired all at once.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1000),
        "a 1 s cycle and a step took {took:?}"
    );

    // Stopping turns the sequence's outputs off and leaves the lamp alone.
    publish(port, "sequence/traffic/set", "OFF");
    sub.expect_line(&line("sequence/traffic/state", "OFF"), WAIT);
    assert_eq!(agent.level(5), Some(Level::Low), "lamp still on");
    // A marker on the same path as the steps: the agent takes this command
    // after the stop and publishes on its one connection, so a step the
    // stop let through comes before the lamp's new state.
    publish(port, "switch/lamp/set", "OFF");
    let after = sub.expect_line(&line("switch/lamp/state", "OFF"), WAIT);
    assert!(after.is_empty(), "nothing steps after the stop: {after:?}");
    for pin in [17, 27, 22] {
        assert_eq!(agent.level(pin), Some(Level::Low), "BCM {pin}");
    }
    assert_eq!(agent.level(5), Some(Level::High), "lamp off (active low)");

    // A direct command to one of its outputs stops a running sequence.
    publish(port, "sequence/traffic/set", "TOGGLE");
    sub.expect_line(&line("sequence/traffic/state", "ON"), WAIT);
    publish(port, "light/green/set", "ON");
    let seen = sub.expect_line(&line("sequence/traffic/state", "OFF"), WAIT);
    assert!(seen.contains(&line("light/green/state", "ON")), "{seen:?}");
    // The same marker: the lamp on again, its state the next line.
    publish(port, "switch/lamp/set", "ON");
    let after = sub.expect_line(&line("switch/lamp/state", "ON"), WAIT);
    assert!(after.is_empty(), "no more steps: {after:?}");
    assert_eq!(
        [agent.level(17), agent.level(27), agent.level(22)],
        [Some(Level::Low), Some(Level::Low), Some(Level::High)],
        "red, yellow, green after the direct command"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn climate_readings_are_published_retained_and_counted() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let config = node_toml(port, &sensor_section());
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &config));
    let sub = Subscriber::start(port, &topic("#"), &[]);
    // Two readings at least: the first at start, the next 2 s later, and
    // a status counting both. (Not expect_line: retained messages may
    // arrive before `online`.)
    let values = |lines: &[String], rest: &str| -> Vec<String> {
        let prefix = format!("{} ", topic(rest));
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(prefix.as_str()).map(str::to_owned))
            .collect()
    };
    let reads_ok = |status: &str| {
        serde_json::from_str::<serde_json::Value>(status).ok()?["climate"]["reads_ok"].as_u64()
    };
    let lines = sub.lines_until(
        |lines| {
            lines.contains(&line("availability", "online"))
                && values(lines, "climate/temperature").len() >= 2
                && !values(lines, "climate").is_empty()
                && !values(lines, "climate/humidity").is_empty()
                && values(lines, "status")
                    .last()
                    .and_then(|s| reads_ok(s))
                    .is_some_and(|n| n >= 2)
        },
        WAIT,
    );
    let values = |rest: &str| values(&lines, rest);
    let temperatures = values("climate/temperature");
    assert!(temperatures.len() >= 2, "{lines:?}");
    for t in &temperatures {
        let t: f64 = t.parse().unwrap();
        assert!((0.0..=50.0).contains(&t), "{t}");
    }
    let climate = Climate::parse(values("climate").last().unwrap().as_bytes()).unwrap();
    assert!((20.0..=90.0).contains(&climate.humidity), "{climate:?}");
    assert_eq!(
        values("climate/humidity").last(),
        Some(&format!("{:.1}", climate.humidity))
    );
    let status: serde_json::Value = serde_json::from_str(values("status").last().unwrap()).unwrap();
    assert!(
        status["climate"]["reads_ok"].as_u64().unwrap() >= 2,
        "{status}"
    );
    assert_eq!(status["simulated"], true);
    assert_eq!(status["climate"]["failures"]["checksum"], 0);

    let retained = TestClient::retained(port, &topic("climate/+")).await;
    assert!(
        retained
            .iter()
            .any(|(t, _)| *t == topic("climate/humidity")),
        "the broker retains no humidity; it retains {retained:?}"
    );
    agent.stop().await;
}

/// Does not answer `failures` times, then reads like a healthy DHT11.
#[derive(Debug)]
struct RecoveringSensor {
    failures: u32,
}

impl ClimateSensor for RecoveringSensor {
    fn read(&mut self) -> Result<Reading, ReadError> {
        if self.failures > 0 {
            self.failures -= 1;
            return Err(ReadError::Timeout("no pulses".into()));
        }
        Ok(Reading {
            temperature: 21.0,
            humidity: 40.0,
        })
    }
    fn blocks(&self) -> bool {
        false
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_stops_showing_a_sensor_error_once_a_read_succeeds() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "node.toml", &node_toml(port, &sensor_section()));
    let sub = Subscriber::start(port, &topic("status"), &[]);
    let agent = InProcessAgent::start_with_sensor(
        &config,
        Some(Box::new(RecoveringSensor { failures: 1 })),
    );
    // The first read fails; its retry 2 s later succeeds.
    let deadline = Instant::now() + WAIT;
    let status = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = sub.next_line(left).expect("a status after a good reading");
        let json = line.strip_prefix(&format!("{} ", topic("status"))).unwrap();
        let status: serde_json::Value = serde_json::from_str(json).unwrap();
        if status["climate"]["reads_ok"].as_u64() >= Some(1) {
            break status;
        }
    };
    // The failure is still counted, but no longer reported as current.
    assert_eq!(status["climate"]["failures"]["timeout"], 1, "{status}");
    assert_eq!(
        status["climate"]["last_error"],
        serde_json::Value::Null,
        "{status}"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_speaker_plays_files_with_the_player_and_refuses_paths() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let sounds = dir.path().join("sounds");
    std::fs::create_dir(&sounds).unwrap();
    std::fs::write(sounds.join("bell.wav"), b"RIFF bell").unwrap();
    let played = dir.path().join("played");
    let speaker = format!(
        "[speaker]\nname = \"kitchen\"\nplayer = [\"cp\", \"{{sound}}\", \"{}\"]\nsounds_dir = \"{}\"\ntimeout_secs = 5\n",
        played.display(),
        sounds.display()
    );
    let config = node_toml(port, &speaker);
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &config));
    wait_online(port);
    let errors = Subscriber::start(port, &topic("error"), &[]);

    let play = "hearth/chime/kitchen/play";
    let out = mosquitto_pub(
        port,
        &["-t", play, "-m", r#"{"sound":"bell.wav","volume":40}"#],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + WAIT;
    while !played.exists() {
        assert!(Instant::now() < deadline, "the player never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(std::fs::read(&played).unwrap(), b"RIFF bell");

    for (sound, why) in [
        ("../node.toml", "not allowed"),
        ("/etc/passwd", "not allowed"),
        (".hidden", "not allowed"),
        ("gong.wav", "is not a file in"),
    ] {
        let payload = serde_json::json!({ "sound": sound }).to_string();
        mosquitto_pub(port, &["-t", play, "-m", &payload]);
        let line = errors.next_line(WAIT).unwrap();
        assert!(line.starts_with(&topic("error ")), "{line}");
        let report: ErrorReport = serde_json::from_str(line.split_once(' ').unwrap().1).unwrap();
        assert_eq!(report.topic, play);
        assert!(report.error.contains(why), "{sound}: {report:?}");
    }
    let status = Subscriber::start(port, &topic("status"), &[]);
    let last = status.next_line(WAIT).unwrap();
    let json: serde_json::Value = serde_json::from_str(last.split_once(' ').unwrap().1).unwrap();
    assert_eq!(json["speaker"]["rejected"], 4, "{json}");
    agent.stop().await;
}
