//! The agent's state and its reactions: link events, commands, sequence ticks, readings, plays, shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use chrono::{DateTime, Utc};
use hearth_common::mqtt::{LinkEvent, OutageLog};
use hearth_protocol::discovery::Reaction;
use hearth_protocol::{
    Availability, Brightness, Climate, ErrorReport, Id, OnOff, OutputKind, OutputRef, Topic, Topics,
};
use rumqttc::{AsyncClient, QoS};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

use super::SHUTDOWN_FLUSH_TIMEOUT;
use crate::board::{Board, Changes, Target};
use crate::climate::ClimateEvent;
use crate::config::{InputDef, NodeConfig, SpeakerOutput};
use crate::discovery::NodeDiscovery;
use crate::gpio::{self, OutputPins, PinSpec};
use crate::input::run::RawEdge;
use crate::route::{Request, Router};
use crate::speaker::{Outcome, Speaker, SpeakerError};
use crate::status::{self, Counters};

mod dimming;
mod inputs;

pub(super) use inputs::InputWiring;

pub(super) struct Agent {
    node: Id,
    topics: Topics,
    router: Router,
    client: AsyncClient,
    pins: Arc<dyn OutputPins>,
    pub(super) board: Board,
    speaker: Option<Speaker>,
    buzzer: Option<PinSpec>,
    /// Where play requests come from, for errors about finished plays.
    play_topic: Option<String>,
    counters: Counters,
    simulated: bool,
    started: Instant,
    started_at: DateTime<Utc>,
    last_climate: Option<Climate>,
    connected: bool,
    /// Says at warn when the broker cannot be reached, also before the first connect.
    outage: OutageLog,
    /// Home Assistant discovery, unless switched off.
    discovery: Option<NodeDiscovery>,
    /// Publishes dropped on a full queue since the last connect.
    publishes_dropped: AtomicU64,
    /// Wired inputs and whether each is active now.
    inputs: Vec<InputDef>,
    input_active: Vec<bool>,
    /// `--simulate`: where gestures become edges.
    inject: Option<mpsc::Sender<RawEdge>>,
    /// `--simulate`: when each input is free for its next gesture.
    gesture_free_at: Vec<Instant>,
    /// Each output's brightness when on (dimmable lights; the rest: full).
    levels: Vec<Brightness>,
}

impl Agent {
    pub(super) fn new(
        config: &NodeConfig,
        client: AsyncClient,
        pins: Arc<dyn OutputPins>,
        speaker: Option<Speaker>,
        inputs: InputWiring,
    ) -> Self {
        let buzzer = match &config.speaker {
            Some(s) => match &s.output {
                SpeakerOutput::Buzzer { pin, .. } => Some(*pin),
                SpeakerOutput::Player { .. } => None,
            },
            None => None,
        };
        Self {
            node: config.node.clone(),
            topics: config.topics.clone(),
            router: Router::new(
                config.topics.clone(),
                config.node.clone(),
                config.speaker.as_ref().map(|s| s.name.clone()),
            )
            .simulating(inputs.inject.is_some()),
            client,
            pins,
            board: Board::new(config.outputs.clone(), config.sequences.clone()),
            speaker,
            buzzer,
            play_topic: config.speaker.as_ref().map(|s| {
                config.topics.build(&Topic::ChimePlay {
                    speaker: s.name.clone(),
                })
            }),
            counters: Counters::default(),
            simulated: config.simulate,
            started: Instant::now(),
            started_at: Utc::now(),
            last_climate: None,
            connected: false,
            outage: OutageLog::default(),
            discovery: NodeDiscovery::new(config),
            publishes_dropped: AtomicU64::new(0),
            inputs: config.inputs.clone(),
            input_active: inputs.initial,
            inject: inputs.inject,
            gesture_free_at: vec![Instant::now(); config.inputs.len()],
            levels: vec![Brightness::FULL; config.outputs.len()],
        }
    }

    fn topic(&self, topic: Topic) -> String {
        self.topics.build(&topic)
    }

    fn state_topic(&self, kind: OutputKind, name: &Id) -> String {
        self.topic(Topic::OutputState(OutputRef {
            node: self.node.clone(),
            kind,
            name: name.clone(),
        }))
    }

    /// Every output's, sequence's and binary input's current state, retained.
    async fn publish_states(&self) {
        self.publish_input_states().await;
        for (index, (def, state)) in self.board.outputs().enumerate() {
            self.publish(self.state_topic(def.kind, &def.name), state.as_str(), true)
                .await;
            self.publish_brightness(index).await;
        }
        for (def, state) in self.board.sequences() {
            self.publish(
                self.state_topic(OutputKind::Sequence, &def.name),
                state.as_str(),
                true,
            )
            .await;
        }
    }

    /// Queues a publish without ever waiting for room. While a pulled
    /// cable goes unnoticed (up to a keep-alive or two), a fast sequence
    /// fills the client's queue; waiting for room would freeze the agent,
    /// its sequences and its SIGTERM handling until the link is declared
    /// dead. What is dropped is a state the agent re-sends on reconnect.
    async fn publish(&self, topic: String, payload: impl Into<Vec<u8>>, retain: bool) {
        if !self.connected {
            return;
        }
        match self
            .client
            .try_publish(&topic, QoS::AtLeastOnce, retain, payload.into())
        {
            Ok(()) => {}
            Err(rumqttc::ClientError::TryRequest(_)) => {
                if self.publishes_dropped.fetch_add(1, Relaxed) == 0 {
                    tracing::warn!(%topic, "the broker is not taking messages; dropping states until it does (all are re-sent on reconnect)");
                }
            }
            Err(error) => tracing::warn!(%topic, %error, "publish failed"),
        }
    }

    /// Every pin to its safe level, whatever the board thinks it is.
    pub(super) fn drive_all_off(&self) {
        let pins = self
            .board
            .outputs()
            .map(|(def, _)| def.pin)
            .chain(self.buzzer);
        for pin in pins {
            if let Err(error) = gpio::drive(&*self.pins, pin, OnOff::Off) {
                tracing::error!(pin = pin.pin, %error, "cannot switch output off");
            }
        }
        for (def, _) in self.board.outputs().filter(|(def, _)| def.dimmable) {
            if let Err(error) = self.pins.set_duty(def.pin.pin, 0.0) {
                tracing::error!(pin = def.pin.pin, %error, "cannot dim output off");
            }
        }
    }

    pub(super) async fn on_link(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Connected { session_present } => {
                self.connected = true;
                self.outage.connected();
                self.publishes_dropped.store(0, Relaxed);
                tracing::info!(session_present, "connected to broker");
                self.announce().await;
            }
            LinkEvent::Message(publish) => self.on_message(&publish.topic, &publish.payload).await,
            LinkEvent::Subscribed => {}
            LinkEvent::Disconnected { error, retry_in } => {
                self.outage.disconnected(&error, retry_in);
                self.connected = false;
            }
        }
    }

    /// Subscriptions and every retained message, sent on each ConnAck.
    async fn announce(&self) {
        let discovery = self.discovery.iter().flat_map(NodeDiscovery::filters);
        for filter in self.router.subscriptions().into_iter().chain(discovery) {
            if let Err(error) = self.client.subscribe(&filter, QoS::AtLeastOnce).await {
                tracing::warn!(%filter, %error, "subscribe failed");
            }
        }
        self.publish_retained().await;
    }

    /// Everything the broker should remember: availability, Home Assistant
    /// discovery configs, then every state. Also Home Assistant's answer to
    /// its birth message, so its entities come back with their states.
    async fn publish_retained(&self) {
        let availability = self.topic(Topic::NodeAvailability(self.node.clone()));
        self.publish(availability, Availability::Online.as_str(), true)
            .await;
        for message in self.discovery.iter().flat_map(NodeDiscovery::messages) {
            self.publish(message.topic.clone(), message.payload.clone(), true)
                .await;
        }
        self.publish_states().await;
        if let Some(climate) = &self.last_climate {
            self.publish_climate(climate).await;
        }
        self.publish_status().await;
    }

    async fn on_message(&mut self, topic: &str, payload: &[u8]) {
        if let Some(reaction) = self
            .discovery
            .as_ref()
            .and_then(|d| d.react(topic, payload))
        {
            match reaction {
                Reaction::Resend => self.publish_retained().await,
                Reaction::Clear(stale) => {
                    tracing::info!(topic = %stale, "clearing a Home Assistant entity this node no longer has");
                    self.publish(stale, Vec::new(), true).await;
                }
                Reaction::Nothing => {}
            }
            return;
        }
        match self.router.route(topic, payload) {
            Ok(Request::Output {
                kind,
                name,
                command,
            }) => match self.board.find(kind, name.as_str()) {
                Ok(target) => {
                    self.counters.commands.accepted += 1;
                    tracing::debug!(%kind, %name, %command, "command");
                    let changes = self.board.command(target, command, Instant::now());
                    self.apply(changes).await;
                }
                Err(error) => {
                    self.counters.commands.rejected += 1;
                    self.report(topic, &error.to_string()).await;
                }
            },
            Ok(Request::State {
                kind,
                name,
                cleared,
            }) => {
                if !cleared && self.board.find(kind, name.as_str()).is_err() {
                    // Left from an output taken out of the config: clearing
                    // it makes the hub forget the output too.
                    tracing::info!(%topic, "clearing the state of an output this node no longer has");
                    self.publish(topic.to_owned(), Vec::new(), true).await;
                }
            }
            Ok(Request::Brightness { kind, name, level }) => {
                self.dim(topic, kind, &name, level).await;
            }
            Ok(Request::BrightnessState {
                kind,
                name,
                cleared,
            }) => {
                let dimmable = self
                    .board
                    .find(kind, name.as_str())
                    .ok()
                    .and_then(|t| match t {
                        Target::Output(i) => self.board.output(i),
                        Target::Sequence(_) => None,
                    })
                    .is_some_and(|d| d.dimmable);
                if !cleared && !dimmable {
                    tracing::info!(%topic, "clearing the brightness of a light this node no longer dims");
                    self.publish(topic.to_owned(), Vec::new(), true).await;
                }
            }
            Ok(Request::InputState { name, cleared }) => {
                if !cleared && !self.inputs.iter().any(|i| i.name == name) {
                    tracing::info!(%topic, "clearing the state of an input this node no longer has");
                    self.publish(topic.to_owned(), Vec::new(), true).await;
                }
            }
            Ok(Request::Simulate { name, gesture }) => self.simulate(topic, &name, gesture).await,
            Ok(Request::Play(play)) => {
                let result = match &self.speaker {
                    Some(speaker) => speaker.submit(&play),
                    None => Err(SpeakerError::Stopped),
                };
                if let Err(error) = result {
                    match error {
                        SpeakerError::Busy { .. } => self.counters.speaker.dropped += 1,
                        _ => self.counters.speaker.rejected += 1,
                    }
                    self.report(topic, &error.to_string()).await;
                    self.publish_status().await;
                }
            }
            Err(rejection) => {
                self.counters.commands.rejected += 1;
                self.report(topic, &rejection.to_string()).await;
            }
        }
    }

    /// Logs a rejected message and answers on the node's error topic.
    async fn report(&self, topic: &str, error: &str) {
        tracing::warn!(%topic, %error, "rejected");
        let report = ErrorReport {
            topic: topic.to_owned(),
            error: error.to_owned(),
        };
        let payload = serde_json::to_vec(&report).unwrap_or_default();
        self.publish(
            self.topic(Topic::NodeError(self.node.clone())),
            payload,
            false,
        )
        .await;
    }

    /// Drives the pins that changed, then publishes their states.
    async fn apply(&self, changes: Changes) {
        for (index, state) in changes.outputs {
            let Some(def) = self.board.output(index) else {
                continue;
            };
            let driven = if def.dimmable {
                let duty = if state.is_on() {
                    self.levels[index].duty()
                } else {
                    0.0
                };
                self.pins.set_duty(def.pin.pin, duty)
            } else {
                gpio::drive(&*self.pins, def.pin, state)
            };
            if let Err(error) = driven {
                tracing::error!(output = %def.name, %error, "cannot drive output");
                self.report(&self.state_topic(def.kind, &def.name), &error.to_string())
                    .await;
                continue;
            }
            tracing::debug!(output = %def.name, %state, "output");
            self.publish(self.state_topic(def.kind, &def.name), state.as_str(), true)
                .await;
        }
        for (index, state) in changes.sequences {
            if let Some(def) = self.board.sequence(index) {
                tracing::info!(sequence = %def.name, %state, "sequence");
                self.publish(
                    self.state_topic(OutputKind::Sequence, &def.name),
                    state.as_str(),
                    true,
                )
                .await;
            }
        }
    }

    pub(super) async fn on_tick(&mut self) {
        let changes = self.board.tick(Instant::now());
        self.apply(changes).await;
    }

    pub(super) async fn on_climate(&mut self, event: ClimateEvent) {
        match event {
            ClimateEvent::Reading(climate) => {
                self.counters.climate_read();
                tracing::debug!(
                    temperature = climate.temperature,
                    humidity = climate.humidity,
                    "climate"
                );
                self.publish_climate(&climate).await;
                self.last_climate = Some(climate);
                self.publish_status().await;
            }
            ClimateEvent::Failed { attempt, error } => {
                tracing::warn!(attempt, reason = %error.reason(), %error, "sensor read failed");
                self.counters
                    .climate_failed(error.reason(), error.to_string());
            }
            ClimateEvent::GaveUp { attempts } => {
                self.counters.climate.gave_up += 1;
                tracing::error!(attempts, "no valid sensor reading this interval");
                self.publish_status().await;
            }
        }
    }

    async fn publish_climate(&self, climate: &Climate) {
        let node = &self.node;
        let json = serde_json::to_vec(climate).unwrap_or_default();
        self.publish(self.topic(Topic::NodeClimate(node.clone())), json, true)
            .await;
        for reading in climate.readings() {
            let topic = self.topic(Topic::NodeReading(node.clone(), reading.quantity));
            self.publish(topic, reading.plain(), true).await;
        }
    }

    pub(super) async fn on_played(&mut self, outcome: Outcome) {
        match outcome.result {
            Ok(()) => {
                self.counters.speaker.played += 1;
                tracing::info!(sound = %outcome.sound, "played");
            }
            Err(error) => {
                self.counters.speaker.failed += 1;
                let topic = self.play_topic.clone().unwrap_or_default();
                self.report(&topic, &format!("playing {:?}: {error}", outcome.sound))
                    .await;
            }
        }
        // Plays are rare, so their counters can be current without chatter.
        self.publish_status().await;
    }

    pub(super) async fn publish_status(&self) {
        let payload = status::payload(
            &self.node,
            self.simulated,
            self.started_at,
            self.started.elapsed(),
            &self.counters,
        );
        self.publish(status::topic(&self.topics, &self.node), payload, true)
            .await;
    }

    /// Safe state first (again: the speaker, now stopped, may have had the
    /// buzzer on), then tell the broker, then leave.
    pub(super) async fn shut_down(&mut self, link_rx: &mut mpsc::Receiver<LinkEvent>) {
        self.board.all_off();
        self.drive_all_off();
        tracing::info!("every output is off");
        if !self.connected {
            return;
        }
        let flush = async {
            self.publish_states().await;
            let availability = self.topic(Topic::NodeAvailability(self.node.clone()));
            self.publish(availability, Availability::Offline.as_str(), true)
                .await;
            if let Err(error) = self.client.disconnect().await {
                tracing::warn!(%error, "disconnect failed");
                return;
            }
            // The broker closing the socket means everything queued before
            // the DISCONNECT has been written.
            while let Some(event) = link_rx.recv().await {
                if matches!(event, LinkEvent::Disconnected { .. }) {
                    break;
                }
            }
        };
        if timeout(SHUTDOWN_FLUSH_TIMEOUT, flush).await.is_err() {
            tracing::warn!("broker did not confirm the final publishes in time");
        }
    }
}
