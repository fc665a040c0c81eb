//! `hearth-hub`: the hub, and with the default config the embedded broker too.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use hearth_hub::HubConfig;

/// Hearth's home automation hub.
///
/// With no config file it runs everything in one process: the MQTT broker on
/// 127.0.0.1:1883 (local clients only), the HTTP API on 127.0.0.1:8080 and a
/// SQLite database under ./data. Settings come from the TOML file (see
/// hub/hearth.example.toml), then HEARTH_<SECTION>__<KEY> environment
/// variables. Stop it with SIGTERM or Ctrl-C.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// TOML config file (every key is documented in hub/hearth.example.toml).
    #[arg(long, short, env = "HEARTH_CONFIG", value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Run the MQTT broker inside this process (the default unless the
    /// config says `[broker] embedded = false`).
    #[arg(long, conflicts_with = "external_broker")]
    embedded_broker: bool,
    /// Use the broker at [mqtt] url instead of starting one.
    #[arg(long)]
    external_broker: bool,
    /// Check the config (file + environment) and exit.
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Manage scheduled chimes in the hub's database.
    Chimes {
        #[command(subcommand)]
        action: hearth_hub::cli::ChimeCommand,
    },
    /// Manage automations in the hub's database (docs/automations.md).
    Automations {
        #[command(subcommand)]
        action: hearth_hub::cli::AutomationCommand,
    },
    /// Manage scenes in the hub's database (docs/automations.md).
    Scenes {
        #[command(subcommand)]
        action: hearth_hub::cli::SceneCommand,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    hearth_common::telemetry::init();
    let mut config: HubConfig = hearth_common::settings::load(cli.config.as_deref())?;
    if cli.embedded_broker {
        config.broker.embedded = true;
    }
    if cli.external_broker {
        config.broker.embedded = false;
    }
    let settings = config.validate().context("invalid config")?;
    if cli.check_config {
        println!(
            "config OK: {} rule(s), {} automation(s), {} scene(s), {} switch(es), {} chime(s), time zone {}, database {}",
            settings.rules.len(),
            settings.automations.len(),
            settings.scenes.len(),
            settings.switches.len(),
            settings.chimes.len(),
            settings.timezone,
            hearth_hub::store::redact_url(&settings.database.url),
        );
        return Ok(());
    }
    match cli.command {
        Some(Command::Chimes { action }) => {
            let mut out = std::io::stdout().lock();
            hearth_hub::cli::run_chimes(&settings, action, &mut out).await?;
            return Ok(());
        }
        Some(Command::Automations { action }) => {
            let mut out = std::io::stdout().lock();
            hearth_hub::cli::run_automations(&settings, action, &mut out).await?;
            return Ok(());
        }
        Some(Command::Scenes { action }) => {
            let mut out = std::io::stdout().lock();
            hearth_hub::cli::run_scenes(&settings, action, &mut out).await?;
            return Ok(());
        }
        None => {}
    }
    let shutdown = hearth_common::shutdown::on_signal();
    let hub = hearth_hub::start(settings).await?;
    print_banner(&hub);
    shutdown.cancelled().await;
    hub.stop().await;
    eprintln!("hearth-hub: stopped");
    Ok(())
}

fn print_banner(hub: &hearth_hub::Hub) {
    let settings = hub.settings();
    eprintln!("hearth-hub is running");
    if let Some(broker) = hub.broker() {
        for (kind, addr) in broker.listeners() {
            eprintln!("  MQTT broker ({}):  {addr}", kind.name());
        }
    } else {
        eprintln!("  MQTT broker:        {} (external)", hub.mqtt_url);
    }
    eprintln!(
        "  dashboard:          http://{}/  (API: /api/v1, /api/v0; /healthz, /readyz, /metrics)",
        hub.http_addr
    );
    eprintln!(
        "  database:           {}",
        hearth_hub::store::redact_url(&settings.database.url)
    );
    eprintln!("  time zone:          {}", settings.timezone);
    for line in try_lines(hub) {
        eprintln!("{line}");
    }
    eprintln!("  stop:  Ctrl-C (or SIGTERM)");
}

/// The banner's commands, runnable as printed (with the user's own password
/// where it says `<password>`): the broker's real port, and a user name when
/// the broker asks for logins. Never a password.
fn try_lines(hub: &hearth_hub::Hub) -> Vec<String> {
    let Some(broker) = hub.broker() else {
        return Vec::new();
    };
    let Some(config) = hub.settings().broker.as_ref() else {
        return Vec::new();
    };
    let addr = broker.mqtt_addr();
    let login = if config.anonymous_allowed() {
        String::new()
    } else {
        let user = config.users.keys().next().map_or("<user>", String::as_str);
        format!(" -u {user} -P '<password>'")
    };
    let mut lines = vec![format!(
        "  try:   mosquitto_sub -h 127.0.0.1 -p {}{login} -t 'hearth/#' -v",
        addr.port()
    )];
    if addr.ip().is_loopback() {
        lines.extend([
            "  LAN:   to let other devices in, give the broker a user and listen on 0.0.0.0:".to_owned(),
            "         export HEARTH_BROKER__USERS__HOME=\"$(openssl rand -hex 16)\"".to_owned(),
            "         HEARTH_BROKER__LISTEN=0.0.0.0:1883 cargo run --release --bin hearth-hub".to_owned(),
            "         (then -u home -P \"$HEARTH_BROKER__USERS__HOME\"; README.md, docs/security.md)".to_owned(),
        ]);
    }
    lines
}
