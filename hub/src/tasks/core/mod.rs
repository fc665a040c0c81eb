//! The core task: owns the house and turns broker messages and API calls into effects, in order.
//!
//! Messages from the broker and calls from the HTTP API all pass through this
//! one task, so every change to the house happens in one order and is written
//! and acknowledged in that order. Which messages it acts on, lets go or
//! holds is decided by the pure role gate (`crate::decide::gate`); this task
//! does what the gate says.
//!
//! The core never waits for the database while it handles a message: it
//! publishes at once and hands writes to the writer (`crate::tasks::writer`)
//! and chime changes to the chimes task (`crate::chimes::commands`). When it
//! starts to lead it takes the stored house the leader task read for it
//! (`crate::leader`), before it acts on anything.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use chrono::Utc;
use hearth_common::mqtt::{LinkEvent, OutageLog};
use hearth_protocol::{Availability, Command, OnOff, OutputRef, Topic};
use rumqttc::{AsyncClient, Publish, QoS, SubscribeFilter};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::chimes::commands::{ChimeChange, ChimeCommand};
use crate::chimes::registry::Registry;
use crate::config::Settings;
use crate::decide::discovery::{self, Answer, HubDiscovery};
use crate::decide::gate::{Gate, Gated};
use crate::decide::hello::hello;
use crate::decide::message::{self, Decider, RecentIds};
use crate::handle::CoreEnd;
use crate::leader::Role;
use crate::metrics::{ErrorReason, Metrics};
use crate::model::effects::{Delivery, MessageKind, Outcome, Publication, Rejection};
use crate::model::input::Input;
use crate::model::logbook::Via;
use crate::publish::Publisher;
use crate::shared_house::SharedHouse;
use crate::store::Write;
use crate::tasks::writer::{Connection, WriteJob};

mod api;
mod automations;
mod error_log;

use error_log::ErrorLog;

/// The span every handled message's logs carry: its topic, the connection
/// (epoch) it came on, and the hub's role when it was handled.
fn message_span(publish: &Publish, epoch: u64, role: Role) -> tracing::Span {
    tracing::info_span!("message", topic = %publish.topic, epoch, ?role)
}

/// The writer queue is gone: the hub is stopping.
struct Stopping;

/// What the core works with besides its queues.
#[derive(Debug)]
pub struct CoreParts {
    pub settings: Arc<Settings>,
    /// The core is the writer on the hot path (see `crate::shared_house`).
    pub house: SharedHouse,
    pub metrics: Arc<Metrics>,
    /// The stored house and catalogue, read by the leader task when this
    /// hub wins the lock (see `on_role`).
    pub takeover: mpsc::Receiver<crate::leader::Takeover>,
    /// The automations, scenes and waiting runs loaded at start.
    pub catalog: crate::store::Catalog,
    /// Where the automations' and scenes' views go for live views.
    pub listing: crate::shared_catalog::SharedCatalog,
    /// The chimes, for the hello and Home Assistant.
    pub registry: Arc<Registry>,
    /// Where chime changes go to be stored (`crate::chimes::commands`).
    pub chime_commands: mpsc::Sender<ChimeCommand>,
}

struct Core<'a> {
    settings: &'a Settings,
    house: &'a SharedHouse,
    metrics: &'a Metrics,
    takeover: mpsc::Receiver<crate::leader::Takeover>,
    registry: &'a Registry,
    chime_commands: &'a mpsc::Sender<ChimeCommand>,
    confirmations: broadcast::Sender<(OutputRef, OnOff)>,
    discovery: Option<HubDiscovery>,
    brain: Decider<'a>,
    filters: Vec<String>,
    publisher: Publisher,
    client: &'a AsyncClient,
    writer: mpsc::Sender<WriteJob>,
    recent: RecentIds,
    errors: ErrorLog,
    /// Connection, subscription and held messages (pure bookkeeping).
    gate: Gate<(Publish, u64)>,
    /// Says at warn when the broker cannot be reached, also before the first connect.
    outage: OutageLog,
    connection: Connection,
    /// The automations and their runs; its next deadline is the core's
    /// one timer (`automations::until`).
    automations: crate::decide::automations::Engine,
    /// The engine's views as live views list them (see `crate::shared_catalog`).
    listing: &'a crate::shared_catalog::SharedCatalog,
    /// `hub = "start"` automations have run.
    hub_started: bool,
    /// What picking up stored runs at start changed, carried out when the
    /// hub first takes the stage.
    restored: Option<crate::decide::automations::Effects>,
}

/// Runs the core until `shutdown` or until its inputs close.
#[allow(clippy::too_many_arguments)]
pub async fn run_core(
    parts: CoreParts,
    client: AsyncClient,
    mut link: mpsc::Receiver<LinkEvent>,
    api: CoreEnd,
    writer: mpsc::Sender<WriteJob>,
    recent: RecentIds,
    mut role: watch::Receiver<Role>,
    connection: Connection,
    shutdown: CancellationToken,
) {
    let CoreEnd {
        calls: mut api,
        confirmations,
    } = api;
    let settings = &*parts.settings;
    let (engine, restored) = automations::engine(
        automations::automations_setup(settings),
        &settings.rules,
        parts.catalog,
        Utc::now(),
    );
    let mut core = Core {
        settings,
        house: &parts.house,
        metrics: &parts.metrics,
        takeover: parts.takeover,
        registry: &parts.registry,
        chime_commands: &parts.chime_commands,
        confirmations,
        discovery: settings.hub_discovery(),
        brain: Decider::new(&settings.topics, &settings.rules)
            .with_discovery(settings.hub_discovery()),
        filters: discovery::with_filters(
            settings.hub_discovery().as_ref(),
            message::subscriptions(
                &settings.topics,
                &settings.rules,
                &automations::filters_of(&engine),
            ),
        ),
        publisher: Publisher::new(client.clone(), parts.metrics.clone()),
        client: &client,
        writer,
        recent,
        errors: ErrorLog::new(),
        gate: Gate::default(),
        outage: OutageLog::default(),
        connection,
        automations: engine,
        listing: &parts.listing,
        hub_started: false,
        restored: Some(restored),
    };
    core.share_listing();
    loop {
        let deadline = core.automations.next_deadline();
        let step = tokio::select! {
            _ = shutdown.cancelled() => break,
            () = automations::until(deadline), if deadline.is_some() => {
                let now = *role.borrow();
                core.on_deadline(now).await
            }
            changed = role.changed() => match changed {
                Ok(()) => {
                    let now = *role.borrow_and_update();
                    core.on_role(now).await
                }
                Err(_) => break,
            },
            event = link.recv() => match event {
                None => break,
                Some(LinkEvent::Connected { session_present }) => {
                    // Marks the role seen, so the change branch does not take
                    // the stage a second time for the same change.
                    let now = *role.borrow_and_update();
                    core.on_connected(session_present, now).await;
                    Ok(())
                }
                Some(LinkEvent::Subscribed) => {
                    core.metrics.subscribed.store(true, Relaxed);
                    Ok(())
                }
                Some(LinkEvent::Disconnected { error, retry_in }) => {
                    core.on_disconnected(&error, retry_in);
                    Ok(())
                }
                Some(LinkEvent::Message(publish)) => {
                    let now = *role.borrow();
                    core.on_message(publish, now).await
                }
            },
            call = api.recv() => match call {
                None => break,
                Some(call) => {
                    let now = *role.borrow();
                    core.on_api(call, now).await
                }
            },
        };
        if step.is_err() {
            break;
        }
    }
    // Leaving on purpose: say so now rather than leaving it to the last will.
    core.publisher
        .publish_all(vec![Publication::retained(
            settings.topics.build(&Topic::HubAvailability),
            Availability::Offline.as_str(),
        )])
        .await;
}

impl Core<'_> {
    async fn on_connected(&mut self, session_present: bool, role: Role) {
        self.outage.connected();
        let steps = self.gate.on_connected(session_present, role);
        self.metrics.subscribed.store(session_present, Relaxed);
        self.connection.next();
        self.metrics.broker_connected.store(true, Relaxed);
        tracing::info!(session_present, ?role, "connected to the broker");
        if steps.subscribe {
            self.subscribe().await;
        }
        if steps.take_the_stage {
            self.take_the_stage().await;
        }
    }

    fn on_disconnected(&mut self, error: &str, retry_in: Duration) {
        self.gate.on_disconnected();
        self.metrics.subscribed.store(false, Relaxed);
        self.metrics.broker_connected.store(false, Relaxed);
        self.outage.disconnected(error, retry_in);
        self.metrics.error(ErrorReason::BrokerConnection);
    }

    async fn on_role(&mut self, role: Role) -> Result<(), Stopping> {
        let steps = self.gate.on_role(role);
        if steps.reload {
            // A standby's picture came from polling the database: take
            // the latest before acting on anything.
            // The leader task sends the house before the role, so it is
            // here; with SQLite nothing is (the house read at start is it).
            let mut latest = None;
            while let Ok(takeover) = self.takeover.try_recv() {
                latest = Some(takeover);
            }
            if let Some(crate::leader::Takeover { house, catalog }) = latest {
                self.house.change(|h| *h = house);
                self.reload_catalog(catalog).await?;
            }
        }
        if steps.take_the_stage {
            self.take_the_stage().await;
        }
        for (publish, arrived_on) in steps.act {
            let span = message_span(&publish, arrived_on, role);
            self.act_on(publish, arrived_on).instrument(span).await?;
        }
        for (publish, arrived_on) in steps.let_go {
            let span = message_span(&publish, arrived_on, role);
            self.let_go(publish, arrived_on).instrument(span).await?;
        }
        Ok(())
    }

    async fn on_message(&mut self, publish: Publish, role: Role) -> Result<(), Stopping> {
        let arrived_on = self.connection.current();
        let span = message_span(&publish, arrived_on, role);
        async move {
            match self.gate.on_message((publish, arrived_on), role) {
                Gated::Act((publish, arrived_on)) => self.act_on(publish, arrived_on).await,
                Gated::LetGo((publish, arrived_on)) => self.let_go(publish, arrived_on).await,
                Gated::Held => Ok(()),
                Gated::Overflow((publish, arrived_on)) => {
                    tracing::warn!(
                        "too many messages held while the hub's role is unknown; letting one go"
                    );
                    self.let_go(publish, arrived_on).await
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Acknowledges a message without acting on it, in order with the rest.
    async fn let_go(&mut self, publish: Publish, arrived_on: u64) -> Result<(), Stopping> {
        self.queue(Vec::new(), Some((publish, arrived_on)), None)
            .await
    }

    async fn queue(
        &mut self,
        writes: Vec<Write>,
        ack: Option<(Publish, u64)>,
        done: Option<oneshot::Sender<()>>,
    ) -> Result<(), Stopping> {
        self.queue_job(WriteJob {
            writes,
            ack,
            done,
            after: None,
        })
        .await
    }

    async fn queue_job(&mut self, job: WriteJob) -> Result<(), Stopping> {
        self.writer.send(job).await.map_err(|_| Stopping)
    }

    /// Hands a chime change to the chimes task, which stores it; the
    /// message is acknowledged once it has (see [`WriteJob::after`]).
    async fn hand_over_chime(
        &self,
        topic: &str,
        change: ChimeChange,
    ) -> Result<oneshot::Receiver<()>, Stopping> {
        let (stored, after) = oneshot::channel();
        self.chime_commands
            .send(ChimeCommand {
                topic: topic.to_owned(),
                change,
                stored,
            })
            .await
            .map_err(|_| Stopping)?;
        Ok(after)
    }

    /// The one place a message is decided: parsed once here, then handed
    /// to the decision that owns its topic.
    async fn act_on(&mut self, publish: Publish, arrived_on: u64) -> Result<(), Stopping> {
        // MQTT sets the retain flag only on what a new subscription replays.
        let delivery = if publish.retain {
            Delivery::Replayed
        } else {
            Delivery::Live
        };
        let input = Input::parse(
            &self.settings.topics,
            &publish.topic,
            &publish.payload,
            delivery,
        );
        let mut after = None;
        let mut outcome =
            match &input.parsed {
                Ok(Topic::HubAvailability) => {
                    // A standby replica's last will says "offline" for the whole
                    // hub; the leader is alive and says so again.
                    if Availability::parse(input.payload) == Ok(Availability::Offline) {
                        self.publisher
                            .publish_all(vec![Publication::retained(
                                input.topic.to_owned(),
                                Availability::Online.as_str(),
                            )])
                            .await;
                    }
                    Outcome::default()
                }
                // A retained chime command replayed at subscribe time would
                // undo every change made since it was sent.
                Ok(
                    Topic::HubChimeSet(_) | Topic::HubChimePlay(_) | Topic::HubChimeEnabledSet(_),
                ) if input.replayed() => Outcome::kind(MessageKind::Replayed),
                Ok(Topic::HubChimeSet(id)) => {
                    let change = ChimeChange::Set(id.clone(), input.payload.to_vec());
                    after = Some(self.hand_over_chime(input.topic, change).await?);
                    Outcome::default()
                }
                Ok(Topic::HubChimePlay(id)) => {
                    let change = ChimeChange::Play(id.clone());
                    after = Some(self.hand_over_chime(input.topic, change).await?);
                    Outcome::default()
                }
                // As chime commands: a replayed one would undo later changes.
                Ok(
                    Topic::HubAutomationSet(_)
                    | Topic::HubAutomationEnabledSet(_)
                    | Topic::HubAutomationRun(_)
                    | Topic::HubSceneSet(_)
                    | Topic::HubSceneApply(_),
                ) if input.replayed() => Outcome::kind(MessageKind::Replayed),
                Ok(
                    topic @ (Topic::HubAutomationSet(_)
                    | Topic::HubAutomationEnabledSet(_)
                    | Topic::HubAutomationRun(_)
                    | Topic::HubSceneSet(_)
                    | Topic::HubSceneApply(_)),
                ) => match automations::request_of(topic, input.payload) {
                    Ok(request) => match self.on_catalog(request).await {
                        Ok((outcome, _)) => outcome,
                        Err(error) => self
                            .brain
                            .reject(input.topic, Rejection::Automation(error.to_string())),
                    },
                    Err(rejection) => self.brain.reject(input.topic, rejection),
                },
                Ok(Topic::HubChimeEnabledSet(id)) => match Command::parse(input.payload) {
                    Ok(command) => {
                        let change = ChimeChange::Enabled(id.clone(), command);
                        after = Some(self.hand_over_chime(input.topic, change).await?);
                        Outcome::default()
                    }
                    Err(error) => self.brain.reject(input.topic, error.into()),
                },
                _ => {
                    let mut outcome = self.house.change(|house| {
                        self.brain
                            .decide(house, &mut self.recent, &input, Utc::now(), Via::Mqtt)
                    });
                    self.automate(&mut outcome, input.topic, input.payload);
                    outcome
                }
            };
        // Home Assistant's birth, or a stale config of the hub's device.
        outcome
            .publish
            .extend(self.answer_discovery(input.topic, input.payload));
        if let Some(rejection) = &outcome.error {
            self.metrics.error(ErrorReason::from(rejection));
            self.errors.rejected(input.topic, rejection);
        }
        drop(input);
        let writes = self.record(outcome).await;
        self.queue_job(WriteJob {
            writes,
            ack: Some((publish, arrived_on)),
            done: None,
            after,
        })
        .await
    }

    /// Publishes an outcome, counts it, tells HTTP waiters; returns its writes.
    async fn record(&self, outcome: Outcome) -> Vec<Write> {
        let metrics = &self.metrics;
        if let Some(kind) = outcome.kind {
            metrics.message_in(kind);
        }
        metrics
            .rule_firings
            .fetch_add(outcome.fired.len() as u64, Relaxed);
        self.publisher.publish_all(outcome.publish).await;
        if let Some(confirmed) = outcome.confirmed {
            let _ = self.confirmations.send(confirmed);
        }
        outcome.writes
    }

    /// Subscribes this session to every filter.
    async fn subscribe(&mut self) {
        let subscribe = self
            .filters
            .iter()
            .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
        match self.client.subscribe_many(subscribe).await {
            Ok(()) => self.gate.subscribe_sent(),
            Err(error) => tracing::error!(%error, "cannot subscribe"),
        }
    }

    /// Becoming the active hub (or reconnecting as it): subscribe, and
    /// announce availability, the clock and every retained state.
    async fn take_the_stage(&mut self) {
        // A subscribe that failed at connect is tried again here.
        if self.gate.subscribe_needed() {
            self.subscribe().await;
        }
        let hello = self.hello();
        self.publisher.publish_all(hello).await;
        if let Some(restored) = self.restored.take() {
            let _ = self.carry_out(restored).await;
        }
        let _ = self.on_hub_start().await;
    }

    /// Every retained message the hub owns, from the house as it is now,
    /// then the automations' and scenes' (with their Home Assistant configs).
    fn hello(&self) -> Vec<Publication> {
        let chimes = self.registry.snapshot();
        let mut hello = self.house.read(|house| {
            hello(
                &self.settings.topics,
                self.settings.timezone,
                self.discovery.as_ref(),
                &self.brain,
                house,
                &chimes,
                Utc::now(),
            )
        });
        hello.extend(self.catalog_views());
        hello
    }

    /// What a message under the discovery prefix asks of the hub: the
    /// hello on Home Assistant's birth, or clearing a stale config (leader
    /// only: a standby's view of the house lags). Empty for the rest.
    fn answer_discovery(&self, topic: &str, payload: &[u8]) -> Vec<Publication> {
        let Some(discovery) = self.discovery.as_ref().filter(|d| d.concerns(topic)) else {
            return Vec::new();
        };
        // Only the leader acts on messages, so whoever gets here leads.
        let chimes = self.registry.snapshot();
        let scenes: Vec<_> = self.automations.scene_ids().collect();
        let answer = self.house.read(|house| {
            discovery.answer(
                true,
                house.buttons.keys(),
                chimes.keys(),
                scenes.iter().copied(),
                topic,
                payload,
            )
        });
        match answer {
            Some(Answer::Resend) => {
                tracing::info!("Home Assistant (re)started: sending discovery and states again");
                self.hello()
            }
            Some(Answer::Clear(stale)) => {
                tracing::info!(topic = %stale, "clearing a Home Assistant entity the hub no longer has");
                vec![Publication::retained(stale, Vec::new())]
            }
            None => Vec::new(),
        }
    }
}
