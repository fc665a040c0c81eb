//! `hearth-node-agent`: parse flags, load the node config, start tracing, run the agent.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

/// How long the runtime waits for a sensor read still on the blocking pool.
const RUNTIME_STOP_TIMEOUT: Duration = Duration::from_millis(200);

/// Hearth's Raspberry Pi agent: GPIO lights and switches, sequences, DHT11/DHT22
/// climate and a chime speaker, driven over MQTT.
///
/// Settings come from the TOML file (see node-agent/node.example.toml), then
/// from HEARTH_<SECTION>__<KEY> environment variables (e.g.
/// HEARTH_MQTT__URL=mqtt://broker:1883, HEARTH_NODE__ID=pi-1). The node id
/// defaults to NODE_NAME (Kubernetes downward API), else the hostname.
/// SIGTERM or SIGINT switches every output off, publishes OFF and offline,
/// and exits. HEARTH_LOG sets the log filter (default: info).
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// TOML file describing this Pi: node, [mqtt], [[outputs]], [[sequences]], [sensor], [speaker].
    #[arg(long, short, env = "HEARTH_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run without a Raspberry Pi: pin changes are logged and the DHT gives
    /// drifting readings. Without --config this is the demo Pi: traffic
    /// lights red/yellow/green on BCM 17/27/22, the `traffic` sequence and a
    /// DHT11 on BCM 4, against mqtt://127.0.0.1:1883.
    #[arg(long, env = "HEARTH_SIMULATE")]
    simulate: bool,
    /// Load and validate the config (file + environment), print a summary and
    /// exit: 0 if valid, non-zero with the offending key otherwise.
    #[arg(long, conflicts_with = "all_off")]
    check_config: bool,
    /// Switch every configured output (and buzzer) off and exit, without
    /// MQTT. For a Kubernetes preStop hook or systemd ExecStopPost.
    #[arg(long)]
    all_off: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line with the whole cause chain; a backtrace helps nobody
            // reading a config mistake in `kubectl logs`.
            eprintln!("hearth-node-agent: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    hearth_common::telemetry::init();
    let config = hearth_node_agent::config::load(cli.config.as_deref(), cli.simulate)
        .context("invalid node config")?;
    if cli.check_config {
        print!("{config}");
        return Ok(());
    }
    if cli.all_off {
        let count = hearth_node_agent::all_off(&config).context("cannot switch outputs off")?;
        tracing::info!(outputs = count, "every output is off");
        return Ok(());
    }
    // One thread is plenty for a handful of pins and one MQTT link, and keeps
    // the resident set small on a Pi Zero.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        let shutdown = hearth_common::shutdown::on_signal();
        hearth_node_agent::run(config, shutdown).await
    });
    runtime.shutdown_timeout(RUNTIME_STOP_TIMEOUT);
    result.context("node agent failed")
}
