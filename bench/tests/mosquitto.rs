//! End-to-end: `hearth-bench broker` against a real Mosquitto started per test on a loopback port.
//!
//! These tests never skip: without Mosquitto they fail and say how to install
//! it, because a benchmark that was never run against a real broker proves
//! nothing.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use hearth_testkit::{MosquittoBroker, RefusingPort};

use clap::Parser;
use hearth_bench::cli::{BrokerArgs, Cli, Command as BenchCommand, ConnectArgs};
use hearth_bench::scenarios::broker;

/// A Mosquitto for one test, on a port it was seen to bind itself.
struct Mosquitto {
    broker: MosquittoBroker,
    _config: Option<tempfile::TempDir>,
}

impl Mosquitto {
    /// Mosquitto allowing anonymous clients on loopback.
    fn start() -> Self {
        Self {
            broker: MosquittoBroker::start(),
            _config: None,
        }
    }

    /// Mosquitto that only admits `user` with `password`.
    fn start_with_password(user: &str, password: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the broker config");
        // Mosquitto drops root to its own user before reading the password
        // file, so the directory must be readable by others.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod config dir");
        let passwords = dir.path().join("passwords");
        let status = Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&passwords)
            .args([user, password])
            .status()
            .expect("run mosquitto_passwd (part of the mosquitto package)");
        assert!(status.success(), "mosquitto_passwd failed: {status}");
        std::fs::set_permissions(&passwords, std::fs::Permissions::from_mode(0o644))
            .expect("chmod password file");
        let broker = MosquittoBroker::start_with_config(&format!(
            "allow_anonymous false\npassword_file {}",
            passwords.display()
        ));
        Self {
            broker,
            _config: Some(dir),
        }
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.broker.port())
    }
}

fn broker_args(args: &[&str]) -> BrokerArgs {
    let argv = ["hearth-bench", "broker"].iter().chain(args).copied();
    match Cli::try_parse_from(argv)
        .expect("valid test arguments")
        .command
    {
        BenchCommand::Broker(args) => args,
        BenchCommand::Buttons(_) => panic!("not a broker command line"),
    }
}

/// The binary, end to end: flags in, one JSON line out.
#[test]
fn qos1_two_publishers_deliver_everything_once() {
    let mut mosquitto = Mosquitto::start();
    let url = mosquitto.url();
    let output = Command::new(env!("CARGO_BIN_EXE_hearth-bench"))
        .args([
            "broker",
            "--url",
            &url,
            "--publishers",
            "2",
            "--subscribers",
            "1",
        ])
        .args([
            "--messages",
            "500",
            "--qos",
            "1",
            "--timeout",
            "30",
            "--json",
        ])
        .output()
        .expect("run hearth-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "hearth-bench failed: {}\n{stdout}\n{}\nbroker log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        mosquitto.broker.log().join("\n")
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    let field = |name: &str| {
        report[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} in {report}"))
    };
    assert_eq!(field("expected"), 1000, "{report}");
    assert_eq!(field("delivered"), 1000, "{report}");
    assert_eq!(field("lost"), 0, "{report}");
    assert_eq!(field("duplicated"), 0, "{report}");
    assert_eq!(field("acknowledged"), 1000, "{report}");
    assert_eq!(report["latency"]["count"].as_u64(), Some(1000), "{report}");
    assert!(report["latency"]["p50_ns"].as_u64() > Some(0), "{report}");
    assert_eq!(report["timed_out"], false, "{report}");
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    assert!(report["delivered_per_sec"].as_f64() > Some(0.0), "{report}");
}

/// In-process, fan-out over several topic filters at QoS 0, paced so the
/// broker is never overloaded (QoS 0 may be dropped under overload).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos0_fan_out_over_topics_reaches_every_subscriber() {
    let mosquitto = Mosquitto::start();
    let args = broker_args(&[
        "--url",
        &mosquitto.url(),
        "--publishers",
        "2",
        "--subscribers",
        "3",
        "--topics",
        "4",
        "--messages",
        "200",
        "--rate",
        "2000",
        "--payload-size",
        "256",
        "--timeout",
        "30",
    ]);
    let report = broker::run(&args).await.expect("run completes");
    let d = report.deliveries;
    assert_eq!((d.expected, d.delivered), (1200, 1200), "{report}");
    assert_eq!((d.lost, d.duplicated, d.unexpected), (0, 0, 0), "{report}");
    assert!(!report.timed_out && report.errors.is_empty(), "{report}");
}

/// A run that cannot finish still stops by --timeout and reports what it got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_by_the_timeout_and_reports_partial_counts() {
    let mosquitto = Mosquitto::start();
    let args = broker_args(&[
        "--url",
        &mosquitto.url(),
        "--messages",
        "1000",
        "--rate",
        "20",
        "--qos",
        "1",
        "--timeout",
        "2",
    ]);
    let began = Instant::now();
    // 1,000 at 20/s would take 50 s: the run ending with fewer delivered
    // and `timed_out` is the timeout working. 30 s only bounds a hang.
    let report = tokio::time::timeout(Duration::from_secs(30), broker::run(&args))
        .await
        .expect("the run ignored --timeout 2")
        .expect("run completes");
    eprintln!("a --timeout 2 run stopped after {:?}", began.elapsed());
    assert!(report.timed_out, "{report}");
    let d = report.deliveries;
    assert!(d.delivered > 0 && d.delivered < 1000, "{report}");
    assert_eq!(d.lost, d.expected - d.delivered, "{report}");
    assert!(report.to_string().contains("TIMED OUT"), "{report}");
}

/// Credentials reach the broker, and a refusal is a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_sent_and_refusals_reported() {
    let mosquitto = Mosquitto::start_with_password("bench", "s3cret");
    let url = mosquitto.url();
    let ok = broker_args(&["--url", &url, "--messages", "50", "--qos", "1"]);
    let ok = BrokerArgs {
        connect: ConnectArgs {
            username: Some("bench".to_owned()),
            password: Some("s3cret".parse().expect("infallible")),
            ..ok.connect
        },
        ..ok
    };
    let report = broker::run(&ok).await.expect("authorised run");
    assert_eq!(report.deliveries.delivered, 50, "{report}");
    let text = report.to_string();
    assert!(
        !text.contains("s3cret"),
        "the password is in the report: {text}"
    );
    let json = serde_json::to_string(&report).expect("json");
    assert!(
        !json.contains("s3cret"),
        "the password is in the JSON: {json}"
    );

    let wrong = BrokerArgs {
        connect: ConnectArgs {
            password: Some("wrong".parse().expect("infallible")),
            ..ok.connect.clone()
        },
        ..ok.clone()
    };
    let err = format!("{:#}", broker::run(&wrong).await.expect_err("bad password"));
    assert!(err.contains("NotAuthorized"), "{err}");
    assert!(!err.contains("wrong"), "{err}");
}

/// No broker listening: the run fails fast with a clear error, no report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_is_a_clear_error() {
    let nobody = RefusingPort::new();
    let url = format!("mqtt://127.0.0.1:{}", nobody.port());
    let args = broker_args(&["--url", &url, "--timeout", "5"]);
    let err = broker::run(&args).await.expect_err("nothing listens there");
    let text = format!("{err:#}");
    assert!(
        text.contains("cannot connect") && text.contains(&url),
        "{text}"
    );
}
