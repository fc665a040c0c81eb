//! The chime scheduler: sleeps until the next occurrence (or a change), claims it, plays it.
//!
//! Every occurrence is claimed with a unique run row before it is announced,
//! so a restart in the middle of a minute or a second hub on the same
//! Postgres never plays it twice. Occurrences found late play if they are
//! within the chime's catch-up window and are recorded as missed otherwise.
//! Time comes from a [`Clock`] so tests can drive days of schedule through
//! it in moments.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hearth_protocol::Id;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::manage::{ChimeEvent, Chimes};
pub use super::registry::{Play, Registry};
use super::{Chime, Overdue};
use crate::logbook_feed::LogbookFeed;
use crate::store::{RunStatus, Store};

/// Most missed occurrences recorded per chime in one pass (after a long
/// outage the rest are only counted in the log).
const MAX_MISSED_RECORDED: usize = 100;
/// Most occurrences of one chime played late in one pass: a wide catch-up
/// window over a frequent schedule must not turn into a burst of plays,
/// and a speaker queues only a few (the agent's SPEAKER_QUEUE_CAPACITY).
const MAX_LATE_PLAYS: usize = 3;
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
    chimes: Chimes,
    stats: std::sync::Arc<ChimeStats>,
    shutdown: CancellationToken,
) {
    use crate::leader::Role;
    let Chimes {
        store,
        registry,
        events: plays,
        default_tz,
        mut role,
        logbook,
    } = chimes;
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
            logbook.clone(),
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

/// The occurrences in `(cursor, now]` to deal with, oldest first, each
/// with whether it plays late or is recorded missed, and whether missed
/// ones were left unrecorded. The window is walked from its far end so that
/// after a long outage the backlog of missed occurrences can never crowd
/// out the ones still inside the catch-up window: the newest of those play.
fn due_since(
    chime: &Chime,
    cursor: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Vec<(DateTime<Utc>, Overdue)>, bool) {
    // Exactly `catch_up` late still plays: the window's start is just
    // before `now - catch_up`.
    let window = chrono::Duration::from_std(chime.catch_up).unwrap_or(chrono::Duration::MAX)
        + chrono::Duration::nanoseconds(1);
    let window_start = now.checked_sub_signed(window).unwrap_or(cursor).max(cursor);
    let mut missed = chime.schedule.between(
        cursor,
        window_start,
        chime.timezone,
        MAX_MISSED_RECORDED + 1,
    );
    let mut more_missed = missed.len() > MAX_MISSED_RECORDED;
    missed.truncate(MAX_MISSED_RECORDED);
    // Inside the window only the newest MAX_LATE_PLAYS play; older ones are
    // as good as missed. The walk is bounded by the window (at most a day).
    let mut late = std::collections::VecDeque::with_capacity(MAX_LATE_PLAYS + 1);
    let mut at = window_start;
    while let Some(next) = chime.schedule.next_after(at, chime.timezone) {
        if next > now {
            break;
        }
        late.push_back(next);
        if late.len() > MAX_LATE_PLAYS
            && let Some(old) = late.pop_front()
        {
            if missed.len() < MAX_MISSED_RECORDED {
                missed.push(old);
            } else {
                more_missed = true;
            }
        }
        at = next;
    }
    let due = missed
        .into_iter()
        .map(|at| (at, Overdue::Missed))
        .chain(late.into_iter().map(|at| (at, Overdue::PlayLate)))
        .collect();
    (due, more_missed)
}

/// Runs until `shutdown`, sending every claimed occurrence to `plays`
/// and its logbook entry, once stored, to `logbook`.
pub async fn run(
    registry: std::sync::Arc<Registry>,
    store: Store,
    clock: impl Clock,
    plays: mpsc::Sender<ChimeEvent>,
    stats: std::sync::Arc<ChimeStats>,
    logbook: LogbookFeed,
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
            let (due, more_missed) = due_since(chime, cursor, now);
            let mut reached = cursor;
            let mut missed_here = 0usize;
            for (at, overdue) in &due {
                let (status, late) = match overdue {
                    Overdue::PlayLate => {
                        (RunStatus::Played, now - *at > chrono::Duration::seconds(1))
                    }
                    Overdue::Missed => (RunStatus::Missed, false),
                };
                match store.claim_run(&chime.id, *at, status).await {
                    Ok(Some(entry)) if status == RunStatus::Played => {
                        logbook.send(vec![entry]);
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
                    Ok(Some(entry)) => {
                        logbook.send(vec![entry]);
                        stats.missed.fetch_add(1, Relaxed);
                        missed_here += 1;
                        tracing::warn!(chime = %chime.id, scheduled_for = %at, "missed: the hub was not running then and it is past the catch-up window");
                    }
                    Ok(None) => {
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
            if more_missed {
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
            _ = registry.changed() => {}
            _ = clock.sleep(sleep) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chimes::{ChimeSpec, Source};
    use crate::model::chime::tests::{spec, utc};

    fn chime(schedule: &str, catch_up_secs: u64) -> Chime {
        ChimeSpec {
            catch_up_secs: Some(catch_up_secs),
            ..spec(schedule)
        }
        .validate(
            Some(&Id::new("c").unwrap()),
            chrono_tz::UTC,
            Source::Runtime,
        )
        .unwrap()
    }

    fn kinds(due: &[(DateTime<Utc>, Overdue)]) -> (usize, usize) {
        let late = due.iter().filter(|(_, o)| *o == Overdue::PlayLate).count();
        (due.len() - late, late)
    }

    #[test]
    fn the_catch_up_window_includes_its_edge() {
        let daily = chime("07:00", 60);
        let at = utc("2026-01-01T07:00:00Z");
        let cursor = utc("2026-01-01T06:00:00Z");
        let (due, _) = due_since(&daily, cursor, utc("2026-01-01T07:01:00Z"));
        assert_eq!(due, [(at, Overdue::PlayLate)]);
        let (due, _) = due_since(&daily, cursor, utc("2026-01-01T07:01:01Z"));
        assert_eq!(due, [(at, Overdue::Missed)]);
    }

    #[test]
    fn a_long_outage_still_plays_the_occurrence_inside_the_window() {
        // Every minute, down for three hours: 180 occurrences, the last one
        // 30 s ago. The backlog is capped; the recent one still plays.
        let every_minute = chime("0 * * * * *", 60);
        let (due, more) = due_since(
            &every_minute,
            utc("2026-01-01T04:00:00Z"),
            utc("2026-01-01T07:00:30Z"),
        );
        assert!(more, "180 missed, only {MAX_MISSED_RECORDED} recorded");
        assert_eq!(kinds(&due), (MAX_MISSED_RECORDED, 1));
        assert_eq!(
            due.last(),
            Some(&(utc("2026-01-01T07:00:00Z"), Overdue::PlayLate))
        );
        assert!(due.windows(2).all(|w| w[0].0 < w[1].0), "oldest first");
    }

    #[test]
    fn a_wide_window_plays_only_the_newest_and_records_the_rest() {
        // Every minute with an hour's catch-up, down for 30 minutes.
        let every_minute = chime("0 * * * * *", 3600);
        let (due, more) = due_since(
            &every_minute,
            utc("2026-01-01T06:30:00Z"),
            utc("2026-01-01T07:00:30Z"),
        );
        assert!(!more);
        assert_eq!(kinds(&due), (30 - MAX_LATE_PLAYS, MAX_LATE_PLAYS));
        assert_eq!(due[0], (utc("2026-01-01T06:31:00Z"), Overdue::Missed));
        assert_eq!(
            due.last(),
            Some(&(utc("2026-01-01T07:00:00Z"), Overdue::PlayLate))
        );
    }

    #[test]
    fn an_occurrence_at_the_cursor_is_not_due_again() {
        let daily = chime("07:00", 60);
        let (due, more) = due_since(
            &daily,
            utc("2026-01-01T07:00:00Z"),
            utc("2026-01-01T08:00:00Z"),
        );
        assert!(due.is_empty() && !more);
    }
}
