//! Hearth's hub: button state, rules, the clock and persistence, behind MQTT and an HTTP API.
//!
//! `start(settings)` brings up (optionally) the embedded broker, the store,
//! the MQTT link, the core task and the HTTP server, and returns a [`Hub`]
//! handle; `run` does the same until a shutdown token fires.

pub mod brain;
pub mod chimes;
pub mod cli;
pub mod clock;
pub mod config;
pub mod core;
pub mod discovery;
pub mod history;
pub mod house;
pub mod http;
pub mod ingest;
pub mod leader;
pub mod metrics;
pub mod readings;
pub mod revision;
pub mod rules;
pub mod service;
pub mod store;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use hearth_broker::RunningBroker;
use hearth_common::mqtt::{self, EVENT_CHANNEL_CAPACITY};
use hearth_protocol::Topic;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::{HubConfig, Settings};

use crate::metrics::Metrics;
use crate::service::{API_QUEUE_CAPACITY, CONFIRMATION_CAPACITY, Shared};
use crate::store::Store;

/// Unacknowledged QoS 1 publishes the hub may have in flight.
pub const HUB_OUTGOING_INFLIGHT: u16 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("embedded broker: {0}")]
    Broker(#[from] hearth_broker::StartError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Http(std::io::Error),
    #[error("http logins: {0}")]
    HttpLogins(#[from] hearth_broker::AuthError),
    #[error("mqtt: {0}")]
    Mqtt(#[from] mqtt::MqttError),
    #[error("a hub task failed: {0}")]
    Task(String),
}

/// A running hub.
#[derive(Debug)]
pub struct Hub {
    pub http_addr: SocketAddr,
    pub mqtt_url: String,
    pub shared: Arc<Shared>,
    broker: Option<RunningBroker>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Hub {
    pub fn broker(&self) -> Option<&RunningBroker> {
        self.broker.as_ref()
    }

    /// Stops every task: the core publishes `offline`, the writer flushes
    /// what is queued, the HTTP server finishes requests in flight.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Starts the hub with validated `settings`.
pub async fn start(settings: Settings) -> Result<Hub, HubError> {
    let broker = match settings.broker.clone() {
        Some(config) => Some(
            tokio::task::spawn_blocking(move || hearth_broker::start(&config))
                .await
                .map_err(|e| HubError::Task(e.to_string()))??,
        ),
        None => None,
    };
    let mut mqtt_settings = settings.mqtt.clone();
    if let Some(b) = &broker {
        // Port 0 in the config means "any free port": follow where it landed.
        if settings
            .broker
            .as_ref()
            .is_some_and(|c| c.listen.port() == 0)
        {
            mqtt_settings.url = b.local_url();
        }
    }
    let store = Store::connect(&settings.database).await?;
    let house = store.load().await?;
    let recent = service::load_recent_ids(&store).await?;
    let removed_chimes = store.sync_config_chimes(&settings.chimes).await?;
    let registry = Arc::new(chimes::scheduler::Registry::new(
        store.load_chimes(settings.timezone).await?,
    ));
    tracing::info!(
        backend = ?store.backend(),
        buttons = house.buttons.len(),
        outputs = house.outputs.len(),
        nodes = house.nodes.len(),
        "state loaded"
    );

    let will = mqtt::offline_will(&settings.topics.build(&Topic::HubAvailability));
    let mut options = mqtt_settings.options(&settings.client_id, Some(will))?;
    // A persistent session: the broker keeps what we have not acknowledged
    // while the hub restarts, and we acknowledge only after committing.
    options.set_clean_session(false);
    options.set_manual_acks(true);
    // Acks wait in rumqttc's request queue behind our own publishes, and
    // rumqttc stops reading that queue while its outgoing window is full.
    // rumqttd in turn stops acking our publishes while its window towards us
    // is full of messages we have not acked yet. A window far larger than
    // what one broker window of messages can make us publish breaks that
    // cycle (seen after a kill -9 with 100 messages waiting).
    options.set_inflight(HUB_OUTGOING_INFLIGHT);
    let (client, eventloop) = mqtt::client(options);

    let metrics = Arc::new(Metrics::default());
    metrics
        .database_ok
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let (api_tx, api_rx) = mpsc::channel(API_QUEUE_CAPACITY);
    let (confirmations, _) = broadcast::channel(CONFIRMATION_CAPACITY);
    let http_listener = http::bind(settings.http.listen)
        .await
        .map_err(HubError::Http)?;
    let http_addr = http_listener.local_addr().map_err(HubError::Http)?;
    let logins = http::Logins::from_settings(&settings.http)?;
    if !http_addr.ip().is_loopback() && logins.is_none() {
        // Like homeslice, the HTTP side trusts its network: say so once.
        tracing::warn!(%http_addr, "the dashboard and HTTP API have no login: anyone who can reach this address can switch lights; name users in [http] (docs/http-api.md)");
    }
    let (role_tx, role_rx) = tokio::sync::watch::channel(leader::Role::Undecided);
    let (chime_tx, chime_rx) = mpsc::channel(chimes::manage::CHIME_EVENT_CAPACITY);
    for id in removed_chimes {
        if let Ok(id) = hearth_protocol::Id::new(&id) {
            tracing::info!(chime = %id, "chime removed from the config");
            let _ = chime_tx.try_send(chimes::manage::ChimeEvent::Removed(id));
        }
    }
    let chimes = chimes::manage::Chimes {
        store: store.clone(),
        registry: registry.clone(),
        events: chime_tx.clone(),
        default_tz: settings.timezone,
        role: role_rx.clone(),
    };
    let chime_stats = Arc::new(chimes::scheduler::ChimeStats::default());
    let topics = settings.topics.clone();
    let shutdown = CancellationToken::new();
    let shared = Arc::new(Shared {
        role: role_rx.clone(),
        chimes,
        chime_stats: chime_stats.clone(),
        settings,
        house: RwLock::new(house),
        metrics: metrics.clone(),
        store: store.clone(),
        api: api_tx,
        confirmations,
        house_revision: revision::Revision::default(),
        stopping: shutdown.clone(),
        logins,
    });

    let mut tasks = JoinSet::new();
    let (link_tx, link_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let (write_tx, write_rx) = mpsc::channel(ingest::WRITE_QUEUE_CAPACITY);
    // The link outlives the core by a moment so the final `offline` and the
    // writer's last acks still go out; it stops when the writer is done.
    let link_stop = CancellationToken::new();
    let connection = ingest::Connection::default();
    let writer_done = {
        let connection = connection.clone();
        let client = client.clone();
        let metrics = metrics.clone();
        tokio::spawn(ingest::run_writer(
            store.clone(),
            connection,
            client,
            write_rx,
            metrics,
        ))
    };
    {
        let link_stop = link_stop.clone();
        let client = client.clone();
        tasks.spawn(async move {
            let _ = writer_done.await;
            // Give the last acks and the `offline` message a moment to leave.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let _ = client.try_disconnect();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            link_stop.cancel();
        });
    }
    tasks.spawn({
        let link_stop = link_stop.clone();
        async move {
            mqtt::drive(eventloop, link_tx, link_stop).await;
        }
    });
    tasks.spawn(core::run_core(
        shared.clone(),
        client.clone(),
        link_rx,
        api_rx,
        write_tx,
        recent,
        role_rx.clone(),
        connection,
        shutdown.clone(),
    ));
    tasks.spawn(leader::run(
        shared.settings.database.url.clone(),
        role_tx,
        shutdown.clone(),
    ));
    // Know our role before anything acts on it; a Postgres that does not
    // answer leaves us standing by, and the election keeps trying.
    let mut first_role = role_rx.clone();
    let _ = tokio::time::timeout(leader::POLL_INTERVAL * 6, first_role.changed()).await;
    tasks.spawn(service::run_clock(
        shared.clone(),
        client.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(service::run_housekeeping(shared.clone(), shutdown.clone()));
    tasks.spawn(chimes::scheduler::run_while_leader(
        registry.clone(),
        store.clone(),
        role_rx,
        chime_tx,
        chime_stats,
        shared.settings.timezone,
        shutdown.clone(),
    ));
    tasks.spawn(chimes::manage::run_publisher(
        registry,
        topics,
        client.clone(),
        chime_rx,
        discovery::HubDiscovery::new(&shared.settings),
        shutdown.clone(),
    ));
    tasks.spawn(http::serve(
        http_listener,
        http::app(shared.clone()),
        shutdown.clone(),
    ));

    Ok(Hub {
        http_addr,
        mqtt_url: mqtt_settings.url,
        shared,
        broker,
        shutdown,
        tasks,
    })
}

/// Runs the hub until `shutdown` is cancelled.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), HubError> {
    let hub = start(settings).await?;
    shutdown.cancelled().await;
    hub.stop().await;
    Ok(())
}
