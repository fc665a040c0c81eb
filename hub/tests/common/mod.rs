//! Shared helpers for hub tests: fresh databases per test, hubs on ports they chose, HTTP calls.

#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use std::time::Duration;

use hearth_hub::{Hub, HubConfig};
pub use hearth_testkit::{BrokerProcess, HubProcess};
use sqlx::Connection;

pub mod sse;

pub const WAIT: Duration = Duration::from_secs(5);

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists only for one test.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// The Postgres server the test script started (never skipped when missing).
pub fn postgres_admin_url() -> String {
    std::env::var("HEARTH_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "HEARTH_TEST_POSTGRES_URL is not set: run ./scripts/test.sh, which starts a \
             throwaway Postgres, or point it at one (postgres://user@host:port/postgres)"
        )
    })
}

impl TestDb {
    /// A database at `url` whose file the caller owns.
    pub fn at(url: String) -> Self {
        Self { url, _dir: None }
    }

    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/hearth.db", dir.path().display());
                Self {
                    url,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("hearth_test_{}", rand_suffix());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("cannot reach the test Postgres at {admin}: {e}"));
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                Self {
                    url: format!("{base}/{name}"),
                    _dir: None,
                }
            }
        }
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A hub config for tests: HTTP and (embedded) broker on free ports.
pub fn config(db: &TestDb, extra_toml: &str) -> HubConfig {
    let mut config: HubConfig = toml::from_str(extra_toml).expect("test config parses");
    config.database.url = db.url.clone();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    if config.broker.embedded {
        config.broker.listen = "127.0.0.1:0".parse().unwrap();
    }
    config.hub.client_id = format!("hearth-hub-{}", rand_suffix());
    config
}

/// Starts a hub with its own embedded broker.
pub async fn spawn_hub(db: &TestDb, extra_toml: &str) -> Hub {
    hearth_hub::start(config(db, extra_toml).validate().unwrap())
        .await
        .unwrap()
}

/// Starts a hub against the broker at `url`.
pub async fn spawn_hub_on(db: &TestDb, url: &str, extra_toml: &str) -> Hub {
    let mut config = config(db, extra_toml);
    config.broker.embedded = false;
    config.mqtt.url = url.to_owned();
    hearth_hub::start(config.validate().unwrap()).await.unwrap()
}

/// The MQTT port of a hub's embedded broker.
pub fn mqtt_port(hub: &Hub) -> u16 {
    hub.broker().expect("embedded broker").mqtt_addr().port()
}

/// Waits until the hub is ready: `/readyz` answers 200 only once the broker
/// acknowledged its subscriptions, so nothing sent after this goes unseen.
pub async fn wait_ready(hub: &Hub) {
    hearth_testkit::process::wait_http_ready(hub.http_addr).await;
}

/// (status, content type, body) of a request.
pub async fn call(method: &str, url: &str, body: Option<&str>) -> (u16, String, String) {
    let client = reqwest::Client::new();
    let mut req = client.request(method.parse().unwrap(), url);
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ctype, resp.text().await.unwrap())
}

/// Runs an async test body once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)(common::Backend::Postgres).await
            }
        }
    };
}

/// The real `hearth-hub` binary against the broker on `mqtt_port`, its HTTP
/// server on a port it chose (see [`HubProcess::http_addr`]). Not yet ready:
/// call [`HubProcess::wait_ready`].
pub fn hub_process(
    config: Option<&std::path::Path>,
    db: &TestDb,
    mqtt_port: u16,
    client_id: &str,
) -> HubProcess {
    HubProcess::spawn(hub_command(config, db, mqtt_port, client_id))
}

/// The `hearth-hub` command [`hub_process`] runs, for tests that want its
/// output or exit status themselves. Its HTTP server binds port 0.
pub fn hub_command(
    config: Option<&std::path::Path>,
    db: &TestDb,
    mqtt_port: u16,
    client_id: &str,
) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hearth-hub"));
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command
        .env("HEARTH_BROKER__EMBEDDED", "false")
        .env("HEARTH_MQTT__URL", format!("mqtt://127.0.0.1:{mqtt_port}"))
        .env("HEARTH_DATABASE__URL", &db.url)
        .env("HEARTH_HTTP__LISTEN", "127.0.0.1:0")
        .env("HEARTH_HUB__CLIENT_ID", client_id)
        // Error exits are read as a user reads them, without a backtrace.
        .env("RUST_BACKTRACE", "0");
    command
}

/// Publishes one QoS 1 message with mosquitto_pub, as a device or a person
/// at a shell would (an empty payload is sent as one: `-n`).
#[allow(dead_code)]
pub fn publish(port: u16, topic: &str, payload: &str) {
    let mut args = vec!["-t", topic, "-q", "1"];
    if payload.is_empty() {
        args.push("-n");
    } else {
        args.extend(["-m", payload]);
    }
    let out = hearth_testkit::mosquitto_pub(port, &args);
    assert!(
        out.status.success(),
        "mosquitto_pub {topic} {payload}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `hearth-hub ARGS` (a CLI command: `chimes ...`, `automations ...`,
/// `scenes ...`) on `db`, telling the hub through the broker on
/// `mqtt_port`: whether it succeeded, and what it printed (both streams).
#[allow(dead_code)]
pub fn hub_cli(db: &TestDb, mqtt_port: u16, args: &[&str]) -> (bool, String) {
    let out = hub_command(None, db, mqtt_port, "hearth-cli-test")
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A store on the test's own database, migrated.
pub async fn store(db: &TestDb) -> hearth_hub::store::Store {
    hearth_hub::store::Store::connect(&hearth_hub::config::DatabaseSection {
        url: db.url.clone(),
        ..hearth_hub::config::DatabaseSection::default()
    })
    .await
    .unwrap()
}

/// A small tmpfs, unmounted on drop. Needs root, as the test script has.
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs needs root: run ./scripts/test.sh as root"
        );
        Self { dir }
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// `mount -o remount,<how>`: `ro` or `rw`. Linux refuses `ro` (busy)
    /// while any file on it is open for writing.
    pub fn remount(&self, how: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{how}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount,{how} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The role a hub on `http` reports on `/api/v1/hub` (leader, standby,
/// undecided); `None` while it does not answer.
pub async fn hub_role(http: u16) -> Option<String> {
    let body = reqwest::get(format!("http://127.0.0.1:{http}/api/v1/hub"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let hub: serde_json::Value = serde_json::from_str(&body).ok()?;
    hub["role"].as_str().map(str::to_owned)
}

/// A child process (a node agent, say) killed and reaped when the test ends.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `/metrics` counter line's value, 0 when absent.
pub fn counter(metrics: &str, line_start: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Holds a SQLite database's write lock, as a stalled card would, until
/// the connection is rolled back or dropped.
pub async fn hold_write_lock(db: &TestDb) -> sqlx::SqliteConnection {
    let mut lock = sqlx::SqliteConnection::connect(&format!("{}?mode=rw", db.url))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .unwrap();
    lock
}
