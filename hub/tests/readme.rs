//! README's LAN step and the startup banner's commands, run as printed against the real binary.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use hearth_testkit::HANG_LIMIT;
use hearth_testkit::mosquitto::{Subscriber, require_tool};
use hearth_testkit::process::{HubProcess, hub_command};

const README: &str = include_str!("../../README.md");
/// README's LAN step, line for line.
const EXPORT: &str = "export HEARTH_BROKER__USERS__HOME=\"$(openssl rand -hex 16)\"";
const RUN: &str = "HEARTH_BROKER__LISTEN=0.0.0.0:1883 cargo run --release --bin hearth-hub";

/// Runs `script` in `sh` with the README's password exported; its stdout.
fn sh(script: &str, password: &str) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("HEARTH_BROKER__USERS__HOME", password)
        .output()
        .unwrap()
}

/// The README's commands for the default port, aimed at the port the test's hub got.
fn at_port(command: &str, port: u16) -> String {
    command.replace("-h 127.0.0.1 ", &format!("-h 127.0.0.1 -p {port} "))
}

#[tokio::test]
async fn the_readme_lan_step_and_the_banner_commands_work_as_printed() {
    require_tool("openssl");
    require_tool("mosquitto_pub");
    for line in [EXPORT, RUN] {
        assert!(README.lines().any(|l| l == line), "README lacks {line:?}");
    }
    // The export line as printed makes the password.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{EXPORT}; printf %s \"$HEARTH_BROKER__USERS__HOME\""
        ))
        .output()
        .unwrap();
    let password = String::from_utf8(out.stdout).unwrap();
    assert_eq!(password.len(), 32, "openssl rand -hex 16 gave {password:?}");

    // The run line, on a port of the kernel's choosing instead of 1883.
    let dir = tempfile::tempdir().unwrap();
    let mut command = hub_command();
    command
        .env("HEARTH_BROKER__LISTEN", "0.0.0.0:0")
        .env("HEARTH_BROKER__USERS__HOME", &password)
        .env(
            "HEARTH_DATABASE__URL",
            format!("sqlite://{}/hearth.db", dir.path().display()),
        );
    // Ready means the hub logged in to its own broker without our password.
    let mut hub = HubProcess::start(command).await;
    let port = hub.mqtt_addr().expect("the banner names the broker").port();

    // The banner's try line, with the password where it says so.
    let printed = hub
        .log()
        .wait_for(|l| l.trim().strip_prefix("try:").map(|c| c.trim().to_owned()))
        .unwrap();
    assert!(
        printed.contains(&format!("-p {port}")) && printed.contains("-u home -P '<password>'"),
        "banner: {printed}"
    );
    let run = printed.replace("'<password>'", &format!("'{password}'"));
    let out = sh(
        &format!("{run} -C 1 -W {}", HANG_LIMIT.as_secs()),
        &password,
    );
    // One of the hub's retained messages (the broker replays them in no
    // fixed order): the login and the subscription work as printed.
    let first = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        first == "hearth/hub/availability online" || first.starts_with("hearth/clock/hhmm "),
        "{run}: {out:?}"
    );

    // README's commands after the LAN step.
    let sub_line = README
        .lines()
        .find(|l| l.starts_with("mosquitto_sub -h 127.0.0.1 -u home"))
        .expect("README shows mosquitto_sub with the login");
    let pub_line = README
        .lines()
        .find(|l| l.starts_with("mosquitto_pub -h 127.0.0.1 -u home"))
        .expect("README shows mosquitto_pub with the login");
    let state = Subscriber::start(
        port,
        "hearth/button/desk/state",
        &["-u", "home", "-P", &password],
    );
    let out = sh(&at_port(pub_line, port), &password);
    assert!(out.status.success(), "{pub_line}: {out:?}");
    state.expect_line("hearth/button/desk/state ON", HANG_LIMIT);
    let out = sh(
        &format!(
            "{} -C 1 -W {}",
            at_port(sub_line, port),
            HANG_LIMIT.as_secs()
        ),
        &password,
    );
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "{sub_line}: {out:?}"
    );

    // Without the login, nobody gets in: not even from this machine.
    let out = sh(
        &format!("mosquitto_pub -h 127.0.0.1 -p {port} -t hearth/button/desk/set -m OFF"),
        &password,
    );
    assert!(
        !out.status.success(),
        "anonymous publish was accepted: {out:?}"
    );
    let log = hub.log().so_far().join("\n");
    assert!(!log.contains(&password), "the password was logged: {log}");
}
