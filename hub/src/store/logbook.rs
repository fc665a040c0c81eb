//! The logbook in the database: a page of entries, newest first, and the prune.
//!
//! Rows are inserted by the batch writer (`batch.rs`) with the rest of a
//! message's rows; this file only reads and prunes them
//! (migrations/*/0006_logbook.sql has the table and its indexes).

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Store, StoreError, from_millis, millis};
use crate::model::logbook::{Cursor, LogEntry, LogKind, LogPage, LogQuery, LogRow};

/// The most entries one page holds, whatever the caller asks: a page is
/// read into memory and sent as one JSON document.
pub const MAX_PAGE: u32 = 1000;

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
            "SELECT id, at, entity, kind, detail, source FROM logbook {filter} \
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
        let mut rows = Vec::with_capacity(stored.len());
        for r in &stored {
            let kind: String = r.try_get("kind")?;
            let kind = LogKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
                table: "logbook",
                why: format!("unknown kind {kind:?}"),
            })?;
            rows.push(LogRow {
                id: r.try_get("id")?,
                entry: LogEntry {
                    at: from_millis(r.try_get("at")?),
                    entity: r.try_get("entity")?,
                    kind,
                    detail: r.try_get("detail")?,
                    source: r.try_get("source")?,
                },
            });
        }
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

    /// Deletes entries older than `before`; returns how many went.
    pub async fn prune_logbook(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM logbook WHERE at < $1")
            .bind(millis(before))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
