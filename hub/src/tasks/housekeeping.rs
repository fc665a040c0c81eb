//! What the hub's tasks share, and the tasks beside the core: the clock, health and pruning.
//!
//! The core task itself, which owns every change to the house, is in
//! [`crate::core`].

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use hearth_protocol::{Command, Id, OnOff, OutputRef, Topic};
use rumqttc::{AsyncClient, QoS};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::brain::RecentIds;
use crate::clock;
use crate::config::Settings;
use crate::house::House;
use crate::leader::Role;
use crate::metrics::Metrics;
use crate::store::Store;

/// API calls waiting for the core task.
pub const API_QUEUE_CAPACITY: usize = 64;
/// Output confirmations buffered for HTTP callers waiting on them.
pub const CONFIRMATION_CAPACITY: usize = 256;
/// How often the database is pinged for `/readyz` when nothing is written.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// How often a standby re-reads the database to serve fresh reads.
const STANDBY_REFRESH: Duration = Duration::from_secs(1);
/// How often old history is pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// How long press ids are kept to recognise redeliveries.
const MESSAGE_ID_RETENTION: chrono::Duration = chrono::Duration::hours(24);

/// A request from the HTTP API to the core task.
#[derive(Debug)]
pub enum ApiCall {
    /// Set a button; the reply carries the new state and a signal for when it is durable.
    SetButton {
        id: Id,
        command: Command,
        reply: oneshot::Sender<(OnOff, oneshot::Receiver<()>)>,
    },
    /// Forget a button; the reply says whether it existed, after the commit.
    ForgetButton {
        id: Id,
        reply: oneshot::Sender<Option<oneshot::Receiver<()>>>,
    },
    /// Send a command to a node output (TOGGLE resolved from the last known state).
    CommandOutput {
        output: OutputRef,
        command: Command,
        reply: oneshot::Sender<OnOff>,
    },
}

/// State shared by the core task and the HTTP handlers.
#[derive(Debug)]
pub struct Shared {
    pub settings: Settings,
    /// Leader or standby (always leader on SQLite).
    pub role: watch::Receiver<Role>,
    pub chimes: crate::chimes::manage::Chimes,
    pub chime_stats: Arc<crate::chimes::scheduler::ChimeStats>,
    pub house: RwLock<House>,
    pub metrics: Arc<Metrics>,
    pub store: Store,
    pub api: mpsc::Sender<ApiCall>,
    pub confirmations: broadcast::Sender<(OutputRef, OnOff)>,
    /// Bumped on every change to `house`, for live views.
    pub house_revision: crate::revision::Revision,
    /// Who may use the HTTP side; `None`: anyone who can reach it.
    pub logins: Option<crate::http::Logins>,
    /// Cancelled when the hub stops: long-lived HTTP streams end with it.
    pub stopping: CancellationToken,
}

impl Shared {
    /// A consistent copy of the house for readers.
    pub fn house(&self) -> House {
        self.house.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Changes the house and tells live views.
    pub fn change_house<R>(&self, change: impl FnOnce(&mut House) -> R) -> R {
        let result = change(&mut self.house.write().unwrap_or_else(|p| p.into_inner()));
        self.house_revision.bump();
        result
    }
}

/// Publishes `hearth/clock/hhmm` (retained) at every minute boundary.
pub async fn run_clock(shared: Arc<Shared>, client: AsyncClient, shutdown: CancellationToken) {
    let topic = shared.settings.topics.build(&Topic::ClockHhmm);
    loop {
        let now = Utc::now();
        let until = clock::until_next_minute(now);
        // Timers run on the monotonic clock: waking a hair before the wall
        // clock reaches the minute must not publish the old minute again.
        let boundary = now + chrono::Duration::from_std(until).unwrap_or_default();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(until) => {}
        }
        if *shared.role.borrow() != Role::Leader {
            continue;
        }
        let payload = clock::hhmm(shared.settings.timezone, Utc::now().max(boundary));
        if client
            .publish(topic.clone(), QoS::AtLeastOnce, true, payload)
            .await
            .is_ok()
        {
            shared.metrics.messages_out.fetch_add(1, Relaxed);
        }
    }
}

/// Keeps `/readyz` honest about the database and prunes old history.
pub async fn run_housekeeping(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut health = tokio::time::interval(HEALTH_INTERVAL);
    let mut refresh = tokio::time::interval(STANDBY_REFRESH);
    let mut prune = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = refresh.tick() => {
                // A standby serves reads from what the leader stored.
                if *shared.role.borrow() == Role::Standby {
                    if let Ok(house) = shared.store.load().await {
                        shared.change_house(|h| *h = house);
                    }
                    if let Ok(chimes) = shared.store.load_chimes(shared.settings.timezone).await {
                        shared.chimes.registry.replace_all(chimes);
                    }
                }
            }
            _ = health.tick() => {
                let ok = shared.store.ping().await;
                shared.metrics.database_ok.store(ok, Relaxed);
            }
            _ = prune.tick() => {
                let now = Utc::now();
                let keep = chrono::Duration::days(shared.settings.database.history_days.into());
                match shared.store.prune(now - keep, now - MESSAGE_ID_RETENTION).await {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(rows, "pruned old climate readings"),
                    Err(error) => tracing::warn!(%error, "pruning failed"),
                }
                match shared.store.prune_chime_runs(now - keep).await {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(rows, "pruned old chime runs"),
                    Err(error) => tracing::warn!(%error, "pruning chime runs failed"),
                }
            }
        }
    }
}

/// Press ids committed recently, so redeliveries after a restart are recognised.
pub async fn load_recent_ids(store: &Store) -> Result<RecentIds, crate::store::StoreError> {
    let mut recent = RecentIds::default();
    for id in store
        .message_ids_since(Utc::now() - MESSAGE_ID_RETENTION)
        .await?
    {
        recent.insert(&id);
    }
    Ok(recent)
}
