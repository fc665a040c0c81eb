//! `hearth-hub automations ...`: manage automations from a shell, against
//! the hub's own database, as `chimes` does: the change is checked here
//! (the hub's own rules, the field named), stored, then a running hub is
//! told on MQTT (`hearth/hub/automations/<id>/...`) and takes it at once.

use clap::Subcommand;
use hearth_protocol::{AutomationSpec, Id, Topic};

use super::{CliError, nudge, parse_id, publish, read_file};
use crate::config::Settings;
use crate::decide::automations::loops::check_joins;
use crate::decide::automations::{Automation, Scene};
use crate::model::effects::{CatalogWrite, Write};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum AutomationCommand {
    /// List every automation: enabled, mode, triggers, source.
    List,
    /// Create or replace an automation from a JSON or TOML file (one
    /// automation, with its `id`; the fields of docs/automations.md).
    Set { file: std::path::PathBuf },
    /// Delete an automation.
    Rm { id: String },
    /// Switch an automation on.
    Enable { id: String },
    /// Switch an automation off.
    Disable { id: String },
    /// Run an automation's actions now (needs a running hub).
    Run { id: String },
    /// The last runs of an automation: trigger, conditions seen, steps.
    Traces {
        id: String,
        #[arg(long, default_value_t = 5)]
        count: u32,
    },
}

/// Runs one automation command, writing what a person reads to `out`.
pub async fn run_automations(
    settings: &Settings,
    command: AutomationCommand,
    out: &mut impl std::io::Write,
) -> Result<(), CliError> {
    let (store, cx, catalog) = super::open_catalog(settings).await?;
    let find = |id: &Id| {
        catalog
            .automations
            .iter()
            .find(|(a, _)| a.id == *id)
            .ok_or_else(|| CliError::Unknown("automation", id.to_string()))
    };
    match command {
        AutomationCommand::List => {
            writeln!(
                out,
                "{:<20} {:<8} {:<8} {:<8} NAME",
                "ID", "ENABLED", "MODE", "SOURCE"
            )?;
            for (a, source) in &catalog.automations {
                writeln!(
                    out,
                    "{:<20} {:<8} {:<8} {:<8} {}",
                    a.id,
                    if a.enabled { "on" } else { "off" },
                    a.spec.mode.as_deref().unwrap_or("single"),
                    source.as_str(),
                    a.name
                )?;
            }
        }
        AutomationCommand::Set { file } => {
            let spec: AutomationSpec = read_file(&file)?;
            let automation = Automation::validate(&spec, None, cx)
                .map_err(|e| CliError::Invalid(e.to_string()))?;
            // The hub's own check, so nothing is stored that it (or its
            // next start) would refuse.
            let others: Vec<&Automation> = catalog.automations.iter().map(|(a, _)| a).collect();
            let scenes: Vec<&Scene> = catalog.scenes.iter().map(|(s, _)| s).collect();
            check_joins(
                &automation,
                &others,
                &scenes,
                &settings.rules,
                &settings.topics,
            )
            .map_err(|e| CliError::Invalid(format!("{}: {e}", file.display())))?;
            let json = serde_json::to_string(&automation.spec).unwrap_or_default();
            store
                .apply(&[Write::Catalog(CatalogWrite::Automation {
                    id: automation.id.clone(),
                    spec: json.clone(),
                    source: "runtime",
                })])
                .await?;
            writeln!(out, "saved {}", automation.id)?;
            let topic = Topic::HubAutomationSet(automation.id.clone());
            nudge(settings, &topic, json.into_bytes(), out).await?;
        }
        AutomationCommand::Rm { id } => {
            let id = parse_id(&id)?;
            find(&id)?;
            store
                .apply(&[Write::Catalog(CatalogWrite::ForgetAutomation(id.clone()))])
                .await?;
            writeln!(out, "deleted {id}")?;
            nudge(settings, &Topic::HubAutomationSet(id), Vec::new(), out).await?;
        }
        AutomationCommand::Enable { id } => {
            switch(settings, &store, find(&parse_id(&id)?)?, true, out).await?;
        }
        AutomationCommand::Disable { id } => {
            switch(settings, &store, find(&parse_id(&id)?)?, false, out).await?;
        }
        AutomationCommand::Run { id } => {
            let id = parse_id(&id)?;
            find(&id)?;
            publish(settings, &Topic::HubAutomationRun(id.clone()), Vec::new()).await?;
            writeln!(out, "running {id}")?;
        }
        AutomationCommand::Traces { id, count } => {
            let id = parse_id(&id)?;
            find(&id)?;
            for trace in store.traces(&id, count.clamp(1, 100)).await? {
                writeln!(
                    out,
                    "{} {:?}: {}",
                    trace
                        .started_at
                        .with_timezone(&settings.timezone)
                        .format("%Y-%m-%d %H:%M:%S"),
                    trace.outcome,
                    trace.trigger
                )?;
                for c in &trace.conditions {
                    writeln!(
                        out,
                        "  condition {}: {}",
                        if c.held { "held" } else { "failed" },
                        c.saw
                    )?;
                }
                for s in &trace.steps {
                    writeln!(out, "  step {}: {}", s.step, s.what)?;
                }
            }
        }
    }
    Ok(())
}

async fn switch(
    settings: &Settings,
    store: &Store,
    (automation, source): &(Automation, crate::model::chime::Source),
    on: bool,
    out: &mut impl std::io::Write,
) -> Result<(), CliError> {
    let mut spec = automation.spec.clone();
    spec.enabled = Some(on);
    store
        .apply(&[Write::Catalog(CatalogWrite::Automation {
            id: automation.id.clone(),
            spec: serde_json::to_string(&spec).unwrap_or_default(),
            source: source.as_str(),
        })])
        .await?;
    writeln!(
        out,
        "{} {}",
        automation.id,
        if on { "enabled" } else { "disabled" }
    )?;
    let topic = Topic::HubAutomationEnabledSet(automation.id.clone());
    let payload = if on { "ON" } else { "OFF" };
    nudge(settings, &topic, payload.into(), out).await
}
