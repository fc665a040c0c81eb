//! Home Assistant's side of MQTT discovery in tests: collect what Hearth publishes, validate it with HA's own code.
//!
//! Validation runs `scripts/ha-validate/validate.py` in the virtualenv that
//! `scripts/ha-venv.sh` makes (Home Assistant 2024.3.3 from PyPI), so a
//! payload passes only if Home Assistant's own discovery schemas accept it.
//! The interpreter is `HEARTH_HA_PYTHON` when set; otherwise the test runs
//! `scripts/ha-venv.sh` (idempotent: about a second when the venv is there,
//! a few minutes the first time) and uses `target/ha-venv/bin/python`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::TestClient;

/// Home Assistant's default discovery prefix.
pub const DISCOVERY_PREFIX: &str = "homeassistant";

/// One message seen on the broker: a config, or an empty removal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub topic: String,
    pub payload: String,
}

impl Seen {
    pub fn is_removal(&self) -> bool {
        self.payload.is_empty()
    }

    /// The payload as JSON (panics on a removal or bad JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload)
            .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {:?}", self.topic, self.payload))
    }
}

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the workspace")
}

/// The Python that has Home Assistant installed.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    static MAKING: Mutex<()> = Mutex::new(());
    let _guard = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    PYTHON
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("HEARTH_HA_PYTHON") {
                let path = PathBuf::from(path);
                assert!(
                    path.exists(),
                    "HEARTH_HA_PYTHON={} does not exist: run scripts/ha-venv.sh and point \
                     HEARTH_HA_PYTHON at the python it prints",
                    path.display()
                );
                return path;
            }
            let script = workspace().join("scripts/ha-venv.sh");
            let out = Command::new("bash")
                .arg(&script)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "scripts/ha-venv.sh failed, so Home Assistant cannot validate the discovery \
                 payloads; run it by hand to see why (it needs python3 3.11/3.12, \
                 python3-venv and PyPI):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let printed = String::from_utf8_lossy(&out.stdout);
            let path = printed
                .lines()
                .last()
                .map(|l| PathBuf::from(l.trim()))
                .unwrap_or_else(|| workspace().join("target/ha-venv/bin/python"));
            assert!(path.exists(), "scripts/ha-venv.sh printed {printed:?}");
            path
        })
        .clone()
}

/// Runs Home Assistant's discovery validation over `messages`; returns its
/// report, or panics with every rejected payload.
pub fn assert_valid(messages: &[Seen], prefix: &str) -> String {
    assert!(!messages.is_empty(), "no discovery messages to validate");
    let (accepted, report) = validate(messages, prefix);
    assert!(
        accepted,
        "Home Assistant rejected discovery payloads:\n{report}"
    );
    report
}

/// Whether Home Assistant accepts every one of `messages`, and its report.
pub fn validate(messages: &[Seen], prefix: &str) -> (bool, String) {
    let mut lines = Vec::new();
    for m in messages {
        let line = serde_json::json!({ "topic": m.topic, "payload": m.payload });
        lines.extend_from_slice(line.to_string().as_bytes());
        lines.push(b'\n');
    }
    let mut child = Command::new(python())
        .arg(workspace().join("scripts/ha-validate/validate.py"))
        .args(["--prefix", prefix])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Home Assistant validator");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(&lines)
        .expect("feed the validator");
    let out = child.wait_with_output().expect("run the validator");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "the validator failed to run ({}):\n{report}",
        out.status
    );
    (out.status.success(), report)
}

/// Every message `client` receives until nothing new arrives for `quiet`
/// (bounded by `limit` overall).
pub async fn collect(client: &mut TestClient, quiet: Duration, limit: Duration) -> Vec<Seen> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut seen = Vec::new();
    while tokio::time::Instant::now() < deadline {
        match client.recv(quiet).await {
            Some(p) => seen.push(Seen {
                topic: p.topic.clone(),
                payload: String::from_utf8_lossy(&p.payload).into_owned(),
            }),
            None => break,
        }
    }
    seen
}

/// Every message `client` receives, after those in `seen`, until `done`
/// holds for them (a config is in, a removal came): a state to wait for,
/// not a quiet time. Panics with what came after `limit`.
pub async fn receive_until(
    client: &mut TestClient,
    mut seen: Vec<Seen>,
    limit: Duration,
    done: impl Fn(&[Seen]) -> bool,
) -> Vec<Seen> {
    let deadline = tokio::time::Instant::now() + limit;
    while !done(&seen) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(p) = client.recv(left).await else {
            panic!("what was waited for never came within {limit:?}; came {seen:?}");
        };
        seen.push(Seen {
            topic: p.topic.clone(),
            payload: String::from_utf8_lossy(&p.payload).into_owned(),
        });
    }
    seen
}

/// The last message per topic: what the broker retains after `seen`.
pub fn latest(seen: &[Seen]) -> std::collections::BTreeMap<String, String> {
    seen.iter()
        .map(|s| (s.topic.clone(), s.payload.clone()))
        .collect()
}

/// Current (non-removed) configs among `seen`, by topic.
pub fn configs(seen: &[Seen]) -> std::collections::BTreeMap<String, serde_json::Value> {
    latest(seen)
        .into_iter()
        .filter(|(topic, payload)| topic.ends_with("/config") && !payload.is_empty())
        .map(|(topic, payload)| {
            let json = serde_json::from_str(&payload)
                .unwrap_or_else(|e| panic!("{topic} is not JSON ({e}): {payload:?}"));
            (topic, json)
        })
        .collect()
}
