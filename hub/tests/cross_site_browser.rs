//! The browser boundary in a real headless Chromium: a page of another site and a rebound host name cannot drive the hub, while the hub's own page can.
//!
//! The attacks are the ones a household member's browser would carry out
//! for a malicious page: a plain HTML form POST (no CORS involved), a
//! `fetch` with credentials in `no-cors` mode, and DNS rebinding (a name of
//! the attacker's resolving to the hub's address, simulated with
//! Chromium's `--host-resolver-rules`).

#![allow(clippy::unwrap_used)]

mod browser;
mod common;

use browser::{ChromeDriver, js, until};
use common::{Backend, TestDb, call, spawn_hub, wait_ready};

/// The attacker's name that resolves to the hub (`rebind.test` is reserved
/// and never resolves on its own).
const REBOUND: &str = "rebind.test";

/// A web server of "another site" on a port of its own: one page that POSTs
/// to the hub with `fetch`, then submits a form to it.
async fn attacker_site(hub: std::net::SocketAddr) -> std::net::SocketAddr {
    let target = format!("http://{hub}/api/v0/buttons/desk/on/");
    let page = format!(
        r#"<!doctype html><title>cute cats</title>
<form id="f" method="POST" action="{target}"></form>
<script>
window.fetched = 'pending';
fetch("{target}", {{ method: "POST", mode: "no-cors", credentials: "include" }})
  .then(() => {{ window.fetched = 'sent'; }}, (e) => {{ window.fetched = 'failed: ' + e; }});
</script>"#
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The HTTP status of a same-origin `fetch` POST to `path` from the page
/// the browser shows (or why it failed).
async fn post_from_page(browser: &fantoccini::Client, path: &str) -> serde_json::Value {
    browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], { method: 'POST' })
               .then((r) => done(r.status), (e) => done('failed: ' + e));",
            vec![serde_json::json!(path)],
        )
        .await
        .unwrap()
}

/// What `GET /api/v1/buttons/desk` says, from outside any browser.
async fn desk(base: &str) -> (u16, String) {
    let (status, _, body) = call("GET", &format!("{base}/api/v1/buttons/desk"), None).await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_site_and_a_rebound_name_cannot_drive_the_hub_but_its_own_page_can() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let base = format!("http://{}", hub.http_addr);
    let port = hub.http_addr.port();
    assert_eq!(
        desk(&base).await.0,
        404,
        "no button desk before the attacks"
    );
    let evil = attacker_site(hub.http_addr).await;

    let driver = ChromeDriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let rules = format!("--host-resolver-rules=MAP {REBOUND} 127.0.0.1");
    let browser = driver
        .browser_with(
            profile.path(),
            // No automatic https:// upgrade of a plain-http name.
            &[&rules, "--disable-features=HttpsUpgrades"],
        )
        .await;

    // Another site (localhost is not the site 127.0.0.1): its fetch goes
    // out, then its form lands on the hub's refusal.
    browser
        .goto(&format!("http://localhost:{}/", evil.port()))
        .await
        .unwrap();
    until(
        &browser,
        "window.fetched === 'sent'",
        "the cross-site fetch sent",
    )
    .await;
    browser
        .execute("document.getElementById('f').submit(); return 0;", vec![])
        .await
        .unwrap();
    until(
        &browser,
        &format!(
            "location.port === '{port}' && document.body && document.body.innerText.length > 0"
        ),
        "the hub's answer to the cross-site form",
    )
    .await;
    let answer = js(&browser, "document.body.innerText").await;
    let answer = answer.as_str().unwrap_or_default();
    assert!(
        answer.contains("may not change anything here") || answer.contains("cross-site"),
        "the form POST from another site was not refused by the hub: the page shows {answer:?}"
    );
    assert_eq!(
        desk(&base).await.0,
        404,
        "a cross-site form or fetch created or switched the button"
    );

    // DNS rebinding: the attacker's name now points at the hub. The page
    // and a same-origin POST from it get 421 (the hub answers only to its
    // own names), so the attacker can neither read nor change anything.
    browser
        .goto(&format!("http://{REBOUND}:{port}/"))
        .await
        .unwrap();
    let shown = js(&browser, "document.body.innerText").await;
    assert!(
        shown
            .as_str()
            .is_some_and(|s| s.contains(&format!("does not answer to \"{REBOUND}\""))),
        "the hub served a page to the rebound name {REBOUND}: {shown:?}"
    );
    let status = post_from_page(&browser, "/api/v0/buttons/desk/on/").await;
    assert_eq!(
        status,
        serde_json::json!(421),
        "a POST under the rebound name was not refused"
    );
    assert_eq!(
        desk(&base).await.0,
        404,
        "the rebound name switched the button"
    );

    // The hub's own page: the same POST goes through.
    browser.goto(&format!("{base}/")).await.unwrap();
    let status = post_from_page(&browser, "/api/v0/buttons/desk/on/").await;
    assert_eq!(
        status,
        serde_json::json!(200),
        "the hub's own page was refused"
    );
    let (status, body) = desk(&base).await;
    assert!(
        status == 200 && body.contains("\"ON\""),
        "the dashboard's POST did not switch the button on: {status} {body}"
    );

    browser.close().await.unwrap();
    hub.stop().await;
}
