//! `/api/v1/automations` and `/api/v1/scenes`: list, create, read, replace,
//! delete, switch, run, apply, and the traces of an automation's last runs.
//!
//! Bodies are the JSON of `hearth/hub/automations/<id>/set` (and scenes');
//! every change goes to the core, as the MQTT topics' do, and is answered
//! once stored. A bad field is a 400 naming it, and nothing is saved.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use hearth_protocol::{AutomationSpec, Id, SceneSpec};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::{HttpState, Refusal};
use crate::handle::ApiCall;
use crate::model::catalog::{CatalogError, CatalogRequest};

type Answer = Result<Response, Refusal>;

/// Most traces one request returns.
const MAX_TRACES: u32 = 100;

pub fn routes() -> Router<Arc<HttpState>> {
    Router::new()
        .route("/api/v1/automations", get(list).post(create))
        .route(
            "/api/v1/automations/{id}",
            get(read).put(replace).delete(remove),
        )
        .route(
            "/api/v1/automations/{id}/enabled",
            put(set_enabled).post(set_enabled),
        )
        .route("/api/v1/automations/{id}/run", post(run))
        .route("/api/v1/automations/{id}/traces", get(traces))
        .route("/api/v1/scenes", get(list_scenes).post(create_scene))
        .route(
            "/api/v1/scenes/{id}",
            get(read_scene).put(replace_scene).delete(remove_scene),
        )
        .route("/api/v1/scenes/{id}/apply", post(apply))
}

fn id_of(raw: &str) -> Result<Id, Refusal> {
    Id::new(raw).map_err(|e| Refusal::json(StatusCode::BAD_REQUEST, format!("id: {e}")))
}

fn body<T: DeserializeOwned>(body: Result<Json<T>, JsonRejection>) -> Result<T, Refusal> {
    body.map(|Json(s)| s).map_err(|e| {
        // JSON that is not an automation is a bad field like any other
        // (axum would say 422); too large stays 413.
        let status = match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Refusal::json(status, e.body_text())
    })
}

/// Hands `request` to the core; answers with what it shows once stored.
async fn change(shared: &HttpState, request: CatalogRequest, status: StatusCode) -> Answer {
    let (reply, answer) = oneshot::channel();
    shared
        .core
        .api
        .send(ApiCall::Catalog { request, reply })
        .await
        .map_err(|_| Refusal::stopping())?;
    match answer.await.map_err(|_| Refusal::stopping())? {
        Ok((shown, durable)) => {
            durable.await.map_err(|_| {
                Refusal::json(StatusCode::SERVICE_UNAVAILABLE, "the change was not stored")
            })?;
            Ok(match shown {
                Some(view) => (status, Json(view)).into_response(),
                None => StatusCode::NO_CONTENT.into_response(),
            })
        }
        Err(error @ CatalogError::Unknown(_)) => {
            Err(Refusal::json(StatusCode::NOT_FOUND, error.to_string()))
        }
        Err(error) => Err(Refusal::json(StatusCode::BAD_REQUEST, error.to_string())),
    }
}

async fn views(
    shared: &HttpState,
) -> Result<
    (
        Vec<crate::decide::automations::AutomationView>,
        Vec<crate::decide::automations::SceneView>,
    ),
    Refusal,
> {
    let (reply, answer) = oneshot::channel();
    shared
        .core
        .api
        .send(ApiCall::CatalogViews { reply })
        .await
        .map_err(|_| Refusal::stopping())?;
    answer.await.map_err(|_| Refusal::stopping())
}

async fn list(State(shared): State<Arc<HttpState>>) -> Answer {
    Ok(Json(views(&shared).await?.0).into_response())
}

async fn read(State(shared): State<Arc<HttpState>>, Path(raw): Path<String>) -> Answer {
    let id = id_of(&raw)?;
    let view = views(&shared)
        .await?
        .0
        .into_iter()
        .find(|v| v.spec.id.as_deref() == Some(id.as_str()))
        .ok_or_else(|| Refusal::json(StatusCode::NOT_FOUND, format!("no automation {id}")))?;
    Ok(Json(view).into_response())
}

async fn create(
    State(shared): State<Arc<HttpState>>,
    spec: Result<Json<AutomationSpec>, JsonRejection>,
) -> Answer {
    let spec = body(spec)?;
    let Some(raw) = &spec.id else {
        return Err(Refusal::json(StatusCode::BAD_REQUEST, "id: missing"));
    };
    let id = id_of(raw)?;
    if views(&shared)
        .await?
        .0
        .iter()
        .any(|v| v.spec.id.as_deref() == Some(id.as_str()))
    {
        // POST makes a new one; quietly replacing one would lose it.
        return Err(Refusal::json(
            StatusCode::CONFLICT,
            format!("automation {id} already exists; PUT /api/v1/automations/{id} replaces it"),
        ));
    }
    change(
        &shared,
        CatalogRequest::Automation(id, Some(spec)),
        StatusCode::CREATED,
    )
    .await
}

async fn replace(
    State(shared): State<Arc<HttpState>>,
    Path(raw): Path<String>,
    spec: Result<Json<AutomationSpec>, JsonRejection>,
) -> Answer {
    let id = id_of(&raw)?;
    let spec = body(spec)?;
    change(
        &shared,
        CatalogRequest::Automation(id, Some(spec)),
        StatusCode::OK,
    )
    .await
}

async fn remove(State(shared): State<Arc<HttpState>>, Path(raw): Path<String>) -> Answer {
    let id = id_of(&raw)?;
    change(
        &shared,
        CatalogRequest::Automation(id, None),
        StatusCode::NO_CONTENT,
    )
    .await
}

/// `{"state":"ON"}` (or OFF, TOGGLE), like `.../enabled/set`.
async fn set_enabled(
    State(shared): State<Arc<HttpState>>,
    Path(raw): Path<String>,
    command: Result<Json<serde_json::Value>, JsonRejection>,
) -> Answer {
    let id = id_of(&raw)?;
    let command = super::v1::command(command)?;
    change(
        &shared,
        CatalogRequest::Enabled(id, command),
        StatusCode::OK,
    )
    .await
}

async fn run(State(shared): State<Arc<HttpState>>, Path(raw): Path<String>) -> Answer {
    let id = id_of(&raw)?;
    change(&shared, CatalogRequest::Run(id), StatusCode::ACCEPTED).await
}

#[derive(Debug, serde::Deserialize)]
struct TraceQuery {
    limit: Option<u32>,
}

/// The last runs of an automation, newest first: what fired it, each
/// condition with the value it saw, each step. The core's (the newest,
/// running ones included) over the database's (older ones, and runs from
/// before a restart).
async fn traces(
    State(shared): State<Arc<HttpState>>,
    Path(raw): Path<String>,
    Query(query): Query<TraceQuery>,
) -> Answer {
    let id = id_of(&raw)?;
    let (reply, answer) = oneshot::channel();
    shared
        .core
        .api
        .send(ApiCall::Traces {
            id: id.clone(),
            reply,
        })
        .await
        .map_err(|_| Refusal::stopping())?;
    let held = answer
        .await
        .map_err(|_| Refusal::stopping())?
        .ok_or_else(|| Refusal::json(StatusCode::NOT_FOUND, format!("no automation {id}")))?;
    let limit = query.limit.unwrap_or(20).clamp(1, MAX_TRACES);
    let stored = shared
        .store
        .traces(&id, limit)
        .await
        .map_err(|e| Refusal::json(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let mut by_run: std::collections::BTreeMap<u64, crate::decide::automations::Trace> =
        stored.into_iter().map(|t| (t.run, t)).collect();
    by_run.extend(held.into_iter().map(|t| (t.run, t)));
    let newest: Vec<_> = by_run.into_values().rev().take(limit as usize).collect();
    Ok(Json(newest).into_response())
}

async fn list_scenes(State(shared): State<Arc<HttpState>>) -> Answer {
    Ok(Json(views(&shared).await?.1).into_response())
}

async fn read_scene(State(shared): State<Arc<HttpState>>, Path(raw): Path<String>) -> Answer {
    let id = id_of(&raw)?;
    let view = views(&shared)
        .await?
        .1
        .into_iter()
        .find(|v| v.spec.id.as_deref() == Some(id.as_str()))
        .ok_or_else(|| Refusal::json(StatusCode::NOT_FOUND, format!("no scene {id}")))?;
    Ok(Json(view).into_response())
}

async fn create_scene(
    State(shared): State<Arc<HttpState>>,
    spec: Result<Json<SceneSpec>, JsonRejection>,
) -> Answer {
    let spec = body(spec)?;
    let Some(raw) = &spec.id else {
        return Err(Refusal::json(StatusCode::BAD_REQUEST, "id: missing"));
    };
    let id = id_of(raw)?;
    change(
        &shared,
        CatalogRequest::Scene(id, Some(spec)),
        StatusCode::CREATED,
    )
    .await
}

async fn replace_scene(
    State(shared): State<Arc<HttpState>>,
    Path(raw): Path<String>,
    spec: Result<Json<SceneSpec>, JsonRejection>,
) -> Answer {
    let id = id_of(&raw)?;
    let spec = body(spec)?;
    change(
        &shared,
        CatalogRequest::Scene(id, Some(spec)),
        StatusCode::OK,
    )
    .await
}

async fn remove_scene(State(shared): State<Arc<HttpState>>, Path(raw): Path<String>) -> Answer {
    let id = id_of(&raw)?;
    change(
        &shared,
        CatalogRequest::Scene(id, None),
        StatusCode::NO_CONTENT,
    )
    .await
}

async fn apply(State(shared): State<Arc<HttpState>>, Path(raw): Path<String>) -> Answer {
    let id = id_of(&raw)?;
    change(&shared, CatalogRequest::Apply(id), StatusCode::ACCEPTED).await
}
