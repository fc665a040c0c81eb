//! Times the logbook's filtered page query on a year of a busy home.
//!
//! Inserts ROWS entries (default 2,000,000: about 5,000 a day for a year,
//! over 50 entities) into a fresh SQLite file through the store's batch
//! path (`Store::apply`, the writer's own statements), then runs each
//! query 20 times and prints the median. Run by
//! `bench/scripts/logbook-query.sh`; the figures are in docs/benchmarks.md.

use std::time::{Duration, Instant};

use chrono::Utc;
use hearth_hub::config::DatabaseSection;
use hearth_hub::model::logbook::{LogEntry, LogKind, LogQuery};
use hearth_hub::store::{Store, Write};

/// Entries per `Store::apply`: a busy batch of the writer's.
const BATCH: usize = 5_000;
const ENTITIES: usize = 50;
const RUNS: usize = 20;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2_000_000);
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&DatabaseSection {
        url: format!("sqlite://{}/logbook.db", dir.path().display()),
        ..DatabaseSection::default()
    })
    .await?;
    let now = Utc::now();
    let year = chrono::Duration::days(365);
    let step = year / i32::try_from(rows).unwrap_or(i32::MAX);
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..rows {
        let at = now - year + step * i32::try_from(i).unwrap_or(i32::MAX);
        let (kind, detail) = match i % 3 {
            0 => (LogKind::Press, "single"),
            1 => (LogKind::State, "ON"),
            _ => (LogKind::State, "OFF"),
        };
        // Spread so that neighbours in time are different entities.
        let entity = format!("button:b{}", (i * 7) % ENTITIES);
        batch.push(Write::Logbook(LogEntry::new(
            at, entity, kind, detail, "mqtt",
        )));
        if batch.len() == BATCH || i + 1 == rows {
            store.apply(&batch).await?;
            batch.clear();
        }
    }
    println!(
        "inserted {rows} rows ({ENTITIES} entities, one year) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let queries = [
        (
            "entity + 30-day range + limit 100",
            LogQuery {
                entity: Some("button:b7".to_owned()),
                since: Some(now - chrono::Duration::days(200)),
                until: Some(now - chrono::Duration::days(170)),
                before: None,
                limit: 100,
            },
        ),
        (
            "entity + whole year + limit 100",
            LogQuery {
                entity: Some("button:b7".to_owned()),
                since: Some(now - year),
                until: None,
                before: None,
                limit: 100,
            },
        ),
        (
            "no filter, newest 100",
            LogQuery {
                entity: None,
                since: None,
                until: None,
                before: None,
                limit: 100,
            },
        ),
    ];
    for (name, query) in &queries {
        let mut times = Vec::with_capacity(RUNS);
        let mut got = 0;
        let mut next = None;
        for _ in 0..RUNS {
            let t = Instant::now();
            let page = store.logbook(query).await?;
            times.push(t.elapsed());
            got = page.rows.len();
            next = page.next;
        }
        println!(
            "{name}: {got} rows, median of {RUNS} {:.2} ms",
            median(times.clone()).as_secs_f64() * 1000.0
        );
        // The page after it, through the cursor, as a client pages on.
        if let Some(cursor) = next {
            let after = LogQuery {
                before: Some(cursor),
                ..query.clone()
            };
            let mut times = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                let t = Instant::now();
                store.logbook(&after).await?;
                times.push(t.elapsed());
            }
            println!(
                "{name}, next page by cursor: median of {RUNS} {:.2} ms",
                median(times).as_secs_f64() * 1000.0
            );
        }
    }
    Ok(())
}
