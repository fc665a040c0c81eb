//! Liveness, readiness and Prometheus metrics.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::HttpState;

/// Liveness probe: answers while the process runs.
pub const HEALTH_PATH: &str = "/healthz";
/// Readiness probe: see [`readyz`].
pub const READY_PATH: &str = "/readyz";

pub fn routes() -> Router<Arc<HttpState>> {
    Router::new()
        .route(HEALTH_PATH, get(|| async { "ok\n" }))
        .route(READY_PATH, get(readyz))
        .route("/metrics", get(metrics))
}

/// Ready only while the broker routes our topics to us and the database
/// takes writes: a press sent to a ready hub is never dropped unseen.
async fn readyz(State(shared): State<Arc<HttpState>>) -> impl IntoResponse {
    let mut problems = Vec::new();
    if !shared.metrics.broker_connected.load(Relaxed) {
        problems.push("broker disconnected");
    } else if !shared.metrics.subscribed.load(Relaxed) {
        problems.push("subscribing");
    }
    if !shared.metrics.database_ok.load(Relaxed) {
        problems.push("database unreachable");
    } else if shared.metrics.writes_failing.load(Relaxed) {
        problems.push("database writes failing");
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", problems.join(", ")),
        )
    }
}

async fn metrics(State(shared): State<Arc<HttpState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render()
            + &chime_metrics(&shared.chime_stats)
            + &broker_metrics(shared.broker_refusals.as_deref())
            + &shared
                .broker_lost
                .as_deref()
                .map(hearth_broker::LostMessages::render)
                .unwrap_or_default(),
    )
}

/// The embedded broker's refusals; nothing when the hub runs without one.
fn broker_metrics(refusals: Option<&hearth_broker::Refusals>) -> String {
    let Some(refusals) = refusals else {
        return String::new();
    };
    let counts = refusals.counts();
    let mut out = String::from(
        "# HELP hearth_broker_refusals_total What the embedded broker refused: PUBLISH and SUBSCRIBE by its ACL, CONNECT by client id or login.\n# TYPE hearth_broker_refusals_total counter\n",
    );
    for (reason, count) in [
        ("publish", counts.publish),
        ("subscribe", counts.subscribe),
        ("client_id", counts.client_id),
        ("login", counts.login),
    ] {
        out.push_str(&format!(
            "hearth_broker_refusals_total{{reason=\"{reason}\"}} {count}\n"
        ));
    }
    out
}

fn chime_metrics(stats: &crate::chimes::scheduler::ChimeStats) -> String {
    let mut out = String::from(
        "# HELP hearth_chime_runs_total Scheduled chime occurrences by outcome.\n# TYPE hearth_chime_runs_total counter\n",
    );
    for (outcome, counter) in [
        ("played", &stats.played),
        ("played_late", &stats.played_late),
        ("missed", &stats.missed),
        ("claimed_elsewhere", &stats.claimed_elsewhere),
    ] {
        out.push_str(&format!(
            "hearth_chime_runs_total{{outcome=\"{outcome}\"}} {}\n",
            counter.load(Relaxed)
        ));
    }
    out
}
