//! Leader election between hub replicas sharing one Postgres: exactly one runs rules, the clock
//! and chimes; the others serve the HTTP API and stand by.
//!
//! The leader holds a session-level Postgres advisory lock on a connection
//! of its own. If the leader process dies, its connection closes and
//! Postgres frees the lock at once. If its machine or network dies,
//! Postgres notices through the keepalive and user timeouts set on that
//! session ([`SERVER_NOTICES_WITHIN`]), and a standby, trying the lock every
//! [`POLL_INTERVAL`], takes over. The leader meanwhile checks its own lock
//! connection every [`POLL_INTERVAL`] and gives up leading when a check gets
//! no answer within [`CHECK_TIMEOUT`]: it steps down before Postgres can
//! hand the lock to anyone else, so two hubs never act at once. With SQLite
//! there is only ever one hub: it leads.
//!
//! A standby's picture of the house comes from polling the database, so on
//! winning the lock this task reads the stored house and hands it to the
//! core (the `takeover` channel) before it announces the new role: the core
//! never waits for the database itself.

use std::future::Future;
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::model::house::House;
use crate::store::Store;

/// The advisory lock key: "HEARTH" in ASCII.
pub const LOCK_KEY: i64 = 0x4845_4152_5448;
/// How often a standby tries the lock and a leader checks its connection.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait for Postgres to answer a lock attempt or a check. A
/// leader's last good check is at most POLL_INTERVAL + CHECK_TIMEOUT old
/// when it steps down, well inside SERVER_NOTICES_WITHIN.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for a new lock connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the stored house on taking over; past it the new leader
/// acts on the picture it polled as a standby (at most one poll old).
const TAKEOVER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Houses read on takeover, waiting for the core. The core takes each one
/// when it sees the role that follows it, so one is the most that waits.
pub const TAKEOVER_QUEUE: usize = 1;
/// How long Postgres takes at most to notice the lock connection's far end
/// is gone (keepalive: 3 s idle, then 3 probes 1 s apart; unacknowledged
/// data: tcp_user_timeout) and free the lock.
pub const SERVER_NOTICES_WITHIN: Duration = Duration::from_secs(6);
/// Refusals in a row before another hub is taken to lead. A hub restarted
/// after a crash can find its own previous connection still holding the
/// lock for a moment; declaring itself standby at once would make it let go
/// of messages its persistent session kept for it.
const REFUSALS_BEFORE_STANDBY: u32 = 3;

pub use crate::model::role::Role;

/// What a hub reads from the database when it starts to lead: the house,
/// and the automations, scenes and waiting runs (another hub may have
/// changed them, or left runs waiting).
#[derive(Debug)]
pub struct Takeover {
    pub house: House,
    pub catalog: crate::store::Catalog,
}

/// Keeps `role` up to date until `shutdown`. For SQLite it leads at once
/// (the house `start` read is the whole truth). On becoming leader with
/// Postgres it first hands the stored house to `takeover`.
pub async fn run(
    database_url: String,
    store: Store,
    takeover: mpsc::Sender<Takeover>,
    cx: crate::decide::automations::Context,
    role: watch::Sender<Role>,
    shutdown: CancellationToken,
) {
    if !database_url.starts_with("postgres") {
        let _ = role.send(Role::Leader);
        shutdown.cancelled().await;
        return;
    }
    let mut lock_conn: Option<PgConnection> = None;
    let mut decided = false;
    let mut refusals = 0u32;
    loop {
        let leading = *role.borrow() == Role::Leader;
        let next = match (&mut lock_conn, leading) {
            (None, _) => match timed(CONNECT_TIMEOUT, connect(&database_url)).await {
                Ok(conn) => {
                    lock_conn = Some(conn);
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "leader election: cannot reach Postgres");
                    Role::Undecided
                }
            },
            (Some(conn), false) => match timed(CHECK_TIMEOUT, try_lock(conn)).await {
                Ok(true) => {
                    refusals = 0;
                    Role::Leader
                }
                Ok(false) => {
                    refusals = refusals.saturating_add(1);
                    if refusals >= REFUSALS_BEFORE_STANDBY {
                        Role::Standby
                    } else {
                        Role::Undecided
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "leader election: lock attempt failed");
                    lock_conn = None;
                    Role::Undecided
                }
            },
            (Some(conn), true) => match timed(CHECK_TIMEOUT, conn.ping()).await {
                Ok(()) => Role::Leader,
                Err(error) => {
                    // The lock went with the connection: someone else may lead now.
                    tracing::warn!(%error, "leader election: lost the lock connection; stepping down");
                    lock_conn = None;
                    Role::Undecided
                }
            },
        };
        if next == Role::Leader && !leading {
            // Hold messages (the core holds them while undecided) rather
            // than let them go as a standby while the house is read.
            role.send_if_modified(|now| std::mem::replace(now, Role::Undecided) != Role::Undecided);
            let read = async {
                Ok::<_, crate::store::StoreError>((
                    store.load().await?,
                    store.load_catalog(cx).await?,
                ))
            };
            match tokio::time::timeout(TAKEOVER_READ_TIMEOUT, read).await {
                Ok(Ok((house, catalog))) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = takeover.send(Takeover { house, catalog }) => {}
                    }
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "taking over: cannot read the stored house; acting on the last polled picture");
                }
                Err(_) => {
                    tracing::warn!(timeout = ?TAKEOVER_READ_TIMEOUT, "taking over: the stored house took too long to read; acting on the last polled picture");
                }
            }
        }
        if next != *role.borrow() || !decided {
            tracing::info!(role = ?next, "hub role");
            // The first decision is sent even when it is "standby" again:
            // startup waits for it.
            let _ = role.send(next);
            decided = true;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
    if let Some(conn) = lock_conn {
        // Hand over at once instead of waiting for the connection to time out.
        let _ = conn.close().await;
    }
}

/// `work`, or a timeout error once `limit` has passed: a half-open
/// connection (a pulled cable) would otherwise hang for many minutes of
/// TCP retransmissions.
async fn timed<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer from Postgres within {limit:?}"),
        )))
    })
}

async fn connect(url: &str) -> Result<PgConnection, sqlx::Error> {
    let mut conn = PgConnection::connect(url).await?;
    // Notice a dead leader's machine within SERVER_NOTICES_WITHIN rather
    // than the kernel's hours: keepalives while the line is idle, the user
    // timeout while an answer is still unacknowledged.
    for setting in [
        "SET tcp_keepalives_idle = 3",
        "SET tcp_keepalives_interval = 1",
        "SET tcp_keepalives_count = 3",
        "SET tcp_user_timeout = 6000",
    ] {
        sqlx::query(setting).execute(&mut conn).await?;
    }
    Ok(conn)
}

async fn try_lock(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(conn)
        .await
}
