//! Hearth's hub: button state, rules, the clock and persistence, behind MQTT and an HTTP API.
//!
//! `start(settings)` brings up (optionally) the embedded broker, the store,
//! the MQTT link, the core task and the HTTP server, and returns a [`Hub`]
//! handle; `run` does the same until a shutdown token fires.

// The layers, bottom up; imports only point down (docs/architecture.md).
// 1. The house and the effects of a decision, as pure data.
pub mod model;
// 2. Pure decisions. `chimes` holds the chime model and schedule maths,
//    with the chime registry (3) and the chime tasks (4) beside it.
pub mod chimes;
pub mod decide;
// 3. Adapters: settings, store, metrics, leader election, shared state.
pub mod config;
pub mod history;
pub mod leader;
pub mod logbook_feed;
pub mod metrics;
pub mod publish;
pub mod revision;
pub mod shared_catalog;
pub mod shared_house;
pub mod store;
// 4. Tasks: the core, the writer, the clock, housekeeping.
pub mod tasks;
// 5. The handle HTTP holds on the core; 6. HTTP; 7. `start`, below.
pub mod handle;
pub mod http;
// The command line's one-shot helpers.
pub mod cli;

use std::net::SocketAddr;
use std::sync::Arc;

use hearth_broker::RunningBroker;
use hearth_common::mqtt::{self, EVENT_CHANNEL_CAPACITY};
use hearth_protocol::Topic;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::{HubConfig, Settings};

use crate::metrics::Metrics;
use crate::model::house::House;
use crate::shared_house::SharedHouse;
use crate::store::Store;
use crate::tasks::{clock, core, housekeeping, writer};

/// Longest a stopping hub waits for its last messages to reach the broker:
/// only a hang (a broker that stopped reading) takes this long.
const LINK_CLOSE_BOUND: std::time::Duration = std::time::Duration::from_secs(5);

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
    settings: Arc<Settings>,
    house: SharedHouse,
    broker: Option<RunningBroker>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Hub {
    pub fn broker(&self) -> Option<&RunningBroker> {
        self.broker.as_ref()
    }

    /// The settings the hub runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A consistent copy of the hub's house, as HTTP would show it.
    pub fn house(&self) -> House {
        self.house.snapshot()
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
    // The hub links to its own broker in process (no socket, no login: see
    // hearth_broker::local_client). A configured [mqtt] username keeps the
    // old way: the public listener with that login.
    let local = settings.broker.is_some() && settings.mqtt.username.is_none();
    let broker = match settings.broker.clone() {
        Some(config) => Some(
            tokio::task::spawn_blocking(move || hearth_broker::start(&config))
                .await
                .map_err(|e| HubError::Task(e.to_string()))??,
        ),
        None => None,
    };
    let mut mqtt_settings = settings.mqtt.clone();
    let mut public_url = mqtt_settings.url.clone();
    if let Some(b) = &broker {
        // Port 0 in the config means "any free port": follow where it landed.
        public_url = b.local_url();
        mqtt_settings.url = public_url.clone();
    }
    let store = Store::connect(&settings.database).await?;
    let house = store.load().await?;
    let recent = housekeeping::load_recent_ids(&store).await?;
    let removed_chimes = store.sync_config_chimes(&settings.chimes).await?;
    let automation_cx = decide::automations::Context {
        timezone: settings.timezone,
        located: settings.place.is_some(),
    };
    let declared: Vec<_> = settings
        .automations
        .iter()
        .map(|a| a.spec.clone())
        .collect();
    let declared_scenes: Vec<_> = settings.scenes.iter().map(|s| s.spec.clone()).collect();
    store
        .sync_config_catalog(&declared, &declared_scenes)
        .await?;
    let catalog = store.load_catalog(automation_cx).await?;
    let registry = Arc::new(chimes::scheduler::Registry::new(
        store.load_chimes(settings.timezone).await?,
    ));
    tracing::info!(
        backend = ?store.backend(),
        buttons = house.buttons.len(),
        outputs = house.outputs.len(),
        nodes = house.nodes.len(),
        automations = catalog.automations.len(),
        scenes = catalog.scenes.len(),
        waiting_runs = catalog.runs.len(),
        "state loaded"
    );

    let will = mqtt::offline_will(&settings.topics.build(&Topic::HubAvailability));
    let (client, link) = match broker.as_ref().filter(|_| local) {
        Some(b) => {
            let (client, link) = b.local_client(&settings.client_id, INTERNAL_USER, Some(will));
            (client, Link::Local(link))
        }
        None => {
            let mut options = mqtt_settings.options(&settings.client_id, Some(will))?;
            // A persistent session: the broker keeps what we have not
            // acknowledged while the hub restarts, and we acknowledge only
            // after committing. (In process the broker restarts with us.)
            options.set_clean_session(false);
            options.set_manual_acks(true);
            // Acks wait in rumqttc's request queue behind our own publishes,
            // and rumqttc stops reading that queue while its outgoing window
            // is full. rumqttd in turn stops acking our publishes while its
            // window towards us is full of messages we have not acked yet. A
            // window far larger than what one broker window of messages can
            // make us publish breaks that cycle (seen after a kill -9 with
            // 100 messages waiting).
            options.set_inflight(HUB_OUTGOING_INFLIGHT);
            let (client, eventloop) = mqtt::client(options);
            (client, Link::Socket(Box::new(eventloop)))
        }
    };

    let metrics = Arc::new(Metrics::default());
    metrics
        .database_ok
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let (core_handle, core_end) = handle::channel();
    let http_listener = http::bind(settings.http.listen)
        .await
        .map_err(HubError::Http)?;
    let http_addr = http_listener.local_addr().map_err(HubError::Http)?;
    let logins = http::Logins::from_settings(&settings.http)?;
    if !http_addr.ip().is_loopback() && logins.is_none() {
        // Only with [http] allow_anonymous = true (the config check refuses
        // otherwise): say once what that means.
        tracing::warn!(%http_addr, "the dashboard and HTTP API have no login (allow_anonymous = true): anyone who can reach this address can switch lights; name users in [http] (docs/http-api.md)");
    }
    let (role_tx, role_rx) = tokio::sync::watch::channel(leader::Role::Undecided);
    let (takeover_tx, takeover_rx) = mpsc::channel(leader::TAKEOVER_QUEUE);
    let (chime_tx, chime_rx) = mpsc::channel(chimes::manage::CHIME_EVENT_CAPACITY);
    for id in removed_chimes {
        if let Ok(id) = hearth_protocol::Id::new(&id) {
            tracing::info!(chime = %id, "chime removed from the config");
            let _ = chime_tx.try_send(chimes::manage::ChimeEvent::Removed(id));
        }
    }
    let logbook = logbook_feed::LogbookFeed::default();
    let chimes = chimes::manage::Chimes {
        store: store.clone(),
        registry: registry.clone(),
        events: chime_tx.clone(),
        default_tz: settings.timezone,
        role: role_rx.clone(),
        logbook: logbook.clone(),
    };
    let chime_stats = Arc::new(chimes::scheduler::ChimeStats::default());
    let topics = settings.topics.clone();
    let shutdown = CancellationToken::new();
    let settings = Arc::new(settings);
    let house = SharedHouse::new(house);
    let catalog_views = shared_catalog::SharedCatalog::default();
    let http_state = Arc::new(http::HttpState {
        settings: settings.clone(),
        role: role_rx.clone(),
        chimes: chimes.clone(),
        chime_stats: chime_stats.clone(),
        house: house.clone(),
        catalog: catalog_views.clone(),
        metrics: metrics.clone(),
        store: store.clone(),
        core: core_handle,
        logins,
        names: http::guard::HostNames::new(
            http_addr,
            config::machine_hostname().as_deref(),
            &settings.http.external_names,
        ),
        stopping: shutdown.clone(),
        broker_refusals: broker.as_ref().map(RunningBroker::refusal_counters),
        broker_lost: broker.as_ref().map(RunningBroker::lost_messages),
        logbook: logbook.clone(),
    });

    let mut tasks = JoinSet::new();
    let (command_tx, command_rx) = mpsc::channel(chimes::commands::CHIME_COMMAND_CAPACITY);
    tasks.spawn(chimes::commands::run_commands(
        chimes.clone(),
        topics.clone(),
        publish::Publisher::new(client.clone(), metrics.clone()),
        metrics.clone(),
        command_rx,
    ));
    let (link_tx, link_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let (write_tx, write_rx) = mpsc::channel(writer::WRITE_QUEUE_CAPACITY);
    // The link outlives the core and the writer, so the final `offline` and
    // the writer's last acks still go out; it stops once they have.
    let link_stop = CancellationToken::new();
    let connection = writer::Connection::default();
    let writer_done = {
        let connection = connection.clone();
        let client = client.clone();
        let metrics = metrics.clone();
        tokio::spawn(writer::run_writer(
            store.clone(),
            connection,
            client,
            write_rx,
            metrics,
            logbook.clone(),
        ))
    };
    let link = match link {
        Link::Socket(eventloop) => {
            tokio::spawn(mqtt::drive(*eventloop, link_tx, link_stop.clone()))
        }
        Link::Local(link) => tokio::spawn(link.drive(link_tx, link_stop.clone())),
    };
    {
        let client = client.clone();
        tasks.spawn(async move {
            let _ = writer_done.await;
            // The core's `offline` and the writer's last acks are queued in
            // the client ahead of this DISCONNECT, and rumqttc writes them
            // in order: the link ends once the DISCONNECT is written. A
            // broker that is gone never takes it; stop waiting then.
            let mut link = link;
            let closed = async {
                let _ = client.disconnect().await;
                let _ = (&mut link).await;
            };
            if tokio::time::timeout(LINK_CLOSE_BOUND, closed)
                .await
                .is_err()
            {
                tracing::warn!("the broker did not take the hub's last messages in time");
                link_stop.cancel();
                let _ = link.await;
            }
        });
    }
    tasks.spawn(core::run_core(
        core::CoreParts {
            settings: settings.clone(),
            house: house.clone(),
            metrics: metrics.clone(),
            takeover: takeover_rx,
            catalog,
            listing: catalog_views,
            registry: registry.clone(),
            chime_commands: command_tx,
        },
        client.clone(),
        link_rx,
        core_end,
        write_tx,
        recent,
        role_rx.clone(),
        connection,
        shutdown.clone(),
    ));
    tasks.spawn(leader::run(
        settings.database.url.clone(),
        store.clone(),
        takeover_tx,
        automation_cx,
        role_tx,
        shutdown.clone(),
    ));
    // Know our role before anything acts on it; a Postgres that does not
    // answer leaves us standing by, and the election keeps trying.
    let mut first_role = role_rx.clone();
    let _ = tokio::time::timeout(leader::POLL_INTERVAL * 6, first_role.changed()).await;
    tasks.spawn(clock::run_clock(
        settings.clone(),
        role_rx.clone(),
        publish::Publisher::new(client.clone(), metrics.clone()),
        shutdown.clone(),
    ));
    tasks.spawn(housekeeping::run_housekeeping(
        housekeeping::Housekeeping {
            settings: settings.clone(),
            role: role_rx.clone(),
            store: store.clone(),
            house: house.clone(),
            registry: registry.clone(),
            metrics: metrics.clone(),
        },
        shutdown.clone(),
    ));
    tasks.spawn(chimes::scheduler::run_while_leader(
        chimes,
        chime_stats,
        shutdown.clone(),
    ));
    tasks.spawn(chimes::manage::run_publisher(
        registry,
        topics,
        publish::Publisher::new(client.clone(), metrics.clone()),
        chime_rx,
        settings.hub_discovery(),
        shutdown.clone(),
    ));
    tasks.spawn(http::serve(
        http_listener,
        http::app(http_state),
        shutdown.clone(),
    ));

    Ok(Hub {
        http_addr,
        mqtt_url: public_url,
        settings,
        house,
        broker,
        shutdown,
        tasks,
    })
}

/// Who owns the hub's session on its embedded broker: no socket client can
/// take it over by client id without logging in as this user, and no
/// password for it exists.
pub const INTERNAL_USER: &str = "hearth-hub-internal";

/// How the hub reaches the broker.
enum Link {
    /// A socket to a broker elsewhere, or to the embedded one's public
    /// listener with the configured [mqtt] login.
    Socket(Box<rumqttc::EventLoop>),
    /// The embedded broker, in process.
    Local(hearth_broker::LocalLink),
}

/// Runs the hub until `shutdown` is cancelled.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), HubError> {
    let hub = start(settings).await?;
    shutdown.cancelled().await;
    hub.stop().await;
    Ok(())
}
