//! The SQLite file's filesystem turns read-only: under load the hub stays up, says why on
//! `/readyz` and acknowledges no press it could not store; started on a read-only directory it
//! exits with an error naming it. Needs root (it mounts filesystems), as the test script has.
//!
//! Linux refuses `mount -o remount,ro` (busy) while a file on the
//! filesystem is open for writing, which a running hub's database always is,
//! so a read-only turn under a running hub is made the way it happens on a
//! Raspberry Pi: the kernel remounts an ext4 card read-only after an error
//! (`errors=remount-ro`, triggered through ext4's `trigger_fs_error`). That
//! turn cannot be undone while mounted; recovery is the operator's: stop the
//! hub, remount the card, start the hub. The startup case uses a tmpfs
//! remounted read-only while nothing has it open.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{BrokerProcess, HubProcess, TestDb, Tmpfs, call, hub_command, hub_process};
use hearth_testkit::TestClient;
use rumqttc::QoS;

const CLIENT_ID: &str = "hearth-hub-read-only-test";

/// An ext4 filesystem in a file, loop-mounted with `errors=remount-ro` as a
/// Pi's root card is; unmounted on drop (the loop device goes with it).
struct Card {
    image: PathBuf,
    mount: tempfile::TempDir,
    _image_dir: tempfile::TempDir,
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Card {
    fn mount() -> Self {
        let image_dir = tempfile::tempdir().unwrap();
        let image = image_dir.path().join("card.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(32 << 20)
            .unwrap();
        // No journal: an error then only remounts, with nothing to replay.
        run(
            "mkfs.ext4",
            &["-q", "-F", "-O", "^has_journal", image.to_str().unwrap()],
        );
        let card = Self {
            image,
            mount: tempfile::tempdir().unwrap(),
            _image_dir: image_dir,
        };
        card.attach();
        card
    }

    fn attach(&self) {
        run(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                self.image.to_str().unwrap(),
                self.path().to_str().unwrap(),
            ],
        );
    }

    fn path(&self) -> &Path {
        self.mount.path()
    }

    /// What the kernel does when the card misbehaves: an ext4 error, and
    /// with `errors=remount-ro` the filesystem is read-only from then on.
    fn fail(&self) {
        let out = Command::new("findmnt")
            .args(["-no", "SOURCE"])
            .arg(self.path())
            .output()
            .unwrap();
        let device = String::from_utf8(out.stdout).unwrap();
        let device = device.trim().trim_start_matches("/dev/");
        std::fs::write(
            format!("/sys/fs/ext4/{device}/trigger_fs_error"),
            "hearth read-only test",
        )
        .unwrap();
        let probe = std::fs::File::create(self.path().join("probe"));
        assert!(probe.is_err(), "the card is still writable");
    }

    /// The operator's repair: unmount the failed card and mount it again.
    fn remount(&self) {
        run("umount", &[self.path().to_str().unwrap()]);
        self.attach();
    }
}

impl Drop for Card {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

async fn press_count(http_port: u16) -> i64 {
    press_count_of(http_port, "desk").await
}

async fn press_count_of(http_port: u16, button: &str) -> i64 {
    let (status, _, body) = call(
        "GET",
        &format!("http://127.0.0.1:{http_port}/api/v1/buttons/{button}"),
        None,
    )
    .await;
    if status != 200 {
        return 0;
    }
    let button: serde_json::Value = serde_json::from_str(&body).unwrap();
    button["press_count"].as_i64().unwrap()
}

async fn wait_for_count(http_port: u16, want: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = press_count(http_port).await;
        if got == want {
            return;
        }
        assert!(
            got < want && Instant::now() < deadline,
            "press count {got}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn press(presser: &TestClient, ids: std::ops::Range<usize>) {
    for n in ids {
        presser
            .publish(
                "hearth/button/desk/press",
                QoS::AtLeastOnce,
                false,
                format!("{{\"id\":\"p{n}\"}}"),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// SIGTERM, then waits up to `within` for the exit; `None` if still running.
fn terminate_within(hub: &mut HubProcess, within: Duration) -> Option<Duration> {
    let asked = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &hub.pid().to_string()])
        .status();
    while asked.elapsed() < within {
        if hub.child().try_wait().unwrap().is_some() {
            return Some(asked.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_turning_read_only_is_reported_and_sigterm_still_stops_the_hub() {
    card_turns_read_only_under_load(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_turning_read_only_under_load_loses_no_acknowledged_press() {
    card_turns_read_only_under_load(true).await;
}

/// Presses, the card fails, more presses, SIGTERM; then, with
/// `check_recovery`, the card is repaired and every press must be stored.
async fn card_turns_read_only_under_load(check_recovery: bool) {
    let card = Card::mount();
    let db = TestDb::at(format!("sqlite://{}/hearth.db", card.path().display()));
    // Its own process, so the presses the hub could not store wait in the
    // hub's session while the hub is restarted.
    let broker = BrokerProcess::start();
    let mqtt_port = broker.port();
    let mut hub = hub_process(None, &db, mqtt_port, CLIENT_ID);
    hub.wait_ready().await;
    let http_port = hub.http_addr().port();
    let base = hub.http_url();

    let presser = TestClient::connect(mqtt_port, "presser").await;
    press(&presser, 0..100).await;
    wait_for_count(http_port, 100, Duration::from_secs(20)).await;
    // Commits are fsynced (synchronous=FULL) before they are acknowledged,
    // but a checkpoint may leave database pages dirty in the page cache,
    // which a card failing seconds later would have written. Without this
    // the test would measure the kernel dropping them on a failed filesystem.
    run("sync", &[]);

    card.fail();
    let failed_at = Instant::now();
    press(&presser, 100..300).await;
    let reason = loop {
        let (status, _, body) = call("GET", &format!("{base}/readyz"), None).await;
        if status == 503 {
            break body;
        }
        assert!(
            failed_at.elapsed() < Duration::from_secs(20),
            "/readyz never reported the read-only database"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let noticed_after = failed_at.elapsed();
    assert!(reason.contains("database"), "{reason}");
    // Some seconds of refused writes: the hub keeps serving and retrying.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(hub.child().try_wait().unwrap().is_none(), "the hub exited");
    assert_eq!(call("GET", &format!("{base}/healthz"), None).await.0, 200);
    if check_recovery {
        // A retried commit that SQLite reports as done on the read-only
        // card is not believed (the store checks the mount flag).
        let (status, _, body) = call("GET", &format!("{base}/readyz"), None).await;
        assert_eq!(status, 503, "still not ready: {body}");
    }

    // What an operator (or Kubernetes) does: stop the hub, fix the card,
    // start the hub. Stopping must work with the writes still failing,
    // within Kubernetes' default 30 s grace before it kills.
    let stopped_in = terminate_within(&mut hub, Duration::from_secs(30));
    if stopped_in.is_none() {
        hub.kill_9();
    }
    let log = hub.log().read_to_end().join("\n");
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        log.contains("database write failed"),
        "the failed writes are logged: {log}"
    );
    let stopped_in = stopped_in.unwrap_or_else(|| {
        panic!("SIGTERM did not stop the hub within 30 s while its writes failed: {log}")
    });
    assert!(
        log.contains("stopping with the database still failing"),
        "the hub says what it left with the broker: {log}"
    );
    if !check_recovery {
        println!(
            "/readyz 503 {noticed_after:.1?} after the card failed ({}); SIGTERM stopped the hub \
             in {stopped_in:.1?}",
            reason.trim()
        );
        return;
    }
    card.remount();
    let mut hub = hub_process(None, &db, mqtt_port, CLIENT_ID);
    hub.wait_ready().await;
    let http_port = hub.http_addr().port();
    // Every press arrives exactly once: those stored before the failure
    // from the database, the rest redelivered by the broker because the
    // hub never acknowledged them.
    wait_for_count(http_port, 300, Duration::from_secs(30)).await;
    // A press of another button, sent now on the same filter, is taken
    // after any redelivery still on its way: no desk press may follow it.
    let out = hearth_testkit::mosquitto_pub(
        mqtt_port,
        &[
            "-q",
            "1",
            "-t",
            "hearth/button/marker/press",
            "-m",
            "single",
        ],
    );
    assert!(out.status.success(), "the marker press: {out:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while press_count_of(http_port, "marker").await < 1 {
        assert!(
            Instant::now() < deadline,
            "the marker press was never counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        press_count(http_port).await,
        300,
        "a press was counted twice"
    );
    let first_error = log
        .lines()
        .find(|l| l.contains("database write failed"))
        .unwrap_or_default();
    println!(
        "/readyz 503 {noticed_after:.1?} after the card failed ({}); SIGTERM stopped the hub in \
         {stopped_in:.1?}; all 300 presses stored after the repair. First error: {first_error}",
        reason.trim()
    );
    hub.terminate();
}

/// Runs `command` to its exit (within `within`), returning its status and stderr.
fn run_to_exit(mut command: Command, within: Duration) -> (ExitStatus, String) {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the hub was still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, reader.join().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_directory_is_a_clear_error_at_startup() {
    let disk = Tmpfs::mount("8m");
    let dir = disk.path().display().to_string();
    let db = TestDb::at(format!("sqlite://{dir}/hearth.db"));
    let broker = BrokerProcess::start();
    let mqtt_port = broker.port();
    let check = |case: &str| {
        let (status, stderr) = run_to_exit(
            hub_command(None, &db, mqtt_port, CLIENT_ID),
            Duration::from_secs(20),
        );
        assert!(
            !status.success(),
            "{case}: started on a read-only directory"
        );
        assert!(!stderr.contains("panicked"), "{case}: {stderr}");
        assert!(
            stderr.contains(&format!("database directory {dir} is not writable"))
                && stderr.contains("Read-only file system"),
            "{case}: the error names the directory and why: {stderr}"
        );
    };

    // A fresh install on a volume mounted read-only.
    disk.remount("ro");
    check("no database yet");

    // A database from earlier runs whose volume is now read-only: SQLite
    // could open the file but not create its WAL files beside it.
    disk.remount("rw");
    let mut hub = hub_process(None, &db, mqtt_port, CLIENT_ID);
    hub.wait_ready().await;
    hub.terminate();
    let file = disk.path().join("hearth.db");
    assert!(file.exists(), "the hub created no {}", file.display());
    disk.remount("ro");
    check("existing database");
}
