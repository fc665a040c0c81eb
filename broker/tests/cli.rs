//! The `hearth-broker` binary: config errors name the key, the process serves and stops on SIGTERM.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use hearth_testkit::{BrokerProcess, Subscriber, mosquitto_pub};

fn broker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hearth-broker"))
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn check(text: &str) -> (bool, String) {
    let f = config_file(text);
    let out = broker()
        .args(["--check-config", "--config"])
        .arg(f.path())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_keys_and_wrong_types_are_errors_naming_the_key() {
    let (ok, err) = check("[broker]\nlisten = \"127.0.0.1:1883\"\nmax_conections = 5\n");
    assert!(!ok, "accepted; stderr: {err}");
    assert!(err.contains("max_conections"), "{err}");

    let (ok, err) = check("[broker]\nmax_connections = \"many\"\n");
    assert!(!ok, "accepted; stderr: {err}");
    assert!(err.contains("broker.max_connections"), "{err}");

    let (ok, err) = check("[brocker]\n");
    assert!(!ok, "accepted; stderr: {err}");
    assert!(err.contains("brocker"), "{err}");

    let (ok, err) = check("[broker]\nlisten = \"0.0.0.0:1883\"\n");
    assert!(!ok, "accepted; stderr: {err}");
    assert!(err.contains("allow_anonymous"), "{err}");

    let (ok, err) = check("[broker]\nlisten = \"127.0.0.1:1883\"\n");
    assert!(ok, "{err}");
}

#[test]
fn environment_overrides_the_file() {
    let f = config_file("[broker]\nlisten = \"0.0.0.0:1883\"\n");
    let out = broker()
        .args(["--check-config", "--config"])
        .arg(f.path())
        .env("HEARTH_BROKER__USERS__HUB", "pw-from-secret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn serves_until_sigterm_then_exits_cleanly() {
    let mut broker = BrokerProcess::start_exe(
        std::path::Path::new(env!("CARGO_BIN_EXE_hearth-broker")),
        &[],
        &[],
    );
    let port = broker.port();
    let sub = Subscriber::start(port, "cli/#", &[]);
    let published = mosquitto_pub(port, &["-t", "cli/x", "-m", "hi"]);
    assert!(
        published.status.success(),
        "mosquitto_pub: {}",
        String::from_utf8_lossy(&published.stderr)
    );
    sub.expect_line("cli/x hi", Duration::from_secs(5));

    let (status, log) = broker.terminate();
    assert!(status.success(), "exit status {status}; it printed {log:?}");
}

#[test]
fn the_documented_example_is_valid_once_its_placeholder_is_replaced() {
    let example = include_str!("../broker.example.toml");
    // As shipped it serves the LAN with `change-me`: a user who copies it
    // unchanged is stopped, told which user and how to fix it.
    let (ok, err) = check(example);
    assert!(
        !ok,
        "the example's placeholder password was accepted on 0.0.0.0"
    );
    assert!(
        err.contains("user \"hub\" has the example's placeholder password")
            && err.contains("openssl rand"),
        "the refusal names the user and the fix: {err}"
    );
    let (ok, err) = check(&example.replace("\"change-me\"", "\"tP3xq9ab7Lr2mWv8\""));
    assert!(ok, "{err}");
}
