//! Headless Chromium through chromedriver, for the tests that drive the hub as a browser does.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use hearth_testkit::process::LogLines;

/// How long a page may take to show what a test waits for.
const WAIT: Duration = Duration::from_secs(5);

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Starts of chromedriver before a port race counts as a failure.
const START_ATTEMPTS: u32 = 3;

/// chromedriver on a port it chose, killed on drop.
pub struct ChromeDriver {
    child: Child,
    port: u16,
    /// Keeps its stdout drained.
    _out: LogLines,
}

impl ChromeDriver {
    pub async fn start() -> Self {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: run ./scripts/test.sh (it installs Debian's chromium and \
                 chromium-driver) or `apt-get install chromium chromium-driver`"
            );
        }
        // Port 0: chromedriver picks a free port itself and says which.
        // Under CI load it once exited instead ("IPv4 port not available.
        // Exiting...", the port it picked taken before it bound it): then
        // it is started again, a bounded number of times.
        let mut attempts = 0;
        let (child, port, out) = loop {
            attempts += 1;
            let mut child = Command::new(CHROMEDRIVER)
                .arg("--port=0")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut out = LogLines::read(child.stdout.take().unwrap());
            let said = out.wait_for(|line| {
                line.strip_prefix("ChromeDriver was started successfully on port ")?
                    .trim_end_matches('.')
                    .parse::<u16>()
                    .ok()
            });
            match said {
                Ok(port) => break (child, port, out),
                Err(what) if what.contains("port not available") && attempts < START_ATTEMPTS => {
                    let _ = child.wait();
                }
                Err(what) => {
                    panic!("chromedriver did not say its port (attempt {attempts}): {what}")
                }
            }
        };
        Self {
            child,
            port,
            _out: out,
        }
    }

    /// A headless browser session. The flags keep Chromium off the network
    /// (this machine has none beyond loopback) and out of any real profile.
    pub async fn browser(&self, profile: &std::path::Path) -> Client {
        self.browser_with(profile, &[]).await
    }

    /// [`Self::browser`] with more Chromium flags (`--host-resolver-rules`).
    pub async fn browser_with(&self, profile: &std::path::Path, extra: &[&str]) -> Client {
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1100,1000",
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .map(str::to_owned)
        .collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({ "binary": CHROMIUM, "args": args }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a chromedriver session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where browser tests keep their screenshots, `target/dashboard/`
/// (made if missing).
pub fn screenshot_dir() -> std::path::PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        std::path::PathBuf::from,
    );
    let dir = target.join("dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls a JavaScript expression until it is `true`.
pub async fn until(browser: &Client, expression: &str, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let value = browser
            .execute(&format!("return Boolean({expression});"), vec![])
            .await
            .unwrap();
        if value == serde_json::Value::Bool(true) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page never showed {what} ({expression})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn js(browser: &Client, expression: &str) -> serde_json::Value {
    browser
        .execute(&format!("return {expression};"), vec![])
        .await
        .unwrap()
}

/// Clicks the element `css` finds; a missing one fails naming it.
pub async fn click(browser: &Client, css: &str) {
    browser
        .find(fantoccini::Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .click()
        .await
        .unwrap();
}

/// Waits for a `mosquitto_sub` line without stalling the hub running on
/// this runtime.
pub fn expect_line(subscriber: &hearth_testkit::Subscriber, line: &str) {
    tokio::task::block_in_place(|| {
        subscriber.expect_line(line, WAIT);
    });
}
