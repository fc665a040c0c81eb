//! The running hub: the task that owns the house, and the clock, health and pruning tasks beside it.
//!
//! Messages from the broker and calls from the HTTP API all pass through one
//! task ([`run_core`]), so every change to the house happens in one order and
//! is written and acknowledged in that order.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use hearth_common::mqtt::LinkEvent;
use hearth_protocol::{Availability, Command, Id, OnOff, OutputRef, Topic};
use rumqttc::{AsyncClient, QoS, SubscribeFilter};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::brain::{self, Brain, Outcome, Outgoing, RecentIds};
use crate::clock;
use crate::config::Settings;
use crate::house::House;
use crate::ingest::WriteJob;
use crate::metrics::{ErrorReason, Metrics};
use crate::store::Store;

/// API calls waiting for the core task.
pub const API_QUEUE_CAPACITY: usize = 64;
/// Output confirmations buffered for HTTP callers waiting on them.
pub const CONFIRMATION_CAPACITY: usize = 256;
/// How often the database is pinged for `/readyz` when nothing is written.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// How often old history is pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// How long press ids are kept to recognise redeliveries.
const MESSAGE_ID_RETENTION: chrono::Duration = chrono::Duration::hours(24);
/// Most rejected messages logged per window; the rest are only counted.
const ERROR_LOG_BURST: u32 = 20;
const ERROR_LOG_WINDOW: Duration = Duration::from_secs(10);

/// A request from the HTTP API to the core task.
#[derive(Debug)]
pub enum ApiCall {
    /// Set a button; the reply carries the new state and a signal for when it is durable.
    SetButton {
        id: Id,
        command: Command,
        reply: oneshot::Sender<(OnOff, oneshot::Receiver<()>)>,
    },
    /// Send a command to a node output (TOGGLE resolved from the last known state).
    CommandOutput {
        output: OutputRef,
        command: Command,
        reply: oneshot::Sender<OnOff>,
    },
}

/// State shared by the core task and the HTTP handlers.
#[derive(Debug)]
pub struct Shared {
    pub settings: Settings,
    pub chimes: crate::chimes::manage::Chimes,
    pub chime_stats: Arc<crate::chimes::scheduler::ChimeStats>,
    pub house: RwLock<House>,
    pub metrics: Arc<Metrics>,
    pub store: Store,
    pub api: mpsc::Sender<ApiCall>,
    pub confirmations: broadcast::Sender<(OutputRef, OnOff)>,
}

impl Shared {
    /// A consistent copy of the house for readers.
    pub fn house(&self) -> House {
        self.house.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

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

/// The core task: owns the house, turns messages and API calls into effects.
pub async fn run_core(
    shared: Arc<Shared>,
    client: AsyncClient,
    mut link: mpsc::Receiver<LinkEvent>,
    mut api: mpsc::Receiver<ApiCall>,
    writer: mpsc::Sender<WriteJob>,
    mut recent: RecentIds,
    shutdown: CancellationToken,
) {
    let settings = &shared.settings;
    let brain = Brain::new(&settings.topics, &settings.rules);
    let filters = brain::subscriptions(&settings.topics, &settings.rules);
    let mut errors = ErrorLog::new();
    let publisher = Publisher {
        client: &client,
        metrics: &shared.metrics,
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            event = link.recv() => match event {
                None => break,
                Some(LinkEvent::Connected { session_present }) => {
                    shared.metrics.broker_connected.store(true, Relaxed);
                    tracing::info!(session_present, "connected to the broker");
                    // Even with a session present: a broker that restarted and
                    // happened to keep nothing must not leave the hub deaf.
                    let subscribe = filters.iter().map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                    if let Err(error) = client.subscribe_many(subscribe).await {
                        tracing::error!(%error, "cannot subscribe");
                    }
                    let mut hello = vec![Outgoing::retained(
                        settings.topics.build(&Topic::HubAvailability),
                        Availability::Online.as_str(),
                    )];
                    hello.push(Outgoing::retained(
                        settings.topics.build(&Topic::ClockHhmm),
                        clock::hhmm(settings.timezone, Utc::now()),
                    ));
                    hello.extend(brain.retained_states(&shared.house()));
                    hello.extend(
                        crate::chimes::manage::all_views(&shared.chimes.registry, &settings.topics)
                            .into_iter()
                            .map(|(topic, payload)| Outgoing::retained(topic, payload)),
                    );
                    publisher.publish_all(hello).await;
                }
                Some(LinkEvent::Disconnected { error, retry_in }) => {
                    if shared.metrics.broker_connected.swap(false, Relaxed) {
                        tracing::warn!(%error, ?retry_in, "lost the broker; reconnecting");
                    } else {
                        tracing::debug!(%error, ?retry_in, "broker still unreachable");
                    }
                    shared.metrics.error(ErrorReason::BrokerConnection);
                }
                Some(LinkEvent::Message(publish)) if is_chime_topic(settings, &publish.topic) => {
                    let outcome = chime_message(&shared, &brain, &publish.topic, &publish.payload).await;
                    if let Some(error) = &outcome.error {
                        shared.metrics.error(ErrorReason::InvalidMessage);
                        errors.rejected(&publish.topic, error);
                    }
                    let writes = record(&shared, &publisher, outcome).await;
                    if writer.send(WriteJob { writes, ack: Some(publish), done: None }).await.is_err() {
                        break;
                    }
                }
                Some(LinkEvent::Message(publish)) => {
                    let outcome = {
                        let mut house = shared.house.write().unwrap_or_else(|p| p.into_inner());
                        brain.handle(&mut house, &mut recent, &publish.topic, &publish.payload, Utc::now())
                    };
                    if let Some(error) = &outcome.error {
                        shared.metrics.error(ErrorReason::InvalidMessage);
                        errors.rejected(&publish.topic, error);
                    }
                    let writes = record(&shared, &publisher, outcome).await;
                    let job = WriteJob { writes, ack: Some(publish), done: None };
                    if writer.send(job).await.is_err() {
                        break;
                    }
                }
            },
            call = api.recv() => match call {
                None => break,
                Some(ApiCall::SetButton { id, command, reply }) => {
                    let outcome = {
                        let mut house = shared.house.write().unwrap_or_else(|p| p.into_inner());
                        brain.set_button(&mut house, &id, command, Utc::now())
                    };
                    let state = shared.house().buttons.get(&id).map(|b| b.state).unwrap_or_default();
                    let writes = record(&shared, &publisher, outcome).await;
                    let (done, durable) = oneshot::channel();
                    let _ = reply.send((state, durable));
                    if writer.send(WriteJob { writes, ack: None, done: Some(done) }).await.is_err() {
                        break;
                    }
                }
                Some(ApiCall::CommandOutput { output, command, reply }) => {
                    let outgoing = brain.command_output(&shared.house(), &output, command);
                    let sent = OnOff::parse(&outgoing.payload).unwrap_or_default();
                    publisher.publish_all(vec![outgoing]).await;
                    let _ = reply.send(sent);
                }
            },
        }
    }
    // Leaving on purpose: say so now rather than leaving it to the last will.
    publisher
        .publish_all(vec![Outgoing::retained(
            settings.topics.build(&Topic::HubAvailability),
            Availability::Offline.as_str(),
        )])
        .await;
}

fn is_chime_topic(settings: &Settings, topic: &str) -> bool {
    matches!(
        settings.topics.parse(topic),
        Ok(Topic::HubChimeSet(_) | Topic::HubChimePlay(_))
    )
}

/// `hearth/hub/chimes/<id>/set` (JSON upsert, empty deletes) and `.../play`.
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
        _ => Ok(()),
    };
    match result {
        Ok(()) => Outcome {
            kind: Some(brain::Kind::Chime),
            ..Outcome::default()
        },
        Err(error) => brain.reject(topic, error.to_string()),
    }
}

/// Publishes an outcome, counts it, tells HTTP waiters; returns its writes.
async fn record(
    shared: &Shared,
    publisher: &Publisher<'_>,
    outcome: Outcome,
) -> Vec<crate::store::Write> {
    if let Some(kind) = outcome.kind {
        shared.metrics.message_in(kind);
    }
    shared
        .metrics
        .rule_firings
        .fetch_add(outcome.fired.len() as u64, Relaxed);
    publisher.publish_all(outcome.publish).await;
    if let Some(confirmed) = outcome.confirmed {
        let _ = shared.confirmations.send(confirmed);
    }
    outcome.writes
}

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

/// Publishes `hearth/clock/hhmm` (retained) at every minute boundary.
pub async fn run_clock(shared: Arc<Shared>, client: AsyncClient, shutdown: CancellationToken) {
    let topic = shared.settings.topics.build(&Topic::ClockHhmm);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(clock::until_next_minute(Utc::now())) => {}
        }
        let payload = clock::hhmm(shared.settings.timezone, Utc::now());
        if client
            .publish(topic.clone(), QoS::AtLeastOnce, true, payload)
            .await
            .is_ok()
        {
            shared.metrics.messages_out.fetch_add(1, Relaxed);
        }
    }
}

/// Keeps `/readyz` honest about the database and prunes old history.
pub async fn run_housekeeping(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut health = tokio::time::interval(HEALTH_INTERVAL);
    let mut prune = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = health.tick() => {
                let ok = shared.store.ping().await;
                shared.metrics.database_ok.store(ok, Relaxed);
            }
            _ = prune.tick() => {
                let now = Utc::now();
                let keep = chrono::Duration::days(shared.settings.database.history_days.into());
                match shared.store.prune(now - keep, now - MESSAGE_ID_RETENTION).await {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(rows, "pruned old climate readings"),
                    Err(error) => tracing::warn!(%error, "pruning failed"),
                }
            }
        }
    }
}

/// Press ids committed recently, so redeliveries after a restart are recognised.
pub async fn load_recent_ids(store: &Store) -> Result<RecentIds, crate::store::StoreError> {
    let mut recent = RecentIds::default();
    for id in store
        .message_ids_since(Utc::now() - MESSAGE_ID_RETENTION)
        .await?
    {
        recent.insert(&id);
    }
    Ok(recent)
}
