//! `hearth-broker`: the MQTT broker alone, as the Kubernetes broker Deployment runs it.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use hearth_broker::{Authenticator, BrokerConfig, PasswordFile};
use serde::Deserialize;

/// Hearth's MQTT broker (rumqttd) on its own.
///
/// Settings come from the config file's [broker] section, then from
/// HEARTH_BROKER__<KEY> environment variables (e.g.
/// HEARTH_BROKER__LISTEN=0.0.0.0:1883, HEARTH_BROKER__PASSWORD_FILE=/etc/hearth/passwd).
/// With no config the broker listens on 127.0.0.1:1883 and lets local
/// clients in without a password. Stop it with SIGTERM or Ctrl-C.
#[derive(Debug, Parser)]
#[command(version, about, long_about, args_conflicts_with_subcommands = true)]
struct Cli {
    /// TOML config file with a [broker] section (see broker/broker.example.toml).
    #[arg(long, short, env = "HEARTH_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the config (file + environment) and exit without listening.
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add a user, change a password or delete a user in a password file
    /// (like mosquitto_passwd). Point [broker] password_file at the file.
    ///
    /// `passwd FILE USER` asks for the password twice on a terminal, or
    /// reads one line from standard input when that is not a terminal.
    /// The file is created (mode 0600) if missing and rewritten atomically;
    /// the broker reads it at startup, so restart it after a change.
    Passwd(PasswdArgs),
}

#[derive(Debug, Args)]
struct PasswdArgs {
    /// Delete USER from FILE.
    #[arg(short = 'D', long, conflicts_with_all = ["batch", "stdin"])]
    delete: bool,
    /// Batch mode: take the password from the command line. It then stays
    /// in your shell history and is visible to other users in `ps`.
    #[arg(short = 'b', long, requires = "password", conflicts_with = "stdin")]
    batch: bool,
    /// Read the password from standard input (one line), even on a terminal.
    #[arg(long)]
    stdin: bool,
    /// The password file.
    file: PathBuf,
    /// The user name (no ':' or whitespace).
    user: String,
    /// The password, with -b only.
    #[arg(requires = "batch")]
    password: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct BrokerFile {
    broker: BrokerConfig,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Passwd(args)) = cli.command {
        return passwd(args);
    }
    hearth_common::telemetry::init();
    let file: BrokerFile = hearth_common::settings::load(cli.config.as_deref())?;
    let config = file.broker;
    if cli.check_config {
        config.validate().context("invalid broker config")?;
        let users = if config.anonymous_allowed() {
            0
        } else {
            Authenticator::from_config(&config)
                .context("invalid broker users")?
                .len()
        };
        // The ACL is parsed too, so a bad line is found before a restart.
        let acl = config.load_acl().context("invalid broker ACL")?;
        println!(
            "config OK: {} listener(s), {users} user(s){}",
            config.listeners().len(),
            if acl.is_some() { ", ACL loaded" } else { "" }
        );
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

/// `hearth-broker passwd`: edits the password file. Prints to stderr only,
/// and never the password.
fn passwd(args: PasswdArgs) -> anyhow::Result<()> {
    let mut file = PasswordFile::load_or_empty(&args.file)?;
    if args.delete {
        file.delete(&args.user)?;
        file.save(&args.file)?;
        eprintln!("deleted user {} from {}", args.user, args.file.display());
        return Ok(());
    }
    let password = match (args.batch, args.password) {
        (true, Some(password)) => {
            eprintln!(
                "warning: -b leaves the password in your shell history and shows it to other \
                 users in `ps`; prefer `hearth-broker passwd {} {}` (prompt) or --stdin",
                args.file.display(),
                args.user
            );
            password
        }
        _ if args.stdin || !std::io::stdin().is_terminal() => read_stdin_password()?,
        _ => prompt_password(&args.file, &args.user)?,
    };
    let existed = file.contains(&args.user);
    file.set(&args.user, &password)?;
    file.save(&args.file)?;
    eprintln!(
        "{} user {} in {}",
        if existed { "updated" } else { "added" },
        args.user,
        args.file.display()
    );
    Ok(())
}

/// One line from stdin, without its line ending.
fn read_stdin_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        bail!("no password on standard input (expected one line)");
    }
    Ok(password)
}

/// Asks twice on the terminal with echo off.
fn prompt_password(file: &Path, user: &str) -> anyhow::Result<String> {
    let first = rpassword::prompt_password(format!("Password for {user} in {}: ", file.display()))
        .context("cannot read the password from the terminal")?;
    let second = rpassword::prompt_password("Reenter password: ")
        .context("cannot read the password from the terminal")?;
    if first != second {
        bail!("the passwords do not match; nothing was changed");
    }
    Ok(first)
}
