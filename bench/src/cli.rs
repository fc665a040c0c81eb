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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<BrokerArgs, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("hearth-bench").chain(args.iter().copied()))?;
        let Command::Broker(args) = cli.command;
        Ok(args)
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
        let broker = cmd
            .find_subcommand_mut("broker")
            .expect("broker subcommand");
        for arg in broker.get_arguments() {
            let id = arg.get_id().as_str();
            if id != "help" {
                assert!(arg.get_help().is_some(), "--{id} has no help text");
            }
        }
        let a = parse(&["broker", "--username", "u", "--password", "hunter2"]).expect("parses");
        assert!(!format!("{a:?}").contains("hunter2"));
    }
}
