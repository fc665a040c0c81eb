//! The chime commands task: applies chime changes that come over MQTT, so the core never waits for the database.
//!
//! `hearth/hub/chimes/<id>/set` (JSON upsert, empty deletes), `.../play`
//! and `.../enabled/set` (ON, OFF, TOGGLE). The core hands each one over
//! with a signal; the writer acknowledges the message only after that
//! signal, in order with every other message, so a chime is stored before
//! its message is acknowledged. A bad chime is reported on
//! `hearth/hub/error` naming the field, and nothing is saved.

use std::sync::Arc;

use hearth_protocol::{Command, Id, Topics};
use tokio::sync::{mpsc, oneshot};

use super::manage::{Chimes, ManageError};
use crate::decide::message::error_report;
use crate::metrics::{ErrorReason, Metrics};
use crate::model::effects::{MessageKind, Rejection};
use crate::publish::Publisher;

/// Chime commands waiting for the chimes task.
pub const CHIME_COMMAND_CAPACITY: usize = 64;

/// What a chime message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChimeChange {
    /// Upsert from JSON; an empty (or blank) payload deletes.
    Set(Id, Vec<u8>),
    Play(Id),
    Enabled(Id, Command),
}

/// One chime message for the chimes task.
#[derive(Debug)]
pub struct ChimeCommand {
    /// The topic it came on, for the error report.
    pub topic: String,
    pub change: ChimeChange,
    /// Signalled once the change is stored (or refused).
    pub stored: oneshot::Sender<()>,
}

/// Applies chime commands until the core is gone and every command it
/// handed over is done: a message is acknowledged only after its command.
pub async fn run_commands(
    chimes: Chimes,
    topics: Topics,
    publisher: Publisher,
    metrics: Arc<Metrics>,
    mut commands: mpsc::Receiver<ChimeCommand>,
) {
    while let Some(command) = commands.recv().await {
        match apply(&chimes, command.change).await {
            Ok(()) => metrics.message_in(MessageKind::Chime),
            Err(rejection) => {
                metrics.message_in(MessageKind::Invalid);
                metrics.error(ErrorReason::from(&rejection));
                tracing::warn!(topic = %command.topic, error = %rejection, "rejected message");
                publisher
                    .publish(error_report(&topics, &command.topic, &rejection))
                    .await;
            }
        }
        let _ = command.stored.send(());
    }
}

async fn apply(chimes: &Chimes, change: ChimeChange) -> Result<(), Rejection> {
    let result = match change {
        ChimeChange::Set(id, payload) if payload.iter().all(u8::is_ascii_whitespace) => {
            match chimes.delete(&id).await {
                // Deleting what is not there is what the sender wanted anyway.
                Err(ManageError::Unknown(_)) => Ok(()),
                other => other,
            }
        }
        ChimeChange::Set(id, payload) => chimes.upsert_json(&id, &payload).await.map(|_| ()),
        ChimeChange::Play(id) => chimes.play_now(&id, "mqtt").await,
        ChimeChange::Enabled(id, command) => chimes.set_enabled(&id, command).await.map(|_| ()),
    };
    result.map_err(|error| Rejection::Chime(error.to_string()))
}
