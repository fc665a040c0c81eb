//! Changing chimes at run time (HTTP, MQTT) and announcing them on MQTT.
//!
//! Every way of changing a chime ends here, so the database, the scheduler
//! and the retained `hearth/hub/chimes/<id>` topic always agree: a change is
//! validated whole, stored, then shown; nothing is half-saved.

use std::sync::Arc;

use chrono::Utc;
use chrono_tz::Tz;
use hearth_protocol::discovery::Message;
use hearth_protocol::payload::json_error_message;
use hearth_protocol::{Command, Id, OnOff, Topic, Topics};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::registry::{Play, Registry};
use super::{Chime, ChimeError, ChimeSpec, Source};
use crate::decide::discovery::HubDiscovery;
use crate::leader::Role;
use crate::logbook_feed::LogbookFeed;
use crate::model::effects::Publication;
use crate::publish::Publisher;
use crate::store::{Store, StoreError, Write};

/// Chime events waiting to be published.
pub const CHIME_EVENT_CAPACITY: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error(transparent)]
    Invalid(#[from] ChimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("unknown chime {0}")]
    Unknown(Id),
    #[error("invalid chime JSON: {0}")]
    Json(String),
}

/// What the chime publisher announces.
#[derive(Debug)]
pub enum ChimeEvent {
    Play(Play),
    Changed(Id),
    Removed(Id),
    /// A standby changed a chime in the database: tell the leader, which
    /// owns the schedule, over its own set topic (empty payload: deleted).
    Forward {
        id: Id,
        payload: Vec<u8>,
    },
}

/// The chime side of the hub: store, registry and the publisher's queue.
#[derive(Debug, Clone)]
pub struct Chimes {
    pub store: Store,
    pub registry: Arc<Registry>,
    pub events: mpsc::Sender<ChimeEvent>,
    pub default_tz: Tz,
    pub role: tokio::sync::watch::Receiver<Role>,
    /// Where a "play now" entry goes live once stored.
    pub logbook: LogbookFeed,
}

impl Chimes {
    /// Validates and saves `spec` as chime `id` (from the path or topic).
    pub async fn upsert(&self, id: Option<&Id>, spec: &ChimeSpec) -> Result<Chime, ManageError> {
        let mut chime = spec.validate(id, self.default_tz, Source::Runtime)?;
        if let Some(existing) = self.registry.get(&chime.id) {
            // Edited, not made here: a config chime stays the file's.
            chime.source = existing.source;
        }
        self.store.upsert_chime(&chime).await?;
        self.registry.put(chime.clone());
        let spec = serde_json::to_vec(&chime.spec()).unwrap_or_default();
        self.announce(ChimeEvent::Changed(chime.id.clone()), &chime.id, spec)
            .await;
        Ok(chime)
    }

    /// Parses a JSON body or payload, then [`Chimes::upsert`].
    pub async fn upsert_json(&self, id: &Id, json: &[u8]) -> Result<Chime, ManageError> {
        let spec: ChimeSpec =
            serde_json::from_slice(json).map_err(|e| ManageError::Json(json_error_message(&e)))?;
        self.upsert(Some(id), &spec).await
    }

    /// Deletes a chime; `Unknown` if there is none.
    pub async fn delete(&self, id: &Id) -> Result<(), ManageError> {
        let existed = self.store.delete_chime(id).await?;
        let known = self.registry.remove(id).is_some();
        if !existed && !known {
            return Err(ManageError::Unknown(id.clone()));
        }
        self.announce(ChimeEvent::Removed(id.clone()), id, Vec::new())
            .await;
        Ok(())
    }

    /// Tells MQTT about a change. The leader publishes it (view, Home
    /// Assistant entities); anyone else hands it to the leader over the
    /// chime's set topic and publishes nothing itself, or the leader could
    /// see an entity announced that it does not know yet, and clear it.
    async fn announce(&self, event: ChimeEvent, id: &Id, payload: Vec<u8>) {
        let event = if *self.role.borrow() == Role::Leader {
            event
        } else {
            ChimeEvent::Forward {
                id: id.clone(),
                payload,
            }
        };
        let _ = self.events.send(event).await;
    }

    /// Enables or disables a chime and changes nothing else: what Home
    /// Assistant's switch for the chime sends (`TOGGLE` works too). A chime
    /// from the config file stays one.
    pub async fn set_enabled(&self, id: &Id, command: Command) -> Result<Chime, ManageError> {
        let mut chime = self
            .registry
            .get(id)
            .ok_or_else(|| ManageError::Unknown(id.clone()))?;
        let was = if chime.enabled { OnOff::On } else { OnOff::Off };
        chime.enabled = was.apply(command).is_on();
        self.store.upsert_chime(&chime).await?;
        self.registry.put(chime.clone());
        let spec = serde_json::to_vec(&chime.spec()).unwrap_or_default();
        self.announce(ChimeEvent::Changed(id.clone()), id, spec)
            .await;
        Ok(chime)
    }

    /// Plays a chime now, outside its schedule, and logs it as asked by
    /// `source` (`mqtt`, `http`, `http:<user>`) once the play is out.
    pub async fn play_now(&self, id: &Id, source: &str) -> Result<(), ManageError> {
        let chime = self
            .registry
            .get(id)
            .ok_or_else(|| ManageError::Unknown(id.clone()))?;
        let _ = self
            .events
            .send(ChimeEvent::Play(Play::of(&chime, None, false)))
            .await;
        let entry = crate::decide::logbook::play(id, Utc::now(), "played", source);
        match self.store.apply(&[Write::Logbook(entry)]).await {
            Ok(logged) => self.logbook.send(logged),
            // The chime played; only its line in the logbook is missing.
            Err(error) => tracing::warn!(chime = %id, %error, "play not logged"),
        }
        Ok(())
    }
}

/// The retained view of one chime, or an empty payload once it is gone.
fn view_payload(registry: &Registry, id: &Id) -> Vec<u8> {
    registry
        .get(id)
        .map(|c| serde_json::to_vec(&c.view(Utc::now())).unwrap_or_default())
        .unwrap_or_default()
}

/// What a chime change means for Home Assistant: a changed chime's
/// configs (its name may have changed), a removed one's removals.
fn entities(discovery: &HubDiscovery, event: &ChimeEvent, registry: &Registry) -> Vec<Message> {
    match event {
        ChimeEvent::Changed(id) => registry
            .get(id)
            .map(|chime| discovery.chime_configs(&chime))
            .unwrap_or_default(),
        ChimeEvent::Removed(id) => discovery.chime_removals(id),
        _ => Vec::new(),
    }
}

/// Publishes plays and keeps `hearth/hub/chimes/<id>` current, and with
/// `discovery` each chime's Home Assistant entities too.
pub async fn run_publisher(
    registry: Arc<Registry>,
    topics: Topics,
    publisher: Publisher,
    mut events: mpsc::Receiver<ChimeEvent>,
    discovery: Option<HubDiscovery>,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.recv() => match event {
                Some(e) => e,
                None => return,
            },
        };
        let announced = discovery
            .as_ref()
            .map(|d| entities(d, &event, &registry))
            .unwrap_or_default();
        let (publishes, changed) = match event {
            ChimeEvent::Play(play) => {
                tracing::info!(chime = %play.chime, speaker = %play.speaker, late = play.late, "chime plays");
                let topic = topics.build(&Topic::ChimePlay {
                    speaker: play.speaker.clone(),
                });
                let payload = serde_json::to_vec(&play.message).unwrap_or_default();
                (vec![(topic, payload, false)], Some(play.chime))
            }
            ChimeEvent::Changed(id) => (Vec::new(), Some(id)),
            ChimeEvent::Removed(id) => (
                vec![(topics.build(&Topic::HubChime(id)), Vec::new(), true)],
                None,
            ),
            ChimeEvent::Forward { id, payload } => (
                vec![(topics.build(&Topic::HubChimeSet(id)), payload, false)],
                None,
            ),
        };
        // Entities first: a removed chime's switch must be gone before its
        // state is, or Home Assistant evaluates its template on nothing.
        let mut publishes: Vec<(String, Vec<u8>, bool)> = announced
            .into_iter()
            .map(|m| (m.topic, m.payload, true))
            .chain(publishes)
            .collect();
        if let Some(id) = changed {
            // next_at moved on: show it.
            publishes.push((
                topics.build(&Topic::HubChime(id.clone())),
                view_payload(&registry, &id),
                true,
            ));
        }
        publisher
            .publish_all(publishes.into_iter().map(|(topic, payload, retain)| {
                if retain {
                    Publication::retained(topic, payload)
                } else {
                    Publication::event(topic, payload)
                }
            }))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use hearth_protocol::{DiscoveryTopics, Topics};

    use super::*;
    use crate::model::chime::tests::tea;

    fn id(s: &str) -> Id {
        Id::new(s).unwrap()
    }

    #[test]
    fn chime_events_announce_and_remove() {
        let registry = Registry::new(vec![tea()]);
        let d = HubDiscovery::with(DiscoveryTopics::default(), Topics::default());
        let changed = entities(&d, &ChimeEvent::Changed(id("tea")), &registry);
        assert_eq!(changed, d.chime_configs(&tea()));
        let removed = entities(&d, &ChimeEvent::Removed(id("tea")), &registry);
        assert!(removed.iter().all(Message::is_removal), "{removed:?}");
        assert_eq!(removed.len(), 2, "{removed:?}");
        let gone = entities(&d, &ChimeEvent::Changed(id("gone")), &registry);
        assert!(gone.is_empty(), "{gone:?}");
    }
}
