//! End-to-end: `hearth-bench buttons` against a real `hearth-hub` and `hearth-broker`, each its own process.
//!
//! The layout of a Kubernetes install (broker and hub apart), on loopback
//! ports the processes chose themselves with a throw-away SQLite database. The rules come from the
//! bench's own `--write-rules`, so this also proves the hub accepts them.

use std::path::Path;
use std::process::Command;

use hearth_testkit::{BrokerProcess, HubProcess};

/// What both processes printed, for a failure message.
fn logs(broker: &mut BrokerProcess, hub: &mut HubProcess) -> String {
    format!(
        "--- hearth-broker log ---\n{}\n--- hearth-hub log ---\n{}",
        broker.log().so_far().join("\n"),
        hub.log().so_far().join("\n")
    )
}

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hearth-bench"))
        .args(args)
        .output()
        .expect("run hearth-bench")
}

fn write_rules(path: &Path, buttons: &str) {
    let out = bench(&[
        "buttons",
        "--buttons",
        buttons,
        "--write-rules",
        &path.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "--write-rules failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 200 presses at 100/s over 4 buttons: every press gets its command, and
/// the hub counts every press.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_press_gets_its_command_through_a_real_hub() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules.toml");
    write_rules(&rules, "4");
    let mut broker = BrokerProcess::start();
    let mut command = hearth_testkit::hub_command();
    command
        .arg("--config")
        .arg(&rules)
        .env("HEARTH_BROKER__EMBEDDED", "false")
        .env("HEARTH_MQTT__URL", broker.url())
        .env(
            "HEARTH_DATABASE__URL",
            format!("sqlite://{}", dir.path().join("hearth.db").display()),
        )
        .env("HEARTH_HUB__CLIENT_ID", "hearth-bench-test-hub");
    let mut hub = HubProcess::start(command).await;

    let hub_http = hub.http_url();
    let url = broker.url();
    let out = bench(&[
        "buttons",
        "--url",
        &url,
        "--hub-http",
        &hub_http,
        "--presses",
        "200",
        "--rate",
        "100",
        "--buttons",
        "4",
        "--timeout",
        "60",
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hearth-bench failed: {}\n{stdout}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        logs(&mut broker, &mut hub)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    let field = |name: &str| {
        report[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} in {report}"))
    };
    assert_eq!(
        field("lost"),
        0,
        "{report}\n{}",
        logs(&mut broker, &mut hub)
    );
    assert_eq!(
        (field("sent"), field("acked"), field("commands")),
        (200, 200, 200),
        "{report}"
    );
    assert_eq!(field("extra_commands"), 0, "{report}");
    assert_eq!(report["latency"]["count"].as_u64(), Some(200), "{report}");
    assert!(report["latency"]["p50_ns"].as_u64() > Some(0), "{report}");
    assert_eq!(report["hub"]["presses"].as_u64(), Some(200), "{report}");
    assert_eq!(report["hub"]["complete"], true, "{report}");
    assert_eq!(report["hub"]["duplicates"].as_u64(), Some(0), "{report}");
    assert_eq!(report["timed_out"], false, "{report}");
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    // Paced at 100/s: the figure is hearth-bench's own ("presses/s" in its
    // report), not an assert a busy machine could fail. The pacing itself is
    // client::due's test, on a manual clock.
    let rate = report["presses_per_sec"].as_f64();
    assert!(rate.is_some(), "no presses_per_sec in {report}");
    eprintln!("paced at 100/s, measured {rate:?} presses/s");
}
