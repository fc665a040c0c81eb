//! The real `hearth-node-agent` binary: flags, `--check-config`, `--all-off`, and SIGTERM.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{WAIT, line, node_toml, topic, wait_online, write};
use hearth_broker::Password;
use hearth_testkit::{RefusingPort, Subscriber, broker_config, mosquitto_pub, start_broker};

const BIN: &str = env!("CARGO_BIN_EXE_hearth-node-agent");

fn agent() -> Command {
    let mut cmd = Command::new(BIN);
    // The tests' own environment must not leak into the agent's settings.
    for (key, _) in std::env::vars() {
        if key.starts_with("HEARTH_") || key == "NODE_NAME" {
            cmd.env_remove(key);
        }
    }
    cmd.env("HEARTH_LOG", "warn");
    cmd
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Log lines without terminal colours (the shared tracing setup colours stderr).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

fn example() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/node.example.toml"))
}

#[test]
fn help_documents_every_flag() {
    let (ok, help, err) = run(agent().arg("--help"));
    assert!(ok, "--help failed: {err}");
    for flag in [
        "--config",
        "HEARTH_CONFIG",
        "--simulate",
        "--check-config",
        "--all-off",
        "--help",
        "--version",
        "NODE_NAME",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn check_config_prints_a_summary_or_names_the_bad_key() {
    let (ok, out, err) = run(agent()
        .args(["--check-config", "--config"])
        .arg(example())
        .env("NODE_NAME", "pi-1"));
    assert!(ok, "{err}");
    assert!(
        out.starts_with("config OK: node pi-1 (from NODE_NAME)"),
        "{out}"
    );
    assert!(out.contains("sequence traffic"), "{out}");
    let (ok, out, err) = run(agent()
        .arg("--check-config")
        .env("HEARTH_CONFIG", example()));
    assert!(ok && out.contains("speaker  kitchen"), "{out}{err}");

    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.toml", "[sensor]\ninterval_secs = 1\n");
    let (ok, _, err) = run(agent().args(["--check-config", "--config"]).arg(&bad));
    assert!(!ok, "accepted; stderr: {err}");
    assert!(
        err.contains("sensor.interval_secs: 1 s is too fast"),
        "{err}"
    );
    assert!(!err.contains("backtrace"), "{err}");

    let (ok, _, err) = run(agent()
        .args(["--check-config", "--config"])
        .arg(example())
        .env("HEARTH_MQTT__URL", "http://broker"));
    assert!(!ok, "accepted; stderr: {err}");
    assert!(err.contains("mqtt.url"), "{err}");

    let (ok, _, err) = run(agent().arg("--check-config"));
    assert!(!ok, "accepted; stderr: {err}");
    assert!(err.contains("no config file"), "{err}");

    let (ok, out, _) = run(agent()
        .args(["--check-config", "--simulate"])
        .env("NODE_NAME", "K3s-Worker.1"));
    assert!(ok, "--check-config failed: {out}");
    assert!(
        out.starts_with(
            "config OK: node k3s-worker-1 (from NODE_NAME), broker mqtt://127.0.0.1:1883"
        ),
        "{out}"
    );
    for demo in [
        "light red (BCM 17)",
        "light yellow (BCM 27)",
        "light green (BCM 22)",
        "dht11 on BCM 4",
    ] {
        assert!(out.contains(demo), "{demo} missing from {out}");
    }
}

#[test]
fn all_off_switches_outputs_without_mqtt() {
    let (ok, _, err) = run(agent()
        .args(["--all-off", "--simulate", "--config"])
        .arg(example())
        .env("HEARTH_LOG", "info"));
    assert!(ok, "{err}");
    let err = strip_ansi(&err);
    for output in ["red", "yellow", "green"] {
        assert!(err.contains(&format!("output={output}")), "{err}");
    }
    let on_a_pi = std::fs::read_to_string("/proc/device-tree/model")
        .is_ok_and(|m| m.contains("Raspberry Pi"));
    if !on_a_pi {
        let (ok, _, err) = run(agent().args(["--all-off", "--config"]).arg(example()));
        assert!(!ok, "accepted; stderr: {err}");
        assert!(
            err.contains("not a Raspberry Pi (rppal: Unknown Raspberry Pi model)"),
            "{err}"
        );
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "agent exited with {status}");
            return started.elapsed();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("agent still running {limit:?} after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The last level the simulated GPIO logged for each output, from the
/// agent's log.
fn last_levels(log: &str) -> BTreeMap<String, String> {
    let mut levels = BTreeMap::new();
    for line in strip_ansi(log)
        .lines()
        .filter(|l| l.contains("simulated GPIO"))
    {
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .map(str::to_owned)
        };
        if let (Some(output), Some(level)) = (field("output"), field("level")) {
            levels.insert(output, level);
        }
    }
    levels
}

/// Lamp and the traffic sequence on, then `signal`: every output ends at
/// its off level (the lamp's relay is active-low), the OFF states and then
/// `offline` are published, and the agent is gone within two seconds.
fn a_signal_leaves_everything_off(signal: &str) {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "node.toml", &node_toml(port, ""));
    let mut child = agent()
        .args(["--simulate", "--config"])
        .arg(&config)
        .env("HEARTH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    wait_online(port);
    let sub = Subscriber::start(port, &topic("#"), &["-R"]);
    for (rest, payload) in [("switch/lamp/set", "ON"), ("sequence/traffic/set", "ON")] {
        mosquitto_pub(port, &["-t", &topic(rest), "-m", payload]);
    }
    sub.expect_line(&line("switch/lamp/state", "ON"), WAIT);
    sub.expect_line(&line("sequence/traffic/state", "ON"), WAIT);
    // Mid-sequence: a light is on when the signal comes.
    sub.expect_line(&line("light/yellow/state", "ON"), WAIT);

    let kill = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success(), "kill -{signal} failed: {kill}");
    // WAIT only bounds a hang: the agent's own shutdown budget keeps it
    // under 2 s (see hearth_node_agent::agent::SHUTDOWN_FLUSH_TIMEOUT).
    let took = wait_exit(&mut child, WAIT);
    // The agent has exited, so it sent everything; a marker published now
    // ends what the subscriber has to show, instead of a 500 ms window that
    // a late message would fall out of.
    let marker = mosquitto_pub(port, &["-t", &topic("test/marker"), "-q", "1", "-m", "end"]);
    assert!(
        marker.status.success(),
        "mosquitto_pub: {}",
        String::from_utf8_lossy(&marker.stderr)
    );
    let lines = sub.expect_line(&line("test/marker", "end"), WAIT);
    for want in [
        line("switch/lamp/state", "OFF"),
        line("sequence/traffic/state", "OFF"),
        line("availability", "offline"),
    ] {
        assert!(lines.contains(&want), "{want} not in {lines:?}");
    }
    let offline = lines
        .iter()
        .position(|l| l.ends_with("availability offline"));
    assert_eq!(
        offline,
        Some(lines.len() - 1),
        "offline comes last: {lines:?}"
    );
    let levels = last_levels(&log.join().unwrap());
    let off: BTreeMap<String, String> = [
        ("green", "low"),
        ("lamp", "high"),
        ("red", "low"),
        ("yellow", "low"),
    ]
    .iter()
    .map(|(o, l)| (o.to_string(), l.to_string()))
    .collect();
    assert_eq!(levels, off, "the pins as the agent left them");
    eprintln!("agent exited {took:?} after SIG{signal}");

    // The broker keeps the final word for late subscribers.
    let late = Subscriber::start(port, &topic("availability"), &[]);
    late.expect_line(&line("availability", "offline"), WAIT);
}

#[test]
fn sigterm_mid_sequence_switches_everything_off_publishes_offline_and_exits() {
    a_signal_leaves_everything_off("TERM");
}

#[test]
fn sigint_does_the_same_as_sigterm() {
    a_signal_leaves_everything_off("INT");
}

/// The agent's log lines at the default level (no `HEARTH_LOG`) while it
/// tries the broker on `port` with `password`, until one is a warning
/// about the broker (returned last) or [`WAIT`] passes.
fn log_until_broker_warning(port: u16, password: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "node.toml", &node_toml(port, ""));
    let mut child = agent()
        .args(["--simulate", "--config"])
        .arg(&config)
        .env_remove("HEARTH_LOG")
        .env_remove("RUST_LOG")
        .env("HEARTH_MQTT__USERNAME", "pi-1")
        .env("HEARTH_MQTT__PASSWORD", password)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            if tx.send(strip_ansi(&line.unwrap())).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + WAIT;
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let warned = line.contains("WARN") && line.contains("broker");
        lines.push(line);
        if warned {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    lines
}

#[test]
fn a_broker_that_refuses_or_is_not_there_is_a_warning_at_the_default_level() {
    // Wrong password: the log must say so, not only "node agent started".
    let mut config = broker_config();
    config.users = BTreeMap::from([("pi-1".to_owned(), Password::new("right-pw"))]);
    let broker = start_broker(&config);
    let password = "wrong-pw-0123";
    let lines = log_until_broker_warning(broker.mqtt_addr().port(), password);
    let last = lines.last().map_or("", String::as_str);
    assert!(
        last.contains("WARN") && last.contains("cannot connect to the broker"),
        "{lines:#?}"
    );
    // rumqttd closes the socket instead of answering NotAuthorized.
    assert!(last.contains("error="), "{last}");
    assert!(!lines.iter().any(|l| l.contains(password)), "{lines:#?}");

    // Nothing listening at all.
    let nobody = RefusingPort::new();
    let lines = log_until_broker_warning(nobody.port(), password);
    let last = lines.last().map_or("", String::as_str);
    assert!(
        last.contains("WARN") && last.contains("cannot connect to the broker"),
        "{lines:#?}"
    );
    assert!(last.contains("refused"), "{last}");
}
