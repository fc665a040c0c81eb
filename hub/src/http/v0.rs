//! `/api/v0`: byte-for-byte what homeslice's IoT buttons, clocks and switches expect.
//!
//! Bodies are plain text: `OK` (no newline) after a change, `ON\n` or `OFF\n`
//! for a state, `ON:1420\n` for state plus local time, `1420` for the clock.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use hearth_protocol::{Command, Id};

use super::HttpState;
use super::{Refusal, User, command_and_confirm, set_button_durably, with_and_without_slash};
use crate::decide::clock;

type Answer = Result<Response, Refusal>;

pub fn routes() -> Router<Arc<HttpState>> {
    let mut r = Router::new();
    r = with_and_without_slash(r, "/api/v0/buttons", get(list_buttons));
    r = with_and_without_slash(r, "/api/v0/buttons/{id}", get(get_button));
    r = with_and_without_slash(r, "/api/v0/buttons/{id}/{op}", post(set_button));
    r = with_and_without_slash(r, "/api/v0/buttontimes/{id}", get(button_time));
    r = with_and_without_slash(r, "/api/v0/clocktime", get(clocktime));
    r = with_and_without_slash(r, "/api/v0/switches/{id}/{op}", post(switch));
    r
}

fn plain(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn parse_id(raw: &str) -> Result<Id, Refusal> {
    Id::new(raw).map_err(|e| Refusal::text(StatusCode::BAD_REQUEST, format!("bad id: {e}")))
}

async fn list_buttons(State(shared): State<Arc<HttpState>>) -> Response {
    let house = shared.house();
    let list: Vec<serde_json::Value> = house
        .buttons
        .values()
        .map(|b| serde_json::json!({ "id": b.id, "state": b.state }))
        .collect();
    axum::Json(list).into_response()
}

fn button_state(shared: &HttpState, raw: &str) -> Result<&'static str, Refusal> {
    let id = parse_id(raw)?;
    shared
        .house()
        .buttons
        .get(&id)
        .map(|b| b.state.as_str())
        .ok_or_else(|| Refusal::text(StatusCode::NOT_FOUND, format!("unknown button {id}")))
}

async fn get_button(State(shared): State<Arc<HttpState>>, Path(id): Path<String>) -> Answer {
    Ok(plain(format!("{}\n", button_state(&shared, &id)?)))
}

async fn button_time(State(shared): State<Arc<HttpState>>, Path(id): Path<String>) -> Answer {
    let state = button_state(&shared, &id)?;
    let now = clock::hhmm(shared.settings.timezone, Utc::now());
    Ok(plain(format!("{state}:{now}\n")))
}

async fn clocktime(State(shared): State<Arc<HttpState>>) -> Response {
    plain(clock::hhmm(shared.settings.timezone, Utc::now()))
}

async fn set_button(
    State(shared): State<Arc<HttpState>>,
    Path((id, op)): Path<(String, String)>,
    user: User,
) -> Answer {
    let id = parse_id(&id)?;
    let command = match op.as_str() {
        "on" => Command::On,
        "off" => Command::Off,
        // Not in homeslice's firmware, but MQTT has it and a person with
        // curl expects the same.
        "toggle" => Command::Toggle,
        _ => {
            return Err(Refusal::text(
                StatusCode::BAD_REQUEST,
                format!("unknown operation {op:?}: use on, off or toggle"),
            ));
        }
    };
    set_button_durably(&shared, id, command, user)
        .await
        .map_err(|_| Refusal::text(StatusCode::SERVICE_UNAVAILABLE, "hub is stopping"))?;
    Ok(plain("OK".to_owned()))
}

async fn switch(
    State(shared): State<Arc<HttpState>>,
    Path((id, op)): Path<(String, String)>,
    user: User,
) -> Answer {
    let id = parse_id(&id)?;
    let command = match op.as_str() {
        "on" => Command::On,
        "off" => Command::Off,
        "toggle" => Command::Toggle,
        _ => {
            return Err(Refusal::text(
                StatusCode::BAD_REQUEST,
                format!("unknown operation {op:?}: use on, off or toggle"),
            ));
        }
    };
    let Some(output) = shared.settings.switches.get(&id) else {
        return Err(Refusal::text(
            StatusCode::NOT_FOUND,
            format!("unknown switch {id}: map it under [switches]"),
        ));
    };
    command_and_confirm(&shared, output, command, user)
        .await
        .map_err(|e| {
            let (status, message) = e.describe(output);
            Refusal::text(status, message)
        })?;
    Ok(plain("OK".to_owned()))
}
