//! Automation and scene storage: specs, config sync (as chimes), runs
//! waiting on a deadline, and traces.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hearth_protocol::{AutomationSpec, Id, SceneSpec};
use serde::de::DeserializeOwned;
use sqlx::{AnyConnection, Row};

use super::{Store, StoreError, from_millis, millis};
use crate::decide::automations::{Automation, Context, PendingRun, Scene, Trace};
use crate::model::chime::Source;
use crate::model::effects::CatalogWrite;

/// Everything the engine starts from: what a hub loads at start and on
/// taking over.
#[derive(Debug, Default)]
pub struct Catalog {
    pub automations: Vec<(Automation, Source)>,
    pub scenes: Vec<(Scene, Source)>,
    pub runs: Vec<PendingRun>,
    /// Per automation: the instant its time and sun triggers were dealt
    /// with up to (the later of `timers_until` and `updated_at`).
    pub timers_from: BTreeMap<Id, DateTime<Utc>>,
}

fn source(raw: &str) -> Source {
    match raw {
        "config" => Source::Config,
        _ => Source::Runtime,
    }
}

fn corrupt(table: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        table,
        why: e.to_string(),
    }
}

/// Applies one catalogue write inside the writer's transaction.
pub(super) async fn apply(
    conn: &mut AnyConnection,
    write: &CatalogWrite,
) -> Result<(), StoreError> {
    let now = millis(Utc::now());
    match write {
        CatalogWrite::Automation { id, spec, source }
        | CatalogWrite::Scene { id, spec, source } => {
            let table = if matches!(write, CatalogWrite::Automation { .. }) {
                "automations"
            } else {
                "scenes"
            };
            // A config entry changed at run time stays the file's.
            sqlx::query(&format!(
                "INSERT INTO {table} (id, spec, source, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at"
            ))
            .bind(id.as_str())
            .bind(spec.as_str())
            .bind(*source)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        CatalogWrite::ForgetAutomation(id) => {
            for sql in [
                "DELETE FROM automations WHERE id = $1",
                "DELETE FROM automation_runs WHERE automation_id = $1",
                "DELETE FROM automation_traces WHERE automation_id = $1",
            ] {
                sqlx::query(sql)
                    .bind(id.as_str())
                    .execute(&mut *conn)
                    .await?;
            }
        }
        CatalogWrite::ForgetScene(id) => {
            sqlx::query("DELETE FROM scenes WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *conn)
                .await?;
        }
        CatalogWrite::Run {
            automation,
            run,
            state,
        } => {
            sqlx::query(
                "INSERT INTO automation_runs (automation_id, run, state, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (automation_id, run) DO UPDATE \
                 SET state = excluded.state, updated_at = excluded.updated_at",
            )
            .bind(automation.as_str())
            .bind(*run as i64)
            .bind(state.as_str())
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        CatalogWrite::TimersUntil { automation, until } => {
            sqlx::query("UPDATE automations SET timers_until = $2 WHERE id = $1")
                .bind(automation.as_str())
                .bind(millis(*until))
                .execute(&mut *conn)
                .await?;
        }
        CatalogWrite::RunGone { automation, run } => {
            sqlx::query("DELETE FROM automation_runs WHERE automation_id = $1 AND run = $2")
                .bind(automation.as_str())
                .bind(*run as i64)
                .execute(&mut *conn)
                .await?;
        }
        CatalogWrite::Trace {
            automation,
            run,
            started_at,
            outcome,
            trace,
        } => {
            sqlx::query(
                "INSERT INTO automation_traces (automation_id, run, started_at, outcome, trace) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (automation_id, run) DO UPDATE \
                 SET outcome = excluded.outcome, trace = excluded.trace",
            )
            .bind(automation.as_str())
            .bind(*run as i64)
            .bind(millis(*started_at))
            .bind(*outcome)
            .bind(trace.as_str())
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

impl Store {
    /// Every stored automation, scene and waiting run. A row that no
    /// longer validates is skipped with a warning rather than stopping the hub.
    pub async fn load_catalog(&self, cx: Context) -> Result<Catalog, StoreError> {
        let mut catalog = Catalog::default();
        for (id, spec, src) in self.specs::<AutomationSpec>("automations").await? {
            match Automation::validate(&spec, Some(&id), cx) {
                Ok(a) => catalog.automations.push((a, source(&src))),
                Err(error) => {
                    tracing::warn!(automation = %id, %error, "stored automation no longer valid; skipped");
                }
            }
        }
        for (id, spec, src) in self.specs::<SceneSpec>("scenes").await? {
            match Scene::validate(&spec, Some(&id), cx) {
                Ok(s) => catalog.scenes.push((s, source(&src))),
                Err(error) => {
                    tracing::warn!(scene = %id, %error, "stored scene no longer valid; skipped");
                }
            }
        }
        let rows = sqlx::query("SELECT id, updated_at, timers_until FROM automations")
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let id: String = row.try_get("id")?;
            let updated: i64 = row.try_get("updated_at")?;
            let until: Option<i64> = row.try_get("timers_until")?;
            if let Ok(id) = Id::new(&id) {
                let from = until.map_or(updated, |u| u.max(updated));
                catalog.timers_from.insert(id, from_millis(from));
            }
        }
        let rows = sqlx::query("SELECT state FROM automation_runs ORDER BY run")
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let state: String = row.try_get("state")?;
            catalog
                .runs
                .push(serde_json::from_str(&state).map_err(corrupt("automation_runs"))?);
        }
        Ok(catalog)
    }

    async fn specs<T: DeserializeOwned>(
        &self,
        table: &'static str,
    ) -> Result<Vec<(Id, T, String)>, StoreError> {
        let rows = sqlx::query(&format!("SELECT id, spec, source FROM {table} ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id")?;
            let spec: String = row.try_get("spec")?;
            let id = Id::new(&id).map_err(|e| StoreError::Corrupt {
                table,
                why: format!("id {id:?}: {e}"),
            })?;
            out.push((
                id,
                serde_json::from_str(&spec).map_err(corrupt(table))?,
                row.try_get("source")?,
            ));
        }
        Ok(out)
    }

    /// Makes the stored config automations and scenes exactly the file's,
    /// with the chimes' rule: a new or changed entry in the file is
    /// (re)applied, an unchanged one keeps what was changed at run time,
    /// one the file dropped goes; runtime ones stay unless the file now
    /// declares the same id.
    pub async fn sync_config_catalog(
        &self,
        automations: &[AutomationSpec],
        scenes: &[SceneSpec],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (table, specs) in [
            (
                "automations",
                automations
                    .iter()
                    .map(serde_json::to_string)
                    .collect::<Result<Vec<_>, _>>(),
            ),
            (
                "scenes",
                scenes
                    .iter()
                    .map(serde_json::to_string)
                    .collect::<Result<Vec<_>, _>>(),
            ),
        ] {
            let specs = specs.map_err(corrupt(table))?;
            let ids: Vec<String> = specs
                .iter()
                .map(|s| {
                    serde_json::from_str::<serde_json::Value>(s)
                        .ok()
                        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
                        .unwrap_or_default()
                })
                .collect();
            let stored: Vec<String> =
                sqlx::query(&format!("SELECT id FROM {table} WHERE source = 'config'"))
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|r| r.try_get::<String, _>("id"))
                    .collect::<Result<_, _>>()?;
            for id in stored.iter().filter(|id| !ids.contains(id)) {
                let gone = match table {
                    "automations" => CatalogWrite::ForgetAutomation(Id::new(id).map_err(|e| {
                        StoreError::Corrupt {
                            table,
                            why: e.to_string(),
                        }
                    })?),
                    _ => {
                        CatalogWrite::ForgetScene(Id::new(id).map_err(|e| StoreError::Corrupt {
                            table,
                            why: e.to_string(),
                        })?)
                    }
                };
                apply(&mut tx, &gone).await?;
            }
            for (id, spec) in ids.iter().zip(&specs) {
                sqlx::query(&format!(
                    "INSERT INTO {table} (id, spec, source, declared, updated_at) \
                     VALUES ($1, $2, 'config', $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, source = excluded.source, \
                     declared = excluded.declared, updated_at = excluded.updated_at \
                     WHERE {table}.declared IS NULL OR {table}.declared <> excluded.declared"
                ))
                .bind(id.as_str())
                .bind(spec.as_str())
                .bind(millis(Utc::now()))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The last `limit` traces of `automation`, newest first.
    pub async fn traces(&self, automation: &Id, limit: u32) -> Result<Vec<Trace>, StoreError> {
        let rows = sqlx::query(
            "SELECT trace FROM automation_traces WHERE automation_id = $1 ORDER BY run DESC LIMIT $2",
        )
        .bind(automation.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let text: String = r.try_get("trace")?;
                serde_json::from_str(&text).map_err(corrupt("automation_traces"))
            })
            .collect()
    }

    /// Deletes traces of runs started before `before`; the rows deleted.
    pub async fn prune_traces(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM automation_traces WHERE started_at < $1")
                .bind(millis(before))
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}
