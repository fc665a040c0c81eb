//! `hearth-hub chimes ...`: manage chimes from a shell, against the hub's own database.
//!
//! Changes go to the database first, then a nudge on MQTT
//! (`hearth/hub/chimes/<id>/set`) tells a running hub to pick them up at
//! once; with no hub running they take effect when it starts.

use std::io::Write;

mod automations;
mod scenes;
pub use automations::{AutomationCommand, run_automations};
pub use scenes::{SceneCommand, run_scenes};
use std::time::Duration;

use chrono::Utc;
use clap::Subcommand;
use hearth_protocol::{Id, Topic};
use rumqttc::{Event, Incoming, Outgoing, QoS};

use crate::chimes::scheduler::Play;
use crate::chimes::{Chime, ChimeSpec, Source};
use crate::config::Settings;
use crate::decide::automations::Context;
use crate::store::{Store, StoreError};

/// How long the CLI waits for the broker to accept a message.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Subcommand)]
pub enum ChimeCommand {
    /// List every chime with its next play time.
    List,
    /// Create or replace a chime.
    Add {
        /// Chime id: a-z, 0-9, '_' and '-'.
        id: String,
        /// Cron expression (seconds optional) or "HH:MM" / "HH:MM:SS".
        #[arg(long)]
        schedule: String,
        /// With an "HH:MM" schedule: mon..sun, weekdays or weekends (comma separated).
        #[arg(long, value_delimiter = ',')]
        weekdays: Vec<String>,
        /// IANA time zone (default: the hub's).
        #[arg(long)]
        timezone: Option<String>,
        /// Speaker id that plays it (a node agent's [speaker] name).
        #[arg(long)]
        speaker: String,
        /// Sound file name inside the speaker's sounds directory.
        #[arg(long)]
        sound: String,
        /// Volume 0-100.
        #[arg(long)]
        volume: Option<u8>,
        /// A name for people.
        #[arg(long)]
        name: Option<String>,
        /// Create it switched off.
        #[arg(long)]
        disabled: bool,
        /// Seconds an occurrence may be late and still play (default 60).
        #[arg(long)]
        catch_up_secs: Option<u64>,
    },
    /// Delete a chime.
    Rm { id: String },
    /// Show the next play times of a chime.
    Next {
        id: String,
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
    /// Play a chime now (publishes to its speaker).
    Play { id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    /// What was asked for (`chime`, `automation`) and its id.
    #[error("unknown {0} {1}")]
    Unknown(&'static str, String),
    #[error("broker: {0}")]
    Broker(String),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs one chime command, writing what a person reads to `out`.
pub async fn run_chimes(
    settings: &Settings,
    command: ChimeCommand,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let store = Store::connect(&settings.database).await?;
    match command {
        ChimeCommand::List => {
            let now = Utc::now();
            let header = [
                "ID",
                "SCHEDULE",
                "TIME ZONE",
                "SPEAKER",
                "SOUND",
                "SOURCE",
                "NEXT",
            ];
            writeln!(
                out,
                "{:<16} {:<22} {:<22} {:<14} {:<16} {:<8} {}",
                header[0], header[1], header[2], header[3], header[4], header[5], header[6]
            )?;
            for chime in store.load_chimes(settings.timezone).await? {
                let view = chime.view(now);
                let schedule = if view.weekdays.is_empty() {
                    view.schedule.clone()
                } else {
                    format!("{} {}", view.schedule, view.weekdays.join(","))
                };
                writeln!(
                    out,
                    "{:<16} {:<22} {:<22} {:<14} {:<16} {:<8} {}",
                    view.id,
                    schedule,
                    view.timezone,
                    view.speaker,
                    view.sound,
                    view.source.as_str(),
                    view.next_at.as_deref().unwrap_or(if view.enabled {
                        "never"
                    } else {
                        "disabled"
                    })
                )?;
            }
        }
        ChimeCommand::Add {
            id,
            schedule,
            weekdays,
            timezone,
            speaker,
            sound,
            volume,
            name,
            disabled,
            catch_up_secs,
        } => {
            let spec = ChimeSpec {
                id: Some(id),
                name,
                schedule,
                weekdays,
                timezone,
                speaker,
                sound,
                volume,
                enabled: Some(!disabled),
                catch_up_secs,
            };
            let chime = spec
                .validate(None, settings.timezone, Source::Runtime)
                .map_err(|e| CliError::Invalid(e.to_string()))?;
            store.upsert_chime(&chime).await?;
            let next = chime
                .view(Utc::now())
                .next_at
                .unwrap_or_else(|| "never".to_owned());
            writeln!(out, "saved {} (next: {next})", chime.id)?;
            let json = serde_json::to_vec(&chime.spec()).unwrap_or_default();
            nudge(settings, &Topic::HubChimeSet(chime.id.clone()), json, out).await?;
        }
        ChimeCommand::Rm { id } => {
            let id = parse_id(&id)?;
            if !store.delete_chime(&id).await? {
                return Err(CliError::Unknown("chime", id.to_string()));
            }
            writeln!(out, "deleted {id}")?;
            nudge(settings, &Topic::HubChimeSet(id), Vec::new(), out).await?;
        }
        ChimeCommand::Next { id, count } => {
            let chime = find(&store, settings, &id).await?;
            if !chime.enabled {
                writeln!(out, "{} is disabled: it does not play", chime.id)?;
            }
            let mut at = Utc::now();
            for _ in 0..count {
                match chime.next_after(at) {
                    Some(next) => {
                        writeln!(
                            out,
                            "{}",
                            next.with_timezone(&chime.timezone)
                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
                        )?;
                        at = next;
                    }
                    None => break,
                }
            }
        }
        ChimeCommand::Play { id } => {
            let chime = find(&store, settings, &id).await?;
            let play = Play::of(&chime, None, false);
            let topic = Topic::ChimePlay {
                speaker: play.speaker.clone(),
            };
            let payload = serde_json::to_vec(&play.message).unwrap_or_default();
            publish(settings, &topic, payload).await?;
            writeln!(out, "playing {} on {}", chime.id, chime.speaker)?;
        }
    }
    Ok(())
}

/// The hub's database with its automations and scenes, and the context
/// they are checked in (the hub's zone, whether it has a place).
async fn open_catalog(
    settings: &Settings,
) -> Result<(Store, Context, crate::store::Catalog), CliError> {
    let store = Store::connect(&settings.database).await?;
    let cx = Context {
        timezone: settings.timezone,
        located: settings.place.is_some(),
    };
    let catalog = store.load_catalog(cx).await?;
    Ok((store, cx, catalog))
}

/// One automation or scene from a file: JSON if it starts with `{`, TOML
/// otherwise; a mistake names the file and what is wrong.
fn read_file<T: serde::de::DeserializeOwned>(file: &std::path::Path) -> Result<T, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Invalid(format!("{}: {e}", file.display())))?;
    let parsed = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        toml::from_str(&text).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| CliError::Invalid(format!("{}: {e}", file.display())))
}

fn parse_id(raw: &str) -> Result<Id, CliError> {
    Id::new(raw).map_err(|e| CliError::Invalid(format!("id: {e}")))
}

async fn find(store: &Store, settings: &Settings, id: &str) -> Result<Chime, CliError> {
    let id = parse_id(id)?;
    store
        .load_chimes(settings.timezone)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| CliError::Unknown("chime", id.to_string()))
}

/// Tells a running hub about a change; says so when no broker answers.
async fn nudge(
    settings: &Settings,
    topic: &Topic,
    payload: Vec<u8>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    match publish(settings, topic, payload).await {
        Ok(()) => writeln!(out, "the running hub was told")?,
        Err(error) => writeln!(
            out,
            "no broker reachable ({error}); the hub will load it when it starts"
        )?,
    }
    Ok(())
}

/// Publishes one QoS 1 message and waits until the broker acknowledges it.
async fn publish(settings: &Settings, topic: &Topic, payload: Vec<u8>) -> Result<(), CliError> {
    let client_id = format!("hearth-cli-{}", std::process::id());
    let options = settings
        .mqtt
        .options(&client_id, None)
        .map_err(|e| CliError::Broker(e.to_string()))?;
    let (client, mut eventloop) = hearth_common::mqtt::client(options);
    client
        .publish(
            settings.topics.build(topic),
            QoS::AtLeastOnce,
            false,
            payload,
        )
        .await
        .map_err(|e| CliError::Broker(e.to_string()))?;
    let acked = tokio::time::timeout(PUBLISH_TIMEOUT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::PubAck(_))) => return Ok(()),
                Ok(Event::Outgoing(Outgoing::Disconnect)) => return Err("disconnected".to_owned()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await
    .map_err(|_| CliError::Broker(format!("no acknowledgement within {PUBLISH_TIMEOUT:?}")))?;
    acked.map_err(CliError::Broker)?;
    let _ = client.try_disconnect();
    Ok(())
}
