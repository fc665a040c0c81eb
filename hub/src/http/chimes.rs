//! `/api/v1/chimes`: list, create, read, replace, delete and play chimes.
//!
//! Bodies are the chime JSON of `hearth/hub/chimes/<id>/set`; a bad field
//! is a 400 naming the field, and nothing is saved.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::Utc;
use hearth_protocol::Id;

use super::HttpState;
use super::Refusal;
use crate::chimes::ChimeSpec;
use crate::chimes::manage::ManageError;

type Answer = Result<Response, Refusal>;

pub fn routes() -> Router<Arc<HttpState>> {
    Router::new()
        .route("/api/v1/chimes", get(list).post(create))
        .route("/api/v1/chimes/{id}", get(read).put(replace).delete(remove))
        .route("/api/v1/chimes/{id}/play", post(play))
        .route(
            "/api/v1/chimes/{id}/enabled",
            put(set_enabled).post(set_enabled),
        )
}

fn refuse(error: ManageError) -> Refusal {
    let status = match &error {
        ManageError::Invalid(_) | ManageError::Json(_) => StatusCode::BAD_REQUEST,
        ManageError::Unknown(_) => StatusCode::NOT_FOUND,
        ManageError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    Refusal::json(status, error.to_string())
}

fn chime_id(raw: &str) -> Result<Id, Refusal> {
    Id::new(raw).map_err(|e| Refusal::json(StatusCode::BAD_REQUEST, format!("id: {e}")))
}

fn spec(body: Result<Json<ChimeSpec>, JsonRejection>) -> Result<ChimeSpec, Refusal> {
    body.map(|Json(s)| s).map_err(|e| {
        // A body that is JSON but not a chime is a bad request like any
        // other bad field (axum would say 422); too large stays 413.
        let status = match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Refusal::json(status, e.body_text())
    })
}

async fn list(State(shared): State<Arc<HttpState>>) -> Response {
    let now = Utc::now();
    let views: Vec<_> = shared
        .chimes
        .registry
        .snapshot()
        .values()
        .map(|c| c.view(now))
        .collect();
    Json(views).into_response()
}

async fn read(State(shared): State<Arc<HttpState>>, Path(raw): Path<String>) -> Answer {
    let id = chime_id(&raw)?;
    let chime = shared
        .chimes
        .registry
        .get(&id)
        .ok_or_else(|| refuse(ManageError::Unknown(id)))?;
    Ok(Json(chime.view(Utc::now())).into_response())
}

async fn create(
    State(shared): State<Arc<HttpState>>,
    body: Result<Json<ChimeSpec>, JsonRejection>,
) -> Answer {
    let spec = spec(body)?;
    let Some(raw) = &spec.id else {
        return Err(Refusal::json(StatusCode::BAD_REQUEST, "id: missing"));
    };
    let id = chime_id(raw)?;
    if shared.chimes.registry.get(&id).is_some() {
        // POST makes a new chime; quietly replacing one would lose it.
        return Err(Refusal::json(
            StatusCode::CONFLICT,
            format!("chime {id} already exists; PUT /api/v1/chimes/{id} replaces it"),
        ));
    }
    let chime = shared.chimes.upsert(None, &spec).await.map_err(refuse)?;
    Ok((StatusCode::CREATED, Json(chime.view(Utc::now()))).into_response())
}

async fn replace(
    State(shared): State<Arc<HttpState>>,
    Path(raw): Path<String>,
    body: Result<Json<ChimeSpec>, JsonRejection>,
) -> Answer {
    let id = chime_id(&raw)?;
    let spec = spec(body)?;
    let chime = shared
        .chimes
        .upsert(Some(&id), &spec)
        .await
        .map_err(refuse)?;
    Ok(Json(chime.view(Utc::now())).into_response())
}

async fn remove(State(shared): State<Arc<HttpState>>, Path(raw): Path<String>) -> Answer {
    let id = chime_id(&raw)?;
    shared.chimes.delete(&id).await.map_err(refuse)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn play(
    State(shared): State<Arc<HttpState>>,
    Path(raw): Path<String>,
    user: super::User,
) -> Answer {
    let id = chime_id(&raw)?;
    let source = crate::decide::logbook::http_source(super::user_name(user).as_deref());
    shared.chimes.play_now(&id, &source).await.map_err(refuse)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "playing": id })),
    )
        .into_response())
}

/// `{"state":"ON"}` (or OFF, TOGGLE): the dashboard's and Home Assistant's
/// switch, like `hearth/hub/chimes/<id>/enabled/set`; nothing else changes.
async fn set_enabled(
    State(shared): State<Arc<HttpState>>,
    Path(raw): Path<String>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Answer {
    let id = chime_id(&raw)?;
    let command = super::v1::command(body)?;
    let chime = shared
        .chimes
        .set_enabled(&id, command)
        .await
        .map_err(refuse)?;
    Ok(Json(chime.view(Utc::now())).into_response())
}
