//! The housekeeping task: keeps `/readyz` honest about the database, refreshes a standby's picture, prunes old rows.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::chimes::scheduler::Registry;
use crate::config::Settings;
use crate::decide::message::RecentIds;
use crate::leader::Role;
use crate::metrics::Metrics;
use crate::shared_house::SharedHouse;
use crate::store::{Store, StoreError};

/// How often the database is pinged for `/readyz` when nothing is written.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// How often a standby re-reads the database to serve fresh reads.
const STANDBY_REFRESH: Duration = Duration::from_secs(1);
/// How often old history is pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// How long press ids are kept to recognise redeliveries.
const MESSAGE_ID_RETENTION: chrono::Duration = chrono::Duration::hours(24);

/// What housekeeping looks after.
#[derive(Debug)]
pub struct Housekeeping {
    pub settings: Arc<Settings>,
    pub role: watch::Receiver<Role>,
    pub store: Store,
    pub house: SharedHouse,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
}

/// Runs housekeeping until `shutdown`.
pub async fn run_housekeeping(parts: Housekeeping, shutdown: CancellationToken) {
    let Housekeeping {
        settings,
        role,
        store,
        house,
        registry,
        metrics,
    } = parts;
    let mut health = tokio::time::interval(HEALTH_INTERVAL);
    let mut refresh = tokio::time::interval(STANDBY_REFRESH);
    let mut prune = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = refresh.tick() => {
                // A standby serves reads from what the leader stored.
                if *role.borrow() == Role::Standby {
                    if let Ok(loaded) = store.load().await {
                        house.change(|h| *h = loaded);
                    }
                    if let Ok(chimes) = store.load_chimes(settings.timezone).await {
                        registry.replace_all(chimes);
                    }
                }
            }
            _ = health.tick() => {
                let ok = store.ping().await;
                metrics.database_ok.store(ok, Relaxed);
            }
            _ = prune.tick() => {
                let now = Utc::now();
                let keep = chrono::Duration::days(settings.database.history_days.into());
                match store.prune(now - keep, now - MESSAGE_ID_RETENTION).await {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(rows, "pruned old climate readings"),
                    Err(error) => tracing::warn!(%error, "pruning failed"),
                }
                match store.prune_chime_runs(now - keep).await {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(rows, "pruned old chime runs"),
                    Err(error) => tracing::warn!(%error, "pruning chime runs failed"),
                }
                match store.prune_traces(now - keep).await {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(rows, "pruned old automation traces"),
                    Err(error) => tracing::warn!(%error, "pruning automation traces failed"),
                }
                match store.prune_logbook(now - keep).await {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(rows, "pruned old logbook entries"),
                    Err(error) => tracing::warn!(%error, "pruning the logbook failed"),
                }
            }
        }
    }
}

/// Press ids committed recently, so redeliveries after a restart are recognised.
pub async fn load_recent_ids(store: &Store) -> Result<RecentIds, StoreError> {
    let mut recent = RecentIds::default();
    for id in store
        .message_ids_since(Utc::now() - MESSAGE_ID_RETENTION)
        .await?
    {
        recent.insert(&id);
    }
    Ok(recent)
}
