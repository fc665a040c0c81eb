//! The chime scheduler: sleeps until the next occurrence (or a change), claims it, plays it.
//!
//! Every occurrence is claimed with a unique run row before it is announced,
//! so a restart in the middle of a minute or a second hub on the same
//! Postgres never plays it twice. Occurrences found late play if they are
//! within the chime's catch-up window and are recorded as missed otherwise.
//! Time comes from a [`Clock`] so tests can drive days of schedule through
//! it in moments.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hearth_protocol::{ChimePlay, Id};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::manage::ChimeEvent;
use super::{Chime, Overdue, overdue};
use crate::store::{RunStatus, Store};

/// Most missed occurrences recorded per chime in one pass (after a long
/// outage the rest are only counted in the log).
const MAX_MISSED_RECORDED: usize = 100;
/// Longest sleep: a safety net against clock jumps (NTP, suspend).
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Pause after a database error before trying again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(2);

/// Where "now" comes from, and how to wait for later.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The system's wall clock and tokio's timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that jumps: sleeping moves it forward at once, up to `stop_at`,
/// where time stands still. Tests drive days of schedule through the real
/// scheduler and a real database in moments.
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<DateTime<Utc>>,
    stop_at: DateTime<Utc>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>, stop_at: DateTime<Utc>) -> Self {
        Self {
            now: std::sync::Mutex::new(start),
            stop_at,
        }
    }

    /// Moves the clock forward by `by` (never past `stop_at`); false if it
    /// was already there.
    fn advance(&self, by: Duration) -> bool {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        if *now >= self.stop_at {
            return false;
        }
        *now = (*now + chrono::Duration::from_std(by).unwrap_or_default()).min(self.stop_at);
        true
    }
}

impl Clock for std::sync::Arc<ManualClock> {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        if self.advance(duration) {
            Box::pin(tokio::task::yield_now())
        } else {
            Box::pin(std::future::pending())
        }
    }
}

/// The chimes the hub knows, shared by the scheduler, the API and MQTT.
#[derive(Debug, Default)]
pub struct Registry {
    chimes: RwLock<BTreeMap<Id, Chime>>,
    changed: Notify,
    /// For live views; the scheduler has its own wake-up above.
    revision: crate::revision::Revision,
}

impl Registry {
    pub fn new(chimes: Vec<Chime>) -> Self {
        Self {
            chimes: RwLock::new(chimes.into_iter().map(|c| (c.id.clone(), c)).collect()),
            changed: Notify::new(),
            revision: crate::revision::Revision::default(),
        }
    }

    /// Wakes after the next change to any chime.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revision.watch()
    }

    pub fn snapshot(&self) -> BTreeMap<Id, Chime> {
        self.chimes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn get(&self, id: &Id) -> Option<Chime> {
        self.chimes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Adds or replaces a chime and wakes the scheduler.
    pub fn put(&self, chime: Chime) {
        self.chimes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(chime.id.clone(), chime);
        self.changed.notify_one();
        self.revision.bump();
    }

    /// Replaces every chime (a standby refreshing from the database).
    pub fn replace_all(&self, chimes: Vec<Chime>) {
        *self.chimes.write().unwrap_or_else(|p| p.into_inner()) =
            chimes.into_iter().map(|c| (c.id.clone(), c)).collect();
        self.changed.notify_one();
        self.revision.bump();
    }

    /// Removes a chime and wakes the scheduler; the removed chime, if any.
    pub fn remove(&self, id: &Id) -> Option<Chime> {
        let removed = self
            .chimes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.changed.notify_one();
        self.revision.bump();
        removed
    }
}

/// One play for the publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Play {
    pub chime: Id,
    pub speaker: Id,
    pub message: ChimePlay,
    /// Played after its instant because the hub was down or busy then.
    pub late: bool,
}

impl Play {
    pub fn of(chime: &Chime, scheduled_for: Option<DateTime<Utc>>, late: bool) -> Self {
        Self {
            chime: chime.id.clone(),
            speaker: chime.speaker.clone(),
            message: ChimePlay {
                sound: chime.sound.clone(),
                volume: chime.volume,
                chime: Some(chime.id.clone()),
                scheduled_for,
            },
            late,
        }
    }
}

/// Counters the scheduler keeps, for `/metrics`.
#[derive(Debug, Default)]
pub struct ChimeStats {
    pub played: std::sync::atomic::AtomicU64,
    pub played_late: std::sync::atomic::AtomicU64,
    pub missed: std::sync::atomic::AtomicU64,
    pub claimed_elsewhere: std::sync::atomic::AtomicU64,
}

/// Runs the scheduler while this hub leads: started when it becomes the
/// leader (with the chimes reloaded from the database), stopped when it
/// steps down. The run rows keep a hand-over from playing anything twice.
pub async fn run_while_leader(
    registry: std::sync::Arc<Registry>,
    store: Store,
    mut role: tokio::sync::watch::Receiver<crate::leader::Role>,
    plays: mpsc::Sender<ChimeEvent>,
    stats: std::sync::Arc<ChimeStats>,
    default_tz: chrono_tz::Tz,
    shutdown: CancellationToken,
) {
    use crate::leader::Role;
    loop {
        if role.wait_for(|r| *r == Role::Leader).await.is_err() {
            return;
        }
        if let Ok(chimes) = store.load_chimes(default_tz).await {
            registry.replace_all(chimes);
        }
        let term = shutdown.child_token();
        let scheduler = tokio::spawn(run(
            registry.clone(),
            store.clone(),
            SystemClock,
            plays.clone(),
            stats.clone(),
            term.clone(),
        ));
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = role.wait_for(|r| *r != Role::Leader) => {}
        }
        term.cancel();
        let _ = scheduler.await;
        if shutdown.is_cancelled() {
            return;
        }
    }
}

/// Runs until `shutdown`, sending every claimed occurrence to `plays`.
pub async fn run(
    registry: std::sync::Arc<Registry>,
    store: Store,
    clock: impl Clock,
    plays: mpsc::Sender<ChimeEvent>,
    stats: std::sync::Arc<ChimeStats>,
    shutdown: CancellationToken,
) {
    use std::sync::atomic::Ordering::Relaxed;
    // Per chime: everything up to this instant has been dealt with.
    let mut cursors: HashMap<Id, DateTime<Utc>> = HashMap::new();
    loop {
        let now = clock.now();
        let chimes = registry.snapshot();
        cursors.retain(|id, _| chimes.contains_key(id));
        let mut failed = false;
        for chime in chimes.values() {
            let cursor = match cursors.get(&chime.id) {
                Some(c) => *c,
                None => match store.resume_point(&chime.id).await {
                    // Resume where the last run left off: what happened
                    // while the hub was down is caught up or recorded missed.
                    Ok(Some(last)) if last < now => last,
                    Ok(_) => now,
                    Err(error) => {
                        tracing::warn!(chime = %chime.id, %error, "cannot read where to resume; retrying");
                        failed = true;
                        continue;
                    }
                },
            };
            if !chime.enabled {
                cursors.insert(chime.id.clone(), now);
                continue;
            }
            let due = chime
                .schedule
                .between(cursor, now, chime.timezone, MAX_MISSED_RECORDED + 1);
            let mut reached = cursor;
            let mut missed_here = 0usize;
            for at in &due {
                let (status, late) = match overdue(*at, now, chime.catch_up) {
                    Overdue::PlayLate => {
                        (RunStatus::Played, now - *at > chrono::Duration::seconds(1))
                    }
                    Overdue::Missed => (RunStatus::Missed, false),
                };
                match store.claim_run(&chime.id, *at, status).await {
                    Ok(true) if status == RunStatus::Played => {
                        if late {
                            stats.played_late.fetch_add(1, Relaxed);
                            tracing::info!(chime = %chime.id, scheduled_for = %at, "playing late, within the catch-up window");
                        }
                        stats.played.fetch_add(1, Relaxed);
                        if plays
                            .send(ChimeEvent::Play(Play::of(chime, Some(*at), late)))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(true) => {
                        stats.missed.fetch_add(1, Relaxed);
                        missed_here += 1;
                        tracing::warn!(chime = %chime.id, scheduled_for = %at, "missed: the hub was not running then and it is past the catch-up window");
                    }
                    Ok(false) => {
                        stats.claimed_elsewhere.fetch_add(1, Relaxed);
                        tracing::debug!(chime = %chime.id, scheduled_for = %at, "already claimed (restart or another hub)");
                    }
                    Err(error) => {
                        tracing::warn!(chime = %chime.id, %error, "cannot claim an occurrence; retrying");
                        failed = true;
                        break;
                    }
                }
                reached = *at;
            }
            if failed {
                cursors.insert(chime.id.clone(), reached);
                continue;
            }
            if due.len() > MAX_MISSED_RECORDED {
                // Many more missed than we record: skip the rest.
                tracing::warn!(chime = %chime.id, recorded = missed_here, "more occurrences were missed than recorded");
            }
            cursors.insert(chime.id.clone(), now);
        }
        let next = chimes
            .values()
            .filter_map(|c| c.next_after(*cursors.get(&c.id).unwrap_or(&now)))
            .min();
        let sleep = if failed {
            RETRY_AFTER_ERROR
        } else {
            next.map_or(MAX_SLEEP, |t| {
                (t - now).to_std().unwrap_or_default().min(MAX_SLEEP)
            })
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = registry.changed.notified() => {}
            _ = clock.sleep(sleep) => {}
        }
    }
}
