//! The agent loop: one task owns the node's state and decides everything it publishes.
//!
//! `hearth_common::mqtt::drive` owns the socket and hands over `LinkEvent`s;
//! this loop turns them, sequence ticks, climate readings and speaker
//! outcomes into pin changes and publishes through the `AsyncClient`. On
//! every ConnAck it resubscribes and republishes availability and every
//! retained state, because a restarted broker has forgotten both. While
//! disconnected it skips publishing: the next ConnAck sends the current
//! state anyway, and rumqttc would drop a clean session's queue regardless.
//!
//! On shutdown every pin goes to its safe level first (the part that must
//! happen even without a broker), then the `OFF` states and `offline` are
//! published and the connection is closed, within [`SHUTDOWN_FLUSH_TIMEOUT`].

mod state;

use std::time::Duration;

use hearth_common::mqtt::{self, EVENT_CHANNEL_CAPACITY, MqttError};
use hearth_protocol::Topic;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use crate::climate::{self, CLIMATE_CHANNEL_CAPACITY, Schedule};
use crate::config::NodeConfig;
use crate::hardware::{Hardware, HardwareError};
use crate::input::{self, run::INPUT_EVENT_CAPACITY};
use crate::speaker::{SPEAKER_OUTCOME_CAPACITY, Speaker};
use crate::status::STATUS_INTERVAL;
use state::{Agent, InputWiring};

/// Time allowed for the final publishes and DISCONNECT; with the pin
/// switching before it, the agent exits well inside Kubernetes' 2 s budget.
pub const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_millis(1200);
/// Time allowed for a helper task (climate, speaker, link) to stop.
pub const TASK_STOP_TIMEOUT: Duration = Duration::from_millis(200);

/// Why the agent stopped other than by being asked to.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Hardware(#[from] HardwareError),
    #[error("MQTT settings: {0}")]
    Mqtt(#[from] MqttError),
    #[error("the MQTT link task ended unexpectedly")]
    LinkClosed,
}

/// Runs the agent on `hardware` until `shutdown` is cancelled.
pub async fn run(
    config: NodeConfig,
    hardware: Hardware,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    let availability = config
        .topics
        .build(&Topic::NodeAvailability(config.node.clone()));
    let options = config
        .mqtt
        .options(&config.client_id(), Some(mqtt::offline_will(&availability)))?;
    let (client, eventloop) = mqtt::client(options);
    let (link_tx, mut link_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    // The link outlives `shutdown`: the final publishes still need it.
    let link_stop = CancellationToken::new();
    let driver = tokio::spawn(mqtt::drive(eventloop, link_tx, link_stop.clone()));

    let helpers_stop = CancellationToken::new();
    let mut helpers: Vec<JoinHandle<()>> = Vec::new();
    let (climate_tx, mut climate_rx) = mpsc::channel(CLIMATE_CHANNEL_CAPACITY);
    if let (Some(sensor), Some(settings)) = (hardware.sensor, &config.sensor) {
        let schedule = Schedule {
            model: settings.model,
            interval: settings.interval,
            max_attempts: settings.max_attempts,
        };
        helpers.push(tokio::spawn(climate::run(
            sensor,
            schedule,
            climate_tx.clone(),
            helpers_stop.clone(),
        )));
    }
    let (outcome_tx, mut outcome_rx) = mpsc::channel(SPEAKER_OUTCOME_CAPACITY);
    let speaker = config.speaker.clone().map(|settings| {
        let (speaker, task) = Speaker::start(
            settings,
            hardware.pins.clone(),
            outcome_tx.clone(),
            helpers_stop.clone(),
        );
        helpers.push(task);
        speaker
    });

    let (input_tx, mut input_rx) = mpsc::channel(INPUT_EVENT_CAPACITY);
    let inputs = hardware.inputs;
    helpers.push(tokio::spawn(input::run::run(
        config
            .inputs
            .iter()
            .zip(&inputs.initial)
            .map(|(def, initial)| (def.timings, *initial))
            .collect(),
        inputs.edges,
        input_tx,
        helpers_stop.clone(),
    )));
    // Kept open for the agent's life: dropping them ends the interrupts.
    let _real_inputs = inputs.real;
    let wiring = InputWiring {
        initial: inputs.initial,
        inject: inputs.inject,
    };
    let mut agent = Agent::new(&config, client, hardware.pins, speaker, wiring);
    agent.drive_all_off();
    tracing::info!(
        node = %config.node,
        broker = %config.mqtt.url,
        outputs = config.outputs.len(),
        sequences = config.sequences.len(),
        inputs = config.inputs.len(),
        simulated = config.simulate,
        "node agent started"
    );

    let mut status_timer =
        tokio::time::interval_at(Instant::now() + STATUS_INTERVAL, STATUS_INTERVAL);
    status_timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let result = loop {
        let due = agent.board.next_due();
        tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            event = link_rx.recv() => match event {
                Some(event) => agent.on_link(event).await,
                None => break Err(AgentError::LinkClosed),
            },
            Some(event) = climate_rx.recv() => agent.on_climate(event).await,
            Some(outcome) = outcome_rx.recv() => agent.on_played(outcome).await,
            Some(event) = input_rx.recv() => agent.on_input(event).await,
            _ = sleep_until_due(due) => agent.on_tick().await,
            _ = status_timer.tick() => agent.publish_status().await,
        }
    };

    // Safe state before anything else: stopping the helpers can take up to
    // TASK_STOP_TIMEOUT each, and a relay must not stay on meanwhile.
    agent.board.all_off();
    agent.drive_all_off();
    helpers_stop.cancel();
    for task in helpers {
        let _ = timeout(TASK_STOP_TIMEOUT, task).await;
    }
    drop((climate_tx, outcome_tx));
    agent.shut_down(&mut link_rx).await;
    link_stop.cancel();
    let _ = timeout(TASK_STOP_TIMEOUT, driver).await;
    tracing::info!("node agent stopped");
    result
}

async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}
