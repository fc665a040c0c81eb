//! Shared helpers for hub tests: fresh databases per test, hubs on free ports, HTTP calls.

#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use hearth_hub::{Hub, HubConfig};
use sqlx::Connection;

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

/// Waits until the hub has connected to its broker (ready answers 200).
pub async fn wait_ready(hub: &Hub) {
    let url = format!("http://{}/readyz", hub.http_addr);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(r) = reqwest::get(&url).await
            && r.status() == 200
        {
            // Subscriptions go out right after CONNACK; give them a moment.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "hub never became ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
