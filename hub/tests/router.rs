//! The HTTP router on its own: no broker, no MQTT link, no core task. The
//! test holds the core's end of the handle and answers the calls itself.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use hearth_hub::chimes::manage::Chimes;
use hearth_hub::chimes::scheduler::{ChimeStats, Registry};
use hearth_hub::handle::{self, ApiCall};
use hearth_hub::http::{HttpState, app};
use hearth_hub::leader::Role;
use hearth_hub::metrics::Metrics;
use hearth_hub::model::house::{ButtonRecord, House};
use hearth_hub::shared_house::SharedHouse;
use hearth_hub::{HubConfig, store::Store};
use hearth_protocol::{Command, Id, OnOff};
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

async fn body(response: axum::response::Response) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn the_router_reads_the_house_and_hands_changes_to_the_core() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HubConfig::default();
    config.database.url = format!("sqlite://{}/hearth.db", dir.path().display());
    let settings = Arc::new(config.validate().unwrap());
    let store = Store::connect(&settings.database).await.unwrap();
    let desk = Id::new("desk").unwrap();
    let mut house = House::default();
    let mut record = ButtonRecord::new(desk.clone(), Utc::now());
    record.state = OnOff::On;
    house.buttons.insert(desk.clone(), record);
    let (_role_tx, role) = tokio::sync::watch::channel(Role::Leader);
    let (events, _events_rx) = tokio::sync::mpsc::channel(1);
    let (core, mut core_end) = handle::channel();
    let state = Arc::new(HttpState {
        settings: settings.clone(),
        role: role.clone(),
        chimes: Chimes {
            store: store.clone(),
            registry: Arc::new(Registry::new(Vec::new())),
            events,
            default_tz: settings.timezone,
            role,
            logbook: Default::default(),
        },
        chime_stats: Arc::new(ChimeStats::default()),
        house: SharedHouse::new(house),
        catalog: Default::default(),
        metrics: Arc::new(Metrics::default()),
        store,
        core,
        logins: None,
        names: Default::default(),
        stopping: CancellationToken::new(),
        broker_refusals: None,
        broker_lost: None,
        logbook: Default::default(),
    });
    let router = app(state);

    let read = Request::get("/api/v0/buttons/desk")
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(read).await.unwrap();
    let status = response.status();
    let text = body(response).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, "ON\n"),
        "GET desk"
    );

    // The change goes to the core; this test plays the core.
    let core = tokio::spawn(async move {
        match core_end.calls.recv().await {
            Some(ApiCall::SetButton {
                id, command, reply, ..
            }) => {
                let (done, durable) = tokio::sync::oneshot::channel();
                let _ = reply.send((OnOff::On.apply(command), durable));
                let _ = done.send(());
                (id, command)
            }
            other => panic!("expected a SetButton call, got {other:?}"),
        }
    });
    let set = Request::post("/api/v0/buttons/desk/off")
        .body(Body::empty())
        .unwrap();
    let response = router.oneshot(set).await.unwrap();
    let status = response.status();
    let text = body(response).await;
    assert_eq!(status, StatusCode::OK, "POST off answered {text:?}");
    assert_eq!(core.await.unwrap(), (desk, Command::Off));
}
