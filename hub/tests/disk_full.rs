//! The SQLite file's disk fills up under load: a clear error, `/readyz` false, no panic, and
//! once space is back every press is stored. Needs root (it mounts a small tmpfs), as the
//! test script has on a fresh machine.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{TestDb, Tmpfs, call, mqtt_port, spawn_hub, wait_ready};
use hearth_testkit::TestClient;
use rumqttc::QoS;

/// A 4 MiB tmpfs that can be filled.
struct SmallDisk(Tmpfs);

impl SmallDisk {
    fn mount() -> Self {
        Self(Tmpfs::mount("4m"))
    }

    /// Fills every free byte; returns the filler file to delete later.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.flush();
        let mut small = vec![0u8; 512];
        while f.write_all(&small).is_ok() {}
        small.clear();
        path
    }
}

async fn readyz(base: &str) -> (u16, String) {
    let (status, _, body) = call("GET", &format!("{base}/readyz"), None).await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_and_nothing_is_lost_once_space_returns() {
    let disk = SmallDisk::mount();
    let db = TestDb::at(format!("sqlite://{}/hearth.db", disk.0.path().display()));
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let base = format!("http://{}", hub.http_addr);
    let presser = TestClient::connect(mqtt_port(&hub), "presser").await;

    let filler = disk.fill();
    for n in 0..200 {
        presser
            .publish(
                "hearth/button/desk/press",
                QoS::AtLeastOnce,
                false,
                format!("{{\"id\":\"{n}\"}}"),
            )
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let reason = loop {
        let (status, body) = readyz(&base).await;
        if status == 503 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never reported the full disk"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(reason.contains("database"), "{reason}");
    assert_eq!(
        call("GET", &format!("{base}/healthz"), None).await.0,
        200,
        "the hub stays up"
    );
    let (_, _, metrics) = call("GET", &format!("{base}/metrics"), None).await;
    // The counter must be there and above zero: a missing line is a failure.
    let write_errors = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hearth_errors_total{reason=\"database_write\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(
        write_errors.is_some_and(|n| n > 0.0),
        "write failures are counted: saw {write_errors:?} in\n{metrics}"
    );

    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, _, body) = call("GET", &format!("{base}/api/v1/buttons/desk"), None).await;
        let (status, _) = readyz(&base).await;
        if status == 200 && body.contains("\"press_count\":200") {
            break;
        }
        assert!(Instant::now() < deadline, "never caught up: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    hub.stop().await;
    let again = spawn_hub(&db, "").await;
    assert_eq!(
        again
            .house()
            .buttons
            .values()
            .map(|b| b.press_count)
            .sum::<i64>(),
        200
    );
    again.stop().await;
}
