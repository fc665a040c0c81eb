//! `hearth-broker` and `hearth-hub` as real processes on port 0, each
//! reporting the ports it got on stderr (the broker's "listening on" line,
//! the hub's banner), so no test hands out a port another test can take.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bounds a hang only: a start or an exit on a loaded 2-core machine.
pub const PROCESS_WAIT: Duration = Duration::from_secs(60);

/// A child process whose stderr is read line by line; killed and reaped on drop.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line so far, for failure messages.
    log: Arc<Mutex<Vec<String>>>,
    what: &'static str,
}

impl Spawned {
    fn start(mut command: Command, what: &'static str) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("RUST_BACKTRACE", "0")
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = log.clone();
        // Always drained, so a chatty child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            lines,
            log,
            what,
        }
    }

    /// The first stderr line `pick` accepts, mapped; panics with the log after [`PROCESS_WAIT`].
    pub fn wait_line<T>(&self, mut pick: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + PROCESS_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(found) = pick(&line) {
                        return found;
                    }
                }
                Err(_) => panic!(
                    "{} never printed the line looked for; its stderr:\n{}",
                    self.what,
                    self.log()
                ),
            }
        }
    }

    /// Everything it printed on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {name} {} failed", self.child.id());
    }

    /// Sends SIGTERM and returns at once.
    pub fn sigterm(&self) {
        self.signal("-TERM");
    }

    /// `kill -9`, as a power cut or the OOM killer would, and reaps it.
    pub fn kill_9(&mut self) {
        self.signal("-KILL");
        let _ = self.child.wait();
    }

    /// Waits for the exit; panics with the log if it takes past [`PROCESS_WAIT`].
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PROCESS_WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit; its stderr:\n{}",
                self.what,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text after `marker` on `line`, up to the next space or slash.
fn addr_after(line: &str, marker: &str) -> Option<std::net::SocketAddr> {
    let rest = line[line.find(marker)? + marker.len()..].trim_start();
    let end = rest.find([' ', '/']).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// `hearth-broker` (the binary just built) on a loopback port of its own choosing.
pub struct BrokerProcess {
    pub process: Spawned,
    pub port: u16,
}

impl BrokerProcess {
    pub fn start() -> Self {
        let mut command = Command::new(hearth_testkit::binary("hearth-broker"));
        command.env("HEARTH_BROKER__LISTEN", "127.0.0.1:0");
        let process = Spawned::start(command, "hearth-broker");
        let port = process
            .wait_line(|l| addr_after(l, "mqtt listening on "))
            .port();
        Self { process, port }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

/// `hearth-hub` on a port of its own choosing; with `broker_url` `None` it
/// runs its embedded broker on one too.
pub struct HubProcess {
    pub process: Spawned,
    pub http: std::net::SocketAddr,
    /// The embedded broker's MQTT port, when it runs one.
    pub mqtt_port: Option<u16>,
}

impl HubProcess {
    pub fn start(database_url: &str, broker_url: Option<&str>, client_id: &str) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hearth-hub"));
        command
            .env("HEARTH_DATABASE__URL", database_url)
            .env("HEARTH_HTTP__LISTEN", "127.0.0.1:0")
            .env("HEARTH_HUB__CLIENT_ID", client_id);
        match broker_url {
            Some(url) => command
                .env("HEARTH_BROKER__EMBEDDED", "false")
                .env("HEARTH_MQTT__URL", url),
            None => command
                .env("HEARTH_BROKER__EMBEDDED", "true")
                .env("HEARTH_BROKER__LISTEN", "127.0.0.1:0"),
        };
        let process = Spawned::start(command, "hearth-hub");
        // The banner names the broker's listeners before the dashboard.
        let mut mqtt_port = None;
        let http = process.wait_line(|l| {
            if let Some(addr) = addr_after(l, "MQTT broker (mqtt):") {
                mqtt_port = Some(addr.port());
            }
            addr_after(l, "dashboard:          http://")
        });
        if broker_url.is_none() {
            assert!(
                mqtt_port.is_some(),
                "hearth-hub named no embedded broker port:\n{}",
                process.log()
            );
        }
        Self {
            process,
            http,
            mqtt_port,
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.http)
    }
}
