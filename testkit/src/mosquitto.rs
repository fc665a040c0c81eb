//! Debian's mosquitto tools as real test peers: `mosquitto` the broker, `mosquitto_pub`, `mosquitto_sub`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::free_port;

/// Panics with a clear message when `tool` is not installed.
pub fn require_tool(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: run ./scripts/test.sh (it installs mosquitto and \
         mosquitto-clients) or `apt-get install mosquitto mosquitto-clients`"
    );
}

/// Runs `mosquitto_pub -h 127.0.0.1 -p <port> <args>` and returns its exit status.
pub fn mosquitto_pub(port: u16, args: &[&str]) -> std::process::Output {
    require_tool("mosquitto_pub");
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run mosquitto_pub")
}

/// A running `mosquitto_sub -v`, its output lines collected in the background.
#[derive(Debug)]
pub struct Subscriber {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Subscriber {
    /// Subscribes to `filter` with `-v` (lines are `topic payload`) plus `extra` args.
    pub fn start(port: u16, filter: &str, extra: &[&str]) -> Self {
        require_tool("mosquitto_sub");
        let mut child = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-v",
                "-t",
                filter,
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mosquitto_sub");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // mosquitto_sub has no "subscribed" signal; give it time to SUBSCRIBE.
        std::thread::sleep(Duration::from_millis(300));
        Self { child, lines }
    }

    /// The next line, or `None` after `timeout`.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Waits for a line equal to `want`, returning every line seen before it.
    pub fn expect_line(&self, want: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line == want => return seen,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("mosquitto_sub never printed {want:?} within {timeout:?}; it printed {seen:?}");
    }

    /// Every line that arrives within `window`.
    pub fn collect_for(&self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        seen
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's `mosquitto` broker on a free loopback port, killed on drop.
#[derive(Debug)]
pub struct MosquittoBroker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl MosquittoBroker {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Kills this broker (as a crash would) and starts a fresh one on the same port:
    /// sessions and retained messages are gone.
    pub fn restart(mut self) -> Self {
        let port = self.port;
        let _ = self.child.kill();
        let _ = self.child.wait();
        Self::start_on(port)
    }

    /// Starts mosquitto on a free loopback port with `body` appended to its
    /// config after the `listener` line (e.g. `allow_anonymous false`,
    /// `password_file ...`, `acl_file ...`). Files `body` names must exist.
    pub fn start_with_config(body: &str) -> Self {
        let port = free_port();
        Self::start_conf(
            port,
            // As root, mosquitto switches to the `mosquitto` user and could
            // not read the test's files in its private temp folder; `user`
            // is ignored when not running as root.
            &format!("listener {port} 127.0.0.1\npersistence false\nuser root\n{body}\n"),
        )
    }

    fn start_on(port: u16) -> Self {
        Self::start_conf(
            port,
            &format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
    }

    fn start_conf(port: u16, text: &str) -> Self {
        require_tool("mosquitto");
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(&conf, text).expect("write mosquitto.conf");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto");
        crate::wait_listening(port, Duration::from_secs(5), "mosquitto");
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for MosquittoBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
