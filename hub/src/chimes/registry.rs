//! The chime registry: the chimes the hub knows, shared by the scheduler, the API and MQTT, and the plays it hands out.

use std::collections::BTreeMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use hearth_protocol::{ChimePlay, Id};
use tokio::sync::Notify;

use super::Chime;
use crate::revision::Revision;

/// The chimes the hub knows, shared by the scheduler, the API and MQTT.
#[derive(Debug, Default)]
pub struct Registry {
    chimes: RwLock<BTreeMap<Id, Chime>>,
    changed: Notify,
    /// For live views; the scheduler has its own wake-up above.
    revision: Revision,
}

impl Registry {
    pub fn new(chimes: Vec<Chime>) -> Self {
        Self {
            chimes: RwLock::new(chimes.into_iter().map(|c| (c.id.clone(), c)).collect()),
            changed: Notify::new(),
            revision: Revision::default(),
        }
    }

    /// Resolves at the next change (or at once if one came since the last
    /// wait): what the scheduler sleeps on besides its clock.
    pub(super) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Wakes after the next change to any chime.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revision.watch()
    }

    pub fn snapshot(&self) -> BTreeMap<Id, Chime> {
        self.chimes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn get(&self, id: &Id) -> Option<Chime> {
        self.chimes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Adds or replaces a chime and wakes the scheduler.
    pub fn put(&self, chime: Chime) {
        self.chimes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(chime.id.clone(), chime);
        self.changed.notify_one();
        self.revision.bump();
    }

    /// Replaces every chime (a standby refreshing from the database).
    pub fn replace_all(&self, chimes: Vec<Chime>) {
        *self.chimes.write().unwrap_or_else(|p| p.into_inner()) =
            chimes.into_iter().map(|c| (c.id.clone(), c)).collect();
        self.changed.notify_one();
        self.revision.bump();
    }

    /// Removes a chime and wakes the scheduler; the removed chime, if any.
    pub fn remove(&self, id: &Id) -> Option<Chime> {
        let removed = self
            .chimes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.changed.notify_one();
        self.revision.bump();
        removed
    }
}

/// One play for the publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Play {
    pub chime: Id,
    pub speaker: Id,
    pub message: ChimePlay,
    /// Played after its instant because the hub was down or busy then.
    pub late: bool,
}

impl Play {
    pub fn of(chime: &Chime, scheduled_for: Option<DateTime<Utc>>, late: bool) -> Self {
        Self {
            chime: chime.id.clone(),
            speaker: chime.speaker.clone(),
            message: ChimePlay {
                sound: chime.sound.clone(),
                volume: chime.volume,
                chime: Some(chime.id.clone()),
                scheduled_for,
            },
            late,
        }
    }
}
