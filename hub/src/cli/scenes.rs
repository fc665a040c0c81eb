//! `hearth-hub scenes ...`: manage scenes from a shell, as `automations`
//! does: checked here with the hub's own rules, stored, then a running hub
//! is told on MQTT (`hearth/hub/scenes/<id>/...`) and takes it at once.

use clap::Subcommand;
use hearth_protocol::{SceneSpec, Topic};

use super::{CliError, nudge, parse_id, publish, read_file};
use crate::config::Settings;
use crate::decide::automations::Scene;
use crate::model::effects::{CatalogWrite, Write};

#[derive(Debug, Subcommand)]
pub enum SceneCommand {
    /// List every scene: its outputs, source.
    List,
    /// Create or replace a scene from a JSON or TOML file (one scene, with
    /// its `id`, `name` and `outputs`; see docs/automations.md).
    Set { file: std::path::PathBuf },
    /// Delete a scene (refused while an automation applies it).
    Rm { id: String },
    /// Apply a scene now (needs a running hub).
    Apply { id: String },
}

/// Runs one scene command, writing what a person reads to `out`.
pub async fn run_scenes(
    settings: &Settings,
    command: SceneCommand,
    out: &mut impl std::io::Write,
) -> Result<(), CliError> {
    let (store, cx, catalog) = super::open_catalog(settings).await?;
    let known = |id: &hearth_protocol::Id| {
        catalog
            .scenes
            .iter()
            .any(|(s, _)| s.id == *id)
            .then_some(())
            .ok_or_else(|| CliError::Unknown("scene", id.to_string()))
    };
    match command {
        SceneCommand::List => {
            writeln!(out, "{:<20} {:<8} {:<8} NAME", "ID", "OUTPUTS", "SOURCE")?;
            for (scene, source) in &catalog.scenes {
                writeln!(
                    out,
                    "{:<20} {:<8} {:<8} {}",
                    scene.id,
                    scene.steps.len(),
                    source.as_str(),
                    scene.name
                )?;
            }
        }
        SceneCommand::Set { file } => {
            let spec: SceneSpec = read_file(&file)?;
            let scene = Scene::validate(&spec, None, cx)
                .map_err(|e| CliError::Invalid(format!("{}: {e}", file.display())))?;
            let json = serde_json::to_string(&scene.spec).unwrap_or_default();
            store
                .apply(&[Write::Catalog(CatalogWrite::Scene {
                    id: scene.id.clone(),
                    spec: json.clone(),
                    source: "runtime",
                })])
                .await?;
            writeln!(out, "saved {}", scene.id)?;
            nudge(
                settings,
                &Topic::HubSceneSet(scene.id),
                json.into_bytes(),
                out,
            )
            .await?;
        }
        SceneCommand::Rm { id } => {
            let id = parse_id(&id)?;
            known(&id)?;
            // An automation that applies it would find nothing to apply.
            if let Some((user, _)) = catalog
                .automations
                .iter()
                .find(|(a, _)| a.applies_scene(&id))
            {
                return Err(CliError::Invalid(format!(
                    "scene {id} is applied by automation {}; change or delete that first",
                    user.id
                )));
            }
            store
                .apply(&[Write::Catalog(CatalogWrite::ForgetScene(id.clone()))])
                .await?;
            writeln!(out, "deleted {id}")?;
            nudge(settings, &Topic::HubSceneSet(id), Vec::new(), out).await?;
        }
        SceneCommand::Apply { id } => {
            let id = parse_id(&id)?;
            known(&id)?;
            publish(settings, &Topic::HubSceneApply(id.clone()), Vec::new()).await?;
            writeln!(out, "applied {id}")?;
        }
    }
    Ok(())
}
