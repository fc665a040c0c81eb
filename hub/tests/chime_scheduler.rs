//! The chime scheduler over days of simulated time, with a real database: daylight-saving
//! changes, restarts, two hubs, and the catch-up window.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{Backend, TestDb, store};
use hearth_hub::chimes::manage::ChimeEvent;
use hearth_hub::chimes::scheduler::{ChimeStats, Clock, ManualClock, Registry, run};
use hearth_hub::chimes::{Chime, ChimeSpec, Source};
use hearth_hub::store::Store;
use hearth_protocol::Id;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn chime(id: &str, schedule: &str, weekdays: &[&str], tz: &str) -> Chime {
    ChimeSpec {
        id: Some(id.into()),
        schedule: schedule.into(),
        weekdays: weekdays.iter().map(|s| s.to_string()).collect(),
        timezone: Some(tz.into()),
        speaker: "kitchen".into(),
        sound: "bell.wav".into(),
        ..ChimeSpec::default()
    }
    .validate(None, chrono_tz::UTC, Source::Runtime)
    .unwrap()
}

/// Runs the scheduler from `start` until the clock passes `end`; returns
/// (chime, scheduled_for, late) for every play, in order.
async fn plays_between(
    store: &Store,
    chimes: Vec<Chime>,
    start: &str,
    end: &str,
) -> Vec<(String, String, bool)> {
    let end = utc(end);
    let clock = Arc::new(ManualClock::new(utc(start), end));
    let registry = Arc::new(Registry::new(chimes));
    let (tx, mut rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(
        registry,
        store.clone(),
        clock.clone(),
        tx,
        Arc::new(ChimeStats::default()),
        Default::default(),
        shutdown.clone(),
    ));
    let mut plays = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            Ok(Some(ChimeEvent::Play(p))) => plays.push((
                p.chime.to_string(),
                p.message
                    .scheduled_for
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                p.late,
            )),
            Ok(_) => {}
            // Quiet, and the clock has reached the end: the scheduler is done.
            Err(_) if clock.now() >= end => break,
            Err(_) => {}
        }
    }
    shutdown.cancel();
    task.await.unwrap();
    plays
}

fn instants(plays: &[(String, String, bool)]) -> Vec<&str> {
    plays.iter().map(|(_, at, _)| at.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_york_spring_forward_and_fall_back() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = store(&db).await;
    let spring = plays_between(
        &store,
        vec![chime("night", "02:30", &[], "America/New_York")],
        "2026-03-07T00:00:00Z",
        "2026-03-10T00:00:00Z",
    )
    .await;
    assert_eq!(
        instants(&spring),
        [
            "2026-03-07T07:30:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-09T06:30:00Z"
        ]
    );
    let fall = plays_between(
        &store,
        vec![chime("late", "01:30", &[], "America/New_York")],
        "2026-10-31T00:00:00Z",
        "2026-11-03T00:00:00Z",
    )
    .await;
    assert_eq!(
        instants(&fall),
        [
            "2026-10-31T05:30:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-02T06:30:00Z"
        ]
    );
    assert!(
        spring.iter().chain(&fall).all(|(_, _, late)| !late),
        "an occurrence played late: {spring:?} {fall:?}"
    );
}

fn of<'a>(plays: &'a [(String, String, bool)], chime: &str) -> Vec<&'a str> {
    plays
        .iter()
        .filter(|p| p.0 == chime)
        .map(|p| p.1.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berlin_and_sydney_through_their_changes() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = store(&db).await;
    let both = || {
        vec![
            chime("berlin", "02:15", &[], "Europe/Berlin"),
            chime("sydney", "02:30", &[], "Australia/Sydney"),
        ]
    };
    // Berlin springs forward on 2026-03-29 (02:15 does not exist: 03:00
    // CEST); Sydney falls back on 2026-04-05 (02:30 happens twice).
    let spring = plays_between(
        &store,
        both(),
        "2026-03-28T00:00:00Z",
        "2026-04-07T00:00:00Z",
    )
    .await;
    let berlin = of(&spring, "berlin");
    assert_eq!(
        berlin[..3],
        [
            "2026-03-28T01:15:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-30T00:15:00Z"
        ]
    );
    assert_eq!(berlin.len(), 10, "one play a day: {berlin:?}");
    let sydney = of(&spring, "sydney");
    assert_eq!(
        sydney[sydney.len() - 3..],
        [
            "2026-04-04T15:30:00Z",
            "2026-04-05T16:30:00Z",
            "2026-04-06T16:30:00Z"
        ],
        "02:30 on the fall-back day plays once, at its first (AEDT) instant"
    );
    assert_eq!(sydney.len(), 10, "one play a day: {sydney:?}");
    // Sydney springs forward on 2026-10-04 (02:30 does not exist: 03:00
    // AEDT); Berlin falls back on 2026-10-25 (02:15 happens twice).
    let autumn = plays_between(
        &store,
        both(),
        "2026-10-02T12:00:00Z",
        "2026-10-27T00:00:00Z",
    )
    .await;
    let sydney = of(&autumn, "sydney");
    assert_eq!(
        sydney[..3],
        [
            "2026-10-02T16:30:00Z",
            "2026-10-03T16:00:00Z",
            "2026-10-04T15:30:00Z"
        ]
    );
    let berlin = of(&autumn, "berlin");
    assert_eq!(
        berlin[berlin.len() - 3..],
        [
            "2026-10-24T00:15:00Z",
            "2026-10-25T00:15:00Z",
            "2026-10-26T01:15:00Z"
        ],
        "02:15 on the fall-back day plays once"
    );
    assert_eq!(sydney.len(), 25, "one play a day: {sydney:?}");
    assert_eq!(berlin.len(), 24, "one play a day: {berlin:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_homeslice_tea_chime_plays_at_1620_in_los_angeles() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = store(&db).await;
    let plays = plays_between(
        &store,
        vec![chime("tea", "16:20", &[], "America/Los_Angeles")],
        "2026-10-31T00:00:00Z",
        "2026-11-03T00:00:00Z",
    )
    .await;
    // PDT until 2026-11-01, then PST.
    assert_eq!(
        instants(&plays),
        ["2026-10-31T23:20:00Z", "2026-11-02T00:20:00Z"]
    );
}

async fn restart_keeps_every_occurrence_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = store(&db).await;
    let every_minute = || vec![chime("tick", "0 * * * * *", &[], "UTC")];
    // A first run, then a second that starts in the middle of a minute the
    // first already played: the overlap is not played again.
    let first = plays_between(
        &store,
        every_minute(),
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:03:30Z",
    )
    .await;
    let second = plays_between(
        &store,
        every_minute(),
        "2026-01-01T00:03:00Z",
        "2026-01-01T00:05:30Z",
    )
    .await;
    assert_eq!(
        instants(&first),
        [
            "2026-01-01T00:01:00Z",
            "2026-01-01T00:02:00Z",
            "2026-01-01T00:03:00Z"
        ]
    );
    assert_eq!(
        instants(&second),
        ["2026-01-01T00:04:00Z", "2026-01-01T00:05:00Z"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_minute_never_plays_twice_sqlite() {
    restart_keeps_every_occurrence_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_minute_never_plays_twice_postgres() {
    restart_keeps_every_occurrence_once(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_through_an_occurrence_plays_late_inside_the_window_and_records_a_miss_outside() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = store(&db).await;
    let tick = |id: &str, catch_up: u64| {
        let mut c = chime(id, "0 0 7 * * *", &[], "UTC");
        c.catch_up = Duration::from_secs(catch_up);
        c
    };
    // Both ran on the 1st; the hub was down at 07:00 on the 2nd and comes
    // back at 07:00:40.
    plays_between(
        &store,
        vec![tick("near", 60), tick("far", 30)],
        "2026-01-01T06:00:00Z",
        "2026-01-01T08:00:00Z",
    )
    .await;
    let back = plays_between(
        &store,
        vec![tick("near", 60), tick("far", 30)],
        "2026-01-02T07:00:40Z",
        "2026-01-02T07:05:00Z",
    )
    .await;
    assert_eq!(
        back,
        [("near".to_owned(), "2026-01-02T07:00:00Z".to_owned(), true)]
    );
    let far = store.runs(&Id::new("far").unwrap()).await.unwrap();
    let far: Vec<_> = far
        .iter()
        .map(|(at, status)| (at.to_rfc3339(), status.as_str()))
        .collect();
    assert_eq!(
        far,
        [
            ("2026-01-01T07:00:00+00:00".to_owned(), "played"),
            ("2026-01-02T07:00:00+00:00".to_owned(), "missed"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_hours_down_the_backlog_is_recorded_and_the_last_minute_still_plays() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = store(&db).await;
    let every_minute = || vec![chime("tick", "0 * * * * *", &[], "UTC")];
    plays_between(
        &store,
        every_minute(),
        "2026-01-01T04:00:00Z",
        "2026-01-01T04:01:30Z",
    )
    .await;
    // Down for three hours: 179 occurrences are past the 60 s window, the
    // one at 07:00 is inside it when the hub is back at 07:00:30.
    let back = plays_between(
        &store,
        every_minute(),
        "2026-01-01T07:00:30Z",
        "2026-01-01T07:01:30Z",
    )
    .await;
    assert_eq!(
        back,
        [
            ("tick".to_owned(), "2026-01-01T07:00:00Z".to_owned(), true),
            ("tick".to_owned(), "2026-01-01T07:01:00Z".to_owned(), false),
        ]
    );
    let runs = store.runs(&Id::new("tick").unwrap()).await.unwrap();
    let count = |status: &str| runs.iter().filter(|(_, s)| s.as_str() == status).count();
    assert_eq!(count("played"), 3, "{runs:?}");
    assert_eq!(
        count("missed"),
        100,
        "the backlog is recorded up to its cap"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_on_one_postgres_play_each_occurrence_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let a = store(&db).await;
    let b = store(&db).await;
    let chimes = || {
        vec![
            chime("pulse", "*/5 * * * * *", &[], "UTC"),
            chime("beat", "*/3 * * * * *", &[], "UTC"),
        ]
    };
    let (pa, pb) = tokio::join!(
        plays_between(&a, chimes(), "2026-01-01T00:00:00Z", "2026-01-01T00:02:00Z"),
        plays_between(&b, chimes(), "2026-01-01T00:00:00Z", "2026-01-01T00:02:00Z"),
    );
    let mut all: Vec<_> = pa
        .iter()
        .chain(&pb)
        .map(|(c, at, _)| (c.clone(), at.clone()))
        .collect();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(total, all.len(), "an occurrence played twice");
    assert_eq!(all.iter().filter(|(c, _)| c == "pulse").count(), 24);
    assert_eq!(all.iter().filter(|(c, _)| c == "beat").count(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_takes_effect_without_waiting_for_the_old_schedule() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = store(&db).await;
    let registry = Arc::new(Registry::new(vec![chime("c", "0 0 12 * * *", &[], "UTC")]));
    let (tx, mut rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    // Real time here: the change must wake a scheduler sleeping until noon.
    let task = tokio::spawn(run(
        registry.clone(),
        store.clone(),
        hearth_hub::chimes::scheduler::SystemClock,
        tx,
        Arc::new(ChimeStats::default()),
        Default::default(),
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    registry.put(chime("c", "* * * * * *", &[], "UTC"));
    let event = tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .unwrap();
    assert!(matches!(event, Some(ChimeEvent::Play(_))), "saw {event:?}");
    shutdown.cancel();
    task.await.unwrap();
}
