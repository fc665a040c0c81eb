//! Workspace binaries as real processes: built fresh once per test process,
//! started on port 0, and waited on until they report where they listen and
//! answer there.
//!
//! A port is never chosen by binding, closing and handing it out: in between,
//! another test's server or client can take it, and a client could then talk
//! to someone else's server. The binary binds port 0 itself and prints the
//! address it got; we read that line, then check the answer (an MQTT CONNACK)
//! comes from that address.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use crate::HANG_LIMIT;

/// Log lines of a child kept for the test to read; later lines are dropped
/// (never blocking the child on a full pipe).
const LOG_LINES_KEPT: usize = 10_000;

/// How often [`BrokerProcess::terminate`] looks whether the process exited.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// What `hearth-broker` prints on stderr for its MQTT 3.1.1 listener.
const BROKER_LISTENING: &str = "hearth-broker: mqtt listening on ";

/// Path of a workspace binary (`hearth-broker`, `hearth-hub`,
/// `hearth-node-agent`), built by `cargo build` once per test process.
///
/// The path comes from cargo's own compiler-artifact message, so it is the
/// binary just built from this tree, never a stale one lying in some target
/// folder. Within its own crate a test may use `CARGO_BIN_EXE_<name>` instead.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    // Held during the build: two tests wanting the same binary build it once.
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let path = build(name);
    built.insert(name.to_owned(), path.clone());
    path
}

/// Set by scripts/test.sh after its `cargo test --workspace`: take the
/// binaries that build already made instead of building them again. A
/// `cargo build -p <name>` resolves features for one package, not for the
/// whole workspace with its dev-dependencies, so it rebuilt a dozen crates
/// a second time (about two minutes of CI).
const WORKSPACE_BINS: &str = "HEARTH_TEST_WORKSPACE_BINS";

/// Builds `name` and returns the executable cargo reports for it: with
/// [`WORKSPACE_BINS`] set, `cargo test --workspace --no-run` (nothing to do
/// after the suite's own build); otherwise `cargo build -p <name> --bin
/// <name>` (every Hearth binary is named after its package), which is
/// quicker when a developer runs one test file.
fn build(name: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the workspace");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let whole = std::env::var_os(WORKSPACE_BINS).is_some();
    let args: &[&str] = if whole {
        &["test", "--workspace", "--locked", "--no-run"]
    } else {
        &["build", "--locked", "-p", name, "--bin", name]
    };
    let out = Command::new(&cargo)
        .current_dir(workspace)
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cargo} {args:?} failed ({})",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact"
                && m["target"]["name"] == name
                && m["profile"]["test"] == false
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("{cargo} {args:?} reported no executable for {name}"))
}

/// A child's output lines (stderr or stdout), read on a thread so the
/// child never blocks on a full pipe.
#[derive(Debug)]
pub struct LogLines {
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl LogLines {
    pub fn read(output: impl Read + Send + 'static) -> Self {
        let (tx, lines) = sync_channel(LOG_LINES_KEPT);
        std::thread::spawn(move || forward(output, &tx));
        Self {
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line `pick` accepts and returns what it made of it.
    /// `Err` carries every line seen, when the child closed its stderr
    /// (exited) or after [`HANG_LIMIT`].
    pub fn wait_for<T>(&mut self, mut pick: impl FnMut(&str) -> Option<T>) -> Result<T, String> {
        let deadline = Instant::now() + HANG_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let picked = pick(&line);
                    self.seen.push(line);
                    if let Some(found) = picked {
                        return Ok(found);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("it closed stderr; it printed {:?}", self.seen));
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "nothing within {HANG_LIMIT:?}; it printed {:?}",
                        self.seen
                    ));
                }
            }
        }
    }

    /// Reads to the end (the child exited and closed its stderr) and returns
    /// every line it printed. Panics if it does not end within [`HANG_LIMIT`].
    pub fn read_to_end(&mut self) -> Vec<String> {
        match self.wait_for(|_| None::<()>) {
            Err(_) if self.lines.try_recv() == Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                self.seen.clone()
            }
            outcome => panic!("the child's stderr did not end: {outcome:?}"),
        }
    }

    /// Every line printed so far, for a failure message.
    pub fn so_far(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// Every line read so far (those [`Self::wait_for`] went through).
    pub fn seen(&self) -> &[String] {
        &self.seen
    }
}

fn forward(stderr: impl Read, tx: &SyncSender<String>) {
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        // Full, or nobody reads any more: drop the line but keep the pipe
        // drained, so the child never blocks on (or dies of) a full pipe.
        let _ = tx.try_send(line);
    }
}

/// The `hearth-broker` binary as its own process, killed on drop.
#[derive(Debug)]
pub struct BrokerProcess {
    child: Child,
    addr: SocketAddr,
    log: LogLines,
    /// Executable, environment and arguments, to restart it the same way.
    exe: PathBuf,
    envs: Vec<(String, String)>,
    args: Vec<String>,
}

impl BrokerProcess {
    /// The broker with default settings on a loopback port of its choosing.
    pub fn start() -> Self {
        Self::start_with(&[], &[])
    }

    /// The broker with extra `HEARTH_BROKER__*` (or other) environment
    /// variables and arguments; `HEARTH_BROKER__LISTEN` defaults to
    /// `127.0.0.1:0`. Returns once it reported its port and answered a
    /// CONNECT there with a CONNACK (accepted or not); panics saying what it
    /// printed otherwise.
    pub fn start_with(envs: &[(&str, &str)], args: &[&str]) -> Self {
        Self::start_exe(&binary("hearth-broker"), envs, args)
    }

    /// [`Self::start_with`] running `exe`: for the broker crate's own tests,
    /// whose `CARGO_BIN_EXE_hearth-broker` cargo has just built.
    pub fn start_exe(exe: &Path, envs: &[(&str, &str)], args: &[&str]) -> Self {
        let mut envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if !envs.iter().any(|(k, _)| k == "HEARTH_BROKER__LISTEN") {
            envs.push(("HEARTH_BROKER__LISTEN".to_owned(), "127.0.0.1:0".to_owned()));
        }
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        Self::spawn(exe.to_owned(), envs, args)
    }

    fn spawn(exe: PathBuf, envs: Vec<(String, String)>, args: Vec<String>) -> Self {
        let mut child = Command::new(&exe)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hearth-broker");
        let mut log = LogLines::read(child.stderr.take().expect("piped stderr"));
        let addr = match log.wait_for(|line| {
            line.strip_prefix(BROKER_LISTENING)
                .and_then(|a| a.trim().parse::<SocketAddr>().ok())
        }) {
            Ok(addr) => addr,
            Err(what) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                panic!("hearth-broker never said where it listens ({status}): {what}");
            }
        };
        if let Err(why) = mqtt_answers(addr) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "hearth-broker said it listens on {addr} but no CONNACK came from there: {why}; \
                 it printed {:?}",
                log.seen()
            );
        }
        Self {
            child,
            addr,
            log,
            exe,
            envs,
            args,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The stderr lines read so far.
    pub fn log(&mut self) -> &mut LogLines {
        &mut self.log
    }

    /// SIGTERM, waits for it to exit, and returns its exit status and
    /// everything it printed on stderr. Panics if it is still running after
    /// [`HANG_LIMIT`].
    pub fn terminate(&mut self) -> (ExitStatus, Vec<String>) {
        terminate(&mut self.child, &mut self.log, "hearth-broker")
    }

    /// `kill -9` and reap it: sessions and retained messages are gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills it (as a crash would) and starts a fresh one on the same port,
    /// for clients configured with that port.
    ///
    /// The one place a port is reused: the old process has exited, and the
    /// new one binds the port itself. Should anything else have taken it in
    /// between, the new broker exits with "cannot listen on ..." and this
    /// panics saying so; it never lets a client reach another server.
    pub fn restart(mut self) -> Self {
        self.kill();
        let mut envs = std::mem::take(&mut self.envs);
        envs.retain(|(k, _)| k != "HEARTH_BROKER__LISTEN");
        envs.push(("HEARTH_BROKER__LISTEN".to_owned(), self.addr.to_string()));
        let restarted = Self::spawn(
            std::mem::take(&mut self.exe),
            envs,
            std::mem::take(&mut self.args),
        );
        assert_eq!(
            restarted.addr, self.addr,
            "the restarted broker listens elsewhere"
        );
        restarted
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends an anonymous MQTT 3.1.1 CONNECT to `addr` and waits for the answer:
/// `Some(return code)` from a CONNACK, or `None` when the server closed the
/// connection instead (rumqttd's way of refusing a login). Either is a
/// broker answering MQTT; `Err` says what else happened.
pub fn mqtt_answers(addr: SocketAddr) -> Result<Option<u8>, String> {
    let mut stream = TcpStream::connect_timeout(&addr, HANG_LIMIT)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(HANG_LIMIT))
        .map_err(|e| e.to_string())?;
    let id = format!("testkit-probe-{}", std::process::id());
    stream
        .write_all(&crate::raw::connect(&id, 30, None))
        .map_err(|e| format!("cannot send CONNECT to {addr}: {e}"))?;
    let mut connack = Vec::new();
    let read = (&mut stream).take(4).read_to_end(&mut connack);
    match (read, connack.as_slice()) {
        (Ok(_), [0x20, 0x02, _, code]) => Ok(Some(*code)),
        (Ok(_) | Err(_), []) if read_closed(&stream) => Ok(None),
        (outcome, got) => Err(format!(
            "{addr} answered {got:02x?} ({outcome:?}), not a CONNACK"
        )),
    }
}

/// Whether the peer closed `stream` (as opposed to a read timeout).
fn read_closed(stream: &TcpStream) -> bool {
    let mut byte = [0_u8; 1];
    matches!(stream.peek(&mut byte), Ok(0))
        || matches!(stream.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}

/// How the `hearth-hub` banner names its HTTP address.
const HUB_DASHBOARD: &str = "dashboard:";
/// How the `hearth-hub` banner names its embedded MQTT 3.1.1 listener.
const HUB_BROKER_V4: &str = "MQTT broker (mqtt):";

/// A `hearth-hub` command with its HTTP server on a loopback port of its
/// choosing; add the database, broker and config settings.
pub fn hub_command() -> Command {
    let mut command = Command::new(binary("hearth-hub"));
    command.env("HEARTH_HTTP__LISTEN", "127.0.0.1:0");
    command
}

/// A `hearth-hub` process, killed on drop: its HTTP (and embedded broker)
/// addresses as its startup banner reported them.
#[derive(Debug)]
pub struct HubProcess {
    child: Child,
    http: SocketAddr,
    mqtt: Option<SocketAddr>,
    log: LogLines,
}

impl HubProcess {
    /// Spawns `command` (see [`hub_command`]; a port-0 `HEARTH_HTTP__LISTEN`
    /// and `HEARTH_BROKER__LISTEN`) and returns once its banner said where
    /// it listens. It may not be ready yet: see [`Self::wait_ready`].
    /// Panics with what it printed if it exits first.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hearth-hub");
        let mut log = LogLines::read(child.stderr.take().expect("piped stderr"));
        let mut mqtt = None;
        let http = log.wait_for(|line| {
            let line = line.trim();
            if let Some(addr) = line.strip_prefix(HUB_BROKER_V4) {
                mqtt = addr.trim().parse::<SocketAddr>().ok();
            }
            let url = line.strip_prefix(HUB_DASHBOARD)?.trim();
            let addr = url.strip_prefix("http://")?.split('/').next()?;
            addr.parse::<SocketAddr>().ok()
        });
        let http = match http {
            Ok(http) => http,
            Err(what) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                panic!("hearth-hub never said where it listens ({status}): {what}");
            }
        };
        Self {
            child,
            http,
            mqtt,
            log,
        }
    }

    /// [`Self::spawn`], then [`Self::wait_ready`].
    pub async fn start(command: Command) -> Self {
        let mut hub = Self::spawn(command);
        hub.wait_ready().await;
        hub
    }

    /// Waits until `/readyz` answers 200 (broker connected, subscriptions
    /// acknowledged, database writable); panics after [`HANG_LIMIT`] or
    /// when the hub exits, with its last answer and what it printed.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + HANG_LIMIT;
        loop {
            let last = match http_get(self.http, "/readyz").await {
                Ok((200, _)) => return,
                Ok((status, body)) => format!("{status} {body}"),
                Err(e) => e,
            };
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "hearth-hub exited ({status}) before it was ready: {last}; it printed {:?}",
                    self.log.read_to_end()
                );
            }
            assert!(
                Instant::now() < deadline,
                "hearth-hub not ready within {HANG_LIMIT:?}: /readyz said {last}; it printed {:?}",
                self.log.so_far()
            );
            // /readyz is a state, not an event: ask again shortly.
            tokio::time::sleep(READY_POLL).await;
        }
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// `http://host:port` of its HTTP server.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Its embedded broker's MQTT 3.1.1 address, when it runs one.
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.mqtt
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The stderr lines read so far.
    pub fn log(&mut self) -> &mut LogLines {
        &mut self.log
    }

    /// `kill -9` (a power cut, the OOM killer) and reap it.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, wait for the exit; returns its status and everything it
    /// printed. Panics if it still runs after [`HANG_LIMIT`].
    pub fn terminate(&mut self) -> (ExitStatus, Vec<String>) {
        terminate(&mut self.child, &mut self.log, "hearth-hub")
    }

    /// Sends SIGTERM and returns at once, for a test that acts while the
    /// hub shuts down (releases a lock it waits on, say); then [`Self::wait_exit`].
    pub fn sigterm(&self) {
        sigterm(&self.child);
    }

    /// Waits for the exit (after [`Self::sigterm`]); returns its status and
    /// everything it printed. Panics if it still runs after [`HANG_LIMIT`].
    pub fn wait_exit(&mut self) -> (ExitStatus, Vec<String>) {
        wait_exit(&mut self.child, &mut self.log, "hearth-hub")
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How often [`HubProcess::wait_ready`] asks `/readyz` again.
const READY_POLL: Duration = Duration::from_millis(20);

/// SIGTERM `child`, wait (bounded by [`HANG_LIMIT`]) and read its stderr to the end.
fn terminate(child: &mut Child, log: &mut LogLines, what: &str) -> (ExitStatus, Vec<String>) {
    sigterm(child);
    wait_exit(child, log, what)
}

/// Sends SIGTERM to `child`; an already exited child is not an error here
/// (the exit status tells).
fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// Waits (bounded by [`HANG_LIMIT`]) for `child` to exit and reads its stderr to the end.
fn wait_exit(child: &mut Child, log: &mut LogLines, what: &str) -> (ExitStatus, Vec<String>) {
    let deadline = Instant::now() + HANG_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{what} still runs {HANG_LIMIT:?} after SIGTERM; it printed {:?}",
            log.seen()
        );
        // Polling the exit: std offers no wait with a deadline.
        std::thread::sleep(EXIT_POLL);
    };
    (status, log.read_to_end())
}

/// Waits until the server at `addr` answers `GET /readyz` with 200; panics
/// with its last answer after [`HANG_LIMIT`]. For hubs that are not a
/// [`HubProcess`] (in-process ones); a `HubProcess` also notices an exit.
pub async fn wait_http_ready(addr: SocketAddr) {
    let deadline = Instant::now() + HANG_LIMIT;
    loop {
        let last = match http_get(addr, "/readyz").await {
            Ok((200, _)) => return,
            Ok((status, body)) => format!("{status} {body}"),
            Err(e) => e,
        };
        assert!(
            Instant::now() < deadline,
            "{addr} not ready within {HANG_LIMIT:?}: /readyz said {last}"
        );
        // /readyz is a state, not an event: ask again shortly.
        tokio::time::sleep(READY_POLL).await;
    }
}

/// A plain HTTP/1.1 GET: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("cannot send GET {path}: {e}"))?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .map_err(|e| format!("no answer to GET {path}: {e}"))?;
        Ok::<_, String>(response)
    };
    let response = tokio::time::timeout(HANG_LIMIT, exchange)
        .await
        .map_err(|_| format!("no answer to GET {path} within {HANG_LIMIT:?}"))??;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}
