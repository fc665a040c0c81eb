//! The core task: owns the house and turns broker messages and API calls into effects, in order.
//!
//! Messages from the broker and calls from the HTTP API all pass through this
//! one task, so every change to the house happens in one order and is written
//! and acknowledged in that order. Only the leading hub acts: a standby lets
//! messages go (the leader has its own copies), and a hub that does not know
//! yet (its database is unreachable) holds them unacknowledged until it does.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use chrono::Utc;
use hearth_common::mqtt::{LinkEvent, OutageLog};
use hearth_protocol::{Availability, OnOff, Topic};
use rumqttc::{AsyncClient, Publish, QoS, SubscribeFilter};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::brain::{self, Brain, Delivery, Kind, Outcome, Outgoing, RecentIds};
use crate::clock;
use crate::ingest::{Connection, WriteJob};
use crate::leader::Role;
use crate::metrics::{ErrorReason, Metrics};
use crate::service::{ApiCall, Shared};
use crate::store::Write;

/// Most rejected messages logged per window; the rest are only counted.
const ERROR_LOG_BURST: u32 = 20;
const ERROR_LOG_WINDOW: Duration = Duration::from_secs(10);
/// Messages held while the role is undecided. The broker's inflight window
/// keeps QoS 1 far below this; beyond it they are let go (and counted).
const HELD_CAPACITY: usize = 4096;

/// Logs the first few rejected messages of each window, counts them all.
#[derive(Debug)]
struct ErrorLog {
    window_start: Instant,
    logged: u32,
    suppressed: u64,
}

impl ErrorLog {
    fn new() -> Self {
        Self {
            window_start: Instant::now(),
            logged: 0,
            suppressed: 0,
        }
    }

    fn rejected(&mut self, topic: &str, error: &str) {
        if self.window_start.elapsed() > ERROR_LOG_WINDOW {
            if self.suppressed > 0 {
                tracing::warn!(
                    suppressed = self.suppressed,
                    "more messages were rejected (see hearth_errors_total)"
                );
            }
            *self = Self::new();
        }
        if self.logged < ERROR_LOG_BURST {
            self.logged += 1;
            tracing::warn!(topic, error, "rejected message");
        } else {
            self.suppressed += 1;
        }
    }
}

/// Publishes and counts.
struct Publisher<'a> {
    client: &'a AsyncClient,
    metrics: &'a Metrics,
}

impl Publisher<'_> {
    async fn publish_all(&self, messages: Vec<Outgoing>) {
        for m in messages {
            match self
                .client
                .publish(m.topic, m.qos, m.retain, m.payload)
                .await
            {
                Ok(()) => {
                    self.metrics.messages_out.fetch_add(1, Relaxed);
                }
                Err(error) => {
                    self.metrics.error(ErrorReason::Publish);
                    tracing::warn!(%error, "publish failed");
                }
            }
        }
    }
}

/// The writer queue is gone: the hub is stopping.
struct Stopping;

struct Core<'a> {
    shared: &'a Shared,
    brain: Brain<'a>,
    filters: Vec<String>,
    publisher: Publisher<'a>,
    client: &'a AsyncClient,
    writer: mpsc::Sender<WriteJob>,
    recent: RecentIds,
    errors: ErrorLog,
    held: VecDeque<(Publish, u64)>,
    connected: bool,
    /// Says at warn when the broker cannot be reached, also before the first connect.
    outage: OutageLog,
    /// Whether the broker holds our subscriptions on this connection.
    subscribed: bool,
    connection: Connection,
}

/// Runs the core until `shutdown` or until its inputs close.
#[allow(clippy::too_many_arguments)]
pub async fn run_core(
    shared: Arc<Shared>,
    client: AsyncClient,
    mut link: mpsc::Receiver<LinkEvent>,
    mut api: mpsc::Receiver<ApiCall>,
    writer: mpsc::Sender<WriteJob>,
    recent: RecentIds,
    mut role: watch::Receiver<Role>,
    connection: Connection,
    shutdown: CancellationToken,
) {
    let settings = &shared.settings;
    let mut core = Core {
        shared: &shared,
        brain: Brain::new(&settings.topics, &settings.rules)
            .with_discovery(crate::discovery::HubDiscovery::new(settings)),
        filters: crate::discovery::with_filters(
            settings,
            brain::subscriptions(&settings.topics, &settings.rules),
        ),
        publisher: Publisher {
            client: &client,
            metrics: &shared.metrics,
        },
        client: &client,
        writer,
        recent,
        errors: ErrorLog::new(),
        held: VecDeque::new(),
        connected: false,
        outage: OutageLog::default(),
        subscribed: false,
        connection,
    };
    loop {
        let step = tokio::select! {
            _ = shutdown.cancelled() => break,
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
                    core.shared.metrics.subscribed.store(true, Relaxed);
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
        .publish_all(vec![Outgoing::retained(
            settings.topics.build(&Topic::HubAvailability),
            Availability::Offline.as_str(),
        )])
        .await;
}

impl Core<'_> {
    async fn on_connected(&mut self, session_present: bool, role: Role) {
        self.connected = true;
        self.outage.connected();
        // A session the broker kept still carries our subscriptions: every
        // new session subscribes at once, whatever the role (a standby lets
        // messages go), and a hub never unsubscribes. Subscribing again
        // would make rumqttd restart the filter where it is, skipping what
        // it held for us.
        self.subscribed = session_present;
        self.shared
            .metrics
            .subscribed
            .store(session_present, Relaxed);
        self.connection.next();
        // Held messages came on the old connection: the broker resends them.
        self.held.clear();
        self.shared.metrics.broker_connected.store(true, Relaxed);
        tracing::info!(session_present, ?role, "connected to the broker");
        self.subscribe_once().await;
        if role == Role::Leader {
            self.take_the_stage().await;
        }
    }

    fn on_disconnected(&mut self, error: &str, retry_in: Duration) {
        self.connected = false;
        self.shared.metrics.subscribed.store(false, Relaxed);
        self.shared.metrics.broker_connected.store(false, Relaxed);
        self.outage.disconnected(error, retry_in);
        self.shared.metrics.error(ErrorReason::BrokerConnection);
    }

    async fn on_role(&mut self, role: Role) -> Result<(), Stopping> {
        match role {
            Role::Leader => {
                // A standby's picture came from polling the database: take
                // the latest before acting on anything.
                if let Ok(house) = self.shared.store.load().await {
                    self.shared.change_house(|h| *h = house);
                }
                if self.connected {
                    self.take_the_stage().await;
                }
                while let Some((publish, arrived_on)) = self.held.pop_front() {
                    self.act_on(publish, arrived_on).await?;
                }
            }
            Role::Standby => {
                // Another hub leads and receives these itself.
                while let Some((publish, arrived_on)) = self.held.pop_front() {
                    self.let_go(publish, arrived_on).await?;
                }
            }
            Role::Undecided => {}
        }
        Ok(())
    }

    async fn on_message(&mut self, publish: Publish, role: Role) -> Result<(), Stopping> {
        let arrived_on = self.connection.current();
        match role {
            Role::Leader => self.act_on(publish, arrived_on).await,
            Role::Standby => self.let_go(publish, arrived_on).await,
            Role::Undecided if self.held.len() < HELD_CAPACITY => {
                self.held.push_back((publish, arrived_on));
                Ok(())
            }
            Role::Undecided => {
                tracing::warn!(topic = %publish.topic, "too many messages held while the hub's role is unknown; letting one go");
                self.let_go(publish, arrived_on).await
            }
        }
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
        self.writer
            .send(WriteJob { writes, ack, done })
            .await
            .map_err(|_| Stopping)
    }

    async fn act_on(&mut self, publish: Publish, arrived_on: u64) -> Result<(), Stopping> {
        let settings = &self.shared.settings;
        // MQTT sets the retain flag only on what a new subscription replays.
        let delivery = if publish.retain {
            Delivery::Replayed
        } else {
            Delivery::Live
        };
        let mut outcome = match settings.topics.parse(&publish.topic) {
            Ok(Topic::HubAvailability) => {
                // A standby replica's last will says "offline" for the whole
                // hub; the leader is alive and says so again.
                if Availability::parse(&publish.payload) == Ok(Availability::Offline) {
                    self.publisher
                        .publish_all(vec![Outgoing::retained(
                            publish.topic.clone(),
                            Availability::Online.as_str(),
                        )])
                        .await;
                }
                Outcome::default()
            }
            // A retained chime command replayed at subscribe time would
            // undo every change made since it was sent.
            Ok(Topic::HubChimeSet(_) | Topic::HubChimePlay(_) | Topic::HubChimeEnabledSet(_))
                if delivery == Delivery::Replayed =>
            {
                Outcome::kind(Kind::Replayed)
            }
            Ok(Topic::HubChimeSet(_) | Topic::HubChimePlay(_) | Topic::HubChimeEnabledSet(_)) => {
                chime_message(self.shared, &self.brain, &publish.topic, &publish.payload).await
            }
            _ => self.shared.change_house(|house| {
                self.brain.handle(
                    house,
                    &mut self.recent,
                    &publish.topic,
                    &publish.payload,
                    Utc::now(),
                    delivery,
                )
            }),
        };
        // Home Assistant's birth: every config and state again.
        outcome.publish.extend(crate::discovery::on_message(
            self.shared,
            &self.brain,
            &publish.topic,
            &publish.payload,
        ));
        if let Some(error) = &outcome.error {
            self.shared.metrics.error(ErrorReason::InvalidMessage);
            self.errors.rejected(&publish.topic, error);
        }
        let writes = self.record(outcome).await;
        self.queue(writes, Some((publish, arrived_on)), None).await
    }

    async fn on_api(&mut self, call: ApiCall, role: Role) -> Result<(), Stopping> {
        let settings = &self.shared.settings;
        match call {
            ApiCall::SetButton { id, command, reply } if role == Role::Standby => {
                // The leader applies changes; hand this one over the way any
                // device would, and answer once the broker has it.
                let predicted = self
                    .shared
                    .house()
                    .buttons
                    .get(&id)
                    .map(|b| b.state)
                    .unwrap_or_default()
                    .apply(command);
                let topic = settings.topics.build(&Topic::ButtonSet(id));
                self.publisher
                    .publish_all(vec![Outgoing::event(topic, command.as_str())])
                    .await;
                let (done, durable) = oneshot::channel();
                let _ = done.send(());
                let _ = reply.send((predicted, durable));
                Ok(())
            }
            ApiCall::SetButton { id, command, reply } => {
                // Exactly what the same command over MQTT does, rules on the
                // set topic included: HTTP-only devices are no lesser.
                let topic = settings.topics.build(&Topic::ButtonSet(id.clone()));
                let outcome = self.shared.change_house(|house| {
                    self.brain.handle(
                        house,
                        &mut self.recent,
                        &topic,
                        command.as_str().as_bytes(),
                        Utc::now(),
                        Delivery::Live,
                    )
                });
                let state = self
                    .shared
                    .house()
                    .buttons
                    .get(&id)
                    .map(|b| b.state)
                    .unwrap_or_default();
                let writes = self.record(outcome).await;
                let (done, durable) = oneshot::channel();
                let _ = reply.send((state, durable));
                self.queue(writes, None, Some(done)).await
            }
            ApiCall::ForgetButton { id, reply } => {
                let outcome = self
                    .shared
                    .change_house(|house| self.brain.forget_button(house, &id));
                match outcome {
                    None => {
                        let _ = reply.send(None);
                        Ok(())
                    }
                    Some(outcome) => {
                        let writes = self.record(outcome).await;
                        let (done, durable) = oneshot::channel();
                        let _ = reply.send(Some(durable));
                        self.queue(writes, None, Some(done)).await
                    }
                }
            }
            ApiCall::CommandOutput {
                output,
                command,
                reply,
            } => {
                let outgoing = self
                    .brain
                    .command_output(&self.shared.house(), &output, command);
                let sent = OnOff::parse(&outgoing.payload).unwrap_or_default();
                self.publisher.publish_all(vec![outgoing]).await;
                let _ = reply.send(sent);
                Ok(())
            }
        }
    }

    /// Publishes an outcome, counts it, tells HTTP waiters; returns its writes.
    async fn record(&self, outcome: Outcome) -> Vec<Write> {
        let metrics = &self.shared.metrics;
        if let Some(kind) = outcome.kind {
            metrics.message_in(kind);
        }
        metrics
            .rule_firings
            .fetch_add(outcome.fired.len() as u64, Relaxed);
        self.publisher.publish_all(outcome.publish).await;
        if let Some(confirmed) = outcome.confirmed {
            let _ = self.shared.confirmations.send(confirmed);
        }
        outcome.writes
    }

    /// Subscribes this session to every filter, unless it already is.
    async fn subscribe_once(&mut self) {
        if self.subscribed {
            return;
        }
        let subscribe = self
            .filters
            .iter()
            .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
        match self.client.subscribe_many(subscribe).await {
            Ok(()) => self.subscribed = true,
            Err(error) => tracing::error!(%error, "cannot subscribe"),
        }
    }

    /// Becoming the active hub (or reconnecting as it): subscribe, and
    /// announce availability, the clock and every retained state.
    async fn take_the_stage(&mut self) {
        let settings = &self.shared.settings;
        self.subscribe_once().await;
        let mut hello = vec![
            Outgoing::retained(
                settings.topics.build(&Topic::HubAvailability),
                Availability::Online.as_str(),
            ),
            Outgoing::retained(
                settings.topics.build(&Topic::ClockHhmm),
                clock::hhmm(settings.timezone, Utc::now()),
            ),
        ];
        hello.extend(self.brain.retained_states(&self.shared.house()));
        hello.extend(
            crate::chimes::manage::all_views(&self.shared.chimes.registry, &settings.topics)
                .into_iter()
                .map(|(topic, payload)| Outgoing::retained(topic, payload)),
        );
        hello.extend(crate::discovery::configs(self.shared));
        self.publisher.publish_all(hello).await;
    }
}

/// `hearth/hub/chimes/<id>/set` (JSON upsert, empty deletes), `.../play` and
/// `.../enabled/set` (ON, OFF, TOGGLE).
/// Stored before the message is acknowledged; a bad chime is reported on
/// `hearth/hub/error` naming the field, and nothing is saved.
async fn chime_message(shared: &Shared, brain: &Brain<'_>, topic: &str, payload: &[u8]) -> Outcome {
    use crate::chimes::manage::ManageError;
    let result = match shared.settings.topics.parse(topic) {
        Ok(Topic::HubChimeSet(id)) if payload.iter().all(u8::is_ascii_whitespace) => {
            match shared.chimes.delete(&id).await {
                // Deleting what is not there is what the sender wanted anyway.
                Err(ManageError::Unknown(_)) => Ok(()),
                other => other,
            }
        }
        Ok(Topic::HubChimeSet(id)) => shared.chimes.upsert_json(&id, payload).await.map(|_| ()),
        Ok(Topic::HubChimePlay(id)) => shared.chimes.play_now(&id).await,
        Ok(Topic::HubChimeEnabledSet(id)) => match hearth_protocol::Command::parse(payload) {
            Ok(command) => shared.chimes.set_enabled(&id, command).await.map(|_| ()),
            Err(error) => return brain.reject(topic, error.to_string()),
        },
        _ => Ok(()),
    };
    match result {
        Ok(()) => Outcome {
            kind: Some(Kind::Chime),
            ..Outcome::default()
        },
        Err(error) => brain.reject(topic, error.to_string()),
    }
}
