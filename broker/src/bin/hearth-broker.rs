//! `hearth-broker`: the MQTT broker alone, as the Kubernetes broker Deployment runs it.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use hearth_broker::BrokerConfig;
use serde::Deserialize;

/// Hearth's MQTT broker (rumqttd) on its own.
///
/// Settings come from the config file's [broker] section, then from
/// HEARTH_BROKER__<KEY> environment variables (e.g.
/// HEARTH_BROKER__LISTEN=0.0.0.0:1883, HEARTH_BROKER__USERS__HUB=<password>).
/// With no config the broker listens on 127.0.0.1:1883 and lets local
/// clients in without a password. Stop it with SIGTERM or Ctrl-C.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// TOML config file with a [broker] section (see broker/broker.example.toml).
    #[arg(long, short, env = "HEARTH_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the config (file + environment) and exit without listening.
    #[arg(long)]
    check_config: bool,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct BrokerFile {
    broker: BrokerConfig,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    hearth_common::telemetry::init();
    let file: BrokerFile = hearth_common::settings::load(cli.config.as_deref())?;
    let config = file.broker;
    if cli.check_config {
        config.validate().context("invalid broker config")?;
        println!("config OK: {} listener(s)", config.listeners().len());
        return Ok(());
    }
    let broker = hearth_broker::start(&config)?;
    for (kind, addr) in broker.listeners() {
        eprintln!("hearth-broker: {} listening on {addr}", kind.name());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal handler runtime")?;
    runtime.block_on(hearth_common::shutdown::signal());
    // rumqttd has no graceful stop; sessions and retained messages live in
    // memory only, so exiting loses nothing a restart would keep.
    tracing::info!("broker stopped");
    Ok(())
}
