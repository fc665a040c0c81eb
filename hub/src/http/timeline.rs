//! `GET /api/v1/timeline`: on/off spans of outputs, inputs and buttons over a window, from the logbook's `state` entries.
//!
//! Read from the database (a standby serves what the leader wrote); the
//! spans are built by `crate::decide::timeline`. A bad parameter is a 400
//! naming it; nothing is read then.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;

use super::logbook::{entity_param, time_param};
use super::{HttpState, Refusal};
use crate::decide::logbook as names;
use crate::decide::timeline::{Span, spans};

/// The window when the caller names none: the last 24 hours.
pub const DEFAULT_WINDOW: Duration = Duration::hours(24);
/// The longest window: 31 days, the longest climate history the API serves.
pub const MAX_WINDOW: Duration = Duration::days(31);
/// State changes read per entity: a flapping input cannot make one answer
/// unbounded. A timeline cut short says so (`truncated`) and ends where
/// the changes read end.
pub const MAX_CHANGES: u32 = 2000;
/// Entities one answer covers when none is named (every output and input).
pub const MAX_ENTITIES: usize = 200;

/// The entity kinds with `state` entries.
const KINDS: [&str; 3] = ["output", "input", "button"];

pub fn routes() -> Router<Arc<HttpState>> {
    Router::new().route("/api/v1/timeline", get(timeline))
}

/// Why a query was refused: each names its parameter, as the 400 says.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("{0}: unknown parameter (known: entity, since, until)")]
    Unknown(String),
    #[error("entity: {0:?} is not <kind>:<name> with kind one of {KINDS:?}")]
    Entity(String),
    #[error("{0}: {1:?} is not an RFC 3339 time (2026-11-22T14:20:00Z)")]
    Time(&'static str, String),
    #[error("until: must be after since")]
    Range,
    #[error("since: the window may be at most {} days", MAX_WINDOW.num_days())]
    TooLong,
}

/// A checked query: `until` is at most `now` (nothing is known later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineQuery {
    pub entity: Option<String>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// The query string, checked against `now`.
pub fn parse(
    params: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> Result<TimelineQuery, ParamError> {
    if let Some(unknown) = params
        .keys()
        .find(|k| !["entity", "since", "until"].contains(&k.as_str()))
    {
        return Err(ParamError::Unknown(unknown.clone()));
    }
    let time =
        |name: &'static str| time_param(params, name).map_err(|raw| ParamError::Time(name, raw));
    let entity = entity_param(params, &KINDS).map_err(ParamError::Entity)?;
    let until = time("until")?.map_or(now, |t| t.min(now));
    let since = time("since")?.unwrap_or(until - DEFAULT_WINDOW);
    if until <= since {
        return Err(ParamError::Range);
    }
    if until - since > MAX_WINDOW {
        return Err(ParamError::TooLong);
    }
    Ok(TimelineQuery {
        entity,
        since,
        until,
    })
}

#[derive(Debug, Serialize)]
struct Timeline {
    entity: String,
    spans: Vec<Span>,
    /// More changes than [`MAX_CHANGES`]: the spans end at the first one
    /// left out.
    truncated: bool,
}

async fn timeline(
    State(shared): State<Arc<HttpState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    let query = parse(&params, Utc::now())
        .map_err(|e| Refusal::json(StatusCode::BAD_REQUEST, e.to_string()))?;
    let entities = match &query.entity {
        Some(entity) => vec![entity.clone()],
        None => shared.house.read(|house| {
            house
                .outputs
                .keys()
                .map(names::output)
                .chain(
                    house
                        .inputs
                        .keys()
                        .map(|(node, name)| names::input(node, name)),
                )
                .take(MAX_ENTITIES)
                .collect()
        }),
    };
    let mut timelines = Vec::with_capacity(entities.len());
    for entity in entities {
        let read = shared
            .store
            .state_changes(&entity, query.since, query.until, MAX_CHANGES)
            .await
            .map_err(|e| Refusal::json(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        let until = read.cut_at.unwrap_or(query.until);
        timelines.push(Timeline {
            spans: spans(read.before.as_deref(), &read.changes, query.since, until),
            truncated: read.cut_at.is_some(),
            entity,
        });
    }
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let body = serde_json::json!({
        "since": time(query.since),
        "until": time(query.until),
        "timelines": timelines,
    });
    Ok(Json(body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    fn query(pairs: &[(&str, &str)]) -> Result<TimelineQuery, ParamError> {
        let params = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        parse(&params, now())
    }

    #[test]
    fn the_default_window_is_the_last_day_and_the_future_is_cut_off() {
        let q = query(&[]).unwrap();
        assert_eq!((q.since, q.until), (now() - DEFAULT_WINDOW, now()));
        let q = query(&[
            ("entity", "input:pi-1/hall"),
            ("since", "2026-11-22T06:00:00Z"),
            ("until", "2026-11-23T00:00:00Z"),
        ])
        .unwrap();
        assert_eq!(q.entity.as_deref(), Some("input:pi-1/hall"));
        assert_eq!(q.until, now());
    }

    #[test]
    fn bad_parameters_are_named() {
        let cases: [(&[(&str, &str)], &str); 7] = [
            (&[("entity", "lamp")], "entity:"),
            (&[("entity", "chime:tea")], "entity:"),
            (&[("since", "yesterday")], "since:"),
            (&[("until", "noon")], "until:"),
            (&[("since", "2026-11-22T13:00:00Z")], "until:"),
            (&[("since", "2026-10-01T00:00:00Z")], "since:"),
            (&[("entities", "x")], "entities:"),
        ];
        for (pairs, named) in cases {
            let error = query(pairs).expect_err("refused").to_string();
            assert!(error.starts_with(named), "{pairs:?} said {error:?}");
        }
    }
}
