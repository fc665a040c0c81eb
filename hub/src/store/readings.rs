//! Readings of any quantity in the database: the history (`readings`) and each node's last reading per quantity (`last_readings`).
//!
//! Rows name their quantity (`temperature`, `humidity`), so a new quantity
//! needs no new column, migration or query (migrations/*/0004_readings.sql).
//! The batch writer (`batch.rs`) inserts them with every other row.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hearth_protocol::{Id, Quantity, Reading};
use sqlx::Row as _;

use super::{Store, StoreError, from_millis, millis};
use crate::model::house::{House, NodeRecord};
use crate::model::readings::{Row, Series, rows};

impl Store {
    /// History of `node` since `since`, oldest first: one row per instant,
    /// with every quantity measured then. One statement, so one snapshot:
    /// a query per quantity could see a climate message's temperature
    /// before its commit and its humidity after.
    pub async fn history(&self, node: &Id, since: DateTime<Utc>) -> Result<Vec<Row>, StoreError> {
        // `quantity IN (...)` lets both databases walk the primary key
        // (node, quantity, at) as one range per quantity.
        let names = (3..3 + Quantity::ALL.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT quantity, at, value FROM readings \
             WHERE node = $1 AND at >= $2 AND quantity IN ({names}) ORDER BY at"
        );
        let mut query = sqlx::query(&sql).bind(node.as_str()).bind(millis(since));
        for quantity in Quantity::ALL {
            query = query.bind(quantity.name());
        }
        let stored = query.fetch_all(&self.pool).await?;
        let mut series: BTreeMap<Quantity, Series> = BTreeMap::new();
        for r in &stored {
            let quantity: String = r.try_get("quantity")?;
            let quantity = quantity
                .parse::<Quantity>()
                .map_err(|e| StoreError::Corrupt {
                    table: "readings",
                    why: e.to_string(),
                })?;
            series
                .entry(quantity)
                .or_default()
                .push((from_millis(r.try_get("at")?), r.try_get("value")?));
        }
        Ok(rows(series))
    }

    /// Puts each node's last reading per quantity into `house`.
    pub(super) async fn load_last_readings(&self, house: &mut House) -> Result<(), StoreError> {
        let corrupt = |why: String| StoreError::Corrupt {
            table: "last_readings",
            why,
        };
        for row in sqlx::query("SELECT node, quantity, value, at FROM last_readings")
            .fetch_all(&self.pool)
            .await?
        {
            let node: String = row.try_get("node")?;
            let node = Id::new(&node).map_err(|e| corrupt(e.to_string()))?;
            let quantity: String = row.try_get("quantity")?;
            let reading = Reading {
                quantity: quantity
                    .parse::<Quantity>()
                    .map_err(|e| corrupt(e.to_string()))?,
                value: row.try_get("value")?,
                at: from_millis(row.try_get("at")?),
            };
            house
                .nodes
                .entry(node.clone())
                .or_insert_with(|| NodeRecord::new(node))
                .readings
                .record(reading);
        }
        Ok(())
    }

    /// Deletes history older than `before`; the number of readings deleted.
    pub(super) async fn prune_readings(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM readings WHERE at < $1")
            .bind(millis(before))
            .execute(&self.pool)
            .await?
            .rows_affected();
        // The pre-0004 table is left in place for a replica still running
        // the old hub; pruning it too empties it within history_days.
        sqlx::query("DELETE FROM sensor_readings WHERE at < $1")
            .bind(millis(before))
            .execute(&self.pool)
            .await?;
        Ok(deleted)
    }
}
