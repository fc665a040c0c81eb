//! The whole house in one JSON document, on request and as a live Server-Sent Events stream.
//!
//! `GET /api/v1/snapshot` answers once; `GET /api/v1/events` sends the same
//! document as an `event: snapshot` at once and again after every change.
//! Changes are coalesced (at most one event per [`EVENT_MIN_INTERVAL`]) so a
//! burst of presses costs a phone a few events, not thousands, and the
//! stream wakes at minute boundaries for the clock and when a chime's next
//! play time passes. Automations and scenes come from the listing the core
//! keeps for live views (`crate::shared_catalog`), at most [`MAX_LISTED`]
//! of each.
//!
//! The same stream carries the logbook live: each batch of entries the
//! writer committed is one `event: logbook`, a JSON array of entries shaped
//! as `GET /api/v1/logbook` shapes them, oldest first, sent at once (a
//! press should show within a second). A stream that fell behind the
//! feed's bound (`crate::logbook_feed`) gets `event: logbook-lagged`
//! instead of what it missed, and its page re-reads the logbook.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use futures_util::Stream;
use hearth_protocol::OutputRef;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::HttpState;
use super::Refusal;
use super::logbook::EntryView;
use crate::chimes::ChimeView;
use crate::leader::Role;
use crate::logbook_feed::Committed;
use crate::model::house::{ButtonRecord, NodeRecord};
use crate::shared_catalog::{AutomationSummary, SceneSummary};

/// Shortest gap between two events on one stream.
pub const EVENT_MIN_INTERVAL: Duration = Duration::from_millis(250);
/// Live streams open at once; each holds a task and a connection.
pub const MAX_EVENT_STREAMS: usize = 64;
/// Most automations (and, apart, scenes) one snapshot lists. The whole
/// document goes out again on every change, so a hub with 10,000
/// automations (about 100 bytes each here: 21 KB for 200, measured) must
/// not send 1 MB per press; the document says how many there are, and the
/// API lists them all.
pub const MAX_LISTED: usize = 200;
/// Comment lines that keep idle proxies from closing the stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn routes() -> Router<Arc<HttpState>> {
    let streams = Arc::new(Semaphore::new(MAX_EVENT_STREAMS));
    Router::new()
        .route("/api/v1/snapshot", get(snapshot))
        .route(
            "/api/v1/events",
            get(move |state| events(state, streams.clone())),
        )
}

/// This hub right now.
#[derive(Debug, Serialize)]
pub struct HubView {
    pub role: Role,
    pub version: &'static str,
    pub timezone: &'static str,
    /// `HHMM` in the hub's time zone, as on `hearth/clock/hhmm`.
    pub clock: String,
    pub broker_connected: bool,
    pub database_ok: bool,
}

impl HubView {
    pub fn of(shared: &HttpState, now: DateTime<Utc>) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let timezone = shared.settings.timezone;
        Self {
            role: *shared.role.borrow(),
            version: env!("CARGO_PKG_VERSION"),
            timezone: timezone.name(),
            clock: crate::decide::clock::hhmm(timezone, now),
            broker_connected: shared.metrics.broker_connected.load(Relaxed),
            database_ok: shared.metrics.database_ok.load(Relaxed),
        }
    }
}

/// A light, switch or sequence on a node, with its last confirmed state.
#[derive(Debug, Serialize)]
pub struct OutputView {
    pub node: hearth_protocol::Id,
    pub kind: &'static str,
    pub name: hearth_protocol::Id,
    pub state: hearth_protocol::OnOff,
    pub changed_at: DateTime<Utc>,
    /// A dimmable light's level (0..255) as its agent reported it; absent
    /// for outputs that do not dim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brightness: Option<u8>,
}

/// A node input (motion, contact) with its last state.
#[derive(Debug, Serialize)]
pub struct InputView {
    pub node: hearth_protocol::Id,
    pub name: hearth_protocol::Id,
    pub state: hearth_protocol::OnOff,
}

/// Everything the dashboard shows.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub hub: HubView,
    pub nodes: Vec<NodeRecord>,
    pub outputs: Vec<OutputView>,
    pub inputs: Vec<InputView>,
    pub buttons: Vec<ButtonRecord>,
    pub chimes: Vec<ChimeView>,
    /// The first [`MAX_LISTED`] automations by id.
    pub automations: Vec<AutomationSummary>,
    /// How many automations there are (more than listed, past the bound).
    pub automations_total: usize,
    /// The first [`MAX_LISTED`] scenes by id.
    pub scenes: Vec<SceneSummary>,
    pub scenes_total: usize,
}

impl Snapshot {
    pub fn of(shared: &HttpState, now: DateTime<Utc>) -> Self {
        let house = shared.house();
        let (automations, automations_total, scenes, scenes_total) = shared.catalog.read(|l| {
            (
                l.automations.values().take(MAX_LISTED).cloned().collect(),
                l.automations.len(),
                l.scenes.values().take(MAX_LISTED).cloned().collect(),
                l.scenes.len(),
            )
        });
        Self {
            hub: HubView::of(shared, now),
            nodes: house.nodes.into_values().collect(),
            outputs: output_views(house.outputs, &house.brightness),
            inputs: house
                .inputs
                .into_iter()
                .map(|((node, name), state)| InputView { node, name, state })
                .collect(),
            buttons: house.buttons.into_values().collect(),
            automations,
            automations_total,
            scenes,
            scenes_total,
            chimes: shared
                .chimes
                .registry
                .snapshot()
                .values()
                .map(|c| c.view(now))
                .collect(),
        }
    }
}

pub fn output_views(
    outputs: BTreeMap<OutputRef, crate::model::house::OutputRecord>,
    brightness: &BTreeMap<OutputRef, hearth_protocol::Brightness>,
) -> Vec<OutputView> {
    outputs
        .into_values()
        .map(|o| OutputView {
            brightness: brightness.get(&o.output).map(|b| b.0),
            kind: o.output.kind.as_str(),
            node: o.output.node,
            name: o.output.name,
            state: o.state,
            changed_at: o.changed_at,
        })
        .collect()
}

async fn snapshot(State(shared): State<Arc<HttpState>>) -> Response {
    Json(Snapshot::of(&shared, Utc::now())).into_response()
}

async fn events(
    State(shared): State<Arc<HttpState>>,
    streams: Arc<Semaphore>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Refusal> {
    let permit = streams.try_acquire_owned().map_err(|_| {
        Refusal::json(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_EVENT_STREAMS} live views are open already; close one"),
        )
    })?;
    // Subscribed before the first snapshot is read: whatever the page reads
    // from `GET /api/v1/logbook` once the stream is open, plus what comes
    // here, leaves no gap (the page drops the ids it has twice).
    let entries = logbook_events(shared.logbook.subscribe(), shared.stopping.clone());
    let live = Live {
        house: shared.house.watch(),
        chimes: shared.chimes.registry.watch(),
        catalog: shared.catalog.watch(),
        shared,
        last: None,
        first: true,
        _permit: permit,
    };
    let snapshots = futures_util::stream::unfold(live, |mut live| async move {
        let data = live.next().await?;
        Some((Ok(Event::default().event("snapshot").data(data)), live))
    });
    let stream = futures_util::stream::select(snapshots, entries);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// Each committed batch of logbook entries as an `event: logbook`, until
/// the hub stops.
fn logbook_events(
    feed: broadcast::Receiver<Committed>,
    stopping: CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold((feed, stopping), |(mut feed, stopping)| async move {
        let event = tokio::select! {
            // Stopping first: a backlog must not hold up the hub's shutdown.
            biased;
            _ = stopping.cancelled() => return None,
            got = feed.recv() => match got {
                Ok(rows) => {
                    let entries: Vec<EntryView<'_>> = rows.iter().map(EntryView::from).collect();
                    let data = serde_json::to_string(&entries).unwrap_or_else(|_| "[]".to_owned());
                    Event::default().event("logbook").data(data)
                }
                // Too slow for the feed's bound: the oldest batches are
                // gone; the page re-reads the newest page instead.
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(skipped, "live logbook view fell behind");
                    Event::default()
                        .event("logbook-lagged")
                        .data(format!("{{\"skipped_batches\":{skipped}}}"))
                }
                Err(RecvError::Closed) => return None,
            },
        };
        Some((Ok(event), (feed, stopping)))
    })
}

/// One open stream: what it has sent, and what it waits on.
struct Live {
    shared: Arc<HttpState>,
    house: watch::Receiver<u64>,
    chimes: watch::Receiver<u64>,
    catalog: watch::Receiver<u64>,
    last: Option<String>,
    first: bool,
    _permit: OwnedSemaphorePermit,
}

impl Live {
    /// The next document that differs from the last one sent; `None` when
    /// the hub stops (so graceful shutdown is not held up by open pages).
    async fn next(&mut self) -> Option<String> {
        loop {
            if !std::mem::take(&mut self.first) {
                self.wait_for_change().await?;
            }
            let data = serde_json::to_string(&Snapshot::of(&self.shared, Utc::now()))
                .unwrap_or_else(|_| "{}".to_owned());
            if self.last.as_ref() != Some(&data) {
                self.last = Some(data.clone());
                return Some(data);
            }
        }
    }

    async fn wait_for_change(&mut self) -> Option<()> {
        let stopping = self.shared.stopping.clone();
        let wake = self.next_timed_wake(Utc::now());
        tokio::select! {
            _ = stopping.cancelled() => return None,
            changed = self.house.changed() => changed.ok()?,
            changed = self.chimes.changed() => changed.ok()?,
            changed = self.catalog.changed() => changed.ok()?,
            _ = tokio::time::sleep(wake) => {}
        }
        // Let the rest of a burst land, then take it all in one document.
        tokio::select! {
            _ = stopping.cancelled() => return None,
            _ = tokio::time::sleep(EVENT_MIN_INTERVAL) => {}
        }
        self.house.borrow_and_update();
        self.chimes.borrow_and_update();
        self.catalog.borrow_and_update();
        Some(())
    }

    /// The clock's next minute, or a chime's next play if sooner (its
    /// `next_at` moves on then).
    fn next_timed_wake(&self, now: DateTime<Utc>) -> Duration {
        let minute = crate::decide::clock::until_next_minute(now);
        let chime = self
            .shared
            .chimes
            .registry
            .snapshot()
            .values()
            .filter_map(|c| c.next_after(now))
            .min()
            .and_then(|at| (at - now).to_std().ok());
        chime.map_or(minute, |c| c.min(minute))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;
    use crate::logbook_feed::{LIVE_LOGBOOK_CAPACITY, LogbookFeed, test_row as row};

    /// What an event puts on the wire (axum's `Event` shows its bytes).
    fn wire(event: &Event) -> String {
        format!("{event:?}")
            .replace("\\\"", "\"")
            .replace("\\n", "\n")
    }

    #[tokio::test]
    async fn a_view_that_fell_behind_is_told_so_then_gets_what_follows() {
        let feed = LogbookFeed::default();
        let stopping = CancellationToken::new();
        let events = logbook_events(feed.subscribe(), stopping.clone());
        let mut events = std::pin::pin!(events);
        for id in 0..(LIVE_LOGBOOK_CAPACITY as i64 + 2) {
            feed.send(vec![row(id)]);
        }
        let lagged = wire(&events.next().await.unwrap().unwrap());
        assert!(
            lagged.contains("event: logbook-lagged\ndata: {\"skipped_batches\":2}"),
            "{lagged}"
        );
        let next = wire(&events.next().await.unwrap().unwrap());
        assert!(
            next.contains("event: logbook\ndata: [{\"id\":2,")
                && next.contains("\"entity\":\"button:desk\""),
            "{next}"
        );
        stopping.cancel();
        assert!(events.next().await.is_none(), "the stream outlived the hub");
    }
}
