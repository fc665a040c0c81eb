//! Chime storage: specs, config sync, and the run rows that make every occurrence play once.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use hearth_protocol::Id;
use sqlx::Row;

use super::{Store, StoreError, from_millis, millis};
use crate::model::chime::{Chime, ChimeSpec, Source};
use crate::model::logbook::LogRow;

/// What happened to one occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Played,
    Missed,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Played => "played",
            Self::Missed => "missed",
        }
    }
}

fn spec_json(chime: &Chime) -> Result<String, StoreError> {
    serde_json::to_string(&chime.spec()).map_err(|e| StoreError::Corrupt {
        table: "chimes",
        why: e.to_string(),
    })
}

/// Deletes chime `id` with its run rows inside `tx`; whether it existed.
async fn delete_chime_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM chimes WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM chime_runs WHERE chime_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

impl Store {
    /// Every stored chime. A row that no longer validates (say, a time
    /// zone removed from the tz database) is skipped with a warning rather
    /// than stopping the hub.
    pub async fn load_chimes(&self, default_tz: Tz) -> Result<Vec<Chime>, StoreError> {
        let rows = sqlx::query("SELECT id, spec, source FROM chimes ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let mut chimes = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id")?;
            let spec: String = row.try_get("spec")?;
            let source = match row.try_get::<String, _>("source")?.as_str() {
                "config" => Source::Config,
                _ => Source::Runtime,
            };
            let parsed = Id::new(&id).map_err(|e| e.to_string()).and_then(|id| {
                serde_json::from_str::<ChimeSpec>(&spec)
                    .map_err(|e| e.to_string())
                    .and_then(|s| {
                        s.validate(Some(&id), default_tz, source)
                            .map_err(|e| e.to_string())
                    })
            });
            match parsed {
                Ok(chime) => chimes.push(chime),
                Err(error) => {
                    tracing::warn!(chime = %id, %error, "stored chime no longer valid; skipped")
                }
            }
        }
        Ok(chimes)
    }

    /// Creates or replaces a chime. A chime keeps the source it was made
    /// with: a config chime changed at run time is still the file's, and
    /// goes when the file drops it.
    pub async fn upsert_chime(&self, chime: &Chime) -> Result<(), StoreError> {
        let spec = spec_json(chime)?;
        sqlx::query(
            "INSERT INTO chimes (id, spec, source, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at \
             WHERE chimes.spec <> excluded.spec",
        )
        .bind(chime.id.as_str())
        .bind(spec)
        .bind(chime.source.as_str())
        .bind(millis(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes a chime and its run rows; false if there was none.
    pub async fn delete_chime(&self, id: &Id) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let existed = delete_chime_rows(&mut tx, id.as_str()).await?;
        tx.commit().await?;
        Ok(existed)
    }

    /// Deletes run rows from before `before`, except each chime's newest
    /// (where its scheduler resumes after a restart), and the runs of
    /// chimes that no longer exist. An every-second chime records 86,400
    /// runs a day; nothing reads old ones. Returns the rows deleted.
    pub async fn prune_chime_runs(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let old = sqlx::query(
            "DELETE FROM chime_runs WHERE scheduled_for < $1 AND scheduled_for < ( \
                 SELECT MAX(newest.scheduled_for) FROM chime_runs AS newest \
                 WHERE newest.chime_id = chime_runs.chime_id)",
        )
        .bind(millis(before))
        .execute(&self.pool)
        .await?
        .rows_affected();
        let orphans =
            sqlx::query("DELETE FROM chime_runs WHERE chime_id NOT IN (SELECT id FROM chimes)")
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(old + orphans)
    }

    /// Makes the stored config chimes exactly `chimes`: adds new ones,
    /// re-applies those whose declaration in the file changed since the last
    /// sync (a run-time edit of an unchanged one is kept), and removes config
    /// chimes the file no longer lists. Runtime chimes stay, unless the file
    /// now declares one with the same id. Returns the ids removed.
    pub async fn sync_config_chimes(&self, chimes: &[Chime]) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let stored: Vec<String> = sqlx::query("SELECT id FROM chimes WHERE source = 'config'")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<_, _>>()?;
        let mut removed = Vec::new();
        for id in stored {
            if !chimes.iter().any(|c| c.id.as_str() == id) {
                delete_chime_rows(&mut tx, &id).await?;
                removed.push(id);
            }
        }
        for chime in chimes {
            let spec = spec_json(chime)?;
            sqlx::query(
                "INSERT INTO chimes (id, spec, source, declared, updated_at) \
                 VALUES ($1, $2, 'config', $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, source = excluded.source, \
                 declared = excluded.declared, updated_at = excluded.updated_at \
                 WHERE chimes.declared IS NULL OR chimes.declared <> excluded.declared",
            )
            .bind(chime.id.as_str())
            .bind(spec)
            .bind(millis(Utc::now()))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Claims one occurrence: its logbook entry for exactly one caller
    /// per (chime, instant), across restarts and across hubs sharing the
    /// database; `None` for everyone else.
    pub async fn claim_run(
        &self,
        chime: &Id,
        scheduled_for: DateTime<Utc>,
        status: RunStatus,
    ) -> Result<Option<LogRow>, StoreError> {
        let now = Utc::now();
        // The claim and its logbook entry commit together: the play is
        // logged exactly once, by the hub that claimed it. Claims are
        // made here rather than by the batched writer because the
        // scheduler must know whether it won before it plays.
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO chime_runs (chime_id, scheduled_for, status, recorded_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (chime_id, scheduled_for) DO NOTHING",
        )
        .bind(chime.as_str())
        .bind(millis(scheduled_for))
        .bind(status.as_str())
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        let mut logged = None;
        if done.rows_affected() == 1 {
            let entry = crate::decide::logbook::play(chime, now, status.as_str(), "schedule");
            let row = sqlx::query(&format!(
                "INSERT INTO logbook (at, entity, kind, detail, source) VALUES ($1, $2, $3, $4, $5) \
                 RETURNING {}",
                super::logbook::COLUMNS
            ))
            .bind(millis(entry.at))
            .bind(entry.entity.as_str())
            .bind(entry.kind.as_str())
            .bind(entry.detail.as_str())
            .bind(entry.source.as_str())
            .fetch_one(&mut *tx)
            .await?;
            logged = Some(super::logbook::log_row(&row)?);
        }
        tx.commit().await?;
        Ok(logged)
    }

    /// Where the scheduler picks up after a start: the latest occurrence
    /// recorded for `chime` (played or missed), or when the chime was last
    /// changed if that is later. Occurrences after it were due while no hub
    /// was running: they play late or are recorded missed.
    pub async fn resume_point(&self, chime: &Id) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query(
            "SELECT MAX(t) AS resume FROM ( \
                 SELECT MAX(scheduled_for) AS t FROM chime_runs WHERE chime_id = $1 \
                 UNION ALL SELECT updated_at AS t FROM chimes WHERE id = $1 \
             ) AS points",
        )
        .bind(chime.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("resume")?.map(from_millis))
    }

    /// Recorded runs of `chime` as (instant, status), oldest first.
    pub async fn runs(&self, chime: &Id) -> Result<Vec<(DateTime<Utc>, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT scheduled_for, status FROM chime_runs WHERE chime_id = $1 ORDER BY scheduled_for",
        )
        .bind(chime.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    from_millis(r.try_get("scheduled_for")?),
                    r.try_get("status")?,
                ))
            })
            .collect()
    }
}
