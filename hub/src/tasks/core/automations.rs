//! The core's side of automations: it owns the engine (and so its one
//! deadline), feeds it what each message changed in the house, takes
//! automation and scene changes from MQTT and HTTP, and turns what the
//! engine changed into rows for the writer and retained views. The engine
//! itself is pure (`crate::decide::automations`).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;

use chrono::{DateTime, Utc};
use hearth_protocol::{Command, Id, Topic};
use rumqttc::{QoS, SubscribeFilter};

use super::{Core, Stopping};
use crate::decide::automations::{
    Automation, Change, Context, Effects, Engine, Scene, Seen, Setup,
};
use crate::leader::Role;
use crate::model::catalog::{CatalogError, CatalogRequest};
use crate::model::chime::Source;
use crate::model::effects::{
    CatalogWrite, HouseEvent, MessageKind, Outcome, Publication, Rejection, Write,
};
use crate::store::Catalog;

/// What an automation or scene topic asks, parsed; a payload the topic
/// cannot take is refused as any other.
pub(super) fn request_of(topic: &Topic, payload: &[u8]) -> Result<CatalogRequest, Rejection> {
    let json = |what: &str| format!("{what}: the payload must be JSON (empty deletes)");
    Ok(match topic {
        Topic::HubAutomationSet(id) if payload.is_empty() => {
            CatalogRequest::Automation(id.clone(), None)
        }
        Topic::HubAutomationSet(id) => CatalogRequest::Automation(
            id.clone(),
            Some(
                serde_json::from_slice(payload)
                    .map_err(|e| Rejection::Automation(format!("{}: {}", json("automation"), e)))?,
            ),
        ),
        Topic::HubAutomationEnabledSet(id) => {
            CatalogRequest::Enabled(id.clone(), Command::parse(payload)?)
        }
        Topic::HubAutomationRun(id) => CatalogRequest::Run(id.clone()),
        Topic::HubSceneSet(id) if payload.is_empty() => CatalogRequest::Scene(id.clone(), None),
        Topic::HubSceneSet(id) => CatalogRequest::Scene(
            id.clone(),
            Some(
                serde_json::from_slice(payload)
                    .map_err(|e| Rejection::Automation(format!("{}: {}", json("scene"), e)))?,
            ),
        ),
        Topic::HubSceneApply(id) => CatalogRequest::Apply(id.clone()),
        other => {
            return Err(Rejection::Automation(format!(
                "{other:?} is not an automation topic"
            )));
        }
    })
}

/// Builds the engine a hub starts (or takes over) with, picking up the
/// runs that were waiting and the time triggers from where the last hub
/// dealt with them.
pub(super) fn engine(
    setup: Setup,
    rules: &[crate::decide::rules::Rule],
    catalog: Catalog,
    now: DateTime<Utc>,
) -> (Engine, Effects) {
    let scenes: Vec<&Scene> = catalog.scenes.iter().map(|(s, _)| s).collect();
    let (automations, refused) = crate::decide::automations::loops::without_loops(
        catalog.automations,
        &scenes,
        rules,
        &setup.topics,
    );
    for (automation, cycle) in refused {
        // Kept in the database: changing the file back brings it back.
        tracing::error!(%automation, %cycle, "stored automation left out: it would set automations off forever with the config's rules and automations");
    }
    let mut engine = Engine::new(setup, automations, catalog.scenes, now);
    engine.resume_timers(&catalog.timers_from, now);
    let fx = engine.restore(catalog.runs, now);
    (engine, fx)
}

impl Core<'_> {
    fn context(&self) -> Context {
        Context {
            timezone: self.settings.timezone,
            located: self.settings.place.is_some(),
        }
    }

    /// Runs the automations `outcome`'s events trigger; their commands go
    /// first, as rules' do: they are what a person waits for.
    pub(super) fn automate(&mut self, outcome: &mut Outcome, topic: &str, payload: &[u8]) {
        if self.automations.is_empty() || outcome.events.is_empty() {
            return;
        }
        let now = Utc::now();
        let engine = &mut self.automations;
        let fx = self.house.read(|house| {
            let mut fx = Effects::default();
            for event in &outcome.events {
                let seen = match event {
                    HouseEvent::Message => Seen::Message { topic, payload },
                    event => Seen::House(event),
                };
                fx.absorb(engine.on_event(house, seen, now));
            }
            fx
        });
        outcome
            .fired
            .extend(fx.started.iter().map(|id| format!("automation {id}")));
        let (publish, writes) = self.settle(fx);
        outcome.publish.splice(0..0, publish);
        outcome.writes.extend(writes);
    }

    /// Turns what the engine did into publications (commands first, then
    /// the retained views that changed) and rows to write.
    fn settle(&self, fx: Effects) -> (Vec<Publication>, Vec<Write>) {
        self.metrics
            .automation_runs
            .store(self.automations.running() as u64, Relaxed);
        let mut publish = fx.publish;
        // The commands' entries first: a run's own entry comes when it ends.
        let mut writes: Vec<Write> = fx.logbook.into_iter().map(Write::Logbook).collect();
        let mut views: BTreeSet<Id> = fx.started.into_iter().collect();
        let mut scenes: BTreeSet<Id> = BTreeSet::new();
        for change in fx.changes {
            let write = match change {
                Change::Automation(id) => {
                    let Some((spec, source)) = self.automations.stored(&id) else {
                        continue;
                    };
                    views.insert(id.clone());
                    CatalogWrite::Automation {
                        id,
                        spec: serde_json::to_string(&spec).unwrap_or_default(),
                        source: source.as_str(),
                    }
                }
                Change::AutomationGone(id) => {
                    views.insert(id.clone());
                    CatalogWrite::ForgetAutomation(id)
                }
                Change::Scene(id) => {
                    let Some((spec, source)) = self.automations.stored_scene(&id) else {
                        continue;
                    };
                    scenes.insert(id.clone());
                    CatalogWrite::Scene {
                        id,
                        spec: serde_json::to_string(&spec).unwrap_or_default(),
                        source: source.as_str(),
                    }
                }
                Change::SceneGone(id) => {
                    scenes.insert(id.clone());
                    CatalogWrite::ForgetScene(id)
                }
                Change::RunSaved(p) => CatalogWrite::Run {
                    automation: p.automation.clone(),
                    run: p.run,
                    state: serde_json::to_string(&*p).unwrap_or_default(),
                },
                Change::RunGone { automation, run } => CatalogWrite::RunGone { automation, run },
                Change::TimersPassed(automation, until) => {
                    // Its `next_at` moved.
                    views.insert(automation.clone());
                    CatalogWrite::TimersUntil { automation, until }
                }
                Change::Traced(t) => {
                    // A run ended (or a trigger was refused): its
                    // `last_run` and `running` changed.
                    views.insert(t.automation.clone());
                    // The run's logbook entry rides in the same batch as
                    // its trace (decide::logbook::run says which runs).
                    if let Some(entry) = crate::decide::logbook::run(&t) {
                        writes.push(Write::Logbook(entry));
                    }
                    CatalogWrite::Trace {
                        automation: t.automation.clone(),
                        run: t.run,
                        started_at: t.started_at,
                        outcome: t.outcome.as_str(),
                        trace: serde_json::to_string(&*t).unwrap_or_default(),
                    }
                }
            };
            writes.push(Write::Catalog(write));
        }
        let topics = &self.settings.topics;
        publish.extend(views.into_iter().map(|id| {
            let view = self.automations.view(&id);
            self.listing.set_automation(&id, view.as_ref());
            retained_view(topics.build(&Topic::HubAutomation(id)), view)
        }));
        for id in scenes {
            let view = self.automations.scene_view(&id);
            self.listing.set_scene(&id, view.as_ref());
            // Home Assistant's scene entity comes and goes with the scene.
            if let Some(discovery) = &self.discovery {
                let configs = match &view {
                    Some(_) => {
                        let name = self.automations.scene_name(&id).unwrap_or(id.as_str());
                        discovery.scene_configs(&id, name)
                    }
                    None => discovery.scene_removals(&id),
                };
                publish.extend(crate::decide::discovery::retained(configs));
            }
            publish.push(retained_view(topics.build(&Topic::HubScene(id)), view));
        }
        (publish, writes)
    }

    /// Every automation's and scene's view, for the API.
    pub(super) fn views(
        &self,
    ) -> (
        Vec<crate::decide::automations::AutomationView>,
        Vec<crate::decide::automations::SceneView>,
    ) {
        let engine = &self.automations;
        (
            engine
                .automation_ids()
                .filter_map(|id| engine.view(id))
                .collect(),
            engine
                .scene_ids()
                .filter_map(|id| engine.scene_view(id))
                .collect(),
        )
    }

    /// Shows every automation and scene to live views afresh (at start,
    /// and when another hub's catalogue is taken over).
    pub(super) fn share_listing(&self) {
        let engine = &self.automations;
        self.listing.replace(
            engine
                .automation_ids()
                .filter_map(|id| Some((id.clone(), engine.view(id)?))),
            engine
                .scene_ids()
                .filter_map(|id| Some((id.clone(), engine.scene_view(id)?))),
        );
    }

    /// Every automation's and scene's retained view, for the hello.
    pub(super) fn catalog_views(&self) -> Vec<Publication> {
        let fx = Effects {
            changes: self
                .automations
                .automation_ids()
                .map(|id| Change::Automation(id.clone()))
                .chain(
                    self.automations
                        .scene_ids()
                        .map(|id| Change::Scene(id.clone())),
                )
                .collect(),
            ..Effects::default()
        };
        // Only the views: the rows are already stored.
        self.settle(fx).0
    }

    /// Carries out `fx` outside a message: publishes, then queues its rows.
    pub(super) async fn carry_out(&mut self, fx: Effects) -> Result<(), Stopping> {
        self.metrics
            .rule_firings
            .fetch_add(fx.started.len() as u64, Relaxed);
        let (publish, writes) = self.settle(fx);
        self.publisher.publish_all(publish).await;
        if writes.is_empty() {
            return Ok(());
        }
        self.queue(writes, None, None).await
    }

    /// The engine's deadline came: delays end, waits time out, time and
    /// sun triggers fire (only on the leader; a standby lets them pass).
    pub(super) async fn on_deadline(&mut self, role: Role) -> Result<(), Stopping> {
        let now = Utc::now();
        let engine = &mut self.automations;
        let fx = self
            .house
            .read(|house| engine.on_time(house, now, role == Role::Leader));
        self.carry_out(fx).await
    }

    /// The hub started leading: `hub = "start"` automations run, once.
    pub(super) async fn on_hub_start(&mut self) -> Result<(), Stopping> {
        if std::mem::replace(&mut self.hub_started, true) {
            return Ok(());
        }
        let now = Utc::now();
        let engine = &mut self.automations;
        let fx = self.house.read(|house| engine.on_hub_start(house, now));
        self.carry_out(fx).await
    }

    /// Took over from another hub: its automations, scenes and waiting runs.
    pub(super) async fn reload_catalog(&mut self, catalog: Catalog) -> Result<(), Stopping> {
        let setup = self.automations_setup();
        let (engine, fx) = engine(setup, &self.settings.rules, catalog, Utc::now());
        self.automations = engine;
        self.share_listing();
        self.refresh_subscriptions().await;
        self.carry_out(fx).await
    }

    pub(super) fn automations_setup(&self) -> Setup {
        automations_setup(self.settings)
    }

    /// A catalogue change from MQTT or HTTP: checked, applied, its rows
    /// and views returned as an outcome, with the view the caller gets
    /// back; refused with a message naming the field, changing nothing.
    pub(super) async fn on_catalog(
        &mut self,
        request: CatalogRequest,
    ) -> Result<(Outcome, Option<serde_json::Value>), CatalogError> {
        let now = Utc::now();
        let cx = self.context();
        let unknown = |what: &str, id: &Id| CatalogError::Unknown(format!("no {what} {id}"));
        let (fx, shown) = match request {
            CatalogRequest::Automation(id, Some(spec)) => {
                let automation = Automation::validate(&spec, Some(&id), cx)
                    .map_err(|e| CatalogError::Invalid(e.to_string()))?;
                self.check_references(&automation)
                    .map_err(CatalogError::Invalid)?;
                (
                    self.automations.upsert(automation, Source::Runtime, now),
                    Some(id),
                )
            }
            CatalogRequest::Automation(id, None) => (
                self.automations
                    .remove(&id, now)
                    .ok_or_else(|| unknown("automation", &id))?,
                None,
            ),
            CatalogRequest::Enabled(id, command) => {
                let on = self
                    .automations
                    .stored(&id)
                    .ok_or_else(|| unknown("automation", &id))?
                    .0
                    .enabled
                    .unwrap_or(true);
                let want = match command {
                    Command::On => true,
                    Command::Off => false,
                    Command::Toggle => !on,
                };
                let fx = self
                    .automations
                    .set_enabled(&id, want, now)
                    .ok_or_else(|| unknown("automation", &id))?;
                (fx, Some(id))
            }
            CatalogRequest::Run(id) => {
                let engine = &mut self.automations;
                let fx = self
                    .house
                    .read(|house| engine.run_now(&id, house, now))
                    .ok_or_else(|| unknown("automation", &id))?;
                (fx, Some(id))
            }
            CatalogRequest::Scene(id, Some(spec)) => {
                let scene = Scene::validate(&spec, Some(&id), cx)
                    .map_err(|e| CatalogError::Invalid(e.to_string()))?;
                let fx = self.automations.upsert_scene(scene, Source::Runtime);
                let view = self.automations.scene_view(&id);
                return Ok((
                    self.outcome_of(fx).await,
                    view.map(|v| serde_json::json!(v)),
                ));
            }
            CatalogRequest::Scene(id, None) => {
                if let Some(user) = self
                    .automations
                    .automations()
                    .find(|a| a.applies_scene(&id))
                {
                    return Err(CatalogError::Invalid(format!(
                        "scene {id} is applied by automation {}; change or delete that first",
                        user.id
                    )));
                }
                (
                    self.automations
                        .remove_scene(&id)
                        .ok_or_else(|| unknown("scene", &id))?,
                    None,
                )
            }
            CatalogRequest::Apply(id) => {
                let engine = &self.automations;
                // Applied by itself (HTTP or its MQTT topic): the commands'
                // entries name the scene.
                let source = format!("scene:{id}");
                let (publish, logbook) = self
                    .house
                    .read(|house| engine.apply_scene(&id, house, Utc::now(), &source))
                    .ok_or_else(|| unknown("scene", &id))?;
                let fx = Effects {
                    publish,
                    logbook,
                    ..Effects::default()
                };
                let shown = serde_json::json!({ "applied": id });
                return Ok((self.outcome_of(fx).await, Some(shown)));
            }
        };
        let outcome = self.outcome_of(fx).await;
        let view = shown
            .and_then(|id| self.automations.view(&id))
            .map(|v| serde_json::json!(v));
        Ok((outcome, view))
    }

    async fn outcome_of(&mut self, fx: Effects) -> Outcome {
        let catalog_changed = fx
            .changes
            .iter()
            .any(|c| matches!(c, Change::Automation(_) | Change::AutomationGone(_)));
        let fired = fx
            .started
            .iter()
            .map(|id| format!("automation {id}"))
            .collect();
        let (publish, writes) = self.settle(fx);
        if catalog_changed {
            self.refresh_subscriptions().await;
        }
        Outcome {
            publish,
            writes,
            fired,
            ..Outcome::kind(MessageKind::Automation)
        }
    }

    /// See `loops::check_joins`.
    fn check_references(&self, automation: &Automation) -> Result<(), String> {
        let others: Vec<&Automation> = self.automations.automations().collect();
        crate::decide::automations::loops::check_joins(
            automation,
            &others,
            &self.automations.scenes(),
            &self.settings.rules,
            &self.settings.topics,
        )
    }

    /// Subscribes to the filters automations added and drops those no
    /// automation needs any more.
    async fn refresh_subscriptions(&mut self) {
        let extra = filters_of(&self.automations);
        let wanted = crate::decide::discovery::with_filters(
            self.discovery.as_ref(),
            crate::decide::message::subscriptions(
                &self.settings.topics,
                &self.settings.rules,
                &extra,
            ),
        );
        let added: Vec<String> = wanted
            .iter()
            .filter(|f| !self.filters.contains(f))
            .cloned()
            .collect();
        let removed: Vec<String> = self
            .filters
            .iter()
            .filter(|f| !wanted.contains(f))
            .cloned()
            .collect();
        self.filters = wanted;
        if !added.is_empty() {
            let filters = added
                .into_iter()
                .map(|f| SubscribeFilter::new(f, QoS::AtLeastOnce));
            if let Err(error) = self.client.subscribe_many(filters).await {
                tracing::error!(%error, "cannot subscribe to an automation's topics");
            }
        }
        for filter in removed {
            if let Err(error) = self.client.unsubscribe(filter).await {
                tracing::warn!(%error, "cannot unsubscribe a filter no automation needs");
            }
        }
    }
}

/// The engine's setup from the settings.
pub(super) fn automations_setup(settings: &crate::config::Settings) -> Setup {
    Setup {
        topics: settings.topics.clone(),
        timezone: settings.timezone,
        place: settings.place,
        catch_up: settings.automation_catch_up,
    }
}

/// The hub's subscriptions beyond the built-in ones: rules' and every
/// automation's topic filters.
pub(super) fn filters_of(engine: &Engine) -> Vec<String> {
    // Once each: many automations listen on the same topic.
    let unique: BTreeSet<&str> = engine.automations().flat_map(|a| a.filters()).collect();
    unique.into_iter().map(str::to_owned).collect()
}

/// An automation's or scene's retained view; an empty payload clears it
/// once the automation or scene is gone.
fn retained_view(topic: String, view: Option<impl serde::Serialize>) -> Publication {
    let payload = view
        .map(|v| serde_json::to_vec(&v).unwrap_or_default())
        .unwrap_or_default();
    Publication::retained(topic, payload)
}

/// Sleeps until `deadline` (a wall-clock instant); never, for `None`.
pub(super) async fn until(deadline: Option<DateTime<Utc>>) {
    match deadline {
        Some(at) => {
            let wait = (at - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
        }
        None => std::future::pending().await,
    }
}
