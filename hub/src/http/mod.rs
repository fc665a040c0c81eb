//! The HTTP side: the dashboard, health and metrics, the homeslice-compatible `/api/v0`, and the JSON `/api/v1`.
//!
//! `app(state)` builds the whole router without a socket, broker or link,
//! so tests can drive it directly; `serve` binds it with graceful shutdown.

mod automations;
mod chimes;
mod dashboard;
pub mod guard;
mod live;
mod logbook;
mod logins;
mod ops;
mod state;
mod timeline;
mod v0;
mod v1;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hearth_protocol::{Command, OnOff, OutputRef};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use live::MAX_LISTED as MAX_LISTED_IN_SNAPSHOT;
pub use logins::{LoggedIn, Logins};

pub use state::HttpState;

use crate::handle::ApiCall;

/// Largest request body accepted; every API body is a few bytes of JSON.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The whole HTTP API.
pub fn app(shared: Arc<HttpState>) -> Router {
    Router::new()
        .merge(ops::routes())
        .merge(v0::routes())
        .merge(v1::routes())
        .merge(chimes::routes())
        .merge(logbook::routes())
        .merge(timeline::routes())
        .merge(automations::routes())
        .merge(live::routes())
        .merge(dashboard::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            logins::require_login,
        ))
        // Outside the login: a foreign page or host costs no password check.
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            guard::guard,
        ))
        // gzip for the page and JSON when the client asks; tiny bodies and
        // the event stream (which must flush each event) are left alone.
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(shared)
}

/// Serves `router` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken) {
    // The client's address reaches the handlers: the v0 networks and the
    // failed-login log need it.
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, service)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(error) = result {
        tracing::error!(%error, "HTTP server failed");
    }
}

/// Binds the HTTP listener, naming the address on failure.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, std::io::Error> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen for HTTP on {addr}: {e}; is something else on that port? Change [http] listen"),
        )
    })
}

/// Adds `path` and `path/` for the same handler: IoT firmware in the wild
/// calls both.
fn with_and_without_slash(
    router: Router<Arc<HttpState>>,
    path: &str,
    handler: axum::routing::MethodRouter<Arc<HttpState>>,
) -> Router<Arc<HttpState>> {
    router
        .route(path, handler.clone())
        .route(&format!("{path}/"), handler)
}

/// A refused request: a status and a one-line reason, rendered as plain
/// text for `/api/v0` devices and as `{"error": "..."}` for `/api/v1`.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
    json: bool,
}

impl Refusal {
    fn text(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            json: false,
        }
    }

    fn json(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            json: true,
            ..Self::text(status, message)
        }
    }

    /// The core has stopped taking calls: the hub is on its way down.
    fn stopping() -> Self {
        Self::json(StatusCode::SERVICE_UNAVAILABLE, "the hub is stopping")
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        if self.json {
            let body = serde_json::json!({ "error": self.message });
            (self.status, axum::Json(body)).into_response()
        } else {
            (self.status, format!("{}\n", self.message)).into_response()
        }
    }
}

impl OutputError {
    fn describe(&self, output: &OutputRef) -> (StatusCode, String) {
        match self {
            Self::Timeout(waited) => (
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "{output} did not confirm within {} ms; is its node agent online?",
                    waited.as_millis()
                ),
            ),
            Self::HubStopping => (
                StatusCode::SERVICE_UNAVAILABLE,
                "hub is stopping".to_owned(),
            ),
        }
    }
}

/// The login that made a request, if logins are on.
type User = Option<axum::Extension<LoggedIn>>;

fn user_name(user: User) -> Option<String> {
    user.map(|axum::Extension(LoggedIn(name))| name)
}

/// Sets a button through the core task and waits until the change is durable.
async fn set_button_durably(
    shared: &HttpState,
    id: hearth_protocol::Id,
    command: Command,
    user: User,
) -> Result<OnOff, OutputError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    shared
        .core
        .api
        .send(ApiCall::SetButton {
            id,
            command,
            by: user_name(user),
            reply,
        })
        .await
        .map_err(|_| OutputError::HubStopping)?;
    let (state, durable) = answer.await.map_err(|_| OutputError::HubStopping)?;
    durable.await.map_err(|_| OutputError::HubStopping)?;
    Ok(state)
}

#[derive(Debug)]
enum OutputError {
    HubStopping,
    Timeout(Duration),
}

/// Commands `output` and waits until its agent confirms the new state.
async fn command_and_confirm(
    shared: &HttpState,
    output: &OutputRef,
    command: Command,
    user: User,
) -> Result<OnOff, OutputError> {
    // Subscribe before sending so a fast confirmation is not missed.
    let mut confirmations = shared.core.confirmations.subscribe();
    let (reply, sent) = tokio::sync::oneshot::channel();
    shared
        .core
        .api
        .send(ApiCall::CommandOutput {
            output: output.clone(),
            command,
            by: user_name(user),
            reply,
        })
        .await
        .map_err(|_| OutputError::HubStopping)?;
    let wanted = sent.await.map_err(|_| OutputError::HubStopping)?;
    let timeout = shared.settings.switch_timeout;
    let wait = async {
        loop {
            match confirmations.recv().await {
                Ok((o, state)) if &o == output && state == wanted => return Ok(state),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return Err(OutputError::HubStopping),
            }
        }
    };
    tokio::time::timeout(timeout, wait)
        .await
        .map_err(|_| OutputError::Timeout(timeout))?
}
