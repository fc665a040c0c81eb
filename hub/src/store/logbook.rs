//! The logbook in the database: a page of entries, newest first, and the prune.
//!
//! Rows are inserted by the batch writer (`batch.rs`) with the rest of a
//! message's rows; this file only reads and prunes them
//! (migrations/*/0006_logbook.sql has the table and its indexes).

use chrono::{DateTime, Utc};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{Store, StoreError, from_millis, millis};
use crate::model::logbook::{Cursor, LogEntry, LogKind, LogPage, LogQuery, LogRow};

/// The most entries one page holds, whatever the caller asks: a page is
/// read into memory and sent as one JSON document.
pub const MAX_PAGE: u32 = 1000;

/// What a timeline is drawn from (see [`Store::state_changes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChanges {
    /// The state in force at `since`, if one was logged before it.
    pub before: Option<String>,
    /// (time, state), oldest first.
    pub changes: Vec<(DateTime<Utc>, String)>,
    /// When more changes followed than were read: the time of the first
    /// one left out, where what was read ends.
    pub cut_at: Option<DateTime<Utc>>,
}

/// The columns [`log_row`] reads.
pub(super) const COLUMNS: &str = "id, at, entity, kind, detail, source";

/// One stored entry, from a row holding [`COLUMNS`].
pub(super) fn log_row(r: &AnyRow) -> Result<LogRow, StoreError> {
    let kind: String = r.try_get("kind")?;
    let kind = LogKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
        table: "logbook",
        why: format!("unknown kind {kind:?}"),
    })?;
    Ok(LogRow {
        id: r.try_get("id")?,
        entry: LogEntry {
            at: from_millis(r.try_get("at")?),
            entity: r.try_get("entity")?,
            kind,
            detail: r.try_get("detail")?,
            source: r.try_get("source")?,
        },
    })
}

impl Store {
    /// One page of the logbook, newest first (by time, then id).
    pub async fn logbook(&self, query: &LogQuery) -> Result<LogPage, StoreError> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let mut conditions: Vec<String> = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if query.entity.is_some() {
            conditions.push(format!("entity = {}", next()));
        }
        if query.since.is_some() {
            conditions.push(format!("at >= {}", next()));
        }
        if query.until.is_some() {
            conditions.push(format!("at < {}", next()));
        }
        if query.before.is_some() {
            // `at <= c` bounds the index range; the rest breaks ties by id.
            let (at, at_again, id) = (next(), next(), next());
            conditions.push(format!("at <= {at} AND (at < {at_again} OR id < {id})"));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        // One more than the page, to know whether an older page exists.
        let sql = format!(
            "SELECT {COLUMNS} FROM logbook {filter} \
             ORDER BY at DESC, id DESC LIMIT {}",
            limit + 1
        );
        let mut q = sqlx::query(&sql);
        if let Some(entity) = &query.entity {
            q = q.bind(entity.as_str());
        }
        if let Some(since) = query.since {
            q = q.bind(millis(since));
        }
        if let Some(until) = query.until {
            q = q.bind(millis(until));
        }
        if let Some(before) = query.before {
            q = q.bind(before.at_ms).bind(before.at_ms).bind(before.id);
        }
        let stored = q.fetch_all(&self.pool).await?;
        let mut rows = stored.iter().map(log_row).collect::<Result<Vec<_>, _>>()?;
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|last| Cursor {
                at_ms: millis(last.entry.at),
                id: last.id,
            })
        } else {
            None
        };
        Ok(LogPage { rows, next })
    }

    /// An entity's `state` entries for a timeline: the last one before
    /// `since` (the state in force when the window opens) and at most
    /// `limit` of those in `[since, until)`, oldest first, with whether
    /// more followed. Both read the `(entity, at)` index.
    pub async fn state_changes(
        &self,
        entity: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<StateChanges, StoreError> {
        let before = sqlx::query(
            "SELECT detail FROM logbook WHERE entity = $1 AND kind = 'state' AND at < $2 \
             ORDER BY at DESC, id DESC LIMIT 1",
        )
        .bind(entity)
        .bind(millis(since))
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.try_get::<String, _>("detail"))
        .transpose()?;
        let sql = format!(
            "SELECT at, detail FROM logbook WHERE entity = $1 AND kind = 'state' \
             AND at >= $2 AND at < $3 ORDER BY at, id LIMIT {}",
            u64::from(limit) + 1
        );
        let mut changes = Vec::new();
        for r in sqlx::query(&sql)
            .bind(entity)
            .bind(millis(since))
            .bind(millis(until))
            .fetch_all(&self.pool)
            .await?
        {
            changes.push((from_millis(r.try_get("at")?), r.try_get("detail")?));
        }
        let more = changes.len() > limit as usize;
        let cut_at = more.then(|| changes[limit as usize].0);
        changes.truncate(limit as usize);
        Ok(StateChanges {
            before,
            changes,
            cut_at,
        })
    }

    /// Deletes entries older than `before`; returns how many went.
    pub async fn prune_logbook(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM logbook WHERE at < $1")
            .bind(millis(before))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
