//! Persistence through sqlx: SQLite (WAL, the embedded default) or Postgres, chosen by URL.
//!
//! Both backends run the same SQL through sqlx's `Any` driver; timestamps are
//! BIGINT milliseconds because `Any` has no chrono types. Each backend has its
//! own migration set under `migrations/`, embedded at compile time.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use hearth_protocol::{Availability, Id, OnOff, OutputKind, OutputRef, PressAction};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};

mod automations;
mod batch;
mod chimes;
mod logbook;
mod readings;

pub use automations::Catalog;
pub use chimes::RunStatus;
pub use logbook::{MAX_PAGE as MAX_LOGBOOK_PAGE, StateChanges};

pub use crate::model::effects::Write;
use crate::model::house::{ButtonRecord, House, NodeRecord, OutputRecord};
use crate::model::logbook::LogRow;

/// How long a connection attempt (or a pool checkout) may take.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("cannot create the database directory {dir}: {source}")]
    CreateDir { dir: String, source: std::io::Error },
    #[error(
        "the database directory {dir} is not writable: {source} (SQLite keeps its -wal and \
         -shm files beside the database, so the directory must be writable)"
    )]
    DirNotWritable { dir: String, source: std::io::Error },
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("the database directory {dir} is not writable (read-only filesystem?)")]
    ReadOnly { dir: String },
    #[error("row in {table} holds an invalid value: {why}")]
    Corrupt { table: &'static str, why: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The `[database]` section of the hub's settings.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSection {
    /// `sqlite://path/to/file.db` or `postgres://user:pass@host/db`.
    pub url: String,
    /// Days of climate history, chime runs, automation traces and logbook
    /// entries kept; older ones are pruned hourly.
    pub history_days: u32,
    /// Most pooled connections.
    pub max_connections: u32,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        Self {
            url: "sqlite://data/hearth.db".to_owned(),
            history_days: 30,
            max_connections: 8,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The SQLite file's directory, checked after a failed commit.
    sqlite_dir: Option<std::path::PathBuf>,
}

pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// Returns the URL with `mode=rwc` so SQLite creates a missing file, and
/// creates the file's directory.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    if let Some(dir) = sqlite_dir(url) {
        let dir = dir.as_path();
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            dir: dir.display().to_string(),
            source,
        })?;
        if !query.contains("mode=ro") {
            check_writable(dir)?;
        }
    }
    Ok(if query.contains("mode=") {
        url.to_owned()
    } else if query.is_empty() {
        format!("{url}?mode=rwc")
    } else {
        format!("{url}&mode=rwc")
    })
}

/// The directory of a SQLite URL's file; `None` for in-memory databases
/// and files in the working directory given without one.
fn sqlite_dir(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    if path == ":memory:" || path.is_empty() {
        return None;
    }
    Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

/// Fails unless a file can be created in `dir`. Without this a read-only
/// directory (a volume mounted read-only, a card the kernel remounted)
/// surfaces only after the pool's acquire timeout as "pool timed out",
/// because SQLite cannot create the WAL files beside an existing database.
fn check_writable(dir: &Path) -> Result<(), StoreError> {
    let probe = dir.join(format!(".hearth-write-check-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(source) => Err(StoreError::DirNotWritable {
            dir: dir.display().to_string(),
            source,
        }),
    }
}

/// The URL with any password replaced, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

impl Store {
    /// Connects, applies migrations and returns the store.
    pub async fn connect(db: &DatabaseSection) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if db.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(&db.url)?,
            Backend::Postgres => db.url.clone(),
        };
        let connect_err = |source| StoreError::Connect {
            url: redact_url(&db.url),
            source,
        };
        let options: AnyConnectOptions = url.parse().map_err(connect_err)?;
        let pool = AnyPoolOptions::new()
            .max_connections(db.max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets HTTP reads run while the writer commits.
                        // FULL: a commit is fsynced before it returns, because
                        // the broker forgets a press once we acknowledge it.
                        // NORMAL survives a process crash but not a power cut,
                        // and on a card gone read-only the kernel took WAL
                        // writes into its cache and only fsync said no: a
                        // press was acknowledged and never stored.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(connect_err)?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("../migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("../migrations/postgres"),
        };
        migrator.run(&pool).await?;
        let sqlite_dir = match backend {
            Backend::Sqlite => sqlite_dir(&db.url),
            Backend::Postgres => None,
        };
        Ok(Self {
            pool,
            backend,
            sqlite_dir,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Applies `writes` in one transaction: all or nothing. Later writes to
    /// the same row win. Returns the logbook entries it committed, with
    /// their ids, oldest first.
    pub async fn apply(&self, writes: &[Write]) -> Result<Vec<LogRow>, StoreError> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let logged = batch::apply(&mut tx, writes).await?;
        tx.commit().await?;
        Ok(logged)
    }

    /// After failed writes, whether a commit that now succeeds can be
    /// believed: on a card the kernel turned read-only after an error
    /// (ext4 `errors=remount-ro`, shown as `emergency_ro`, which the mount
    /// flags do not report), a retried SQLite commit was seen to succeed
    /// while nothing reached the card, and that press was acknowledged and
    /// lost (hub/tests/read_only.rs). Creating a file beside the database
    /// fails there.
    pub fn check_still_writable(&self) -> Result<(), StoreError> {
        match &self.sqlite_dir {
            Some(dir) => check_writable(dir).map_err(|_| StoreError::ReadOnly {
                dir: dir.display().to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Reads everything the hub keeps in memory.
    pub async fn load(&self) -> Result<House, StoreError> {
        let mut house = House::default();
        let corrupt = |table, why: String| StoreError::Corrupt { table, why };
        for row in sqlx::query(
            "SELECT id, state, changed_at, last_action, last_press_at, press_count FROM buttons",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let id: String = row.try_get("id")?;
            let id = Id::new(&id).map_err(|e| corrupt("buttons", e.to_string()))?;
            let state: String = row.try_get("state")?;
            let last_action: Option<String> = row.try_get("last_action")?;
            let record = ButtonRecord {
                id: id.clone(),
                state: OnOff::parse(state.as_bytes())
                    .map_err(|e| corrupt("buttons", e.to_string()))?,
                changed_at: from_millis(row.try_get("changed_at")?),
                last_action: last_action
                    .map(|a| PressAction::parse(a.as_bytes()))
                    .transpose()
                    .map_err(|e| corrupt("buttons", e.to_string()))?,
                last_press_at: row
                    .try_get::<Option<i64>, _>("last_press_at")?
                    .map(from_millis),
                press_count: row.try_get("press_count")?,
            };
            house.buttons.insert(id, record);
        }
        for row in sqlx::query("SELECT node, kind, name, state, changed_at FROM outputs")
            .fetch_all(&self.pool)
            .await?
        {
            let text = |col: &str| row.try_get::<String, _>(col);
            let output = OutputRef {
                node: Id::new(&text("node")?).map_err(|e| corrupt("outputs", e.to_string()))?,
                kind: text("kind")?
                    .parse::<OutputKind>()
                    .map_err(|e| corrupt("outputs", e.to_string()))?,
                name: Id::new(&text("name")?).map_err(|e| corrupt("outputs", e.to_string()))?,
            };
            let state = OnOff::parse(text("state")?.as_bytes())
                .map_err(|e| corrupt("outputs", e.to_string()))?;
            let record = OutputRecord {
                output: output.clone(),
                state,
                changed_at: from_millis(row.try_get("changed_at")?),
            };
            house.outputs.insert(output, record);
        }
        for row in sqlx::query("SELECT id, availability, last_seen FROM nodes")
            .fetch_all(&self.pool)
            .await?
        {
            let id: String = row.try_get("id")?;
            let id = Id::new(&id).map_err(|e| corrupt("nodes", e.to_string()))?;
            let availability: Option<String> = row.try_get("availability")?;
            let record = NodeRecord {
                availability: availability
                    .map(|a| Availability::parse(a.as_bytes()))
                    .transpose()
                    .map_err(|e| corrupt("nodes", e.to_string()))?,
                last_seen: row.try_get::<Option<i64>, _>("last_seen")?.map(from_millis),
                ..NodeRecord::new(id.clone())
            };
            house.nodes.insert(id, record);
        }
        self.load_last_readings(&mut house).await?;
        Ok(house)
    }

    /// Message ids seen since `since`, for redelivery detection after a restart.
    pub async fn message_ids_since(&self, since: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM processed_messages WHERE at >= $1")
            .bind(millis(since))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("id").map_err(StoreError::from))
            .collect()
    }

    /// Deletes readings and message ids older than their retention.
    pub async fn prune(
        &self,
        readings_before: DateTime<Utc>,
        ids_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let readings = self.prune_readings(readings_before).await?;
        sqlx::query("DELETE FROM processed_messages WHERE at < $1")
            .bind(millis(ids_before))
            .execute(&self.pool)
            .await?;
        Ok(readings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/sub/dir/h.db", dir.path().display());
        assert_eq!(prepare_sqlite_url(&url).unwrap(), format!("{url}?mode=rwc"));
        assert!(dir.path().join("sub/dir").is_dir());
        assert_eq!(
            prepare_sqlite_url("sqlite::memory:").unwrap(),
            "sqlite::memory:?mode=rwc"
        );
        assert_eq!(
            prepare_sqlite_url("sqlite://x.db?mode=ro").unwrap(),
            "sqlite://x.db?mode=ro"
        );
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://hearth:hunter2@db:5432/hearth"),
            "postgres://hearth:***@db:5432/hearth"
        );
        assert_eq!(
            redact_url("sqlite://data/hearth.db"),
            "sqlite://data/hearth.db"
        );
    }
}
