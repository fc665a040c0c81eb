//! Command-line surface: one subcommand per scenario, sharing the broker connection flags.

use clap::{Args, Parser, Subcommand};

use crate::client::Secret;
use crate::payload::HEADER_LEN;

/// Largest `--payload-size` accepted: big enough for any Hearth message,
/// small enough that a typo cannot ask for gigabytes per message.
pub const MAX_PAYLOAD_SIZE: i64 = 1024 * 1024;

/// Load generator and latency meter for MQTT 3.1.1 brokers and the Hearth hub.
#[derive(Debug, Parser)]
#[command(name = "hearth-bench", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish/subscribe load against any MQTT 3.1.1 broker; reports
    /// throughput, end-to-end latency, lost and duplicated messages.
    ///
    /// Subscribers connect and subscribe first; then every publisher sends
    /// --messages probes spread round-robin over --topics topics, and every
    /// subscriber subscribes to all of them, so each subscriber expects
    /// publishers x messages deliveries. The run always ends by --timeout.
    Broker(BrokerArgs),

    /// Press-to-command latency through a broker and the Hearth hub.
    ///
    /// Publishes --presses button presses at QoS 1 on
    /// <prefix>/button/b<k>/press, spread round-robin over b0..b<B-1>, and
    /// times each until the hub's command for it arrives on
    /// <prefix>/node/<node>/light/l<k>/set. The hub needs one rule per
    /// button: write them with --write-rules FILE. With --hub-http the hub's
    /// /readyz is checked first and its /metrics afterwards, to confirm it
    /// took in every press.
    Buttons(ButtonsArgs),
}

/// How to reach the broker; shared by every scenario.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Broker URL: mqtt://HOST[:PORT] or tcp://HOST[:PORT] (IPv6 as [::1]).
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    pub url: String,

    /// Username sent in CONNECT.
    #[arg(long, env = "HEARTH_BENCH_USERNAME")]
    pub username: Option<String>,

    /// Password sent in CONNECT (needs --username). Never printed; prefer the
    /// environment variable so it stays out of shell history.
    #[arg(long, env = "HEARTH_BENCH_PASSWORD", hide_env_values = true)]
    pub password: Option<Secret>,

    /// Allow a broker that is not on this machine. Without it only loopback
    /// hosts (127.0.0.0/8, ::1, localhost) are accepted, so a typo cannot
    /// aim load at someone else's broker.
    #[arg(long)]
    pub allow_remote: bool,
}

/// Options of `hearth-bench broker`.
#[derive(Debug, Clone, Args)]
pub struct BrokerArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,

    /// Number of publishing clients.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub publishers: u32,

    /// Number of subscribing clients; each receives every message.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub subscribers: u32,

    /// Messages sent by EACH publisher.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub messages: u64,

    /// QoS used for publishing and subscribing (0 or 1).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: u8,

    /// Bytes per message payload (the probe header needs 24).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(HEADER_LEN as i64..=MAX_PAYLOAD_SIZE))]
    pub payload_size: u32,

    /// Messages per second per publisher; 0 sends as fast as the client can.
    #[arg(long, default_value_t = 0)]
    pub rate: u32,

    /// Number of distinct topics; publishers spread messages over them
    /// round-robin and every subscriber subscribes to each one as its own filter.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub topics: u32,

    /// Hard bound on the whole run in seconds, connecting included; on
    /// expiry the run stops and reports what it measured so far.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,

    /// Print the result as one JSON line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `hearth-bench buttons`.
#[derive(Debug, Clone, Args)]
pub struct ButtonsArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,

    /// Presses to send in total.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=MAX_PRESSES))]
    pub presses: u64,

    /// Presses per second in total (all buttons together); 0 sends as fast
    /// as the broker acknowledges them.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,

    /// Buttons b0..b<N-1> the presses are spread over, round-robin; each
    /// needs its rule in the hub (see --write-rules).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=MAX_BUTTONS))]
    pub buttons: u32,

    /// Node whose lights the rules command (`<node>/light/l<k>`).
    #[arg(long, default_value = "pi-1", value_parser = parse_id)]
    pub node: String,

    /// Topic prefix the hub uses (its `hub.topic_prefix`).
    #[arg(long, default_value = "hearth", value_parser = parse_prefix)]
    pub prefix: String,

    /// A press whose command has not arrived this many seconds after it was
    /// sent counts as lost; also how long the run waits for stragglers, and
    /// for the hub's /metrics to catch up, once every press is sent.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub press_timeout: u64,

    /// Hard bound in seconds on connecting, pressing and waiting for
    /// commands; on expiry the run stops and reports what it measured.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,

    /// The hub's HTTP address (e.g. http://127.0.0.1:8080): checks /readyz
    /// before the run and reads hearth_messages_in_total from /metrics
    /// before and after it. Loopback only unless --allow-remote.
    #[arg(long, value_name = "URL")]
    pub hub_http: Option<String>,

    /// Write the hub rules for --buttons, --node and --prefix to FILE
    /// ("-" for stdout) and exit without sending anything.
    #[arg(long, value_name = "FILE")]
    pub write_rules: Option<std::path::PathBuf>,

    /// With --write-rules: write automations instead of rules, this many in
    /// all: one per button doing what its rule would, and the rest a
    /// realistic mix (time, motion with a delay, climate thresholds, a
    /// Zigbee remote, states with conditions) that presses never fire but
    /// the hub evaluates for each of them.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub automations: Option<u32>,

    /// Print the result as one JSON line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Most presses in one run: one 8-byte send time is kept per press, so this
/// caps that memory at 80 MB.
pub const MAX_PRESSES: u64 = 10_000_000;
/// Most buttons in one run; each is one rule in the hub's config.
pub const MAX_BUTTONS: i64 = 10_000;

/// A Hearth id: `[a-z0-9_-]{1,64}`, what the hub accepts in topics.
fn parse_id(raw: &str) -> Result<String, String> {
    if crate::hub::is_valid_id(raw) {
        Ok(raw.to_owned())
    } else {
        Err("must be 1 to 64 of a-z, 0-9, '_' and '-'".to_owned())
    }
}

/// A topic prefix: one or more non-empty levels without wildcards.
fn parse_prefix(raw: &str) -> Result<String, String> {
    if crate::hub::is_valid_prefix(raw) {
        Ok(raw.to_owned())
    } else {
        Err("must be non-empty topic levels without '+', '#' or empty levels".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<BrokerArgs, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("hearth-bench").chain(args.iter().copied()))?;
        match cli.command {
            Command::Broker(args) => Ok(args),
            Command::Buttons(_) => panic!("not a broker command line"),
        }
    }

    fn parse_buttons(args: &[&str]) -> Result<ButtonsArgs, clap::Error> {
        let argv = ["hearth-bench", "buttons"].iter().chain(args).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Buttons(args) => Ok(args),
            Command::Broker(_) => panic!("not a buttons command line"),
        }
    }

    #[test]
    fn buttons_defaults_and_limits() {
        let a = parse_buttons(&[]).expect("defaults parse");
        assert_eq!((a.presses, a.rate, a.buttons), (1_000, 100, 1));
        assert_eq!((a.node.as_str(), a.prefix.as_str()), ("pi-1", "hearth"));
        assert_eq!((a.press_timeout, a.timeout), (5, 120));
        assert!(a.hub_http.is_none() && a.write_rules.is_none() && !a.json);
        assert!(a.automations.is_none());
        assert!(parse_buttons(&["--presses", "0"]).is_err());
        assert!(parse_buttons(&["--presses", "10000001"]).is_err());
        assert!(parse_buttons(&["--buttons", "0"]).is_err());
        assert!(parse_buttons(&["--node", "Pi 1"]).is_err());
        assert!(parse_buttons(&["--prefix", "a/+"]).is_err());
        assert!(parse_buttons(&["--prefix", "home/hearth"]).is_ok());
        assert!(parse_buttons(&["--rate", "0", "--buttons", "10000"]).is_ok());
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_documentation() {
        let a = parse(&["broker"]).expect("defaults parse");
        assert_eq!(a.connect.url, "mqtt://127.0.0.1:1883");
        assert_eq!((a.publishers, a.subscribers, a.messages), (1, 1, 10_000));
        assert_eq!(
            (a.qos, a.payload_size, a.rate, a.topics, a.timeout),
            (0, 64, 0, 1, 60)
        );
        assert!(!a.json && !a.connect.allow_remote);
    }

    #[test]
    fn rejects_out_of_range_values() {
        assert!(parse(&["broker", "--qos", "2"]).is_err());
        assert!(parse(&["broker", "--payload-size", "23"]).is_err());
        assert!(parse(&["broker", "--publishers", "0"]).is_err());
        assert!(parse(&["broker", "--messages", "0"]).is_err());
        assert!(parse(&["broker", "--timeout", "0"]).is_err());
        assert!(parse(&["broker", "--payload-size", "24", "--qos", "1"]).is_ok());
    }

    #[test]
    fn help_documents_every_flag_and_hides_the_password() {
        let mut cmd = Cli::command();
        for name in ["broker", "buttons"] {
            let sub = cmd.find_subcommand_mut(name).expect("subcommand");
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" {
                    assert!(arg.get_help().is_some(), "{name} --{id} has no help text");
                }
            }
        }
        let a = parse(&["broker", "--username", "u", "--password", "hunter2"]).expect("parses");
        assert!(!format!("{a:?}").contains("hunter2"));
    }
}
