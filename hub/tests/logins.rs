//! Optional HTTP logins against a real hub: off by default, and when on, every path but the probes (and, if asked, `/api/v0`) needs the right user and password.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Backend, TestDb, config, spawn_hub};

async fn status(url: &str, login: Option<(&str, &str)>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some((user, password)) = login {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status().as_u16(), challenge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_users_nothing_asks_for_a_login() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, "").await;
    let base = format!("http://{}", hub.http_addr);
    for path in ["/", "/api/v1/hub", "/api/v0/clocktime/", "/metrics"] {
        assert_eq!(
            status(&format!("{base}{path}"), None).await.0,
            200,
            "{path}"
        );
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_users_every_path_but_the_probes_needs_the_right_login() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, "[http.users]\nalice = \"open sesame\"\n").await;
    let base = format!("http://{}", hub.http_addr);
    for path in [
        "/",
        "/app.js",
        "/api/v1/hub",
        "/api/v1/events",
        "/api/v0/clocktime/",
        "/metrics",
    ] {
        let url = format!("{base}{path}");
        let (code, challenge) = status(&url, None).await;
        assert_eq!(code, 401, "{path}");
        assert!(
            challenge.starts_with("Basic realm=\"Hearth\""),
            "{challenge}"
        );
        assert_eq!(
            status(&url, Some(("alice", "wrong"))).await.0,
            401,
            "{path}"
        );
        assert_eq!(
            status(&url, Some(("bob", "open sesame"))).await.0,
            401,
            "{path}"
        );
        assert_eq!(
            status(&url, Some(("alice", "open sesame"))).await.0,
            200,
            "{path}"
        );
    }
    // Kubernetes probes carry no login.
    for path in ["/healthz", "/readyz"] {
        let (code, _) = status(&format!("{base}{path}"), None).await;
        assert!(code == 200 || code == 503, "{path}: {code}");
    }
    // A refused command changes nothing.
    let refused = reqwest::Client::new()
        .put(format!("{base}/api/v1/buttons/desk"))
        .json(&serde_json::json!({"state": "ON"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let (code, _) = status(
        &format!("{base}/api/v1/buttons/desk"),
        Some(("alice", "open sesame")),
    )
    .await;
    assert_eq!(
        code, 404,
        "the refused PUT must not have created the button"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_users_from_a_password_file_and_homeslice_devices_left_in() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("http-passwd");
    let mut users = hearth_broker::PasswordFile::default();
    users.set("alice", "correct horse").unwrap();
    users.save(&file).unwrap();
    let db = TestDb::new(Backend::Sqlite).await;
    let toml = format!(
        "[http]\npassword_file = {:?}\nv0_without_login = true\n",
        file.display().to_string()
    );
    let hub = spawn_hub(&db, &toml).await;
    let base = format!("http://{}", hub.http_addr);
    // Old homeslice firmware cannot log in.
    assert_eq!(
        status(&format!("{base}/api/v0/clocktime/"), None).await.0,
        200
    );
    assert_eq!(status(&format!("{base}/api/v1/hub"), None).await.0, 401);
    for _ in 0..3 {
        // Remembered after the first argon2 verification.
        let ok = status(
            &format!("{base}/api/v1/hub"),
            Some(("alice", "correct horse")),
        )
        .await;
        assert_eq!(ok.0, 200);
    }
    assert_eq!(
        status(
            &format!("{base}/api/v1/hub"),
            Some(("alice", "correct hors"))
        )
        .await
        .0,
        401
    );
    hub.stop().await;

    // A password file that is not there stops the hub, naming it.
    let missing = dir.path().join("nope");
    let mut config = config(
        &db,
        &format!(
            "[http]\npassword_file = {:?}\n",
            missing.display().to_string()
        ),
    );
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    let error = hearth_hub::start(config.validate().unwrap())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("nope"), "{error}");
}

async fn post(url: &str) -> u16 {
    reqwest::Client::new()
        .post(url)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v0_without_login_reaches_listed_buttons_only_and_never_creates_one() {
    let db = TestDb::new(Backend::Sqlite).await;
    let toml = "[http]\nv0_without_login = true\nv0_buttons = [\"desk\"]\n\n[http.users]\nalice = \"x8Jq2mWv-test\"\n";
    let hub = spawn_hub(&db, toml).await;
    let base = format!("http://{}", hub.http_addr);
    assert_eq!(post(&format!("{base}/api/v0/buttons/desk/on/")).await, 200);
    let read = reqwest::get(format!("{base}/api/v0/buttons/desk/"))
        .await
        .unwrap();
    let code = read.status().as_u16();
    let text = read.text().await.unwrap();
    assert_eq!((code, text.as_str()), (200, "ON\n"), "the listed button");
    let refused = post(&format!("{base}/api/v0/buttons/garage/on/")).await;
    assert_eq!(refused, 404, "an unlisted button");
    let (code, _) = status(
        &format!("{base}/api/v1/buttons/garage"),
        Some(("alice", "x8Jq2mWv-test")),
    )
    .await;
    assert_eq!(code, 404, "the unlisted button was created");
    hub.stop().await;

    // From outside the listed networks: 403, the listed button too.
    let db = TestDb::new(Backend::Sqlite).await;
    let toml = toml.replace(
        "v0_buttons = [\"desk\"]\n",
        "v0_buttons = [\"desk\"]\nv0_networks = [\"10.0.0.0/8\"]\n",
    );
    let hub = spawn_hub(&db, &toml).await;
    let base = format!("http://{}", hub.http_addr);
    assert_eq!(post(&format!("{base}/api/v0/buttons/desk/on/")).await, 403);
    hub.stop().await;
}
