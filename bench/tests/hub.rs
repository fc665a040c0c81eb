//! End-to-end: `hearth-bench buttons` against a real `hearth-hub` and `hearth-broker`, each its own process.
//!
//! The layout of a Kubernetes install (broker and hub apart), on free
//! loopback ports with a throw-away SQLite database. The rules come from the
//! bench's own `--write-rules`, so this also proves the hub accepts them.

use std::io::Read;
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hearth_bench::http::{self, HttpUrl};

/// How long a child process gets to open its port or become ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A child process, killed when dropped, with its output in a temp file.
struct Process {
    name: &'static str,
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Process {
    fn spawn(name: &'static str, command: &mut Command) -> Self {
        let log = tempfile::NamedTempFile::new().expect("temp file for the log");
        let child = command
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("reopen log"))
            .stderr(log.reopen().expect("reopen log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self { name, child, log }
    }

    fn log_text(&self) -> String {
        let mut text = String::new();
        let _ = self.log.reopen().map(|mut f| f.read_to_string(&mut text));
        format!("--- {} log ---\n{text}", self.name)
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early ({status}):\n{}",
                self.name,
                self.log_text()
            );
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_port(process: &mut Process, port: u16) {
    let give_up = Instant::now() + START_TIMEOUT;
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        process.assert_running();
        assert!(
            Instant::now() < give_up,
            "nothing listens on {port}:\n{}",
            process.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn wait_ready(hub: &mut Process, http_port: u16) {
    let url = HttpUrl::parse(&format!("http://127.0.0.1:{http_port}")).expect("hub url");
    let give_up = Instant::now() + START_TIMEOUT;
    loop {
        hub.assert_running();
        let limit = tokio::time::Instant::now() + Duration::from_secs(2);
        if let Ok((200, _)) = http::get(&url, "/readyz", limit).await {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "hub never became ready:\n{}",
            hub.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    let mqtt_port = hearth_testkit::free_port();
    let mut broker = Process::spawn(
        "hearth-broker",
        Command::new(hearth_testkit::binary("hearth-broker"))
            .env("HEARTH_BROKER__LISTEN", format!("127.0.0.1:{mqtt_port}")),
    );
    wait_for_port(&mut broker, mqtt_port);
    let http_port = hearth_testkit::free_port();
    let mut hub = Process::spawn(
        "hearth-hub",
        Command::new(hearth_testkit::binary("hearth-hub"))
            .arg("--config")
            .arg(&rules)
            .env("HEARTH_BROKER__EMBEDDED", "false")
            .env("HEARTH_MQTT__URL", format!("mqtt://127.0.0.1:{mqtt_port}"))
            .env(
                "HEARTH_DATABASE__URL",
                format!("sqlite://{}", dir.path().join("hearth.db").display()),
            )
            .env("HEARTH_HTTP__LISTEN", format!("127.0.0.1:{http_port}"))
            .env("HEARTH_HUB__CLIENT_ID", "hearth-bench-test-hub"),
    );
    wait_ready(&mut hub, http_port).await;

    let hub_http = format!("http://127.0.0.1:{http_port}");
    let url = format!("mqtt://127.0.0.1:{mqtt_port}");
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
    let logs = || format!("{}\n{}", broker.log_text(), hub.log_text());
    assert!(
        out.status.success(),
        "hearth-bench failed: {}\n{stdout}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        logs()
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    let field = |name: &str| {
        report[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} in {report}"))
    };
    assert_eq!(field("lost"), 0, "{report}\n{}", logs());
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
