//! `GET /api/v1/logbook`: the logbook, newest first, filtered by entity and time, paged by a cursor.
//!
//! Reads the database (`crate::store`), so a standby serves what the
//! leader wrote. A bad parameter is a 400 naming it; nothing else is read.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::{HttpState, Refusal};
use crate::model::logbook::{Cursor, LogQuery, LogRow};
use crate::store::MAX_LOGBOOK_PAGE;

/// Entries a page holds when the caller does not say.
pub const DEFAULT_PAGE: u32 = 100;

/// The entity kinds the logbook names (`<kind>:<name>`).
const ENTITY_KINDS: [&str; 6] = ["button", "output", "input", "node", "automation", "chime"];

pub fn routes() -> Router<Arc<HttpState>> {
    Router::new().route("/api/v1/logbook", get(page))
}

/// Why a query was refused: each names its parameter, as the 400 says.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("{0}: unknown parameter (known: entity, since, until, before, limit)")]
    Unknown(String),
    #[error("entity: {0:?} is not <kind>:<name> with kind one of {ENTITY_KINDS:?}")]
    Entity(String),
    #[error("{0}: {1:?} is not an RFC 3339 time (2026-11-22T14:20:00Z)")]
    Time(&'static str, String),
    #[error("until: must be after since")]
    Range,
    #[error("before: {0:?} is not a cursor (the `next` of an earlier page)")]
    Before(String),
    #[error("limit: {0:?} is not a number from 1 to {MAX_LOGBOOK_PAGE}")]
    Limit(String),
}

/// `params[name]` as an instant, if given; `Err` holds the text when it
/// is not RFC 3339.
pub(super) fn time_param(
    params: &HashMap<String, String>,
    name: &str,
) -> Result<Option<DateTime<Utc>>, String> {
    params
        .get(name)
        .map(|raw| {
            DateTime::parse_from_rfc3339(raw)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| raw.clone())
        })
        .transpose()
}

/// `params["entity"]`, if given, when it names an entity as the logbook
/// does (`<kind>:<name>` with one of `kinds`); `Err` holds the text when
/// it does not.
pub(super) fn entity_param(
    params: &HashMap<String, String>,
    kinds: &[&str],
) -> Result<Option<String>, String> {
    params
        .get("entity")
        .map(|raw| match raw.split_once(':') {
            Some((kind, name)) if kinds.contains(&kind) && !name.is_empty() && raw.len() <= 200 => {
                Ok(raw.clone())
            }
            _ => Err(raw.clone()),
        })
        .transpose()
}

/// The query string, checked.
pub fn parse(params: &HashMap<String, String>) -> Result<LogQuery, ParamError> {
    if let Some(unknown) = params
        .keys()
        .find(|k| !["entity", "since", "until", "before", "limit"].contains(&k.as_str()))
    {
        return Err(ParamError::Unknown(unknown.clone()));
    }
    let time =
        |name: &'static str| time_param(params, name).map_err(|raw| ParamError::Time(name, raw));
    let entity = entity_param(params, &ENTITY_KINDS).map_err(ParamError::Entity)?;
    let (since, until) = (time("since")?, time("until")?);
    if let (Some(since), Some(until)) = (since, until)
        && until <= since
    {
        return Err(ParamError::Range);
    }
    let before = params
        .get("before")
        .map(|raw| {
            raw.parse::<Cursor>()
                .map_err(|()| ParamError::Before(raw.clone()))
        })
        .transpose()?;
    let limit = match params.get("limit") {
        None => DEFAULT_PAGE,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LOGBOOK_PAGE).contains(n))
            .ok_or_else(|| ParamError::Limit(raw.clone()))?,
    };
    Ok(LogQuery {
        entity,
        since,
        until,
        before,
        limit,
    })
}

/// An entry as `GET /api/v1/logbook` and the live stream's
/// `event: logbook` show it.
#[derive(Debug, Serialize)]
pub(super) struct EntryView<'a> {
    id: i64,
    at: String,
    entity: &'a str,
    kind: &'static str,
    detail: &'a str,
    source: &'a str,
}

impl<'a> From<&'a LogRow> for EntryView<'a> {
    fn from(row: &'a LogRow) -> Self {
        let e = &row.entry;
        Self {
            id: row.id,
            at: e.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            entity: &e.entity,
            kind: e.kind.as_str(),
            detail: &e.detail,
            source: &e.source,
        }
    }
}

async fn page(
    State(shared): State<Arc<HttpState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    let query =
        parse(&params).map_err(|e| Refusal::json(StatusCode::BAD_REQUEST, e.to_string()))?;
    let page = shared
        .store
        .logbook(&query)
        .await
        .map_err(|e| Refusal::json(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let entries: Vec<EntryView<'_>> = page.rows.iter().map(EntryView::from).collect();
    let body = serde_json::json!({
        "entries": entries,
        "next": page.next.map(|c| c.to_string()),
    });
    Ok(Json(body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Result<LogQuery, ParamError> {
        parse(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn a_full_query_is_read() {
        let q = query(&[
            ("entity", "button:desk"),
            ("since", "2026-11-22T00:00:00Z"),
            ("until", "2026-11-23T00:00:00+01:00"),
            ("before", "1764000000000-7"),
            ("limit", "2"),
        ])
        .unwrap();
        assert_eq!(q.entity.as_deref(), Some("button:desk"));
        assert_eq!(q.limit, 2);
        assert_eq!(
            q.before,
            Some(Cursor {
                at_ms: 1_764_000_000_000,
                id: 7
            })
        );
        assert_eq!(query(&[]).unwrap().limit, DEFAULT_PAGE);
    }

    #[test]
    fn bad_parameters_are_named() {
        let cases: [(&[(&str, &str)], &str); 8] = [
            (&[("entity", "desk")], "entity:"),
            (&[("entity", "lamp:desk")], "entity:"),
            (&[("since", "yesterday")], "since:"),
            (&[("until", "2026-13-01T00:00:00Z")], "until:"),
            (
                &[
                    ("since", "2026-11-22T00:00:00Z"),
                    ("until", "2026-11-21T00:00:00Z"),
                ],
                "until:",
            ),
            (&[("before", "x")], "before:"),
            (&[("limit", "0")], "limit:"),
            (&[("limt", "5")], "limt:"),
        ];
        for (pairs, named) in cases {
            let error = query(pairs).expect_err("refused").to_string();
            assert!(error.starts_with(named), "{pairs:?} said {error:?}");
        }
        assert!(query(&[("limit", "1001")]).is_err());
    }
}
