//! `/api/v1`: JSON for buttons, nodes (with climate history) and node outputs.
//!
//! Errors are `{"error": "..."}` with a 4xx or 5xx status.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::Utc;
use hearth_protocol::{Brightness, Command, Id, OutputKind, OutputRef};
use serde::Deserialize;

use super::HttpState;
use super::{Refusal, User, command_and_confirm, set_button_durably};

/// Longest history window a client may ask for.
const MAX_HISTORY_HOURS: u32 = 24 * 31;
/// Most points a client may ask a history to be averaged into.
const MAX_HISTORY_POINTS: usize = 10_000;

pub fn routes() -> Router<Arc<HttpState>> {
    Router::new()
        .route("/api/v1/hub", get(hub))
        .route("/api/v1/buttons", get(list_buttons))
        .route(
            "/api/v1/buttons/{id}",
            get(get_button)
                .put(set_button)
                .post(set_button)
                .delete(forget_button),
        )
        .route("/api/v1/nodes", get(list_nodes))
        .route("/api/v1/nodes/{id}", get(get_node))
        .route("/api/v1/nodes/{id}/history", get(history))
        .route("/api/v1/outputs", get(list_outputs))
        .route(
            "/api/v1/outputs/{node}/{kind}/{name}",
            get(get_output).put(set_output).post(set_output),
        )
        .route(
            "/api/v1/outputs/{node}/{kind}/{name}/brightness",
            put(set_brightness).post(set_brightness),
        )
}

type Answer = Result<Response, Refusal>;

fn id(raw: &str, what: &str) -> Result<Id, Refusal> {
    Id::new(raw).map_err(|e| Refusal::json(StatusCode::BAD_REQUEST, format!("bad {what} id: {e}")))
}

/// A state change request: `{"state":"ON"}` (or OFF, TOGGLE).
pub(super) fn command(
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Command, Refusal> {
    let Json(value) = body.map_err(|e| Refusal::json(e.status(), e.body_text()))?;
    let text = value.to_string();
    Command::parse(text.as_bytes())
        .map_err(|e| Refusal::json(StatusCode::BAD_REQUEST, e.to_string()))
}

/// This hub: its role among replicas, version, time zone, clock and links.
async fn hub(State(shared): State<Arc<HttpState>>) -> Response {
    Json(super::live::HubView::of(&shared, Utc::now())).into_response()
}

async fn list_buttons(State(shared): State<Arc<HttpState>>) -> Response {
    Json(shared.house().buttons.into_values().collect::<Vec<_>>()).into_response()
}

async fn get_button(State(shared): State<Arc<HttpState>>, Path(raw): Path<String>) -> Answer {
    let id = id(&raw, "button")?;
    match shared.house().buttons.get(&id) {
        Some(b) => Ok(Json(b).into_response()),
        None => Err(Refusal::json(
            StatusCode::NOT_FOUND,
            format!("unknown button {id}"),
        )),
    }
}

async fn set_button(
    State(shared): State<Arc<HttpState>>,
    Path(raw): Path<String>,
    user: User,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Answer {
    let id = id(&raw, "button")?;
    let command = command(body)?;
    set_button_durably(&shared, id.clone(), command, user)
        .await
        .map_err(|_| Refusal::json(StatusCode::SERVICE_UNAVAILABLE, "hub is stopping"))?;
    match shared.house().buttons.get(&id) {
        Some(b) => Ok(Json(b).into_response()),
        None => Err(Refusal::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            "button vanished",
        )),
    }
}

/// Forgets a button: its stored state, its retained topic and its Home
/// Assistant entities. It comes back if it is pressed or set again.
async fn forget_button(State(shared): State<Arc<HttpState>>, Path(raw): Path<String>) -> Answer {
    let id = id(&raw, "button")?;
    let stopping = || Refusal::json(StatusCode::SERVICE_UNAVAILABLE, "hub is stopping");
    let (reply, answer) = tokio::sync::oneshot::channel();
    shared
        .core
        .api
        .send(crate::handle::ApiCall::ForgetButton {
            id: id.clone(),
            reply,
        })
        .await
        .map_err(|_| stopping())?;
    match answer.await.map_err(|_| stopping())? {
        Some(durable) => {
            durable.await.map_err(|_| stopping())?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        None => Err(Refusal::json(
            StatusCode::NOT_FOUND,
            format!("unknown button {id}"),
        )),
    }
}

async fn list_nodes(State(shared): State<Arc<HttpState>>) -> Response {
    Json(shared.house().nodes.into_values().collect::<Vec<_>>()).into_response()
}

async fn get_node(State(shared): State<Arc<HttpState>>, Path(raw): Path<String>) -> Answer {
    let id = id(&raw, "node")?;
    match shared.house().nodes.get(&id) {
        Some(n) => Ok(Json(n).into_response()),
        None => Err(Refusal::json(
            StatusCode::NOT_FOUND,
            format!("unknown node {id}"),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    hours: Option<u32>,
    /// At most this many points, each the mean of its time bucket.
    points: Option<usize>,
}

async fn history(
    State(shared): State<Arc<HttpState>>,
    Path(raw): Path<String>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let id = id(&raw, "node")?;
    let Query(query) = query.map_err(|e| Refusal::json(StatusCode::BAD_REQUEST, e.body_text()))?;
    let hours = query.hours.unwrap_or(24);
    if hours == 0 || hours > MAX_HISTORY_HOURS {
        return Err(Refusal::json(
            StatusCode::BAD_REQUEST,
            format!("hours must be 1 to {MAX_HISTORY_HOURS}"),
        ));
    }
    if query
        .points
        .is_some_and(|p| p == 0 || p > MAX_HISTORY_POINTS)
    {
        return Err(Refusal::json(
            StatusCode::BAD_REQUEST,
            format!("points must be 1 to {MAX_HISTORY_POINTS}"),
        ));
    }
    let now = Utc::now();
    let since = now - chrono::Duration::hours(hours.into());
    let mut readings = shared
        .store
        .history(&id, since)
        .await
        .map_err(|e| Refusal::json(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    if let Some(points) = query.points {
        readings = crate::history::downsample(readings, since, now, points);
    }
    Ok(Json(readings).into_response())
}

async fn list_outputs(State(shared): State<Arc<HttpState>>) -> Response {
    let house = shared.house();
    Json(super::live::output_views(house.outputs, &house.brightness)).into_response()
}

fn output(node: &str, kind: &str, name: &str) -> Result<OutputRef, Refusal> {
    Ok(OutputRef {
        node: id(node, "node")?,
        kind: kind
            .parse::<OutputKind>()
            .map_err(|e| Refusal::json(StatusCode::BAD_REQUEST, e.to_string()))?,
        name: id(name, "output")?,
    })
}

async fn get_output(
    State(shared): State<Arc<HttpState>>,
    Path((node, kind, name)): Path<(String, String, String)>,
) -> Answer {
    let output = output(&node, &kind, &name)?;
    match shared.house().outputs.get(&output) {
        Some(o) => Ok(Json(serde_json::json!({
            "output": output.to_string(),
            "state": o.state,
            "changed_at": o.changed_at,
        }))
        .into_response()),
        None => Err(Refusal::json(
            StatusCode::NOT_FOUND,
            format!("no state known for {output}"),
        )),
    }
}

async fn set_output(
    State(shared): State<Arc<HttpState>>,
    Path((node, kind, name)): Path<(String, String, String)>,
    user: User,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Answer {
    let output = output(&node, &kind, &name)?;
    let command = command(body)?;
    let state = command_and_confirm(&shared, &output, command, user)
        .await
        .map_err(|e| {
            let (status, message) = e.describe(&output);
            Refusal::json(status, message)
        })?;
    Ok(Json(serde_json::json!({ "output": output.to_string(), "state": state })).into_response())
}

/// `{"brightness":0..255}` (or a plain number) for a dimmable light: sent
/// on `.../brightness/set` at once. The level shown (`brightness` in the
/// outputs and the snapshot) is the one its agent then reports.
async fn set_brightness(
    State(shared): State<Arc<HttpState>>,
    Path((node, kind, name)): Path<(String, String, String)>,
    user: User,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Answer {
    let output = output(&node, &kind, &name)?;
    if output.kind != OutputKind::Light {
        return Err(Refusal::json(
            StatusCode::BAD_REQUEST,
            format!("kind: only a light dims, not a {}", output.kind.as_str()),
        ));
    }
    let Json(value) = body.map_err(|e| Refusal::json(e.status(), e.body_text()))?;
    let level = Brightness::parse(value.to_string().as_bytes())
        .map_err(|e| Refusal::json(StatusCode::BAD_REQUEST, format!("brightness: {e}")))?;
    let (reply, sent) = tokio::sync::oneshot::channel();
    shared
        .core
        .api
        .send(crate::handle::ApiCall::Brightness {
            output: output.clone(),
            level,
            by: super::user_name(user),
            reply,
        })
        .await
        .map_err(|_| Refusal::stopping())?;
    sent.await.map_err(|_| Refusal::stopping())?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "output": output.to_string(), "brightness": level.0 })),
    )
        .into_response())
}
