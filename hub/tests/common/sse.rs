//! A reader of Server-Sent Events (`GET /api/v1/events`) for hub tests.

use std::time::Duration;

/// A reader of `text/event-stream` events over a real HTTP connection.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    pub async fn open(url: &str) -> Self {
        let response = reqwest::Client::new()
            .get(url)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let encoding = response.headers().get("content-encoding");
        assert!(
            encoding.is_none(),
            "an event stream compressed: {encoding:?}"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event's (name, data), skipping keep-alive comments.
    pub async fn next(&mut self, timeout: Duration) -> Option<(String, String)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if !data.is_empty() {
                    return Some((name, data));
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next snapshot, passing over the logbook's events (a press
    /// makes both; hub/tests/logbook_live.rs tests those).
    pub async fn next_snapshot(&mut self, timeout: Duration) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let buffered = self.buffer.clone();
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (name, data) = self
                .next(left)
                .await
                .unwrap_or_else(|| panic!("no snapshot event; buffered: {buffered:?}"));
            if name == "logbook" {
                continue;
            }
            assert_eq!(name, "snapshot", "{data}");
            return serde_json::from_str(&data).unwrap();
        }
    }

    /// Snapshots until one satisfies `want`.
    pub async fn until(
        &mut self,
        timeout: Duration,
        want: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let snapshot = self.next_snapshot(left).await;
            if want(&snapshot) {
                return snapshot;
            }
        }
    }
}
