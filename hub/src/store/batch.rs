//! Writing one batch of changes in one transaction: a few multi-row statements per table, however large the batch.
//!
//! A statement per row costs a round trip each (a hand-off to sqlx's SQLite
//! worker thread, or a network round trip to Postgres), and at thousands of
//! presses a second those round trips, not the SQL, were the hub's ceiling.
//! Rows are grouped per table, the last write to a row wins, and each group
//! goes out in statements of [`ROWS_PER_STATEMENT`] rows, sorted by key so
//! that two hubs writing the same rows always lock them in the same order.

use std::collections::{BTreeMap, BTreeSet};

use hearth_protocol::{OutputRef, Quantity};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection};

use super::{StoreError, Write, millis};
use crate::model::effects::CatalogWrite;
use crate::model::house::{ButtonRecord, NodeRecord, OutputRecord};
use crate::model::logbook::{LogEntry, LogRow};

/// Rows per statement: bound parameters stay far below SQLite's limit
/// (32,766) and Postgres's (65,535) with the widest table (6 columns).
pub const ROWS_PER_STATEMENT: usize = 500;

/// The last write of one output row in a batch.
#[derive(Debug)]
enum OutputRow<'a> {
    Upsert(&'a OutputRecord),
    Forget(&'a OutputRef),
}

/// The rows of one batch, one map per table.
#[derive(Debug, Default)]
struct Rows<'a> {
    /// `None`: the button is forgotten (deleted).
    buttons: BTreeMap<&'a str, Option<&'a ButtonRecord>>,
    outputs: BTreeMap<String, OutputRow<'a>>,
    forgotten_nodes: BTreeSet<&'a str>,
    nodes: BTreeMap<&'a str, &'a NodeRecord>,
    /// (node, quantity, at) -> value.
    readings: BTreeMap<(&'a str, Quantity, i64), f64>,
    message_ids: BTreeMap<&'a str, i64>,
    /// In order: an automation saved then deleted in one batch ends deleted.
    catalog: Vec<&'a CatalogWrite>,
    /// In order, so entries of one millisecond keep their order in `id`.
    logbook: Vec<&'a LogEntry>,
}

impl<'a> Rows<'a> {
    fn of(writes: &'a [Write]) -> Self {
        let mut rows = Self::default();
        for write in writes {
            match write {
                Write::Button(b) => {
                    rows.buttons.insert(b.id.as_str(), Some(b));
                }
                Write::ForgetButton(id) => {
                    rows.buttons.insert(id.as_str(), None);
                }
                Write::Output(o) => {
                    rows.outputs
                        .insert(o.output.to_string(), OutputRow::Upsert(o));
                }
                Write::ForgetOutput(output) => {
                    rows.outputs
                        .insert(output.to_string(), OutputRow::Forget(output));
                }
                Write::Node(n) => {
                    rows.nodes.insert(n.id.as_str(), n);
                }
                Write::ForgetNode(id) => {
                    // Whatever this batch wrote for the node before goes too.
                    let id = id.as_str();
                    let prefix = format!("{id}/");
                    rows.nodes.remove(id);
                    rows.outputs.retain(|key, _| !key.starts_with(&prefix));
                    rows.readings.retain(|(node, _, _), _| *node != id);
                    rows.forgotten_nodes.insert(id);
                }
                Write::Reading { node, reading } => {
                    // The first reading at an instant is kept, as ON CONFLICT DO NOTHING would.
                    rows.readings
                        .entry((node.as_str(), reading.quantity, millis(reading.at)))
                        .or_insert(reading.value);
                }
                Write::MessageId { id, at } => {
                    rows.message_ids.insert(id.as_str(), millis(*at));
                }
                Write::Catalog(write) => rows.catalog.push(write),
                Write::Logbook(entry) => rows.logbook.push(entry),
            }
        }
        rows
    }
}

/// `($1, $2), ($3, $4)` for 2 rows of 2 columns.
fn values(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * columns + column + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// Runs `head VALUES (...), (...) tail` for `items`, a statement per chunk.
async fn insert_many<T>(
    conn: &mut AnyConnection,
    head: &str,
    columns: usize,
    tail: &str,
    items: &[T],
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
) -> Result<(), StoreError> {
    for chunk in items.chunks(ROWS_PER_STATEMENT) {
        let sql = format!("{head} VALUES {} {tail}", values(chunk.len(), columns));
        let mut query = sqlx::query(&sql);
        for item in chunk {
            query = bind(query, item);
        }
        // The SQL text is built per chunk size, so it cannot be cached
        // across calls as a prepared statement: say so to sqlx.
        query.persistent(false).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Applies every write of a batch on `conn` (inside the caller's
/// transaction); returns the logbook rows it inserted, oldest first.
pub async fn apply(conn: &mut AnyConnection, writes: &[Write]) -> Result<Vec<LogRow>, StoreError> {
    let rows = Rows::of(writes);

    let forgotten: Vec<&str> = rows
        .buttons
        .iter()
        .filter(|(_, b)| b.is_none())
        .map(|(id, _)| *id)
        .collect();
    for chunk in forgotten.chunks(ROWS_PER_STATEMENT) {
        let list = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("DELETE FROM buttons WHERE id IN ({list})");
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        query.persistent(false).execute(&mut *conn).await?;
    }

    let buttons: Vec<&ButtonRecord> = rows.buttons.values().flatten().copied().collect();
    insert_many(
        conn,
        "INSERT INTO buttons (id, state, changed_at, last_action, last_press_at, press_count)",
        6,
        "ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
         changed_at = excluded.changed_at, last_action = excluded.last_action, \
         last_press_at = excluded.last_press_at, press_count = excluded.press_count",
        &buttons,
        |q, b| {
            q.bind(b.id.as_str())
                .bind(b.state.as_str())
                .bind(millis(b.changed_at))
                .bind(b.last_action.map(|a| a.as_str()))
                .bind(b.last_press_at.map(millis))
                .bind(b.press_count)
        },
    )
    .await?;

    // Rare (a Pi retired): a few statements each.
    for node in &rows.forgotten_nodes {
        for sql in [
            "DELETE FROM outputs WHERE node = $1",
            "DELETE FROM readings WHERE node = $1",
            "DELETE FROM last_readings WHERE node = $1",
            // History from before migration 0004, left in place (see there).
            "DELETE FROM sensor_readings WHERE node = $1",
            "DELETE FROM nodes WHERE id = $1",
        ] {
            sqlx::query(sql).bind(*node).execute(&mut *conn).await?;
        }
    }
    let mut outputs: Vec<&OutputRecord> = Vec::new();
    for row in rows.outputs.values() {
        match row {
            OutputRow::Upsert(record) => outputs.push(record),
            // Rare (an output taken out of a node's config): one statement each.
            OutputRow::Forget(output) => {
                sqlx::query("DELETE FROM outputs WHERE node = $1 AND kind = $2 AND name = $3")
                    .bind(output.node.as_str())
                    .bind(output.kind.as_str())
                    .bind(output.name.as_str())
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    insert_many(
        conn,
        "INSERT INTO outputs (node, kind, name, state, changed_at)",
        5,
        "ON CONFLICT (node, kind, name) DO UPDATE SET state = excluded.state, \
         changed_at = excluded.changed_at",
        &outputs,
        |q, o| {
            q.bind(o.output.node.as_str())
                .bind(o.output.kind.as_str())
                .bind(o.output.name.as_str())
                .bind(o.state.as_str())
                .bind(millis(o.changed_at))
        },
    )
    .await?;

    let nodes: Vec<&NodeRecord> = rows.nodes.values().copied().collect();
    insert_many(
        conn,
        "INSERT INTO nodes (id, availability, last_seen)",
        3,
        "ON CONFLICT (id) DO UPDATE SET availability = excluded.availability, \
         last_seen = excluded.last_seen",
        &nodes,
        |q, n| {
            q.bind(n.id.as_str())
                .bind(n.availability.map(|a| a.as_str()))
                .bind(n.last_seen.map(millis))
        },
    )
    .await?;
    let latest: Vec<(&str, &hearth_protocol::Reading)> = nodes
        .iter()
        .flat_map(|&n| n.readings.iter().map(move |r| (n.id.as_str(), r)))
        .collect();
    insert_many(
        conn,
        "INSERT INTO last_readings (node, quantity, value, at)",
        4,
        "ON CONFLICT (node, quantity) DO UPDATE SET value = excluded.value, at = excluded.at",
        &latest,
        |q, (node, r)| {
            q.bind(*node)
                .bind(r.quantity.name())
                .bind(r.value)
                .bind(millis(r.at))
        },
    )
    .await?;

    let readings: Vec<_> = rows.readings.into_iter().collect();
    insert_many(
        conn,
        "INSERT INTO readings (node, quantity, at, value)",
        4,
        "ON CONFLICT (node, quantity, at) DO NOTHING",
        &readings,
        |q, ((node, quantity, at), value)| {
            q.bind(*node).bind(quantity.name()).bind(*at).bind(*value)
        },
    )
    .await?;

    for write in &rows.catalog {
        super::automations::apply(conn, write).await?;
    }

    let logged = insert_logbook(conn, &rows.logbook).await?;

    let message_ids: Vec<_> = rows.message_ids.into_iter().collect();
    insert_many(
        conn,
        "INSERT INTO processed_messages (id, at)",
        2,
        "ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        &message_ids,
        |q, (id, at)| q.bind(*id).bind(*at),
    )
    .await?;
    Ok(logged)
}

/// One multi-row insert per [`ROWS_PER_STATEMENT`] entries, as readings: a
/// busy batch's entries cost one statement, not one round trip each. Their
/// ids come back (`RETURNING id`, SQLite 3.35+ and Postgres) for the live
/// logbook. Neither promises the order `RETURNING` answers in, but both
/// number a statement's rows in `VALUES` order (SQLite's rowid and a
/// `BIGSERIAL` alike; pages already rely on it to order entries of one
/// millisecond), so the sorted ids pair with the entries in order. Only
/// the ids are read back: the whole rows cost the writer a quarter more
/// time per entry (200,000 entries, dev build: 14.8 s, ids only 12.8 s,
/// no `RETURNING` 11.9 s).
async fn insert_logbook(
    conn: &mut AnyConnection,
    entries: &[&LogEntry],
) -> Result<Vec<LogRow>, StoreError> {
    let mut logged = Vec::with_capacity(entries.len());
    for chunk in entries.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO logbook (at, entity, kind, detail, source) VALUES {} RETURNING id",
            values(chunk.len(), 5),
        );
        let mut query = sqlx::query(&sql);
        for e in chunk {
            query = query
                .bind(millis(e.at))
                .bind(e.entity.as_str())
                .bind(e.kind.as_str())
                .bind(e.detail.as_str())
                .bind(e.source.as_str());
        }
        let mut ids = Vec::with_capacity(chunk.len());
        for row in query.persistent(false).fetch_all(&mut *conn).await? {
            ids.push(sqlx::Row::try_get::<i64, _>(&row, "id")?);
        }
        ids.sort_unstable();
        logged.extend(ids.into_iter().zip(chunk).map(|(id, entry)| LogRow {
            id,
            entry: (*entry).clone(),
        }));
    }
    // As a page orders them (an automation run's entry is dated when it
    // started), oldest first.
    logged.sort_by_key(|r| (r.entry.at, r.id));
    Ok(logged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(values(1, 1), "($1)");
        assert_eq!(values(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}
