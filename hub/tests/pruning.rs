//! Retention on SQLite and Postgres: climate history older than
//! `database.history_days`, press ids older than the 24 hours redeliveries
//! are recognised in, and chime runs older than the history (but each
//! chime's newest, its resume point) are pruned; everything younger stays.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::{Backend, TestDb, spawn_hub, store};
use hearth_hub::chimes::{ChimeSpec, Source};
use hearth_hub::store::{RunStatus, Store, Write};
use hearth_protocol::{Id, Quantity, Reading};

/// Bounds a hang only.
const WAIT: Duration = Duration::from_secs(30);

fn id(text: &str) -> Id {
    Id::new(text).unwrap()
}

fn reading(node: &str, at: DateTime<Utc>, temperature: f64) -> Write {
    Write::Reading {
        node: id(node),
        reading: Reading {
            quantity: Quantity::Temperature,
            value: temperature,
            at,
        },
    }
}

fn press_id(text: &str, at: DateTime<Utc>) -> Write {
    Write::MessageId {
        id: text.to_owned(),
        at,
    }
}

fn epoch() -> DateTime<Utc> {
    Utc.timestamp_opt(0, 0).unwrap()
}

/// Temperatures of `node`'s whole stored history, oldest first.
async fn temperatures(store: &Store, node: &str) -> Vec<f64> {
    store
        .history(&id(node), epoch())
        .await
        .unwrap()
        .iter()
        .filter_map(|r| r.get(Quantity::Temperature))
        .collect()
}

async fn press_ids(store: &Store) -> Vec<String> {
    let mut ids = store.message_ids_since(epoch()).await.unwrap();
    ids.sort();
    ids
}

on_both_backends!(
    the_store_prunes_before_each_cutoff_and_keeps_the_rest,
    async |backend: Backend| {
        let db = TestDb::new(backend).await;
        let store = store(&db).await;
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let day = chrono::Duration::days(1);
        let minute = chrono::Duration::minutes(1);
        store
            .apply(&[
                reading("pi-1", now - day * 3, 1.0),
                reading("pi-1", now - day - minute, 2.0),
                reading("pi-1", now - day, 3.0),
                reading("pi-1", now - minute, 4.0),
                reading("pi-2", now - day * 2, 5.0),
                press_id("a-25h", now - chrono::Duration::hours(25)),
                press_id("b-24h1s", now - day - chrono::Duration::seconds(1)),
                press_id("c-23h", now - chrono::Duration::hours(23)),
            ])
            .await
            .unwrap();

        let pruned = store.prune(now - day, now - day).await.unwrap();
        assert_eq!(
            pruned, 3,
            "readings before the cutoff: pi-1's 1 and 2, pi-2's 5"
        );
        assert_eq!(
            temperatures(&store, "pi-1").await,
            [3.0, 4.0],
            "pi-1 keeps the reading at the cutoff and after it"
        );
        assert!(temperatures(&store, "pi-2").await.is_empty());
        assert_eq!(press_ids(&store).await, ["c-23h"]);
        // Nothing is left to prune: a second run changes nothing.
        assert_eq!(store.prune(now - day, now - day).await.unwrap(), 0);
        assert_eq!(temperatures(&store, "pi-1").await, [3.0, 4.0]);
    }
);

/// A chime that never plays by itself, so the scheduler adds no runs.
fn quiet_chime() -> hearth_hub::chimes::Chime {
    ChimeSpec {
        id: Some("tea".into()),
        schedule: "12:00".into(),
        speaker: "kitchen".into(),
        sound: "bell.wav".into(),
        enabled: Some(false),
        ..ChimeSpec::default()
    }
    .validate(None, chrono_tz::UTC, Source::Runtime)
    .unwrap()
}

on_both_backends!(
    a_starting_hub_prunes_by_history_days_and_keeps_press_ids_a_day,
    async |backend: Backend| {
        let db = TestDb::new(backend).await;
        let store = store(&db).await;
        let now = Utc::now();
        let hours = chrono::Duration::hours;
        // history_days = 2: a reading 3 days old goes, one 47 hours old stays
        // (an hour of margin either way, far more than a test run takes).
        store
            .apply(&[
                reading("pi-1", now - hours(72), 1.0),
                reading("pi-1", now - hours(47), 2.0),
                reading("pi-1", now - hours(1), 3.0),
                press_id("old", now - hours(25)),
                press_id("recent", now - hours(23)),
            ])
            .await
            .unwrap();
        store.upsert_chime(&quiet_chime()).await.unwrap();
        for age in [96, 72, 47] {
            assert!(
                store
                    .claim_run(&id("tea"), now - hours(age), RunStatus::Played)
                    .await
                    .unwrap()
                    .is_some()
            );
        }

        // Housekeeping prunes once at start, then hourly.
        let hub = spawn_hub(&db, "[database]\nhistory_days = 2\n").await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let readings = temperatures(&store, "pi-1").await;
            let ids = press_ids(&store).await;
            let runs = store.runs(&id("tea")).await.unwrap().len();
            if readings.len() == 2 && ids.len() == 1 && runs == 1 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not pruned: readings {readings:?}, press ids {ids:?}, {runs} chime runs"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(temperatures(&store, "pi-1").await, [2.0, 3.0]);
        assert_eq!(press_ids(&store).await, ["recent"]);
        let runs = store.runs(&id("tea")).await.unwrap();
        assert_eq!(
            runs.iter()
                .map(|(at, _)| at.timestamp_millis())
                .collect::<Vec<_>>(),
            [(now - hours(47)).timestamp_millis()],
            "chime runs within history_days stay: {runs:?}"
        );
        hub.stop().await;
    }
);
