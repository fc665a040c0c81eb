//! The automations and scenes as live views list them, shared between the
//! core (which owns the automation engine) and the dashboard's stream.
//!
//! The engine lives inside the core task, which never waits for a reader;
//! HTTP could ask it over the API queue, but a live view that re-renders on
//! every change would then put a request on that queue per event. Instead
//! the core copies what changed here, at the same moment it publishes the
//! retained `hearth/hub/automations/<id>` view, and bumps a revision that
//! live views wait on. Only a summary is kept (no triggers or actions):
//! the full definition is one `GET /api/v1/automations/<id>` away.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use hearth_protocol::Id;
use serde::Serialize;
use tokio::sync::watch;

use crate::decide::automations::catalog::LastRun;
use crate::decide::automations::{AutomationView, SceneView};
use crate::model::chime::Source;
use crate::revision::Revision;

/// One automation as the dashboard lists it: the retained view without
/// its definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutomationSummary {
    pub id: Id,
    pub name: Option<String>,
    pub enabled: bool,
    pub source: Source,
    pub running: usize,
    pub last_run: Option<LastRun>,
    pub next_at: Option<DateTime<Utc>>,
}

impl AutomationSummary {
    fn of(id: Id, view: &AutomationView) -> Self {
        Self {
            id,
            name: view.spec.name.clone(),
            enabled: view.spec.enabled.unwrap_or(true),
            source: view.source,
            running: view.running,
            last_run: view.last_run.clone(),
            next_at: view.next_at,
        }
    }
}

/// One scene as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SceneSummary {
    pub id: Id,
    pub name: Option<String>,
    pub source: Source,
}

impl SceneSummary {
    fn of(id: Id, view: &SceneView) -> Self {
        Self {
            id,
            name: view.spec.name.clone(),
            source: view.source,
        }
    }
}

/// Every automation and scene, by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    pub automations: BTreeMap<Id, AutomationSummary>,
    pub scenes: BTreeMap<Id, SceneSummary>,
}

/// A cheap handle on the one listing; clones share it.
#[derive(Debug, Clone, Default)]
pub struct SharedCatalog {
    listing: Arc<RwLock<Listing>>,
    revision: Arc<Revision>,
}

impl SharedCatalog {
    /// Shows `view` as automation `id`'s; `None`: it is gone.
    pub fn set_automation(&self, id: &Id, view: Option<&AutomationView>) {
        self.change(|l| match view {
            Some(v) => {
                l.automations
                    .insert(id.clone(), AutomationSummary::of(id.clone(), v));
            }
            None => {
                l.automations.remove(id);
            }
        });
    }

    /// Shows `view` as scene `id`'s; `None`: it is gone.
    pub fn set_scene(&self, id: &Id, view: Option<&SceneView>) {
        self.change(|l| match view {
            Some(v) => {
                l.scenes.insert(id.clone(), SceneSummary::of(id.clone(), v));
            }
            None => {
                l.scenes.remove(id);
            }
        });
    }

    /// Replaces everything (at start, and when this hub takes over).
    pub fn replace(
        &self,
        automations: impl IntoIterator<Item = (Id, AutomationView)>,
        scenes: impl IntoIterator<Item = (Id, SceneView)>,
    ) {
        let listing = Listing {
            automations: automations
                .into_iter()
                .map(|(id, v)| (id.clone(), AutomationSummary::of(id, &v)))
                .collect(),
            scenes: scenes
                .into_iter()
                .map(|(id, v)| (id.clone(), SceneSummary::of(id, &v)))
                .collect(),
        };
        self.change(|l| *l = listing);
    }

    /// Reads the listing in place (the lock is never held across an await).
    pub fn read<R>(&self, read: impl FnOnce(&Listing) -> R) -> R {
        read(&self.listing.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// A receiver that wakes after the next change.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.revision.watch()
    }

    fn change(&self, change: impl FnOnce(&mut Listing)) {
        change(&mut self.listing.write().unwrap_or_else(|p| p.into_inner()));
        self.revision.bump();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_protocol::{AutomationSpec, SceneSpec};

    fn view(name: &str, enabled: bool) -> AutomationView {
        AutomationView {
            spec: AutomationSpec {
                name: Some(name.to_owned()),
                enabled: Some(enabled),
                ..AutomationSpec::default()
            },
            source: Source::Runtime,
            next_at: None,
            running: 0,
            last_run: None,
        }
    }

    #[tokio::test]
    async fn a_change_is_listed_and_wakes_a_watcher() {
        let shared = SharedCatalog::default();
        let mut watcher = shared.watch();
        let id = Id::new("hall").unwrap();
        shared.set_automation(&id, Some(&view("Hall light", false)));
        watcher.changed().await.unwrap();
        let listed = shared.read(|l| l.automations.get(&id).cloned()).unwrap();
        assert_eq!(listed.name.as_deref(), Some("Hall light"));
        assert!(!listed.enabled, "{listed:?}");

        let scene = SceneView {
            spec: SceneSpec {
                name: Some("Evening".to_owned()),
                ..SceneSpec::default()
            },
            source: Source::Config,
        };
        shared.replace([], [(Id::new("evening").unwrap(), scene)]);
        assert!(shared.read(|l| l.automations.is_empty()));
        assert_eq!(shared.read(|l| l.scenes.len()), 1);
        shared.set_scene(&Id::new("evening").unwrap(), None);
        assert!(shared.read(|l| l.scenes.is_empty()));
    }
}
