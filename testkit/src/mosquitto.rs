//! Debian's mosquitto tools as real test peers: `mosquitto` the broker, `mosquitto_pub`, `mosquitto_sub`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::HANG_LIMIT;
use crate::process::LogLines;

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

/// `mosquitto_sub -d -i <id> -t <filter>` on `port`, its SUBACK seen on
/// stdout as `Subscribed (mid: ...`. mosquitto_sub flushes its messages but
/// not its debug lines; line buffering (coreutils' stdbuf) delivers the
/// SUBACK line at once. Debug lines start with `Client <id> `.
pub fn debug_sub_command(port: u16, id: &str, filter: &str) -> Command {
    require_tool("mosquitto_sub");
    let mut command = Command::new("stdbuf");
    command.args([
        "-oL",
        "mosquitto_sub",
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
    ]);
    command.args(["-d", "-i", id, "-t", filter]);
    command
}

/// A running `mosquitto_sub -v`, its output lines collected in the background.
#[derive(Debug)]
pub struct Subscriber {
    child: Child,
    lines: mpsc::Receiver<String>,
    granted: String,
    /// The broker's port, where [`Subscriber::until_marker`] publishes.
    port: u16,
}

/// Output lines of one `mosquitto_sub` kept for the test; a test reads them
/// as they come, and a reader that fell this far behind has failed anyway.
const SUB_LINES_KEPT: usize = 10_000;

impl Subscriber {
    /// Subscribes to `filter` with `-v` (lines are `topic payload`) plus
    /// `extra` args, and returns once the broker's SUBACK arrived. Panics,
    /// showing what mosquitto_sub printed, if it exits first (e.g. a refused
    /// login) or no SUBACK comes within [`HANG_LIMIT`].
    ///
    /// `-d` makes mosquitto_sub print "Subscribed (mid: 1): <qos>" on the
    /// SUBACK; its debug lines share stdout with the messages, so they carry
    /// a client id of ours (`Client <id> ...`) and are filtered out: the
    /// test sees only `topic payload` lines.
    pub fn start(port: u16, filter: &str, extra: &[&str]) -> Self {
        require_tool("mosquitto_sub");
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "testkit-sub-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut child = debug_sub_command(port, &id, filter)
            .arg("-v")
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mosquitto_sub");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::sync_channel(SUB_LINES_KEPT);
        let (ack_tx, ack) = mpsc::sync_channel(1);
        let debug = format!("Client {id} ");
        std::thread::spawn(move || {
            let mut ack_tx = Some(ack_tx);
            let mut debug_seen = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(granted) = line.strip_prefix("Subscribed (mid: ") {
                    if let Some(ack) = ack_tx.take() {
                        let granted = granted.split_once(": ").map_or("", |(_, g)| g);
                        let _ = ack.send(Ok(granted.to_owned()));
                    }
                    continue;
                }
                if line.starts_with(&debug) {
                    if ack_tx.is_some() {
                        debug_seen.push(line);
                    }
                    continue;
                }
                if let Err(mpsc::TrySendError::Disconnected(_)) = tx.try_send(line) {
                    break;
                }
            }
            if let Some(ack) = ack_tx {
                let _ = ack.send(Err(debug_seen));
            }
        });
        let granted = match ack.recv_timeout(HANG_LIMIT) {
            Ok(Ok(granted)) => granted,
            outcome => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                let mut stderr = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
                }
                panic!(
                    "mosquitto_sub -t {filter} on port {port} got no SUBACK ({status}): \
                     stdout {outcome:?}, stderr {stderr:?}"
                );
            }
        };
        Self {
            child,
            lines,
            granted,
            port,
        }
    }

    /// The QoS the broker granted as mosquitto_sub printed it (`128`: refused).
    pub fn granted(&self) -> &str {
        &self.granted
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

    /// Waits for a line `want` accepts; returns it and every line before it.
    /// For lines with a part a test cannot know (a timestamp). Panics
    /// showing what came after `timeout`.
    pub fn expect_where(
        &self,
        want: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> (String, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if want(&line) => return (line, seen),
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("mosquitto_sub printed no line wanted within {timeout:?}; it printed {seen:?}");
    }

    /// Reads lines until `done` says the ones read so far are enough, and
    /// returns them: for "wait until N of these and one of those came".
    /// Panics showing them after `timeout`.
    pub fn lines_until(&self, done: impl Fn(&[String]) -> bool, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while !done(&seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => panic!(
                    "mosquitto_sub never printed what was waited for within {timeout:?}; \
                     it printed {seen:?}"
                ),
            }
        }
        seen
    }

    /// Every line before a marker: publishes a unique payload on `topic`
    /// (which this subscriber's filter must cover) with mosquitto_pub at QoS
    /// 1, and reads until it comes back. For "nothing else arrives" checks:
    /// a message published before the marker on the same topic filter comes
    /// before it. The caller says why what must not arrive is ordered before
    /// the marker (e.g. it would have been published before an event the
    /// test already saw). Panics after [`HANG_LIMIT`] showing what came.
    pub fn until_marker(&self, topic: &str) -> Vec<String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let payload = format!(
            "testkit-marker-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let out = mosquitto_pub(self.port, &["-t", topic, "-q", "1", "-m", &payload]);
        assert!(
            out.status.success(),
            "mosquitto_pub of the marker on {topic}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.expect_line(&format!("{topic} {payload}"), HANG_LIMIT)
    }

    /// Waits until every line of `wants` arrived, in any order; returns all
    /// lines seen meanwhile. Panics with them after `timeout`.
    pub fn expect_all(&self, wants: &[String], timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while !wants.iter().all(|w| seen.contains(w)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => panic!(
                    "mosquitto_sub never printed all of {wants:?} within {timeout:?}; \
                     it printed {seen:?}"
                ),
            }
        }
        seen
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

/// Debian's `mosquitto` broker on a loopback port, killed on drop.
#[derive(Debug)]
pub struct MosquittoBroker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
    /// Its log (stderr), kept drained.
    log: LogLines,
}

/// Ports tried before giving up on starting mosquitto.
const MOSQUITTO_PORT_TRIES: usize = 20;

/// How mosquitto's own log ends a failed bind.
const IN_USE: &str = "Address already in use";

impl MosquittoBroker {
    /// Starts mosquitto (anonymous clients allowed) on a port of its own.
    pub fn start() -> Self {
        Self::start_with_config("allow_anonymous true")
    }

    /// Kills this broker (as a crash would) and starts a fresh one on the same port:
    /// sessions and retained messages are gone. Panics if the port was
    /// taken meanwhile (mosquitto then says so and exits).
    pub fn restart(mut self) -> Self {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("temp dir"));
        let body = std::fs::read_to_string(dir.path().join("body.conf")).expect("read body.conf");
        match Self::try_start(self.port, &body) {
            Ok(broker) => broker,
            Err(log) => panic!(
                "mosquitto could not listen on its old port {} again: {log:?}",
                self.port
            ),
        }
    }

    /// Starts mosquitto on a loopback port with `body` appended to its
    /// config after the `listener` line (e.g. `allow_anonymous false`,
    /// `password_file ...`, `acl_file ...`). Files `body` names must exist.
    ///
    /// mosquitto 2.0 cannot report a port-0 bind (`listener 0` means a unix
    /// socket, and its log says "port 0"), so we choose a port and let
    /// mosquitto bind it itself: below the kernel's ephemeral range, where
    /// no port-0 bind or outgoing connection of another test lands. Only its
    /// own log saying it is running proves the listener is ours; on
    /// "Address already in use" (another test chose the same port) it has
    /// exited, and we try another port.
    pub fn start_with_config(body: &str) -> Self {
        let mut failures = Vec::new();
        for _ in 0..MOSQUITTO_PORT_TRIES {
            match Self::try_start(pick_port(), body) {
                Ok(broker) => return broker,
                Err(log) if log.iter().any(|l| l.contains(IN_USE)) => failures.push(log),
                Err(log) => panic!("mosquitto did not start: it printed {log:?}"),
            }
        }
        panic!("mosquitto found no free port in {MOSQUITTO_PORT_TRIES} tries: {failures:?}");
    }

    /// Starts mosquitto on `port`; `Err` has its log when it exited instead.
    fn try_start(port: u16, body: &str) -> Result<Self, Vec<String>> {
        require_tool("mosquitto");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("body.conf"), body).expect("write body.conf");
        let conf = dir.path().join("mosquitto.conf");
        // As root, mosquitto switches to the `mosquitto` user and could
        // not read the test's files in its private temp folder; `user`
        // is ignored when not running as root. Its log goes to stderr,
        // where we read that it bound our port.
        let text = format!(
            "listener {port} 127.0.0.1\npersistence false\nuser root\nlog_dest stderr\n\
             log_type error\nlog_type warning\nlog_type notice\nlog_type information\n{body}\n"
        );
        std::fs::write(&conf, text).expect("write mosquitto.conf");
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mosquitto");
        let mut log = LogLines::read(child.stderr.take().expect("piped stderr"));
        // "Opening ipv4 listen socket on port N." then "mosquitto version X running".
        let running = log.wait_for(|line| line.ends_with(" running").then_some(()));
        if running.is_err() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(log.seen().to_vec());
        }
        let opened = format!("listen socket on port {port}.");
        assert!(
            log.seen().iter().any(|l| l.contains(&opened)),
            "mosquitto runs but never said it opened port {port}: {:?}",
            log.seen()
        );
        if let Err(why) = crate::process::mqtt_answers(SocketAddr::from(([127, 0, 0, 1], port))) {
            panic!("mosquitto says it runs on port {port} but: {why}");
        }
        Ok(Self {
            child,
            port,
            _dir: dir,
            log,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it logged so far, for a failure message.
    pub fn log(&mut self) -> &[String] {
        self.log.so_far()
    }
}

/// A loopback port below the kernel's ephemeral range (which port-0 binds
/// and outgoing connections use), spread by process id and a counter so
/// parallel tests rarely choose the same one.
fn pick_port() -> u16 {
    static N: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let low = 10_000_u32;
    let span = ephemeral_low.saturating_sub(low).max(1_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let seed = std::process::id()
        .wrapping_mul(7_919)
        .wrapping_add(N.fetch_add(1, Ordering::Relaxed).wrapping_mul(104_729))
        .wrapping_add(nanos);
    u16::try_from(low + seed % span).expect("below the ephemeral range")
}

impl Drop for MosquittoBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
