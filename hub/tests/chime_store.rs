//! The chime tables on real SQLite files and a real Postgres: config sync, run claims, resume points and pruning.

#![allow(clippy::unwrap_used)]

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::{Backend, TestDb, store};
use hearth_hub::chimes::{Chime, ChimeSpec, Source};
use hearth_hub::store::{RunStatus, Store};
use hearth_protocol::Id;

fn chime(id: &str, schedule: &str, source: Source) -> Chime {
    ChimeSpec {
        id: Some(id.into()),
        schedule: schedule.into(),
        speaker: "kitchen".into(),
        sound: "bell.wav".into(),
        ..ChimeSpec::default()
    }
    .validate(None, chrono_tz::UTC, source)
    .unwrap()
}

fn id(text: &str) -> Id {
    Id::new(text).unwrap()
}

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, hour, 0, 0).unwrap()
}

/// (id, source, schedule, enabled) of every stored chime.
async fn stored(store: &Store) -> Vec<(String, String, String, bool)> {
    store
        .load_chimes(chrono_tz::UTC)
        .await
        .unwrap()
        .iter()
        .map(|c| {
            let view = c.view(at(0));
            (
                view.id.to_string(),
                view.source.as_str().to_owned(),
                view.schedule,
                view.enabled,
            )
        })
        .collect()
}

/// When `chime`'s recorded runs were scheduled, oldest first.
async fn run_times(store: &Store, chime: &str) -> Vec<DateTime<Utc>> {
    let runs = store.runs(&id(chime)).await.unwrap();
    runs.into_iter().map(|(t, _)| t).collect()
}

fn rows(rows: &[(&str, &str, &str, bool)]) -> Vec<(String, String, String, bool)> {
    rows.iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), *d))
        .collect()
}

on_both_backends!(
    config_sync_adds_reapplies_changed_entries_and_removes_dropped_ones,
    async |backend: Backend| {
        let db = TestDb::new(backend).await;
        let store = store(&db).await;
        store
            .upsert_chime(&chime("mine", "12:00", Source::Runtime))
            .await
            .unwrap();
        let file = [
            chime("tea", "16:20", Source::Config),
            chime("wake", "07:00", Source::Config),
        ];
        let left = store.sync_config_chimes(&file).await.unwrap();
        assert!(left.is_empty(), "saw {left:?}");

        // Run-time edits of the file's chimes keep them the file's.
        let mut off = chime("wake", "07:00", Source::Runtime);
        off.enabled = false;
        store.upsert_chime(&off).await.unwrap();
        store
            .upsert_chime(&chime("tea", "16:25", Source::Runtime))
            .await
            .unwrap();
        store
            .claim_run(&id("wake"), at(7), RunStatus::Played)
            .await
            .unwrap();
        let edited = rows(&[
            ("mine", "runtime", "12:00", true),
            ("tea", "config", "16:25", true),
            ("wake", "config", "07:00", false),
        ]);
        assert_eq!(stored(&store).await, edited);

        // The same file again: nothing changes.
        let left = store.sync_config_chimes(&file).await.unwrap();
        assert!(left.is_empty(), "saw {left:?}");
        assert_eq!(stored(&store).await, edited);

        // tea's entry changed, wake's is gone, and the file now also
        // declares mine: the file wins for each of those.
        let removed = store
            .sync_config_chimes(&[
                chime("tea", "16:30", Source::Config),
                chime("mine", "12:30", Source::Config),
            ])
            .await
            .unwrap();
        assert_eq!(removed, ["wake"]);
        assert_eq!(
            stored(&store).await,
            rows(&[
                ("mine", "config", "12:30", true),
                ("tea", "config", "16:30", true),
            ])
        );
        let left = store.runs(&id("wake")).await.unwrap();
        assert!(left.is_empty(), "saw {left:?}");
    }
);

on_both_backends!(
    each_occurrence_is_claimed_once_and_the_schedule_resumes_after_the_newest,
    async |backend: Backend| {
        let db = TestDb::new(backend).await;
        let store = store(&db).await;
        // A second store on the same database: another hub.
        let other = common::store(&db).await;
        let tick = chime("tick", "0 * * * * *", Source::Runtime);
        store.upsert_chime(&tick).await.unwrap();
        let changed = store.resume_point(&id("tick")).await.unwrap().unwrap();
        assert!(changed > Utc::now() - Duration::minutes(1), "{changed}");

        // Occurrences fall on whole seconds.
        let future = Utc
            .timestamp_opt((Utc::now() + Duration::hours(1)).timestamp(), 0)
            .unwrap();
        let claimed = store
            .claim_run(&id("tick"), future, RunStatus::Played)
            .await
            .unwrap();
        // The winner gets the play's logbook entry, as stored.
        let entry = claimed.expect("the first claim wins").entry;
        assert_eq!(
            (
                entry.entity.as_str(),
                entry.kind.as_str(),
                entry.detail.as_str(),
                entry.source.as_str()
            ),
            ("chime:tick", "play", "played", "schedule")
        );
        // A second claim, from this hub or another: refused.
        let claimed = store
            .claim_run(&id("tick"), future, RunStatus::Played)
            .await
            .unwrap();
        assert!(claimed.is_none(), "want refused, saw {claimed:?}");
        let claimed = other
            .claim_run(&id("tick"), future, RunStatus::Missed)
            .await
            .unwrap();
        assert!(claimed.is_none(), "want refused, saw {claimed:?}");
        let later = future + Duration::minutes(1);
        let claimed = other
            .claim_run(&id("tick"), later, RunStatus::Missed)
            .await
            .unwrap();
        assert!(claimed.is_some(), "want claimed, saw {claimed:?}");
        let runs = store.runs(&id("tick")).await.unwrap();
        assert_eq!(
            runs,
            [(future, "played".to_owned()), (later, "missed".to_owned())]
        );
        assert_eq!(store.resume_point(&id("tick")).await.unwrap(), Some(later));
    }
);

on_both_backends!(
    pruning_keeps_each_chimes_newest_run_and_drops_deleted_chimes_runs,
    async |backend: Backend| {
        let db = TestDb::new(backend).await;
        let store = store(&db).await;
        for name in ["daily", "gone"] {
            store
                .upsert_chime(&chime(name, "07:00", Source::Runtime))
                .await
                .unwrap();
        }
        for hour in 1..=5 {
            store
                .claim_run(&id("daily"), at(hour), RunStatus::Played)
                .await
                .unwrap();
        }
        store
            .claim_run(&id("gone"), at(1), RunStatus::Played)
            .await
            .unwrap();
        // Runs of a chime that is not stored (removed by a hub from before
        // runs went with their chime): orphans.
        store
            .claim_run(&id("ghost"), at(1), RunStatus::Missed)
            .await
            .unwrap();
        let deleted = store.delete_chime(&id("gone")).await.unwrap();
        assert!(deleted, "want deleted, saw deleted = {deleted}");
        assert!(
            store.runs(&id("gone")).await.unwrap().is_empty(),
            "deleted with its chime"
        );

        let pruned = store.prune_chime_runs(at(3)).await.unwrap();
        assert_eq!(pruned, 3, "daily's 01:00 and 02:00, and the ghost's");
        let kept = run_times(&store, "daily").await;
        assert_eq!(kept, [at(3), at(4), at(5)]);
        // Everything is old: the newest run stays, as the resume point.
        store.prune_chime_runs(at(23)).await.unwrap();
        let kept = run_times(&store, "daily").await;
        assert_eq!(kept, [at(5)]);
        let left = store.runs(&id("ghost")).await.unwrap();
        assert!(left.is_empty(), "saw {left:?}");
    }
);
